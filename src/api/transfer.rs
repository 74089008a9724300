//! Bulk import and export: records to commands (`import`) and a snapshot back to records.

mod import;

#[cfg(feature = "fuzzing")]
pub use import::command;
pub use import::import;

use std::{sync::Arc, time::Duration};

use tokio::sync::{
    OwnedSemaphorePermit, Semaphore,
    mpsc::{self, OwnedPermit, error::SendTimeoutError},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::warn;

use super::convert;
use crate::{
    model::{Catalog, Membership, Selection, TypeId, Workspace, WorkspaceId},
    proto::{self, record::Kind},
    store::{Snapshot, Store},
};

/// Records per export message.
const EXPORT_CHUNK: usize = 1_000;

/// How many exports may run at once, and how long one may wait for its reader.
#[derive(Debug, Clone)]
pub struct Exports {
    /// One permit per running export; an export that finds none is refused.
    permits: Arc<Semaphore>,
    /// How long an export waits for its reader to take a message before it gives up.
    stall_timeout: Duration,
}

impl Exports {
    /// Exports running at once unless configured otherwise.
    pub const DEFAULT_MAX: usize = 32;
    /// How long an export waits for its reader unless configured otherwise.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

    /// At most `max` exports at once, each ended once its reader has taken nothing for
    /// `stall_timeout`.
    pub fn new(max: usize, stall_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            stall_timeout,
        }
    }

    /// Streams the snapshot (or one workspace of it) as records; RESOURCE_EXHAUSTED if
    /// as many exports as allowed are running.
    pub fn export(
        &self,
        store: &Store,
        only: Option<WorkspaceId>,
    ) -> Result<ReceiverStream<Result<proto::ExportResponse, Status>>, Status> {
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(
                "as many exports as the server allows are running: try again later",
            )
        })?;
        let snapshot = store.snapshot();
        let ids: Vec<WorkspaceId> = match only {
            Some(id) => {
                if snapshot.workspace(&id).is_none() {
                    return Err(Status::not_found(format!("workspace `{id}` not found")));
                }
                vec![id]
            }
            // Stored ids were valid when written; one that is not any more is not exported.
            None => snapshot
                .workspaces
                .iter()
                .filter_map(|(id, _)| WorkspaceId::parse(id).ok())
                .collect(),
        };
        let stall = Stall::After(self.stall_timeout);
        Ok(stream_records(store, snapshot, ids, stall, Some(permit)))
    }
}

/// Streams the workspaces of the snapshot that `selection` holds, as records, all read
/// at the snapshot's revision (which every message repeats). A follower writing a
/// bootstrap to disk may pause reading for long, so it is never ended for stalling.
pub fn export_selected(
    store: &Store,
    selection: &Selection,
) -> ReceiverStream<Result<proto::ExportResponse, Status>> {
    let snapshot = store.snapshot();
    let ids = snapshot
        .workspaces
        .iter()
        .filter(|(id, _)| selection.holds(id))
        .filter_map(|(id, _)| WorkspaceId::parse(id).ok())
        .collect();
    stream_records(store, snapshot, ids, Stall::Wait, None)
}

/// What an export does when its reader takes nothing.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// Ends the stream with DEADLINE_EXCEEDED after this long.
    After(Duration),
    /// Waits as long as the reader is connected.
    Wait,
}

/// Streams the workspaces `ids` of `snapshot` as records, in id order, holding `permit`
/// until the last message is taken or the reader is gone.
fn stream_records(
    store: &Store,
    snapshot: Arc<Snapshot>,
    mut ids: Vec<WorkspaceId>,
    stall: Stall,
    permit: Option<OwnedSemaphorePermit>,
) -> ReceiverStream<Result<proto::ExportResponse, Status>> {
    let catalog = Arc::clone(store.catalog());
    ids.sort_unstable();
    // Two messages ahead of the reader, and a place for the status of a stalled export:
    // what a stalled export holds is these and the one being filled, about 100 KiB each.
    let (sender, receiver) = mpsc::channel(3);
    // An async task rather than a blocking thread: a reader that stalls then parks only
    // this task, and each chunk is rendered between awaits, so no worker is held long.
    tokio::spawn(async move {
        let _permit = permit;
        let Ok(last_word) = sender.clone().reserve_owned().await else {
            return;
        };
        let mut writer = ChunkWriter {
            sender,
            stall,
            last_word: Some(last_word),
            revision: snapshot.revision,
            records: Vec::with_capacity(EXPORT_CHUNK),
            sent: false,
        };
        for id in &ids {
            if let Some(ws) = snapshot.workspace(id) {
                for record in workspace_records(&catalog, id, ws) {
                    if writer.push(record).await.is_err() {
                        return;
                    }
                }
            }
        }
        writer.finish().await;
    });
    ReceiverStream::new(receiver)
}

