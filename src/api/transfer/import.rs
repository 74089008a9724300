//! Import: records parsed into commands one by one, applied in large batches with one
//! revision each, and each batch acknowledged to the client as soon as it is durable, so
//! that a broken import can be resumed from the last acknowledgement. A batch handed to
//! the writer is never taken back: it commits even if the client is gone.

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc};

use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Status, Streaming};

use crate::{
    api::{convert, status},
    engine::{Command, WriteError},
    model::Catalog,
    proto::{self, record::Kind},
    store::{Store, StoreError, WriteOutcome},
};

/// Records applied per atomic batch (one revision each).
const IMPORT_BATCH: usize = 20_000;
/// Batches sent to the writer and not yet durable: one being committed, one being planned.
const IN_FLIGHT: usize = 2;
/// Rejections reported in full per progress message; the rest are only counted.
const MAX_REPORTED_REJECTIONS: usize = 1_000;
/// Progress messages waiting for the client to read them. One that reads none stops
/// the import once these are full: it is sent nothing more to ask for.
const PROGRESS_AHEAD: usize = 4;

/// Parses one record into the command that applies it.
pub fn command(catalog: &Catalog, record: &proto::Record) -> Result<Command, Status> {
    match record.kind.as_ref() {
        None => Err(status::invalid(
            "record",
            "is empty: set one of workspace, member, resource, grant",
        )),
        Some(Kind::Workspace(w)) => {
            let workspace = convert::workspace_id("workspace.workspace_id", &w.workspace_id)?;
            if w.owner_user_ids.is_empty() {
                return Err(status::invalid(
                    "workspace.owner_user_ids",
                    format_args!(
                        "is empty: workspace `{workspace}` needs at least one owner \
                         (owners not listed are kept)"
                    ),
                ));
            }
            Ok(Command::UpsertWorkspace {
                products: match w.products.as_slice() {
                    [] => None,
                    listed => Some(convert::products(catalog, "workspace.products", listed)?),
                },
                owners: w
                    .owner_user_ids
                    .iter()
                    .enumerate()
                    .map(|(i, u)| convert::user_id(&format!("workspace.owner_user_ids[{i}]"), u))
                    .collect::<Result<_, _>>()?,
                workspace,
            })
        }
        Some(Kind::Member(m)) => Ok(Command::SetMembership {
            workspace: convert::workspace_id("member.workspace_id", &m.workspace_id)?,
            user: convert::user_id("member.user_id", &m.user_id)?,
            membership: convert::membership("member.membership", m.membership)?,
            actor: None,
        }),
        Some(Kind::Resource(r)) => Ok(Command::RegisterResource {
            workspace: convert::workspace_id("resource.workspace_id", &r.workspace_id)?,
            resource: convert::resource(catalog, "resource.resource", r.resource.as_ref())?,
            parent: match r.parent_id.as_str() {
                "" => None,
                parent => Some(convert::resource_id("resource.parent_id", parent)?),
            },
        }),
        Some(Kind::Grant(g)) => Ok(Command::RestoreGrant {
            workspace: convert::workspace_id("grant.workspace_id", &g.workspace_id)?,
            user: convert::user_id("grant.user_id", &g.user_id)?,
            grant: crate::model::Grant {
                role: convert::role(catalog, "grant.role", &g.role)?,
                scope: convert::scope(catalog, "grant.scope", g.scope.as_ref())?,
            },
        }),
    }
}

