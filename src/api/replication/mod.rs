//! The ReplicationService: a leader's snapshot and change stream for followers, and
//! where a server stands. A follower refuses Snapshot and Watch (its data may be a
//! part of the leader's) and reports its own progress.

mod progress;
mod watch;

use std::sync::Arc;

use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

pub use progress::{FollowerState, Progress};

use super::{StoreSlot, auth, loaded, status::invalid, transfer};
use crate::{
    model::Selection,
    proto::{self, replication_service_server::ReplicationService},
    store::{FeedError, Store},
};

/// The ReplicationService implementation.
#[derive(Clone)]
pub struct ReplicationApi {
    store: StoreSlot,
    /// A follower's progress; `None` on a leader.
    follower: Option<Arc<Progress>>,
    /// Set when the server starts draining: change streams end, for followers to
    /// reconnect elsewhere or later.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl ReplicationApi {
    /// The service of a leader.
    pub fn leader(store: StoreSlot, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            store,
            follower: None,
            stopping,
        }
    }

    /// The service of a follower, reporting `progress`.
    pub fn follower(
        store: StoreSlot,
        progress: Arc<Progress>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            store,
            follower: Some(progress),
            stopping,
        }
    }

    /// The store, on a leader.
    fn leader_store(&self) -> Result<&Arc<Store>, Status> {
        if let Some(progress) = &self.follower {
            return Err(Status::failed_precondition(format!(
                "this server is a follower of {}: snapshot and watch the leader",
                progress.leader()
            )));
        }
        loaded(&self.store)
    }
}

/// The selection a request names; all workspaces when unset.
pub fn selection(field: &str, message: Option<&proto::Selection>) -> Result<Selection, Status> {
    let Some(message) = message else {
        return Ok(Selection::All);
    };
    let listed = !message.workspace_ids.is_empty();
    let sharded = message.shard_count > 0;
    match (listed, sharded) {
        (false, false) => Ok(Selection::All),
        (true, true) => Err(invalid(
            field,
            "set either `workspace_ids` or a shard, not both",
        )),
        (true, false) => Selection::workspaces(message.workspace_ids.iter().map(String::as_str))
            .map_err(|e| invalid(&format!("{field}.workspace_ids"), e)),
        (false, true) => Selection::shard(message.shard_index, message.shard_count)
            .map_err(|e| invalid(&format!("{field}.shard_index"), e)),
    }
}

/// The message of a selection, for a follower's requests.
pub fn selection_message(selection: &Selection) -> Option<proto::Selection> {
    match selection {
        Selection::All => None,
        Selection::Workspaces(ids) => Some(proto::Selection {
            workspace_ids: ids.iter().map(ToString::to_string).collect(),
            ..Default::default()
        }),
        Selection::Shard { index, count } => Some(proto::Selection {
            shard_index: *index,
            shard_count: *count,
            ..Default::default()
        }),
    }
}

/// Completes once `stopping` is set (never, if its sender is gone without setting it).
pub async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = *stopping.borrow_and_update();
        if now {
            return;
        }
        if stopping.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The status of a change feed that cannot go on.
fn feed_status(err: &FeedError) -> Status {
    match err {
        FeedError::Trimmed { .. } | FeedError::Ahead { .. } => Status::out_of_range(format!(
            "`after_revision`: {err}: bootstrap again with Snapshot"
        )),
        FeedError::Disabled => Status::failed_precondition(format!("{err}: it cannot be followed")),
        FeedError::Io(_) | FeedError::Damaged { .. } => Status::internal(err.to_string()),
    }
}

type SnapshotStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<proto::SnapshotResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl ReplicationService for ReplicationApi {
    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<proto::SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let store = self.leader_store()?;
        auth::unbound(auth::caller_of(&request).as_deref(), "a snapshot")?;
        let selection = selection("selection", request.get_ref().selection.as_ref())?;
        let history = store.identity().history.clone();
        let records = transfer::export_selected(store, &selection);
        let stream = records.map(move |chunk| {
            chunk.map(|chunk| proto::SnapshotResponse {
                records: chunk.records,
                revision: chunk.revision,
                history_id: history.clone(),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type WatchStream = ReceiverStream<Result<proto::WatchResponse, Status>>;

    async fn watch(
        &self,
        request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let store = Arc::clone(self.leader_store()?);
        auth::unbound(auth::caller_of(&request).as_deref(), "a change stream")?;
        let request = request.into_inner();
        let selection = selection("selection", request.selection.as_ref())?;
        let history = &store.identity().history;
        if !request.history_id.is_empty() && request.history_id != *history {
            return Err(Status::out_of_range(format!(
                "`history_id`: `{}` is not this leader's history `{history}` (its data was \
                 replaced): bootstrap again with Snapshot",
                request.history_id
            )));
        }
        let feed = store
            .changes_after(request.after_revision)
            .map_err(|e| feed_status(&e))?;
        Ok(Response::new(watch::stream(
            store,
            feed,
            selection,
            request.after_revision,
            self.stopping.clone(),
        )))
    }

    async fn get_replication_status(
        &self,
        _request: Request<proto::GetReplicationStatusRequest>,
    ) -> Result<Response<proto::ReplicationStatus>, Status> {
        let store = loaded(&self.store).ok();
        let revision = store.map_or(0, |store| store.current().revision);
        Ok(Response::new(match &self.follower {
            Some(progress) => progress.status(revision),
            None => proto::ReplicationStatus {
                role: "leader".into(),
                revision,
                history_id: store
                    .map(|s| s.identity().history.clone())
                    .unwrap_or_default(),
                selection: Selection::All.to_string(),
                serving: store.is_some(),
                ..Default::default()
            },
        }))
    }
}
