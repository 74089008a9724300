//! The writers and the importer, and the record of what each was acknowledged. Each lane
//! owns its workspaces and writes to them one request at a time, so the state each must
//! have is known exactly: what was acknowledged, and at most one request in flight.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use accessd::proto::{self, admin_service_client::AdminServiceClient};
use tonic::{Status, transport::Channel};

use crate::{
    model::{self, Workspace, Write},
    rng::Rng,
};

/// What a lane does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Writes of every kind to one workspace at a time, deleting it now and then.
    Writer,
    /// Imports new workspaces, deleting the oldest of them past a few.
    Importer {
        /// The most records one import holds.
        max_records: usize,
    },
}

/// A request whose answer never came: it may have been applied or not.
#[derive(Clone, Debug)]
pub enum InFlight {
    /// A write on `workspace`: the state is the acknowledged one, or `after`.
    Write {
        /// The workspace written.
        workspace: String,
        /// The state if it was applied.
        after: Option<Workspace>,
    },
    /// An import of a new workspace: the state is what some first part of `records`
    /// leaves (batches apply in order, each atomically, so never a part out of order).
    Import {
        /// The workspace imported.
        workspace: String,
        /// Every record sent.
        records: Vec<proto::Record>,
        /// How many of them the server acknowledged durable before it went away.
        acknowledged: usize,
    },
}

/// One writer or importer, and everything it was acknowledged.
pub struct Lane {
    /// Its name, the prefix of its workspaces' ids.
    pub name: String,
    role: Role,
    rng: Rng,
    /// Every workspace it ever wrote, with the state it must have (`None`: deleted).
    pub expected: BTreeMap<String, Option<Workspace>>,
    /// The request in flight when the server went away, if any.
    pub in_flight: Option<InFlight>,
    /// Every revision a write of this lane was acknowledged with, in order.
    pub revisions: Vec<u64>,
    /// Writes acknowledged (an import counts once).
    pub acknowledged: u64,
    /// Imports acknowledged, and the records they held.
    pub imports: (u64, u64),
    generation: u64,
    next_id: u64,
    live_imports: VecDeque<String>,
}

impl Lane {
    /// A lane named `name`, doing `role`, its choices drawn from `seed`.
    pub fn new(name: String, role: Role, seed: u64) -> Self {
        Self {
            name,
            role,
            rng: Rng::new(seed),
            expected: BTreeMap::new(),
            in_flight: None,
            revisions: Vec::new(),
            acknowledged: 0,
            imports: (0, 0),
            generation: 0,
            next_id: 0,
            live_imports: VecDeque::new(),
        }
    }

    /// The workspace the writer writes to now: a deleted one is followed by a new one.
    fn current(&mut self) -> String {
        loop {
            let ws = format!("{}-{}", self.name, self.generation);
            if !matches!(self.expected.get(&ws), Some(None)) {
                return ws;
            }
            self.generation += 1;
        }
    }

