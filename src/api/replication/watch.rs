//! A Watch stream: the change feed's groups, filtered to the selection and cut into
//! messages of bounded size, with a heartbeat while nothing changes.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{feed_status, stopped};
use crate::{
    api::changes::change_message,
    model::{Catalog, Selection},
    proto,
    store::{ChangeFeed, LoggedGroup, Store},
};

/// How long a stream stays silent before a heartbeat: the bound on how stale a follower
/// may be without knowing it.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// The most changes in one message: about 1 MiB, well under the 4 MiB a gRPC client
/// accepts by default.
const MESSAGE_CHANGES: usize = 4096;

/// Messages queued for a slow reader before the stream waits for it.
const QUEUED_MESSAGES: usize = 16;

type Sender = mpsc::Sender<Result<proto::WatchResponse, Status>>;

/// Streams the groups of `feed` after revision `after`.
pub fn stream(
    store: Arc<Store>,
    feed: ChangeFeed,
    selection: Selection,
    after: u64,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> ReceiverStream<Result<proto::WatchResponse, Status>> {
    let (sender, receiver) = mpsc::channel(QUEUED_MESSAGES);
    tokio::spawn(run(store, feed, selection, after, sender, stopping));
    ReceiverStream::new(receiver)
}

async fn run(
    store: Arc<Store>,
    mut feed: ChangeFeed,
    selection: Selection,
    mut sent: u64,
    sender: Sender,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut revisions = store.revisions();
    let history = store.identity().history.clone();
    let heartbeat = |revision| {
        Ok(proto::WatchResponse {
            event: Some(proto::watch_response::Event::Heartbeat(proto::Heartbeat {
                revision,
                history_id: history.clone(),
            })),
        })
    };
    let first = *revisions.borrow_and_update();
    if sender.send(heartbeat(first)).await.is_err() {
        return;
    }
    loop {
        let published = *revisions.borrow_and_update();
        if published > sent {
            // Reading the files blocks: off the async workers.
            let read = tokio::task::spawn_blocking(move || {
                let groups = feed.next(published);
                (feed, groups)
            })
            .await;
            let groups = match read {
                Ok((returned, Ok(groups))) => {
                    feed = returned;
                    groups
                }
                Ok((_, Err(err))) => {
                    let _ = sender.send(Err(feed_status(&err))).await;
                    return;
                }
                Err(_) => {
                    let _ = sender
                        .send(Err(Status::internal("reading the change log failed")))
                        .await;
                    return;
                }
            };
            for group in groups {
                sent = group.end_revision();
                for message in messages(store.catalog(), group, &selection) {
                    if sender.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
            continue;
        }
        tokio::select! {
            changed = revisions.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(HEARTBEAT) => {
                if sender.send(heartbeat(published)).await.is_err() {
                    return;
                }
            }
            () = stopped(&mut stopping) => {
                let _ = sender
                    .send(Err(Status::unavailable("the leader is shutting down")))
                    .await;
                return;
            }
            () = sender.closed() => return,
        }
    }
}

/// A group as messages: its selected changes, at most [`MESSAGE_CHANGES`] per message,
/// the last one saying where the group ends (and alone, if nothing is selected).
fn messages(
    catalog: &Catalog,
    group: LoggedGroup,
    selection: &Selection,
) -> Vec<proto::WatchResponse> {
    let end_revision = group.end_revision();
    let mut messages: Vec<proto::ChangeGroup> = Vec::new();
    let mut current = proto::ChangeGroup::default();
    let mut size = 0;
    for entry in group.entries {
        let mut changes = entry
            .changes
            .iter()
            .filter(|change| selection.holds(change.workspace().as_str()))
            .map(|change| change_message(catalog, change))
            .peekable();
        while changes.peek().is_some() {
            if size == MESSAGE_CHANGES {
                messages.push(std::mem::take(&mut current));
                size = 0;
            }
            let part: Vec<proto::Change> = changes.by_ref().take(MESSAGE_CHANGES - size).collect();
            size += part.len();
            current.entries.push(proto::ChangeEntry {
                revision: entry.revision,
                unix_millis: entry.unix_millis,
                command: entry.command.clone(),
                changes: part,
                caller: entry.caller.clone().unwrap_or_default(),
                actor_user_id: entry.actor.clone().unwrap_or_default(),
            });
        }
    }
    current.end_revision = end_revision;
    messages.push(current);
    messages
        .into_iter()
        .map(|group| proto::WatchResponse {
            event: Some(proto::watch_response::Event::Changes(group)),
        })
        .collect()
}
