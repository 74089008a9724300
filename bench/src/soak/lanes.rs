//! The soak's lanes: each kind of call paced at its own rate by a few callers, and what
//! every call came to, counted as it happens so that progress can be read mid-run. It
//! decides when calls are made; what they send and check is `calls`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use accessd::proto::{
    access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::Channel;

use super::calls::{self, Context};

/// What the soak sends; a lane of each, except those whose rate is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneKind {
    /// `Check`, every answer compared with the data set's.
    Check,
    /// `BatchCheck`, every answer compared with the data set's.
    Batch,
    /// `ListAccess`, of one member or of a workspace's first page.
    ListAccess,
    /// `LookupResources` of `source.read` for a member.
    LookupResources,
    /// `LookupSubjects` of `source.read` on a source.
    LookupSubjects,
    /// A new grant of a member kept aside, then its revocation.
    GrantChurn,
    /// A new member, then their removal.
    MembershipChurn,
    /// A new destination, then its deletion.
    ResourceChurn,
    /// An Import of some workspaces' records again: upserts of what is there.
    Import,
    /// An Export of the whole database.
    Export,
    /// Requests that must fail, with the status they must fail with.
    Invalid,
}

impl LaneKind {
    /// The names of the calls the lane makes, in the order [`calls::call`] numbers them,
    /// and whether each is a refusal the load asks for.
    pub fn calls(self) -> &'static [(&'static str, bool)] {
        match self {
            Self::Check => &[("check", false)],
            Self::Batch => &[("batch_check", false)],
            Self::ListAccess => &[("list_access", false)],
            Self::LookupResources => &[("lookup_resources", false)],
            Self::LookupSubjects => &[("lookup_subjects", false)],
            Self::GrantChurn => &[("grant", false), ("revoke", false)],
            Self::MembershipChurn => &[("set_membership", false), ("remove_member", false)],
            Self::ResourceChurn => &[("register_resource", false), ("delete_resource", false)],
            Self::Import => &[("import", false)],
            Self::Export => &[("export", false)],
            Self::Invalid => &[("check_malformed_id", true), ("grant_to_non_member", true)],
        }
    }
}

/// How one call came out.
#[derive(Debug)]
pub enum Answer {
    /// Answered as the data set says, with this many items (checks, rows, records).
    Ok(u64),
    /// Refused with the status the load asked for.
    Refused,
    /// Answered, but not as the data set says, or not refused as asked.
    Wrong(String),
    /// Failed.
    Failed(String),
}

/// The calls of one name so far.
#[derive(Debug)]
pub struct Tally {
    /// The call's name in reports.
    pub name: &'static str,
    /// Whether every call of this name must be refused.
    pub refusal: bool,
    calls: AtomicU64,
    items: AtomicU64,
    refused: AtomicU64,
    unexpected: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

/// A tally read at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    /// The call's name.
    pub kind: &'static str,
    /// Whether the load asks for every call of this kind to be refused.
    pub must_fail: bool,
    /// Calls made.
    pub calls: u64,
    /// Checks, rows or records in the answers as expected.
    pub items: u64,
    /// Calls refused as the load asked.
    pub expected_errors: u64,
    /// Calls that failed or were answered otherwise than expected.
    pub unexpected_errors: u64,
    /// The first of those, quoted.
    pub first_problem: Option<String>,
}

impl Tally {
    fn new(name: &'static str, refusal: bool) -> Self {
        Self {
            name,
            refusal,
            calls: AtomicU64::new(0),
            items: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            first_problem: Mutex::new(None),
        }
    }

    fn record(&self, answer: Answer) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match answer {
            Answer::Ok(items) => {
                self.items.fetch_add(items, Ordering::Relaxed);
            }
            Answer::Refused => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Wrong(problem) | Answer::Failed(problem) => {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
                // A std mutex: nothing awaits while it is held.
                if let Ok(mut first) = self.first_problem.lock() {
                    first.get_or_insert(problem);
                }
            }
        }
    }

    /// The tally as it stands.
    pub fn read(&self) -> Counted {
        Counted {
            kind: self.name,
            must_fail: self.refusal,
            calls: self.calls.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            expected_errors: self.refused.load(Ordering::Relaxed),
            unexpected_errors: self.unexpected.load(Ordering::Relaxed),
            first_problem: self.first_problem.lock().ok().and_then(|p| p.clone()),
        }
    }
}

