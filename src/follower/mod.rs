//! Follower mode (`accessd serve --follow LEADER`): a local, durable copy of the leader's
//! data (or of the workspaces selected), bootstrapped from a snapshot and kept up to
//! date from the leader's change stream, reconnecting with backoff and bootstrapping
//! again when the stream cannot resume. Health says whether the copy may answer.

mod bootstrap;
pub mod health;
mod stream;

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tracing::{info, warn};

use crate::{
    api::replication::{FollowerState, Progress, stopped},
    model::Selection,
    proto::replication_service_client::ReplicationServiceClient,
    store::Store,
};

/// How a follower follows.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The leader's address, `http://HOST:PORT`.
    pub leader: String,
    /// The workspaces held.
    pub selection: Selection,
    /// Sent to the leader as `authorization: Bearer TOKEN`.
    pub leader_token: Option<String>,
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
/// How long to wait for the leader to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message accepted from the leader: a change group's messages are about
/// 1 MiB; a snapshot's chunks of 1,000 records are smaller still.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The replication client, sending the leader token.
pub type LeaderClient = ReplicationServiceClient<InterceptedService<Channel, LeaderToken>>;

/// Adds the leader token to every call.
#[derive(Debug, Clone)]
pub struct LeaderToken(Option<MetadataValue<Ascii>>);

impl Interceptor for LeaderToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Why a follower cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The leader's address is not one.
    #[error("`--follow`: `{0}` is not an address: {1}")]
    Address(String, String),
    /// The token cannot be sent.
    #[error("`--leader-token`: must be visible ASCII characters")]
    Token,
}

/// A lazily connecting channel to the leader: the follower starts, and serves what it
/// holds, whether the leader is up or not.
pub fn leader_channel(leader: &str) -> Result<Channel, FollowError> {
    let endpoint = Endpoint::from_shared(leader.to_owned())
        .map_err(|e| FollowError::Address(leader.to_owned(), e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        // A leader that vanishes without closing the connection is noticed.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

/// The replication client of `channel`, sending `token`.
pub fn leader_client(channel: Channel, token: Option<&str>) -> Result<LeaderClient, FollowError> {
    let token = token
        .map(|t| {
            format!("Bearer {t}")
                .parse()
                .map_err(|_| FollowError::Token)
        })
        .transpose()?;
    Ok(
        ReplicationServiceClient::with_interceptor(channel, LeaderToken(token))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
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
    mut client: LeaderClient,
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
    loop {
        let attempted = std::time::Instant::now();
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
