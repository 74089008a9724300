//! Replication lag: new grants written to the leader, paced or as fast as it takes them,
//! and the time from each acknowledgement to the write being visible on the follower, by
//! a Check waiting for its revision or by status polls. It measures; it judges nothing.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use hdrhistogram::Histogram;
use tokio::{sync::mpsc, task::JoinSet};
use tonic::transport::Channel;

use super::{
    cpu::{Cores, CpuSample},
    polling::{self, Poller},
};
use crate::{
    args::Visibility,
    catalog::{SOURCE_ADMIN, SOURCE_READ},
    driver::{GrantPool, histogram},
};

/// How long the follower may take to reach a write's revision before the probe counts
/// as failed: far beyond any lag worth measuring, so that a slow follower shows as lag.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the leader may take to acknowledge a write before it counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The paced run's first write is due this long after the run is set up.
const LEAD: Duration = Duration::from_millis(20);

/// When each write of an open loop is due: the `index`th at `start + index / rate`,
/// whether the writes before it were answered or not.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate: u32,
}

impl Schedule {
    /// Writes at `rate` per second (at least one) from `start` on.
    pub fn new(start: Instant, rate: u32) -> Self {
        Self {
            start,
            rate: rate.max(1),
        }
    }

    /// When write `index` is due. Computed from the start, not from the write before,
    /// so that a late timer delays one write and not every one after it.
    pub fn due(&self, index: u64) -> Instant {
        let nanos = u128::from(index) * 1_000_000_000 / u128::from(self.rate);
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many writes fall due within `window` of the start.
    pub fn count(&self, window: Duration) -> u64 {
        let count = window.as_nanos() * u128::from(self.rate) / 1_000_000_000;
        u64::try_from(count).unwrap_or(u64::MAX)
    }
}

/// The permission a probe asks about for a grant of the pool's `role`: one the role
/// allows on its source and the writer's earlier grants did not (the pool gives each
/// writer `source_read` on every source before `source_admin` on any).
pub fn probe_permission(role: &str) -> Option<&'static str> {
    match role {
        SOURCE_READ => Some("source.read"),
        SOURCE_ADMIN => Some("source.update"),
        _ => None,
    }
}

/// The Check that a grant of the pool allows once the server has applied `revision`,
/// asked to wait for that revision.
pub fn probe(grant: &proto::GrantRequest, revision: u64) -> Option<proto::CheckRequest> {
    let permission = probe_permission(&grant.role)?;
    let resource = match grant.scope.as_ref()?.kind.as_ref()? {
        proto::scope::Kind::Instance(resource) => resource.clone(),
        proto::scope::Kind::All(_) => return None,
    };
    Some(proto::CheckRequest {
        workspace_id: grant.workspace_id.clone(),
        user_id: grant.user_id.clone(),
        permission: permission.to_owned(),
        resource: Some(resource),
        at_least_revision: revision,
    })
}

/// The leader and the follower a lag run writes to and probes.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// Connections to the leader.
    pub leader: &'a [Channel],
    /// Connections to the follower.
    pub follower: &'a [Channel],
    /// The leader's process.
    pub leader_pid: u32,
    /// The follower's process.
    pub follower_pid: u32,
}

impl Pair<'_> {
    /// Clients of the `index`th connection to each server, round robin.
    fn clients(
        &self,
        index: usize,
    ) -> Result<(AdminServiceClient<Channel>, AccessServiceClient<Channel>), String> {
        let pick = |channels: &[Channel]| {
            channels
                .get(index % channels.len().max(1))
                .cloned()
                .ok_or_else(|| "no connection to write or probe through".to_owned())
        };
        Ok((
            AdminServiceClient::new(pick(self.leader)?),
            AccessServiceClient::new(pick(self.follower)?),
        ))
    }

    fn cpu(&self) -> CpuSample {
        CpuSample::take(self.leader_pid, self.follower_pid)
    }
}