/// One kind of call, paced.
#[derive(Debug)]
pub struct Lane {
    /// What it sends.
    pub kind: LaneKind,
    /// The time between two calls of the lane, all its callers together.
    pub period: Duration,
    /// Callers, each sending every `workers × period`, staggered by `period`.
    pub workers: usize,
    /// One per name of [`LaneKind::calls`].
    pub tallies: Vec<Arc<Tally>>,
}

impl Lane {
    /// A lane of `rate` calls per second over `workers` callers; `None` for rate 0.
    pub fn at_rate(kind: LaneKind, rate: u32, workers: usize) -> Option<Self> {
        (rate > 0).then(|| Self::every(kind, Duration::from_secs(1) / rate, workers))
    }

    /// A lane of one call every `period` over `workers` callers.
    pub fn every(kind: LaneKind, period: Duration, workers: usize) -> Self {
        Self {
            kind,
            period: period.max(Duration::from_micros(1)),
            workers: workers.max(1),
            tallies: kind
                .calls()
                .iter()
                .map(|&(name, refusal)| Arc::new(Tally::new(name, refusal)))
                .collect(),
        }
    }
}

/// The longest a call may take before it counts as failed; bulk calls get more.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const BULK_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs every caller of `lane` from `start` until `end` over `channels`, then waits for
/// their last calls.
pub async fn run(
    lane: Arc<Lane>,
    context: Arc<Context>,
    channels: &[Channel],
    start: Instant,
    end: Instant,
) -> Result<(), String> {
    let mut callers = tokio::task::JoinSet::new();
    for worker in 0..lane.workers {
        let channel = channels
            .get(worker % channels.len().max(1))
            .cloned()
            .ok_or("no connection to call through")?;
        let (lane, context) = (Arc::clone(&lane), Arc::clone(&context));
        callers.spawn(caller(lane, context, channel, worker, start, end));
    }
    while let Some(joined) = callers.join_next().await {
        joined.map_err(|e| format!("a caller failed: {e}"))?;
    }
    Ok(())
}

async fn caller(
    lane: Arc<Lane>,
    context: Arc<Context>,
    channel: Channel,
    worker: usize,
    start: Instant,
    end: Instant,
) {
    let mut clients = calls::Clients {
        access: AccessServiceClient::new(channel.clone()),
        admin: AdminServiceClient::new(channel.clone()),
        channel,
    };
    let workers = u32::try_from(lane.workers).unwrap_or(u32::MAX);
    let offset = lane.period * u32::try_from(worker).unwrap_or(0);
    let mut ticks = tokio::time::interval_at(start + offset, lane.period * workers);
    // A server that stalls gets the calls it missed skipped, not sent in a burst: the
    // rate achieved is reported, and the load stays what the soak says it is.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let timeout = match lane.kind {
        LaneKind::Import | LaneKind::Export => BULK_TIMEOUT,
        _ => CALL_TIMEOUT,
    };
    let turn = calls::Turn {
        worker,
        workers: lane.workers,
    };
    // A churning caller stops only after an undo, so the data is left as it was found.
    let calls_per_turn = lane.tallies.len().max(1);
    for n in 0.. {
        ticks.tick().await;
        if Instant::now() >= end && n % calls_per_turn == 0 {
            break;
        }
        let call = calls::call(lane.kind, &context, &mut clients, turn, n);
        let (which, answer) = match tokio::time::timeout(timeout, call).await {
            Ok(done) => done,
            Err(_) => (
                n % lane.tallies.len().max(1),
                Answer::Failed(format!("no answer in {timeout:?}")),
            ),
        };
        if let Some(tally) = lane.tallies.get(which) {
            tally.record(answer);
        }
    }
}
