//! The bootstrap: the leader's snapshot of the workspaces held, read at one revision,
//! written as a new copy beside the one served and published whole at the end.

use std::time::Instant;

use tracing::info;

use super::{LeaderClient, describe};
use crate::{
    api::{
        changes::snapshot_changes,
        replication::{Progress, selection_message},
    },
    model::{Change, Selection},
    proto,
    store::{BootstrapStep, Following, Queued, Store, StoreError},
};

/// Waits for a queued step to be durable.
async fn settle(queued: Queued) -> Result<(), StoreError> {
    queued.outcome().await.map(drop)
}

/// Changes written per step: large enough that the steps' flushes cost little, small
/// enough to bound the memory a step holds.
const STEP_CHANGES: usize = 50_000;

/// Copies the leader's snapshot of `selection` into `store`; returns the leader's
/// history it belongs to.
pub async fn bootstrap(
    store: &Store,
    client: &mut LeaderClient,
    selection: &Selection,
    progress: &Progress,
) -> Result<String, String> {
    let started = Instant::now();
    let request = proto::SnapshotRequest {
        selection: selection_message(selection),
    };
    let mut stream = client
        .snapshot(request)
        .await
        .map_err(|s| format!("the leader refused a snapshot: {}", describe(&s)))?
        .into_inner();
    let failed = |e: StoreError| format!("cannot write the copy: {e}");
    store
        .bootstrap(BootstrapStep::Begin)
        .await
        .map_err(failed)?;
    let mut at: Option<(u64, String)> = None;
    let mut changes: Vec<Change> = Vec::with_capacity(STEP_CHANGES);
    let mut records = 0_usize;
    let mut writing: Option<Queued> = None;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(status) => return Err(format!("the snapshot broke off: {}", describe(&status))),
        };
        progress.heard(chunk.revision);
        match &at {
            None => at = Some((chunk.revision, chunk.history_id.clone())),
            Some((revision, history))
                if *revision != chunk.revision || *history != chunk.history_id =>
            {
                return Err(format!(
                    "the snapshot changed revision or history mid-way ({revision} of `{history}`, \
                     then {} of `{}`)",
                    chunk.revision, chunk.history_id
                ));
            }
            Some(_) => {}
        }
        records += chunk.records.len();
        let more = snapshot_changes(store.catalog(), &chunk.records)
            .map_err(|s| format!("the snapshot cannot be applied: {}", s.message()))?;
        changes.extend(more);
        if changes.len() >= STEP_CHANGES {
            let step = std::mem::replace(&mut changes, Vec::with_capacity(STEP_CHANGES));
            // One step is written while the next is received and converted.
            if let Some(previous) = writing.take() {
                settle(previous).await.map_err(failed)?;
            }
            let queued = store.queue_bootstrap(BootstrapStep::Changes(step)).await;
            writing = Some(queued.map_err(failed)?);
        }
    }
    if let Some(previous) = writing.take() {
        settle(previous).await.map_err(failed)?;
    }
    let Some((revision, history)) = at else {
        return Err("the leader's snapshot was empty, without even its revision".into());
    };
    if !changes.is_empty() {
        store
            .bootstrap(BootstrapStep::Changes(changes))
            .await
            .map_err(failed)?;
    }
    store
        .bootstrap(BootstrapStep::End {
            revision,
            following: Some(Following {
                history: history.clone(),
                selection: selection.clone(),
            }),
        })
        .await
        .map_err(failed)?;
    info!(
        revision,
        records,
        workspaces = store.current().workspaces.len(),
        seconds = started.elapsed().as_secs_f64(),
        "bootstrapped from the leader's snapshot"
    );
    Ok(history)
}