/// What one lag run measured.
#[derive(Debug)]
pub struct LagRun {
    /// How writes were seen on the follower.
    pub visibility: Visibility,
    /// Writes the leader acknowledged.
    pub writes: u64,
    /// From the run's start to the last acknowledgement.
    pub window: Duration,
    /// From when each write was due (paced) or sent (closed loop) to its
    /// acknowledgement, in nanoseconds.
    pub write_latency: Histogram<u64>,
    /// From each acknowledgement to the write's visibility on the follower, in
    /// nanoseconds.
    pub lag: Histogram<u64>,
    /// Writes refused or not answered.
    pub write_errors: u64,
    /// Writes never seen on the follower: probes that failed or found the revision not
    /// reached in time.
    pub probe_errors: u64,
    /// Probes answered with a denial: the follower answered at the revision without the
    /// grant in it.
    pub wrong: u64,
    /// The first failure or wrong answer, for the report.
    pub first_problem: Option<String>,
    /// Whether the grant pool ran out before the end.
    pub exhausted: bool,
    /// Paced runs only: the most a write was sent after it was due (the load generator
    /// falling behind its own schedule).
    pub behind: Option<Duration>,
    /// Cores each process used during the run.
    pub cores: Cores,
    /// The median lag of the writes acknowledged in the first tenth of the run, and in
    /// the last: a follower that keeps up shows the same, one that falls behind a
    /// growing one.
    pub trend: (Option<Duration>, Option<Duration>),
}

impl LagRun {
    /// Acknowledged writes per second.
    pub fn writes_per_second(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.writes as f64 / self.window.as_secs_f64()
        }
    }
}

/// Writes `rate` new grants a second for `seconds`, each sent when it is due; after each
/// acknowledgement, the same task probes the follower if `visibility` says so.
pub async fn paced(
    pair: &Pair<'_>,
    pool: &Arc<GrantPool>,
    rate: u32,
    seconds: Duration,
    visibility: Visibility,
) -> Result<LagRun, String> {
    let (events, tally) = collect()?;
    let poller = start_poller(pair, visibility)?;
    let first = pair.cpu();
    let started = Instant::now();
    let schedule = Schedule::new(started + LEAD, rate);
    let mut behind = Duration::ZERO;
    let mut exhausted = false;
    for write in 0..schedule.count(seconds) {
        let due = schedule.due(write);
        tokio::time::sleep_until(due.into()).await;
        behind = behind.max(due.elapsed());
        let Some(grant) = pool.take() else {
            exhausted = true;
            break;
        };
        let (mut admin, mut access) = pair.clients(usize::try_from(write).unwrap_or_default())?;
        let (grant, events) = (grant.clone(), events.clone());
        tokio::spawn(async move {
            let acknowledged = write_grant(&mut admin, &grant, due, &events).await;
            if let (Some((revision, acknowledged)), Visibility::Check) = (acknowledged, visibility)
            {
                probe_follower(&mut access, &grant, revision, acknowledged, &events).await;
            }
        });
    }
    // The tally ends once every task has dropped its sender: every probe answered.
    drop(events);
    let tally = finish(tally, poller).await?;
    let cores = first.cores_until(&pair.cpu());
    Ok(tally.into_run(visibility, started, cores, exhausted, Some(behind)))
}

/// Writes new grants from `writers` concurrent writers for `seconds`, each writer
/// sending its next grant as soon as the last is acknowledged; with
/// [`Visibility::Check`], each acknowledgement starts a probe of the follower in a task
/// of its own, so that the follower never slows the writers.
pub async fn closed(
    pair: &Pair<'_>,
    pool: &Arc<GrantPool>,
    writers: usize,
    seconds: Duration,
    visibility: Visibility,
) -> Result<LagRun, String> {
    let (events, tally) = collect()?;
    let poller = start_poller(pair, visibility)?;
    let first = pair.cpu();
    let started = Instant::now();
    let end = started + seconds;
    let mut tasks = JoinSet::new();
    for index in 0..writers.max(1) {
        let (admin, access) = pair.clients(index)?;
        let (pool, events) = (Arc::clone(pool), events.clone());
        let access = (visibility == Visibility::Check).then_some(access);
        tasks.spawn(write_until(admin, access, pool, end, events));
    }
    drop(events);
    let mut exhausted = false;
    while let Some(joined) = tasks.join_next().await {
        exhausted |= joined.map_err(|e| format!("a writer failed: {e}"))?;
    }
    let tally = finish(tally, poller).await?;
    let cores = first.cores_until(&pair.cpu());
    Ok(tally.into_run(visibility, started, cores, exhausted, None))
}

/// A status poller of the follower, if `visibility` is by status.
fn start_poller(pair: &Pair<'_>, visibility: Visibility) -> Result<Option<Poller>, String> {
    match visibility {
        Visibility::Check => Ok(None),
        Visibility::Status => {
            let channel = pair
                .follower
                .first()
                .cloned()
                .ok_or("no connection to poll the follower through")?;
            Ok(Some(Poller::start(channel)))
        }
    }
}

