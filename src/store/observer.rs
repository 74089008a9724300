//! What the writer reports as it works, for whoever watches it (the metrics): a narrow
//! interface of plain numbers and durations, so that the store names no metrics crate.

use std::{fmt, sync::Arc, time::Duration};

use super::Refusal;

/// Told of each write group as it is made durable, and of each write refused.
pub trait WriteObserver: Send + Sync {
    /// A group that changed something is durable: it held `size` commands (a follower's:
    /// changes), its change log lines took `log_sync` to append and fdatasync (`None`
    /// when it logged nothing), and sled's batch and flush took `flush`.
    fn group_durable(&self, size: usize, log_sync: Option<Duration>, flush: Duration);

    /// A write was answered `queued_for` after it was queued: once it was durable, or
    /// once it was refused by the engine or changed nothing.
    fn answered(&self, queued_for: Duration);

    /// A write was refused because the store does not take writes.
    fn refused(&self, refusal: &Refusal);
}

/// The observer of a store, if any: with none, the writer reports nothing.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn WriteObserver>>);

impl Observer {
    /// Reports to `observer`.
    pub fn new(observer: Arc<dyn WriteObserver>) -> Self {
        Self(Some(observer))
    }

    /// Whether anyone is told: the writer times nothing otherwise.
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    pub(crate) fn group_durable(&self, size: usize, log_sync: Option<Duration>, flush: Duration) {
        if let Some(observer) = &self.0 {
            observer.group_durable(size, log_sync, flush);
        }
    }

    pub(crate) fn answered(&self, queued_for: Duration) {
        if let Some(observer) = &self.0 {
            observer.answered(queued_for);
        }
    }

    pub(crate) fn refused(&self, refusal: &Refusal) {
        if let Some(observer) = &self.0 {
            observer.refused(refusal);
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(on)"
        } else {
            "Observer(off)"
        })
    }
}
