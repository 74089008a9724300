//! The commit thread: makes each planned group durable (its change log lines, then its
//! state), then publishes it and answers its callers, in the order planned. After a
//! failure it stops, and every group planned after the failed one is refused.

use std::sync::{
    Arc,
    mpsc::{Receiver, RecvTimeoutError, Sender},
};

use arc_swap::ArcSwap;
use tracing::{debug, error};

use super::plan::Planned;
use crate::store::{
    Snapshot, StoreError,
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
    /// Told once each group is answered.
    pub committed: Sender<()>,
}

impl Committer {
    /// Commits groups until the planner stops, then flushes a last time. After a
    /// failure it stops at once: groups planned on top of the failed one are refused.
    pub fn run(mut self, planned: Receiver<Planned>) {
        loop {
            let group = match planned.recv_timeout(blobs::IDLE_SYNC) {
                Ok(group) => group,
                Err(RecvTimeoutError::Disconnected) => break,
                // sled writes blob files from its own threads too (`store::blobs`).
                Err(RecvTimeoutError::Timeout) => match self.blobs.sync_new() {
                    Ok(_) => continue,
                    Err(err) => {
                        error!(%err, "cannot sync blob files; refusing further writes");
                        return;
                    }
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
            } = group;
            if changed {
                if let Err(err) = self.make_durable(reset_log, log.as_ref(), batch) {
                    error!(%err, "write failed; refusing further writes");
                    for (reply, _) in replies {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                    return;
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
            self.log.trim();
            let _ = self.committed.send(());
        }
        if let Err(err) = self.blobs.flush(&self.db) {
            error!(%err, "final flush failed");
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
    ) -> Result<(), StoreError> {
        if reset_log {
            self.log.clear()?;
        }
        if let Some(lines) = log {
            self.log.append(lines)?;
        }
        self.db.apply_batch(batch)?;
        self.blobs.flush(&self.db)
    }
}