/// Applies an import stream, answering with its progress. While one batch is being made
/// durable, the next is being planned by the writer and the one after it received and
/// parsed, so the network, the parsing, the planning and the disk overlap.
pub fn import(
    store: Arc<Store>,
    caller: Option<Arc<str>>,
    requests: Streaming<proto::ImportRequest>,
) -> ReceiverStream<Result<proto::ImportProgress, Status>> {
    let (progress, receiver) = mpsc::channel(PROGRESS_AHEAD);
    tokio::spawn(async move {
        let mut import = Import::new(store, caller, progress);
        let ended = import.run(requests).await;
        let tally = &import.tally;
        tracing::info!(
            first_index = import.first_index,
            next_index = import.acknowledged,
            records = tally.records,
            applied = tally.applied,
            rejected = tally.rejected_count,
            revision = tally.revision,
            done = ended.is_ok(),
            "import"
        );
        match ended {
            Ok(()) => {}
            Err(Stop::Failed(status)) => {
                let _ = import.progress.send(Err(status)).await;
            }
            Err(Stop::ClientGone) => {
                tracing::debug!("the importing client went away; its queued batches still commit");
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Why an import stopped before its end.
enum Stop {
    /// A failure the client is told of.
    Failed(Status),
    /// The client no longer reads the progress: no more batches are queued for it.
    ClientGone,
}

impl From<Status> for Stop {
    fn from(status: Status) -> Self {
        Self::Failed(status)
    }
}

/// What the writer answers for a batch, once it is durable.
type Outcome = Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>;

/// A batch's outcome, to come.
type PendingOutcome = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The records received since the last batch was queued.
#[derive(Default)]
struct OpenBatch {
    /// The commands, with the index of the record each came from.
    commands: Vec<Command>,
    /// The record index of each command.
    indexes: Vec<u64>,
    /// Records refused before reaching the writer (at most the first reported ones).
    rejected: Vec<proto::RejectedRecord>,
    /// How many records were refused before reaching the writer.
    rejected_count: u64,
}

/// A batch handed to the writer, not yet acknowledged.
struct QueuedBatch {
    /// The index after its last record: where a broken import resumes once it is durable.
    end: u64,
    /// The record index of each command.
    indexes: Vec<u64>,
    /// Records refused before reaching the writer (at most the first reported ones).
    rejected: Vec<proto::RejectedRecord>,
    /// How many records were refused before reaching the writer.
    rejected_count: u64,
    /// What the writer will answer.
    outcome: PendingOutcome,
}

/// What the call has settled so far.
#[derive(Default)]
struct Tally {
    records: u64,
    applied: u64,
    unchanged: u64,
    rejected_count: u64,
    revision: u64,
    batches: u64,
}

/// One import call in progress.
struct Import {
    store: Arc<Store>,
    catalog: Arc<Catalog>,
    caller: Option<Arc<str>>,
    progress: mpsc::Sender<Result<proto::ImportProgress, Status>>,
    /// The client's index of the call's first record.
    first_index: u64,
    /// The index the next record received gets.
    next_index: u64,
    /// Every record before this index is settled and acknowledged.
    acknowledged: u64,
    open: OpenBatch,
    /// Batches queued for the writer, oldest first; they commit in this order.
    in_flight: VecDeque<QueuedBatch>,
    tally: Tally,
}

impl Import {
    fn new(
        store: Arc<Store>,
        caller: Option<Arc<str>>,
        progress: mpsc::Sender<Result<proto::ImportProgress, Status>>,
    ) -> Self {
        Self {
            catalog: Arc::clone(store.catalog()),
            store,
            caller,
            progress,
            first_index: 0,
            next_index: 0,
            acknowledged: 0,
            open: OpenBatch::default(),
            in_flight: VecDeque::new(),
            tally: Tally::default(),
        }
    }

    /// Receives the stream, queuing a batch each time one fills and acknowledging each as
    /// it becomes durable, until every record is settled.
    async fn run(&mut self, mut requests: Streaming<proto::ImportRequest>) -> Result<(), Stop> {
        let mut first = true;
        let mut receiving = true;
        loop {
            tokio::select! {
                // Acknowledging first, so that the client hears of each batch promptly.
                biased;
                outcome = front_outcome(&mut self.in_flight), if !self.in_flight.is_empty() => {
                    if let Some(batch) = self.in_flight.pop_front() {
                        self.acknowledge(batch, outcome).await?;
                    }
                }
                chunk = requests.next(), if receiving && self.in_flight.len() < IN_FLIGHT => {
                    match chunk {
                        Some(chunk) => {
                            let chunk = chunk?;
                            self.receive(chunk, std::mem::take(&mut first)).await?;
                        }
                        None => {
                            receiving = false;
                            self.close_batch().await?;
                        }
                    }
                }
                else => break,
            }
        }
        let done = self.message(Vec::new(), true);
        self.send(done).await
    }

    /// Parses a chunk's records into the open batch, queuing it each time it fills.
    async fn receive(&mut self, chunk: proto::ImportRequest, first: bool) -> Result<(), Stop> {
        if first {
            self.first_index = chunk.first_index;
            self.next_index = chunk.first_index;
            self.acknowledged = chunk.first_index;
        } else if chunk.first_index != 0 {
            return Err(status::invalid(
                "first_index",
                "only the first message of an import may set it",
            )
            .into());
        }
        for record in &chunk.records {
            let index = self.next_index;
            self.next_index = index.saturating_add(1);
            match command(&self.catalog, record) {
                Ok(command) => {
                    self.open.commands.push(command);
                    self.open.indexes.push(index);
                }
                Err(status) => {
                    self.open.rejected_count += 1;
                    if self.open.rejected.len() < MAX_REPORTED_REJECTIONS {
                        let reason = status.message().to_owned();
                        self.open
                            .rejected
                            .push(proto::RejectedRecord { index, reason });
                    }
                }
            }
            if self.open.commands.len() == IMPORT_BATCH {
                self.close_batch().await?;
            }
        }
        Ok(())
    }

    /// Queues the open batch for the writer, behind those already in flight, once there
    /// is room for it.
    async fn close_batch(&mut self) -> Result<(), Stop> {
        let end = self.next_index;
        let last_end = self.in_flight.back().map_or(self.acknowledged, |b| b.end);
        if end == last_end {
            return Ok(());
        }
        while self.in_flight.len() >= IN_FLIGHT {
            if let Some(mut oldest) = self.in_flight.pop_front() {
                let outcome = (&mut oldest.outcome).await;
                self.acknowledge(oldest, outcome).await?;
            }
        }
        // Nothing more is started for a client that is gone; what it was told stands.
        if self.progress.is_closed() {
            return Err(Stop::ClientGone);
        }
        let open = std::mem::take(&mut self.open);
        let outcome: PendingOutcome = if open.commands.is_empty() {
            Box::pin(std::future::ready(Ok(Vec::new())))
        } else {
            let queued = self
                .store
                .queue_batch_as(self.caller.clone(), open.commands)
                .await
                .map_err(|e| status::store(&e))?;
            Box::pin(queued.outcome())
        };
        self.in_flight.push_back(QueuedBatch {
            end,
            indexes: open.indexes,
            rejected: open.rejected,
            rejected_count: open.rejected_count,
            outcome,
        });
        Ok(())
    }

    /// Counts a durable batch's outcome and tells the client.
    async fn acknowledge(&mut self, batch: QueuedBatch, outcome: Outcome) -> Result<(), Stop> {
        let results = outcome.map_err(|e| status::store(&e))?;
        let QueuedBatch {
            end,
            indexes,
            mut rejected,
            mut rejected_count,
            ..
        } = batch;
        let mut refused = Vec::new();
        let mut changed = false;
        for (index, result) in indexes.into_iter().zip(results) {
            match result {
                Ok(outcome) => {
                    self.tally.revision = outcome.revision;
                    if outcome.changed {
                        changed = true;
                        self.tally.applied += 1;
                    } else {
                        self.tally.unchanged += 1;
                    }
                }
                Err(err) => {
                    rejected_count += 1;
                    if refused.len() < MAX_REPORTED_REJECTIONS {
                        let reason = status::refused(&err).message().to_owned();
                        refused.push(proto::RejectedRecord { index, reason });
                    }
                }
            }
        }
        if changed {
            self.tally.batches += 1;
        }
        // Both lists are in index order and hold the first ones of theirs, so the first
        // of the two together are among them.
        rejected.append(&mut refused);
        rejected.sort_by_key(|r| r.index);
        rejected.truncate(MAX_REPORTED_REJECTIONS);
        self.tally.rejected_count += rejected_count;
        self.acknowledged = end;
        self.tally.records = end - self.first_index;
        let message = self.message(rejected, false);
        self.send(message).await
    }

    /// A progress message as of now.
    fn message(
        &mut self,
        rejected: Vec<proto::RejectedRecord>,
        done: bool,
    ) -> proto::ImportProgress {
        if self.tally.revision == 0 {
            // No record applied yet: what is settled holds as of the current revision.
            self.tally.revision = self.store.snapshot().revision;
        }
        proto::ImportProgress {
            next_index: self.acknowledged,
            records: self.tally.records,
            applied: self.tally.applied,
            unchanged: self.tally.unchanged,
            rejected,
            rejected_count: self.tally.rejected_count,
            revision: self.tally.revision,
            batches: self.tally.batches,
            done,
        }
    }

    async fn send(&mut self, message: proto::ImportProgress) -> Result<(), Stop> {
        self.progress
            .send(Ok(message))
            .await
            .map_err(|_| Stop::ClientGone)
    }
}

/// The outcome of the oldest batch in flight, once it is durable; never ready if none is.
async fn front_outcome(in_flight: &mut VecDeque<QueuedBatch>) -> Outcome {
    match in_flight.front_mut() {
        Some(batch) => (&mut batch.outcome).await,
        None => std::future::pending().await,
    }
}
