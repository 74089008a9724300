//! The writer's metrics: what the store reports through its [`WriteObserver`], kept in
//! histograms and counters.

use std::time::Duration;

use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::histogram::{CountHistogram, DurationHistogram, LATENCY_BOUNDS};
use crate::store::{Cause, Refusal, Until, WriteObserver};

/// Bounds of a group's size, in commands: single writes gathered under one flush up to
/// the writer's 1,024, and an import's batches of 20,000.
const GROUP_SIZE_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 5000, 20000];

/// The writer's metrics.
#[derive(Debug)]
pub struct WriteMetrics {
    group_size: CountHistogram,
    queued_to_durable: DurationHistogram,
    log_sync: DurationHistogram,
    flush: DurationHistogram,
    refused_no_space: Counter,
    refused_io: Counter,
    refused_restart: Counter,
}

impl WriteMetrics {
    /// The writer's metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let refused = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let metrics = Self {
            group_size: CountHistogram::new(GROUP_SIZE_BOUNDS),
            queued_to_durable: DurationHistogram::new(LATENCY_BOUNDS),
            log_sync: DurationHistogram::new(LATENCY_BOUNDS),
            flush: DurationHistogram::new(LATENCY_BOUNDS),
            // Clones share the family's counters: every cause shows, at 0 until it
            // happens, so that an alert on its rate has a series from the start.
            refused_no_space: refused.get_or_create_owned(&[("cause", "no_space")]),
            refused_io: refused.get_or_create_owned(&[("cause", "io")]),
            refused_restart: refused.get_or_create_owned(&[("cause", "restart")]),
        };
        registry.register(
            "accessd_write_group_size",
            "Commands (on a follower, changes) made durable under one flush",
            metrics.group_size.clone(),
        );
        registry.register(
            "accessd_write_durable_seconds",
            "Time from a write being queued to its answer, once it is durable",
            metrics.queued_to_durable.clone(),
        );
        registry.register(
            "accessd_write_log_sync_seconds",
            "Time to append a write group to the change log and fdatasync it",
            metrics.log_sync.clone(),
        );
        registry.register(
            "accessd_write_flush_seconds",
            "Time to apply a write group to the database and flush it",
            metrics.flush.clone(),
        );
        registry.register(
            "accessd_writes_refused",
            "Writes refused because the data volume failed one: it is full (no_space), \
             another I/O error (io), or what it holds needs a restart (restart)",
            refused,
        );
        metrics
    }
}

impl WriteObserver for WriteMetrics {
    fn group_durable(&self, size: usize, log_sync: Option<Duration>, flush: Duration) {
        self.group_size
            .observe(u64::try_from(size).unwrap_or(u64::MAX));
        if let Some(log_sync) = log_sync {
            self.log_sync.observe(log_sync);
        }
        self.flush.observe(flush);
    }

    fn answered(&self, queued_for: Duration) {
        self.queued_to_durable.observe(queued_for);
    }

    fn refused(&self, refusal: &Refusal) {
        let counter = match (refusal.until, refusal.cause) {
            (Until::Restart, _) => &self.refused_restart,
            (Until::Healed, Cause::NoSpace) => &self.refused_no_space,
            (Until::Healed, Cause::Io) => &self.refused_io,
        };
        counter.inc();
    }
}
