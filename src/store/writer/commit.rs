//! The commit thread: makes each planned group durable (its change log lines, then its
//! state), then publishes it and answers its callers, in the order planned. After a
//! failure it stops, and every group planned after the failed one is refused; the
//! writer heals (`heal`) before it commits again.

use std::{
    sync::{
        Arc,
        mpsc::{Receiver, RecvTimeoutError, Sender},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tracing::{debug, error};

use super::{Failure, Request, Work, plan::Planned};
use crate::store::{
    Observer, Refusal, Snapshot, StoreError, WriteState,
    blobs::{self, Blobs},
    change_log::{ChangeLog, GroupLines},
};

/// The committing side of the writer, owned by its thread.
pub struct Committer {
    pub db: sled::Db,
    pub blobs: Blobs,
    pub log: ChangeLog,
    pub published: Arc<ArcSwap<Snapshot>>,
    /// Told the revision of each state published.
    pub revisions: tokio::sync::watch::Sender<u64>,
    /// Reads waiting for a revision, woken once it is published.
    pub waiters: Arc<crate::store::waiters::Waiters>,
    /// Told that writes are refused, the moment a group fails.
    pub state: tokio::sync::watch::Sender<WriteState>,
    /// The writer's queue, nudged after a failure (see `Work::Wake`).
    pub wake: tokio::sync::mpsc::WeakSender<Request>,
    /// Told once each group is answered.
    pub committed: Sender<()>,
    /// Told of each group made durable, and how long its writes waited.
    pub observer: Observer,
}

/// How long making a group durable took, step by step.
struct Timings {
    /// Appending its change log lines and syncing them, if it had any.
    log_sync: Option<Duration>,
    /// Applying sled's batch and flushing it.
    flush: Duration,
}

/// How the committer stopped: after the last group, or at a failure; with the groups
/// planned that it never took, for the planner to refuse.
pub struct Stopped {
    /// The failure it stopped at, if any.
    pub failure: Option<Failure>,
    /// The groups planned after it stopped.
    pub planned: Receiver<Planned>,
}

/// How making a group durable failed.
enum Failed {
    /// Nothing of the group is durable or redone at the next open: it did not happen.
    NotLogged(StoreError),
    /// The group's change log lines are durable, so the group is: every later open
    /// redoes it. Writing the state failed.
    Logged(StoreError),
}

impl Committer {
    /// Commits groups until the planner stops, then flushes a last time. After a
    /// failure it stops at once: groups planned on top of the failed one are refused.
    pub fn run(mut self, planned: Receiver<Planned>) -> Stopped {
        loop {
            let group = match planned.recv_timeout(blobs::IDLE_SYNC) {
                Ok(group) => group,
                Err(RecvTimeoutError::Disconnected) => break,
                // sled writes blob files from its own threads too (`store::blobs`).
                Err(RecvTimeoutError::Timeout) => match self.blobs.sync_new() {
                    Ok(_) => continue,
                    Err(err) => return self.stop(StoreError::Blobs(err), planned),
                },
            };
            let Planned {
                revision,
                changed,
                log,
                batch,
                snapshot,
                publish,
                reset_log,
                replies,
                queued,
                size,
            } = group;
            let mut failed = None;
            if changed {
                match self.make_durable(reset_log, log.as_ref(), batch) {
                    Ok(timings) => {
                        self.observer
                            .group_durable(size, timings.log_sync, timings.flush);
                    }
                    Err(Failed::NotLogged(err)) => {
                        let refusal = self.refuse(&err);
                        for (reply, _) in replies {
                            let _ = reply.send(Err(StoreError::Refused(refusal.clone())));
                        }
                        return self.stop(err, planned);
                    }
                    // Acknowledged: the next open, or the writer's heal, redoes it.
                    Err(Failed::Logged(err)) => failed = Some(err),
                }
                if publish {
                    self.published.store(snapshot);
                    self.revisions.send_replace(revision);
                    self.waiters.wake(revision);
                }
                debug!(revision, "group committed");
            }
            for (reply, answer) in replies {
                let _ = reply.send(answer);
            }
            if self.observer.is_on() {
                for queued in queued {
                    self.observer.answered(queued.elapsed());
                }
            }
            if let Some(err) = failed {
                return self.stop(err, planned);
            }
            self.log.trim();
            let _ = self.committed.send(());
        }
        if let Err(err) = self.blobs.flush(&self.db) {
            error!(%err, "final flush failed");
        }
        Stopped {
            failure: None,
            planned,
        }
    }

    /// Tells the store that writes are refused for `error`, before any caller hears of
    /// it: a caller told its write was refused finds the next refused up front.
    fn refuse(&self, error: &StoreError) -> Refusal {
        let refusal = Refusal::of(error);
        self.state
            .send_replace(WriteState::Refused(refusal.clone()));
        refusal
    }

    /// Stops after `error`, saying where the change log must be cut back to, and wakes
    /// the writer to heal.
    fn stop(self, error: StoreError, planned: Receiver<Planned>) -> Stopped {
        error!(%error, "a write to the data volume failed; refusing writes until it heals");
        self.refuse(&error);
        if let Some(queue) = self.wake.upgrade() {
            // A full queue wakes the writer as well.
            let (reply, _) = tokio::sync::oneshot::channel();
            let _ = queue.try_send(Request {
                work: Work::Wake,
                caller: None,
                reply,
                queued: Instant::now(),
            });
        }
        Stopped {
            failure: Some(Failure {
                error,
                uncut: self.log.uncut(),
            }),
            planned,
        }
    }

    /// Makes a group durable. The log is durable first, so a crash before the state's
    /// flush leaves log lines the state never reached (redone at open), never state
    /// without its log. The state's batch is atomic in sled, and the flush makes it
    /// durable before anyone hears of it. A bootstrap's first step deletes the log of
    /// the data it replaces first: a crash after that leaves the old state without a
    /// log to redo, or the marker that discards it.
    fn make_durable(
        &mut self,
        reset_log: bool,
        log: Option<&GroupLines>,
        batch: sled::Batch,
    ) -> Result<Timings, Failed> {
        if reset_log {
            self.log.clear().map_err(Failed::NotLogged)?;
        }
        let log_sync = match log {
            Some(lines) if self.log.enabled() && !lines.is_empty() => {
                let started = Instant::now();
                self.log.append(lines).map_err(Failed::NotLogged)?;
                Some(started.elapsed())
            }
            _ => None,
        };
        let started = Instant::now();
        self.db
            .apply_batch(batch)
            .map_err(StoreError::from)
            .and_then(|()| self.blobs.flush(&self.db))
            .map_err(|err| {
                if log_sync.is_some() {
                    Failed::Logged(err)
                } else {
                    Failed::NotLogged(err)
                }
            })?;
        Ok(Timings {
            log_sync,
            flush: started.elapsed(),
        })
    }
}
