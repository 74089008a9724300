//! Visibility by polling: the follower's GetReplicationStatus asked every millisecond,
//! each acknowledged write matched with the first answer showing its revision. Unlike a
//! waiting Check it holds no call open on the follower, so it adds no load of that kind.

use std::time::{Duration, Instant};

use accessd::proto::{self, replication_service_client::ReplicationServiceClient};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant as TokioInstant, MissedTickBehavior},
};
use tonic::transport::Channel;

/// How often the follower is asked: the resolution of the lag measured this way.
pub const POLL_EVERY: Duration = Duration::from_millis(1);
/// How long the poller may wait, once told the last revision, for the follower to show it.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

/// One answer of the follower: when it arrived and the revision it gave.
pub type Poll = (Instant, u64);

/// A task asking the follower for its revision until told to stop.
pub struct Poller {
    /// The revision to stop at, once known.
    stop_at: watch::Sender<Option<u64>>,
    task: JoinHandle<Result<Vec<Poll>, String>>,
}

impl Poller {
    /// Starts asking the follower behind `channel` every [`POLL_EVERY`].
    pub fn start(channel: Channel) -> Self {
        let (stop_at, mut told) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut client = ReplicationServiceClient::new(channel);
            let mut polls: Vec<Poll> = Vec::new();
            let mut ticks = tokio::time::interval(POLL_EVERY);
            // A late tick is skipped rather than made up in a burst.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut deadline: Option<TokioInstant> = None;
            loop {
                ticks.tick().await;
                let status = client
                    .get_replication_status(proto::GetReplicationStatusRequest {})
                    .await
                    .map_err(|s| format!("GetReplicationStatus: {:?}: {}", s.code(), s.message()))?
                    .into_inner();
                polls.push((Instant::now(), status.revision));
                let Some(target) = *told.borrow_and_update() else {
                    continue;
                };
                if status.revision >= target {
                    return Ok(polls);
                }
                let deadline =
                    *deadline.get_or_insert_with(|| TokioInstant::now() + CATCH_UP_TIMEOUT);
                if TokioInstant::now() > deadline {
                    return Err(format!(
                        "the follower is still at revision {} of {target} {CATCH_UP_TIMEOUT:?} \
                         after the last write",
                        status.revision
                    ));
                }
            }
        });
        Self { stop_at, task }
    }

    /// Tells the poller the last revision written and returns every answer once the
    /// follower has shown it.
    pub async fn finish(self, last: u64) -> Result<Vec<Poll>, String> {
        let _ = self.stop_at.send(Some(last));
        self.task
            .await
            .map_err(|e| format!("the status poller failed: {e}"))?
    }
}

/// For each acknowledged write `(revision, acknowledged)`, how long after its
/// acknowledgement the first answer showing its revision arrived (zero if one arrived
/// before it), or `None` if none did. `polls` are in the order they arrived.
pub fn lags(acknowledged: &[(u64, Instant)], polls: &[Poll]) -> Vec<Option<Duration>> {
    acknowledged
        .iter()
        .map(|&(revision, at)| {
            // The follower's revision never goes back, so the first answer at or past
            // `revision` is where it became visible.
            let first = polls.partition_point(|&(_, seen)| seen < revision);
            polls
                .get(first)
                .map(|&(answered, _)| answered.saturating_duration_since(at))
        })
        .collect()
}
