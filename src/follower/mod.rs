//! Follower mode (`accessd serve --follow LEADER`): a local, durable copy of the leader's
//! data (or of the workspaces selected), bootstrapped from a snapshot and kept up to
//! date from the leader's change stream, reconnecting with backoff and bootstrapping
//! again when the stream cannot resume. Health says whether the copy may answer.

mod bootstrap;
pub mod health;
mod leader;
mod stream;

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic::Status;
use tracing::{info, warn};

use crate::{
    api::replication::{FollowerState, Progress, stopped},
    connect::ClientTls,
    model::Selection,
    store::Store,
};
pub use leader::{Leader, LeaderClient};

/// How a follower follows.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The leader's address, `http://HOST:PORT` or `https://HOST:PORT`.
    pub leader: String,
    /// The workspaces held.
    pub selection: Selection,
    /// Sent to the leader as `authorization: Bearer TOKEN`.
    pub leader_token: Option<String>,
    /// TLS for an `https://` leader.
    pub leader_tls: ClientTls,
    /// How long without hearing from the leader before checks are refused (health
    /// NOT_SERVING), unless `serve_stale`.
    pub stale_after: Duration,
    /// Keep answering from the copy held however long the leader is silent.
    pub serve_stale: bool,
}

impl FollowOptions {
    /// The default of `stale_after`: long enough for a leader to restart (a rolling
    /// update) without taking its followers out of service, short enough that a
    /// follower cut off from its leader stops answering within half a minute.
    pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);
}

/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Why a follower cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The leader cannot be reached as asked.
    #[error("`--follow`: {0}")]
    Leader(String),
    /// The token cannot be sent.
    #[error("`--leader-token`: must be visible ASCII characters")]
    Token,
}

/// What ended one attempt to follow.
enum Interrupted {
    /// The stream cannot resume from the revision held: bootstrap again.
    Bootstrap(String),
    /// The leader went away or refused for now: reconnect after a backoff.
    Retry(String),
    /// The server is stopping.
    Stopping,
}

/// Follows the leader until `stopping` is set: bootstraps unless the copy held follows
/// the leader's history with the same selection, then applies the change stream,
/// reconnecting and bootstrapping again as needed.
pub async fn run(
    store: Arc<Store>,
    leader: Arc<Leader>,
    options: FollowOptions,
    progress: Arc<Progress>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut history = match &store.identity().following {
        Some(following) if following.selection == options.selection => {
            info!(
                revision = store.current().revision,
                history = %following.history,
                "resuming from the copy held"
            );
            Some(following.history.clone())
        }
        Some(following) => {
            warn!(
                held = %following.selection,
                wanted = %options.selection,
                "the copy held is of other workspaces: bootstrapping"
            );
            None
        }
        None => None,
    };
    if let Some(history) = &history {
        progress.set_history(history);
    }
    let mut backoff = FIRST_BACKOFF;
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            progress.reconnecting();
        }
        let attempted = std::time::Instant::now();
        let mut client = leader.client();
        let attempt = async {
            let following = match &history {
                Some(history) => history.clone(),
                None => {
                    progress.set_state(FollowerState::Bootstrapping);
                    let bootstrapped =
                        bootstrap::bootstrap(&store, &mut client, &options.selection, &progress)
                            .await;
                    let following = match bootstrapped {
                        Ok(following) => following,
                        Err(why) => return Interrupted::Retry(why),
                    };
                    history = Some(following.clone());
                    progress.set_history(&following);
                    following
                }
            };
            stream::follow(
                &store,
                &mut client,
                &following,
                &options.selection,
                &progress,
            )
            .await
        };
        let interrupted = tokio::select! {
            interrupted = attempt => interrupted,
            () = stopped(&mut stopping) => Interrupted::Stopping,
        };
        progress.set_state(FollowerState::Disconnected);
        match interrupted {
            Interrupted::Stopping => return,
            Interrupted::Bootstrap(why) => {
                warn!(%why, "the change stream cannot resume: bootstrapping again");
                history = None;
                backoff = FIRST_BACKOFF;
            }
            Interrupted::Retry(why) => {
                // A leader heard from during the attempt was followed: the failure is new.
                if progress
                    .silence()
                    .is_some_and(|silence| silence < attempted.elapsed())
                {
                    backoff = FIRST_BACKOFF;
                }
                warn!(%why, retry_in_ms = backoff.as_millis(), "not following the leader");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped(&mut stopping) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
    }
}

/// A one-line description of a status from the leader.
fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
