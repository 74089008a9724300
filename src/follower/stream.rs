//! Applying the leader's change stream: each write group once it has arrived whole, at
//! the leader's revisions, after the revision the copy holds. Groups are queued to the
//! store as they arrive, without waiting for the one before to be durable, so that the
//! store makes many of them durable under one flush, as the leader made them.

use std::{collections::VecDeque, future::Future, pin::Pin};

use tracing::{debug, info};

use super::{Interrupted, LeaderClient, describe};
use crate::{
    api::{
        changes::change_from_message,
        replication::{FollowerState, Progress, selection_message},
    },
    model::Selection,
    proto::{self, watch_response::Event},
    store::{LoggedEntry, ReplicatedGroup, Store, StoreError},
};

/// The most groups queued to the store and not yet durable: enough to fill the
/// writer's groups at the leader's full rate, few enough to bound what is held.
const MAX_QUEUED: usize = 64;

/// A group queued to the store, by the revision it ends at and when the leader made it,
/// until it is durable.
type Applying = (
    u64,
    u64,
    Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>,
);

/// Follows the change stream after the revision `store` holds, of the leader's
/// `history`, until it is interrupted.
pub async fn follow(
    store: &Store,
    client: &mut LeaderClient,
    history: &str,
    selection: &Selection,
    progress: &Progress,
) -> Interrupted {
    let after = store.current().revision;
    let request = proto::WatchRequest {
        after_revision: after,
        history_id: history.to_owned(),
        selection: selection_message(selection),
    };
    let mut stream = match client.watch(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => return refused(&status),
    };
    progress.set_state(FollowerState::CatchingUp);
    // The leader's revision as of connecting: caught up once it is reached.
    let mut target: Option<u64> = None;
    let mut entries: Vec<LoggedEntry> = Vec::new();
    let mut applying: VecDeque<Applying> = VecDeque::new();
    loop {
        let received = tokio::select! {
            // Groups applied are taken in first: they tell how far the copy is.
            applied = oldest(&mut applying, progress), if !applying.is_empty() => {
                if let Err(why) = applied {
                    return why;
                }
                caught_up(store, target, progress);
                continue;
            }
            received = stream.message() => received,
        };
        let event = match received {
            Ok(Some(proto::WatchResponse { event: Some(event) })) => event,
            Ok(Some(_)) => continue,
            Ok(None) => return Interrupted::Retry("the leader ended the change stream".into()),
            Err(status) => return refused(&status),
        };
        match event {
            Event::Heartbeat(heartbeat) => {
                if heartbeat.history_id != history {
                    return Interrupted::Bootstrap(format!(
                        "the leader's history is now `{}`",
                        heartbeat.history_id
                    ));
                }
                progress.heard(heartbeat.revision);
                target.get_or_insert(heartbeat.revision);
                caught_up(store, target, progress);
            }
            Event::Changes(group) => {
                for entry in group.entries {
                    if let Err(why) = take_entry(store, &mut entries, entry) {
                        return Interrupted::Retry(why);
                    }
                }
                if group.end_revision == 0 {
                    continue;
                }
                let end_revision = group.end_revision;
                progress.heard(end_revision);
                let made = entries.iter().map(|e| e.unix_millis).max().unwrap_or(0);
                let replicated = ReplicatedGroup {
                    entries: std::mem::take(&mut entries),
                    end_revision,
                };
                match store.queue_replicate(replicated).await {
                    Ok(queued) => applying.push_back((
                        end_revision,
                        made,
                        Box::pin(async move { queued.outcome().await.map(drop) }),
                    )),
                    Err(err) => {
                        return Interrupted::Retry(format!("cannot write the copy: {err}"));
                    }
                }
                if applying.len() >= MAX_QUEUED {
                    if let Err(why) = oldest(&mut applying, progress).await {
                        return why;
                    }
                    caught_up(store, target, progress);
                }
            }
        }
    }
}

/// Waits until the oldest group queued is durable.
async fn oldest(applying: &mut VecDeque<Applying>, progress: &Progress) -> Result<(), Interrupted> {
    let Some((end_revision, made, outcome)) = applying.front_mut() else {
        return Ok(());
    };
    let (end_revision, made) = (*end_revision, *made);
    let outcome = outcome.await;
    applying.pop_front();
    match outcome {
        Ok(()) => {
            progress.applied(made);
            debug!(revision = end_revision, "group applied");
            Ok(())
        }
        Err(StoreError::Replication(why)) => Err(Interrupted::Retry(why)),
        Err(err) => Err(Interrupted::Retry(format!("cannot write the copy: {err}"))),
    }
}

/// Marks the follower as following once its copy has reached `target`, the leader's
/// revision as of connecting.
fn caught_up(store: &Store, target: Option<u64>, progress: &Progress) {
    if target.is_some_and(|target| store.current().revision >= target)
        && progress.state() != FollowerState::Following
    {
        progress.set_state(FollowerState::Following);
        info!(
            revision = store.current().revision,
            "caught up with the leader"
        );
    }
}

/// Adds one message's entry to those of the group being received; an entry continued
/// from the previous message joins it.
fn take_entry(
    store: &Store,
    entries: &mut Vec<LoggedEntry>,
    entry: proto::ChangeEntry,
) -> Result<(), String> {
    let at = format!("entries[revision {}]", entry.revision);
    let changes = entry
        .changes
        .iter()
        .map(|change| change_from_message(store.catalog(), &at, change))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|s| {
            format!(
                "a change from the leader cannot be applied: {}",
                s.message()
            )
        })?;
    match entries.last_mut() {
        Some(last) if last.revision == entry.revision => last.changes.extend(changes),
        _ => entries.push(LoggedEntry {
            revision: entry.revision,
            unix_millis: entry.unix_millis,
            command: entry.command,
            caller: Some(entry.caller).filter(|c| !c.is_empty()),
            actor: Some(entry.actor_user_id).filter(|a| !a.is_empty()),
            changes,
        }),
    }
    Ok(())
}

/// What a refusal from the leader means for the follower.
fn refused(status: &tonic::Status) -> Interrupted {
    match status.code() {
        tonic::Code::OutOfRange => Interrupted::Bootstrap(describe(status)),
        _ => Interrupted::Retry(format!("the leader: {}", describe(status))),
    }
}