/// The run's tally once every writer and probe is done and, with a poller, once the
/// follower has shown the last revision written.
async fn finish(
    tally: tokio::task::JoinHandle<Tally>,
    poller: Option<Poller>,
) -> Result<Tally, String> {
    let mut tally = tally
        .await
        .map_err(|e| format!("the lag tally failed: {e}"))?;
    if let Some(poller) = poller {
        let last = tally
            .acknowledged
            .iter()
            .map(|(revision, _)| *revision)
            .max();
        let polls = poller.finish(last.unwrap_or(0)).await?;
        tally.see_in(&polls);
    }
    Ok(tally)
}

/// One closed-loop writer, probing the follower through `access` if given; returns
/// whether it found the pool empty.
async fn write_until(
    mut admin: AdminServiceClient<Channel>,
    access: Option<AccessServiceClient<Channel>>,
    pool: Arc<GrantPool>,
    end: Instant,
    events: mpsc::UnboundedSender<Event>,
) -> bool {
    while Instant::now() < end {
        let Some(grant) = pool.take() else {
            return true;
        };
        let sent = Instant::now();
        let Some((revision, acknowledged)) = write_grant(&mut admin, grant, sent, &events).await
        else {
            continue;
        };
        let Some(access) = &access else {
            continue;
        };
        let (mut access, grant, events) = (access.clone(), grant.clone(), events.clone());
        tokio::spawn(async move {
            probe_follower(&mut access, &grant, revision, acknowledged, &events).await;
        });
    }
    false
}