    /// Settles the request in flight with the state the server has for its workspace
    /// (`actual`); an error naming both if that state is neither of those allowed.
    pub fn settle(&mut self, actual: &BTreeMap<String, Workspace>) -> Result<Option<bool>, String> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(None);
        };
        match in_flight {
            InFlight::Write { workspace, after } => {
                let found = actual.get(&workspace).cloned();
                let before = self.expected.get(&workspace).cloned().flatten();
                if found == after {
                    self.expected.insert(workspace, after);
                    Ok(Some(true))
                } else if found == before {
                    Ok(Some(false))
                } else {
                    Err(format!(
                        "{workspace}: a write in flight left a state that is neither before nor \
                         after it:\nfound  {found:?}\nbefore {before:?}\nafter  {after:?}"
                    ))
                }
            }
            InFlight::Import {
                workspace,
                records,
                acknowledged,
            } => {
                let found = actual.get(&workspace).cloned();
                let applied = match &found {
                    None => 0,
                    Some(state) => records
                        .iter()
                        .take_while(|r| r.kind.as_ref().is_some_and(|k| state.holds(k)))
                        .count(),
                };
                let prefix = model::imported(&records[..applied]);
                if found != prefix {
                    return Err(format!(
                        "{workspace}: an import in flight left a state that is not what its \
                         first {applied} of {} records leave",
                        records.len()
                    ));
                }
                if applied < acknowledged {
                    return Err(format!(
                        "{workspace}: an import in flight was acknowledged durable up to \
                         record {acknowledged}, and only {applied} are applied"
                    ));
                }
                if applied > 0 {
                    self.expected.insert(workspace.clone(), prefix);
                    self.live_imports.push_back(workspace);
                }
                Ok(Some(applied > 0))
            }
        }
    }

    /// Forgets the request in flight: the server refused it, so it must not be applied.
    pub fn refused(&mut self) {
        if let Some(InFlight::Write { .. }) = self.in_flight {
            self.in_flight = None;
        }
    }

    /// Records an acknowledgement; a write that changed nothing, or whose revision is
    /// not past this lane's last, is a failure (of the server or of the model).
    fn acknowledge(&mut self, revision: u64, changed: bool, what: &str) {
        assert!(changed, "{}: {what} changed nothing", self.name);
        let last = self.revisions.last().copied().unwrap_or(0);
        assert!(
            revision > last,
            "{}: {what} acknowledged at revision {revision}, after revision {last}",
            self.name
        );
        self.revisions.push(revision);
        self.acknowledged += 1;
    }

    /// One request: `Ok` once acknowledged, `Err` with the status if not, the request
    /// left in flight.
    async fn step(&mut self, admin: &mut AdminServiceClient<Channel>) -> Result<(), Status> {
        match self.role {
            Role::Writer => {
                let ws = self.current();
                let state = self.expected.get(&ws).cloned().flatten();
                let (name, id) = (&self.name, &mut self.next_id);
                let mut fresh = |prefix: &str| {
                    *id += 1;
                    format!("{prefix}-{name}-{id}")
                };
                let write = model::plan(&mut self.rng, &state, &mut fresh);
                self.write(admin, ws, &state, &write).await
            }
            Role::Importer { max_records } => {
                // A deletion left in flight and found applied has done its work.
                while let Some(front) = self.live_imports.front() {
                    if matches!(self.expected.get(front), Some(Some(_))) {
                        break;
                    }
                    self.live_imports.pop_front();
                }
                if self.live_imports.len() > 2 {
                    let ws = self.live_imports.front().cloned().unwrap_or_default();
                    let state = self.expected.get(&ws).cloned().flatten();
                    self.write(admin, ws, &state, &Write::DeleteWorkspace)
                        .await?;
                    self.live_imports.pop_front();
                    return Ok(());
                }
                self.generation += 1;
                let ws = format!("{}-{}", self.name, self.generation);
                let count = self.rng.between(max_records / 20, max_records);
                let records = model::import_records(&mut self.rng, &ws, count);
                self.in_flight = Some(InFlight::Import {
                    workspace: ws.clone(),
                    records: records.clone(),
                    acknowledged: 0,
                });
                let requests: Vec<proto::ImportRequest> = records
                    .chunks(1_000)
                    .map(|chunk| proto::ImportRequest {
                        records: chunk.to_vec(),
                        first_index: 0,
                    })
                    .collect();
                let mut progress = admin
                    .import(tokio_stream::iter(requests))
                    .await?
                    .into_inner();
                let mut last = None;
                while let Some(message) = progress.message().await? {
                    assert_eq!(message.rejected_count, 0, "{:?}", message.rejected);
                    if let Some(InFlight::Import { acknowledged, .. }) = &mut self.in_flight {
                        *acknowledged = usize::try_from(message.next_index).unwrap_or(usize::MAX);
                    }
                    last = Some(message);
                }
                let last = last.filter(|m| m.done).ok_or_else(|| {
                    Status::unavailable("the import's progress ended before it was done")
                })?;
                self.in_flight = None;
                assert_eq!(last.applied, records.len() as u64);
                self.acknowledge(last.revision, true, "an import");
                self.imports.0 += 1;
                self.imports.1 += records.len() as u64;
                self.expected.insert(ws.clone(), model::imported(&records));
                self.live_imports.push_back(ws);
                Ok(())
            }
        }
    }

    async fn write(
        &mut self,
        admin: &mut AdminServiceClient<Channel>,
        ws: String,
        state: &Option<Workspace>,
        write: &Write,
    ) -> Result<(), Status> {
        let after = model::apply(state, write);
        self.in_flight = Some(InFlight::Write {
            workspace: ws.clone(),
            after: after.clone(),
        });
        let (revision, changed) = model::send(admin, &ws, write).await?;
        self.in_flight = None;
        self.acknowledge(revision, changed, &format!("{write:?} on {ws}"));
        self.expected.insert(ws, after);
        Ok(())
    }
}

/// Runs every lane against the server at `channel` until `stop` is set or its first
/// refused or unanswered request (left in flight); returns the lanes with the status
/// each stopped on, if any.
pub async fn run(
    lanes: Vec<Lane>,
    channel: &Channel,
    stop: &Arc<AtomicBool>,
) -> Vec<(Lane, Option<Status>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, mut lane) in lanes.into_iter().enumerate() {
        let mut admin = AdminServiceClient::new(channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let stop = Arc::clone(stop);
        tasks.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if let Err(status) = lane.step(&mut admin).await {
                    return (index, lane, Some(status));
                }
            }
            (index, lane, None)
        });
    }
    let mut ended = Vec::new();
    // A lane whose server was killed answers at once; the bound is only a safety net.
    while let Some(joined) = tokio::time::timeout(Duration::from_secs(300), tasks.join_next())
        .await
        .expect("a lane never returned")
    {
        ended.push(joined.unwrap());
    }
    ended.sort_by_key(|(index, _, _)| *index);
    ended
        .into_iter()
        .map(|(_, lane, status)| (lane, status))
        .collect()
}

/// `writers` writers and, given the most records an import may hold, one importer, their
/// choices drawn from `seed`.
pub fn lanes(seed: u64, writers: usize, importer: Option<usize>) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = (0..writers)
        .map(|i| Lane::new(format!("w{i}"), Role::Writer, seed ^ (i as u64 + 1)))
        .collect();
    if let Some(max_records) = importer {
        lanes.push(Lane::new(
            "imp".into(),
            Role::Importer { max_records },
            seed ^ 0xA11CE,
        ));
    }
    lanes
}

/// What a run's lanes were acknowledged, in all.
pub struct Totals {
    /// Writes, an import counting once.
    pub acknowledged: u64,
    /// Imports.
    pub imports: u64,
    /// Records the imports held.
    pub records: u64,
}

impl Totals {
    /// The totals of `lanes`.
    pub fn of(lanes: &[Lane]) -> Self {
        Self {
            acknowledged: lanes.iter().map(|l| l.acknowledged).sum(),
            imports: lanes.iter().map(|l| l.imports.0).sum(),
            records: lanes.iter().map(|l| l.imports.1).sum(),
        }
    }
}