/// Why an export stopped early.
#[derive(Debug)]
enum Stopped {
    /// The reader went away.
    Gone,
    /// The reader took nothing for the stall timeout; it has been told so.
    Stalled,
}

struct ChunkWriter {
    sender: mpsc::Sender<Result<proto::ExportResponse, Status>>,
    stall: Stall,
    /// A place kept in the channel for the status that ends a stalled export, which
    /// must reach the reader after the messages already queued, however full.
    last_word: Option<OwnedPermit<Result<proto::ExportResponse, Status>>>,
    revision: u64,
    records: Vec<proto::Record>,
    /// Whether a message was sent: an empty export still sends one, with its revision.
    sent: bool,
}

impl ChunkWriter {
    /// Queues a record, sending a full chunk.
    async fn push(&mut self, record: proto::Record) -> Result<(), Stopped> {
        self.records.push(record);
        if self.records.len() < EXPORT_CHUNK {
            return Ok(());
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), Stopped> {
        self.sent = true;
        let records = std::mem::replace(&mut self.records, Vec::with_capacity(EXPORT_CHUNK));
        let message = Ok(proto::ExportResponse {
            records,
            revision: self.revision,
        });
        let Stall::After(timeout) = self.stall else {
            return self.sender.send(message).await.map_err(|_| Stopped::Gone);
        };
        match self.sender.send_timeout(message, timeout).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(Stopped::Gone),
            Err(SendTimeoutError::Timeout(_)) => {
                let seconds = timeout.as_secs_f64();
                warn!(
                    stalled_seconds = seconds,
                    "ending an export whose reader took nothing for {seconds:.0} s"
                );
                if let Some(last_word) = self.last_word.take() {
                    last_word.send(Err(Status::deadline_exceeded(format!(
                        "the export was ended: its reader took nothing for {seconds:.0} s"
                    ))));
                }
                Err(Stopped::Stalled)
            }
        }
    }

    async fn finish(mut self) {
        if !self.records.is_empty() || !self.sent {
            let _ = self.flush().await;
        }
    }
}

/// Resource types with parents after their parents.
fn types_parents_first(catalog: &Catalog) -> Vec<TypeId> {
    let depth = |mut ty: TypeId| {
        let mut depth = 0;
        while let Some(parent) = catalog.parent_type(ty) {
            depth += 1;
            ty = parent;
            if depth > crate::model::catalog::MAX_TYPE_DEPTH {
                break;
            }
        }
        depth
    };
    let mut types: Vec<TypeId> = catalog.resource_types().map(|(id, _)| id).collect();
    types.sort_by_key(|ty| depth(*ty));
    types
}

/// The records of one workspace, in the order an import accepts: the workspace with its
/// products and owners, its resources parents first, then each user's membership (owners
/// came with the workspace) and grants.
pub fn workspace_records<'a>(
    catalog: &'a Catalog,
    id: &'a WorkspaceId,
    ws: &'a Workspace,
) -> impl Iterator<Item = proto::Record> + 'a {
    let workspace = Kind::Workspace(proto::WorkspaceRecord {
        workspace_id: id.to_string(),
        products: ws
            .products()
            .iter()
            .map(|p| catalog.product_name(p).to_owned())
            .collect(),
        owner_user_ids: ws.owners().map(|u| u.to_string()).collect(),
    });
    let resources = types_parents_first(catalog)
        .into_iter()
        .flat_map(move |ty| {
            ws.instances_of(ty, None).map(move |(rid, instance)| {
                Kind::Resource(proto::ResourceRecord {
                    workspace_id: id.to_string(),
                    resource: Some(convert::resource_message(catalog, ty, rid)),
                    parent_id: instance
                        .parent
                        .as_ref()
                        .map(|(_, p)| p.to_string())
                        .unwrap_or_default(),
                })
            })
        });
    let members = ws.members().flat_map(move |(user, member)| {
        let membership = (member.membership == Membership::Member).then(|| {
            Kind::Member(proto::MemberRecord {
                workspace_id: id.to_string(),
                user_id: user.to_string(),
                membership: proto::Membership::Member.into(),
            })
        });
        let grants = member.grants.iter().map(move |grant| {
            Kind::Grant(proto::GrantRecord {
                workspace_id: id.to_string(),
                user_id: user.to_string(),
                role: catalog.role_name(grant.role).to_owned(),
                scope: Some(convert::scope_message(catalog, &grant.scope)),
            })
        });
        membership.into_iter().chain(grants)
    });
    std::iter::once(workspace)
        .chain(resources)
        .chain(members)
        .map(|kind| proto::Record { kind: Some(kind) })
}
