//! Applying the leader's change stream: each write group once it has arrived whole, at
//! the leader's revisions, after the revision the copy holds.

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
    loop {
        let event = match stream.message().await {
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
                let replicated = ReplicatedGroup {
                    entries: std::mem::take(&mut entries),
                    end_revision,
                };
                match store.replicate(replicated).await {
                    Ok(()) => debug!(revision = end_revision, "group applied"),
                    Err(StoreError::Replication(why)) => return Interrupted::Retry(why),
                    Err(err) => {
                        return Interrupted::Retry(format!("cannot write the copy: {err}"));
                    }
                }
                progress.heard(end_revision);
            }
        }
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