/// Sends `grant` to the leader; returns its revision and when it was acknowledged.
async fn write_grant(
    admin: &mut AdminServiceClient<Channel>,
    grant: &proto::GrantRequest,
    from: Instant,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<(u64, Instant)> {
    let mut request = tonic::Request::new(grant.clone());
    request.set_timeout(WRITE_TIMEOUT);
    let answer = admin.grant(request).await;
    let acknowledged = Instant::now();
    let event = match answer {
        Ok(response) if response.get_ref().changed => {
            let revision = response.get_ref().revision;
            let _ = events.send(Event::Acknowledged {
                revision,
                took: acknowledged.saturating_duration_since(from),
                at: acknowledged,
            });
            return Some((revision, acknowledged));
        }
        Ok(_) => Event::WriteFailed(format!("a new grant answered changed = false: {grant:?}")),
        Err(status) => {
            Event::WriteFailed(format!("Grant: {:?}: {}", status.code(), status.message()))
        }
    };
    let _ = events.send(event);
    None
}

/// Asks the follower the Check that `grant` allows, at `revision` or later, and
/// reports how long after `acknowledged` it answered.
async fn probe_follower(
    access: &mut AccessServiceClient<Channel>,
    grant: &proto::GrantRequest,
    revision: u64,
    acknowledged: Instant,
    events: &mpsc::UnboundedSender<Event>,
) {
    let Some(check) = probe(grant, revision) else {
        let _ = events.send(Event::ProbeFailed(format!(
            "no probe for a grant of `{}`",
            grant.role
        )));
        return;
    };
    let mut request = tonic::Request::new(check);
    request.set_timeout(PROBE_TIMEOUT);
    let answer = access.check(request).await;
    let answered = Instant::now();
    let event = match answer {
        Ok(response) => match response.get_ref().decision.as_ref() {
            Some(decision) if decision.allowed => Event::Visible {
                acknowledged,
                lag: answered.saturating_duration_since(acknowledged),
            },
            decision => Event::Wrong(format!(
                "the follower answered {decision:?} at revision {} to the probe of {grant:?} \
                 (written at revision {revision})",
                response.get_ref().revision
            )),
        },
        Err(status) => Event::ProbeFailed(format!(
            "probe at revision {revision}: {:?}: {}",
            status.code(),
            status.message()
        )),
    };
    let _ = events.send(event);
}

/// The median lag of the `(acknowledged, lag)` samples acknowledged in the first tenth
/// of `window`, and of those in its last tenth.
pub fn early_and_late(
    samples: &[(Duration, Duration)],
    window: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let tenth = window / 10;
    let median = |keep: &dyn Fn(Duration) -> bool| {
        let mut lags: Vec<Duration> = samples
            .iter()
            .filter(|(at, _)| keep(*at))
            .map(|(_, lag)| *lag)
            .collect();
        lags.sort_unstable();
        lags.get(lags.len() / 2).copied()
    };
    (
        median(&|at| at < tenth),
        median(&|at| at >= window.saturating_sub(tenth)),
    )
}

/// What the writers and probes report, as it happens.
#[derive(Debug)]
enum Event {
    /// The leader acknowledged a write of `revision` at `at`, `took` after it was due
    /// or sent.
    Acknowledged {
        revision: u64,
        took: Duration,
        at: Instant,
    },
    /// The leader refused a write or did not answer.
    WriteFailed(String),
    /// The follower answered a probe `lag` after the write's acknowledgement.
    Visible {
        acknowledged: Instant,
        lag: Duration,
    },
    /// A probe failed.
    ProbeFailed(String),
    /// A probe was answered with a denial.
    Wrong(String),
}

/// The events of one run, added up.
struct Tally {
    writes: u64,
    /// Each write's revision and when it was acknowledged.
    acknowledged: Vec<(u64, Instant)>,
    last_acknowledged: Option<Instant>,
    write_latency: Histogram<u64>,
    lag: Histogram<u64>,
    /// When each write seen on the follower was acknowledged, and its lag.
    visible: Vec<(Instant, Duration)>,
    write_errors: u64,
    probe_errors: u64,
    wrong: u64,
    first_problem: Option<String>,
}

impl Tally {
    fn add(&mut self, event: Event) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let problem = match event {
            Event::Acknowledged { revision, took, at } => {
                self.writes += 1;
                self.acknowledged.push((revision, at));
                self.write_latency.saturating_record(nanos(took));
                self.last_acknowledged = self.last_acknowledged.max(Some(at));
                None
            }
            Event::Visible { acknowledged, lag } => {
                self.see(acknowledged, lag);
                None
            }
            Event::WriteFailed(why) => {
                self.write_errors += 1;
                Some(why)
            }
            Event::ProbeFailed(why) => {
                self.probe_errors += 1;
                Some(why)
            }
            Event::Wrong(why) => {
                self.wrong += 1;
                Some(why)
            }
        };
        if let Some(problem) = problem {
            self.first_problem.get_or_insert(problem);
        }
    }

    fn see(&mut self, acknowledged: Instant, lag: Duration) {
        self.lag
            .saturating_record(u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX).max(1));
        self.visible.push((acknowledged, lag));
    }

    /// Each acknowledged write seen, or not, in the follower's answers to `polls`.
    fn see_in(&mut self, polls: &[polling::Poll]) {
        let lags = polling::lags(&self.acknowledged, polls);
        let acknowledged = std::mem::take(&mut self.acknowledged);
        for (&(revision, at), lag) in acknowledged.iter().zip(lags) {
            match lag {
                Some(lag) => self.see(at, lag),
                None => {
                    self.probe_errors += 1;
                    self.first_problem.get_or_insert(format!(
                        "revision {revision} was never seen in the follower's status"
                    ));
                }
            }
        }
    }

    fn into_run(
        self,
        visibility: Visibility,
        started: Instant,
        cores: Cores,
        exhausted: bool,
        behind: Option<Duration>,
    ) -> LagRun {
        let window = self.last_acknowledged.map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(started)
        });
        let offsets: Vec<(Duration, Duration)> = self
            .visible
            .iter()
            .map(|(acknowledged, lag)| (acknowledged.saturating_duration_since(started), *lag))
            .collect();
        LagRun {
            visibility,
            writes: self.writes,
            window,
            trend: early_and_late(&offsets, window),
            write_latency: self.write_latency,
            lag: self.lag,
            write_errors: self.write_errors,
            probe_errors: self.probe_errors,
            wrong: self.wrong,
            first_problem: self.first_problem,
            exhausted,
            behind,
            cores,
        }
    }
}

/// A sender for events and the task adding them up, which ends once every sender is
/// dropped. A channel rather than a shared tally: the writers and probes never wait
/// for one another.
fn collect() -> Result<(mpsc::UnboundedSender<Event>, tokio::task::JoinHandle<Tally>), String> {
    let mut tally = Tally {
        writes: 0,
        acknowledged: Vec::new(),
        last_acknowledged: None,
        write_latency: histogram()?,
        lag: histogram()?,
        visible: Vec::new(),
        write_errors: 0,
        probe_errors: 0,
        wrong: 0,
        first_problem: None,
    };
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            tally.add(event);
        }
        tally
    });
    Ok((sender, task))
}
