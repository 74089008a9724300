//! What is read when the metrics are scraped rather than counted as it happens: the
//! store's size and state, a follower's lag, the decisions counted by the read side,
//! open connections and calls, and the process's memory.

use std::{
    fmt,
    sync::{Arc, Mutex, OnceLock},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use crate::{
    api::{StoreSlot, decisions::DecisionCounts, replication::Progress},
    store::{Snapshot, WriteState},
};

/// Connections and calls open now, as the server counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Open {
    /// Connections accepted and not yet closed.
    pub connections: u64,
    /// Calls (streams) in progress on them.
    pub calls: u64,
}

/// Where the scrape reads what the server holds; set once the server has them.
pub struct Sources {
    /// The store, once loaded.
    pub store: StoreSlot,
    /// A follower's progress; `None` on a leader.
    pub progress: Option<Arc<Progress>>,
    /// Counts the open connections and calls.
    pub open: Box<dyn Fn() -> Open + Send + Sync>,
}

/// The collector of everything read at scrape time.
pub struct State {
    pub(super) sources: OnceLock<Sources>,
    pub(super) decisions: Arc<DecisionCounts>,
    /// The counts of the last snapshot walked, by revision: walking every member again
    /// is needed only after a write.
    counted: Mutex<Option<(u64, Counts)>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    workspaces: u64,
    members: u64,
    grants: u64,
    instances: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// Reads nothing but `decisions` until its sources are set.
    pub fn new(decisions: Arc<DecisionCounts>) -> Self {
        Self {
            sources: OnceLock::new(),
            decisions,
            counted: Mutex::new(None),
        }
    }

    fn counts(&self, snapshot: &Snapshot) -> Counts {
        if let Ok(counted) = self.counted.lock() {
            if let Some((revision, counts)) = *counted {
                if revision == snapshot.revision {
                    return counts;
                }
            }
        }
        let mut counts = Counts {
            workspaces: as_u64(snapshot.workspaces.len()),
            ..Counts::default()
        };
        for (_, workspace) in snapshot.workspaces.iter() {
            counts.members += as_u64(workspace.member_count());
            counts.grants += as_u64(workspace.grant_count());
            counts.instances += as_u64(workspace.instance_count());
        }
        if let Ok(mut counted) = self.counted.lock() {
            *counted = Some((snapshot.revision, counts));
        }
        counts
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Writes one gauge.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl Into<f64>,
) -> Result<(), fmt::Error> {
    let gauge = ConstGauge::new(value.into());
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// Writes one counter (`_total` is added to `name`).
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "accessd_check_decisions",
                "Checks decided (each item of a BatchCheck counts), by outcome and by what \
                 decided them",
                None,
                MetricType::Counter,
            )?;
            for (basis, count) in self.decisions.counts() {
                let outcome = if basis.allowed() { "allowed" } else { "denied" };
                let labels = [("decision", outcome), ("basis", basis.name())];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(rss) = resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory of the process, in bytes",
                rss as f64,
            )?;
        }
        let Some(sources) = self.sources.get() else {
            return Ok(());
        };
        let open = (sources.open)();
        gauge(
            &mut encoder,
            "accessd_connections_open",
            "gRPC connections open (a TLS handshake in progress counts)",
            open.connections as f64,
        )?;
        gauge(
            &mut encoder,
            "accessd_calls_open",
            "gRPC calls (streams) in progress, change streams and health watches included",
            open.calls as f64,
        )?;
        let Some(store) = sources.store.get() else {
            return Ok(());
        };
        let snapshot = store.current();
        gauge(
            &mut encoder,
            "accessd_store_revision",
            "The revision of the state checks are answered from",
            snapshot.revision as f64,
        )?;
        let counts = self.counts(&snapshot);
        for (name, help, value) in [
            (
                "accessd_store_workspaces",
                "Workspaces held",
                counts.workspaces,
            ),
            (
                "accessd_store_members",
                "Members (owners included) of every workspace held",
                counts.members,
            ),
            (
                "accessd_store_grants",
                "Grants in every workspace held",
                counts.grants,
            ),
            (
                "accessd_store_instances",
                "Resource instances registered in every workspace held",
                counts.instances,
            ),
        ] {
            gauge(&mut encoder, name, help, value as f64)?;
        }
        drop(snapshot);
        let refused = matches!(store.write_state(), WriteState::Refused(_));
        gauge(
            &mut encoder,
            "accessd_writes_refusing",
            "1 while writes are refused because the data volume failed one (full, or an I/O \
             error), until it heals or, if it cannot, a restart; 0 while writes are taken",
            u8::from(refused),
        )?;
        let disk = store.disk_usage();
        gauge(
            &mut encoder,
            "accessd_data_directory_bytes",
            "Bytes of the files in the data directory, the change log included",
            disk.directory_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "accessd_change_log_bytes",
            "Bytes of change log retained",
            disk.change_log_bytes as f64,
        )?;
        gauge(
            &mut encoder,
            "accessd_change_log_files",
            "Change log segment files retained",
            disk.change_log_files as f64,
        )?;
        if let Some(progress) = &sources.progress {
            let lag = progress.lag(store.current().revision);
            gauge(
                &mut encoder,
                "accessd_follower_leader_revision",
                "The leader's newest revision this follower has heard of",
                lag.leader_revision as f64,
            )?;
            gauge(
                &mut encoder,
                "accessd_follower_lag_revisions",
                "Revisions this follower's copy is behind the leader's newest it has heard of",
                lag.revisions as f64,
            )?;
            if let Some(millis) = lag.millis {
                gauge(
                    &mut encoder,
                    "accessd_follower_lag_seconds",
                    "How long ago the leader made the newest change the copy holds, while \
                     it is behind; 0 once caught up",
                    millis as f64 / 1e3,
                )?;
            }
            if let Some(silence) = lag.silence {
                gauge(
                    &mut encoder,
                    "accessd_follower_leader_silence_seconds",
                    "Time since the leader was last heard from (a change or a heartbeat)",
                    silence.as_secs_f64(),
                )?;
            }
            counter(
                &mut encoder,
                "accessd_follower_reconnects",
                "Times the follower connected to its leader again after losing it",
                lag.reconnects,
            )?;
        }
        Ok(())
    }
}

/// The process's resident memory, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
