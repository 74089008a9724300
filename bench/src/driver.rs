//! The driver: a closed loop of `concurrency` callers spread over the given HTTP/2
//! connections, each sending its next request as soon as the last is answered, for a
//! warm-up and then a measured window. The same driver drives the floor and accessd.
//! Every loop ends by time and by count; it checks answers but keeps no other state.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::{
    mix::{BatchCase, CheckCase},
    process,
};

/// New grants for the Grant scenario, each written once across all its runs.
#[derive(Debug)]
pub struct GrantPool {
    requests: Vec<proto::GrantRequest>,
    next: AtomicUsize,
}

impl GrantPool {
    /// A pool of these grants, none taken yet.
    pub fn new(requests: Vec<proto::GrantRequest>) -> Self {
        Self {
            requests,
            next: AtomicUsize::new(0),
        }
    }

    /// How many grants have been taken so far.
    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.requests.len())
    }

    /// The next grant not yet taken by anyone, if any is left.
    pub fn take(&self) -> Option<&proto::GrantRequest> {
        self.requests.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// What the callers send.
#[derive(Debug, Clone)]
pub enum Workload {
    /// `Check` calls, cycling through the cases.
    Check(Arc<[CheckCase]>),
    /// `BatchCheck` calls, cycling through the batches.
    Batch(Arc<[BatchCase]>),
    /// `Grant` calls, each a new grant from the pool.
    Grant(Arc<GrantPool>),
}

/// How one scenario is driven.
#[derive(Debug, Clone, Copy)]
pub struct DriveConfig {
    /// Calls in flight.
    pub concurrency: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// At most this many calls in all, warm-up included.
    pub max_calls: u64,
    /// Whether answers are compared with the expected ones (not for the floor).
    pub verify: bool,
    /// The server's process, to read its CPU time, if it runs on this machine.
    pub server_pid: Option<u32>,
    /// Whether each Check and BatchCheck carries a W3C `traceparent`.
    pub traceparent: bool,
}

/// The `traceparent` a traced caller sends: version 00, a trace id, its span's id,
/// sampled.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `message` as a request, with a `traceparent` if `traced`.
fn request<T>(message: T, traced: bool) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if traced {
        request.metadata_mut().insert(
            "traceparent",
            tonic::metadata::AsciiMetadataValue::from_static(TRACEPARENT),
        );
    }
    request
}

/// What one scenario run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Calls answered successfully in the measured window.
    pub calls: u64,
    /// Items (checks or grants) in those calls.
    pub items: u64,
    /// The measured window: from the end of the warm-up to the last measured answer.
    pub window: Duration,
    /// Latency of the measured calls, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Calls that failed (an error status, or no answer long after the end), warm-up
    /// included.
    pub errors: u64,
    /// Answers that differed from the expected ones, warm-up included.
    pub mismatches: u64,
    /// The first error or mismatch, for the report.
    pub first_problem: Option<String>,
    /// Whether the grant pool ran out before the end.
    pub exhausted: bool,
    /// CPU used by this process during the window, in cores (1.0 = one core busy).
    pub client_cpu: Option<f64>,
    /// CPU used by the server during the window, in cores.
    pub server_cpu: Option<f64>,
}

impl Outcome {
    /// Calls per second in the measured window.
    pub fn calls_per_second(&self) -> f64 {
        per_second(self.calls, self.window)
    }

    /// Items per second in the measured window.
    pub fn items_per_second(&self) -> f64 {
        per_second(self.items, self.window)
    }

    /// The latency at quantile `q`, in microseconds.
    pub fn micros_at(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

fn per_second(count: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        count as f64 / window.as_secs_f64()
    }
}

/// How long callers may still wait for answers after the end before they are aborted
/// (one deadline for all, rather than a timer per call, which the load generator's
/// single core would pay for on every call).
const GRACE: Duration = Duration::from_secs(10);
/// The largest latency the histograms hold, in nanoseconds.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A histogram of latencies in nanoseconds with three significant digits.
pub fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).map_err(|e| format!("histogram: {e}"))
}

struct Shared {
    workload: Workload,
    verify: bool,
    traceparent: bool,
    measure_from: Instant,
    end: Instant,
    max_calls: u64,
    issued: AtomicU64,
}

struct CallerResult {
    latency: Histogram<u64>,
    calls: u64,
    items: u64,
    errors: u64,
    mismatches: u64,
    first_problem: Option<String>,
    exhausted: bool,
    last_answer: Option<Instant>,
}

/// Drives `workload` over `channels` as `config` says.
pub async fn drive(
    channels: &[Channel],
    workload: &Workload,
    config: &DriveConfig,
) -> Result<Outcome, String> {
    if channels.is_empty() {
        return Err("no connection to drive".into());
    }
    let concurrency = config.concurrency.max(1);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        workload: workload.clone(),
        verify: config.verify,
        traceparent: config.traceparent,
        measure_from: started + config.warmup,
        end: started + config.warmup + config.duration,
        max_calls: config.max_calls,
        issued: AtomicU64::new(0),
    });
    let length = match workload {
        Workload::Check(cases) => cases.len(),
        Workload::Batch(batches) => batches.len(),
        Workload::Grant(_) => 1,
    };
    if length == 0 {
        return Err("nothing to send: the request list is empty".into());
    }

    let server_pid = config.server_pid;
    let measure_from = shared.measure_from;
    let first_sample = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        CpuSample::take(server_pid)
    });

    let mut callers = tokio::task::JoinSet::new();
    for index in 0..concurrency {
        let channel = channels
            .get(index % channels.len())
            .cloned()
            .ok_or("no connection")?;
        let shared = Arc::clone(&shared);
        let offset = index * length / concurrency;
        callers.spawn(caller(shared, channel, offset));
    }
    let mut outcome = Outcome {
        calls: 0,
        items: 0,
        window: Duration::ZERO,
        latency: histogram()?,
        errors: 0,
        mismatches: 0,
        first_problem: None,
        exhausted: false,
        client_cpu: None,
        server_cpu: None,
    };
    let mut last_answer = None;
    let deadline = tokio::time::Instant::from(shared.end + GRACE);
    loop {
        let joined = match tokio::time::timeout_at(deadline, callers.join_next()).await {
            Ok(Some(joined)) => joined,
            Ok(None) => break,
            Err(_) => {
                let stuck = callers.len();
                callers.abort_all();
                outcome.errors += u64::try_from(stuck).unwrap_or(u64::MAX);
                outcome.first_problem.get_or_insert(format!(
                    "{stuck} calls had no answer {GRACE:?} after the end; abandoned"
                ));
                break;
            }
        };
        let result = joined.map_err(|e| format!("a caller failed: {e}"))??;
        outcome
            .latency
            .add(&result.latency)
            .map_err(|e| format!("histogram: {e}"))?;
        outcome.calls += result.calls;
        outcome.items += result.items;
        outcome.errors += result.errors;
        outcome.mismatches += result.mismatches;
        outcome.exhausted |= result.exhausted;
        if outcome.first_problem.is_none() {
            outcome.first_problem = result.first_problem;
        }
        last_answer = last_answer.max(result.last_answer);
    }
    let last_sample = CpuSample::take(server_pid);
    if let Some(last) = last_answer {
        outcome.window = last.saturating_duration_since(shared.measure_from);
    }
    // A run stopped by count before the warm-up ended never took its first sample.
    if first_sample.is_finished() {
        if let Ok(first) = first_sample.await {
            (outcome.client_cpu, outcome.server_cpu) = first.cores_until(&last_sample);
        }
    } else {
        first_sample.abort();
    }
    Ok(outcome)
}

async fn caller(
    shared: Arc<Shared>,
    channel: Channel,
    offset: usize,
) -> Result<CallerResult, String> {
    let mut access = AccessServiceClient::new(channel.clone());
    let mut admin = AdminServiceClient::new(channel);
    let mut result = CallerResult {
        latency: histogram()?,
        calls: 0,
        items: 0,
        errors: 0,
        mismatches: 0,
        first_problem: None,
        exhausted: false,
        last_answer: None,
    };
    let mut cursor = offset;
    // Bounded by `end` and by `max_calls`, whichever comes first.
    while Instant::now() < shared.end
        && shared.issued.fetch_add(1, Ordering::Relaxed) < shared.max_calls
    {
        let sent = Instant::now();
        let answer = match &shared.workload {
            Workload::Check(cases) => match cases.get(cursor % cases.len()) {
                Some(case) => check(&mut access, case, shared.verify, shared.traceparent).await,
                None => break,
            },
            Workload::Batch(batches) => match batches.get(cursor % batches.len()) {
                Some(batch) => {
                    batch_check(&mut access, batch, shared.verify, shared.traceparent).await
                }
                None => break,
            },
            Workload::Grant(pool) => match pool.take() {
                Some(grant) => write_grant(&mut admin, grant).await,
                None => {
                    result.exhausted = true;
                    break;
                }
            },
        };
        let answered = Instant::now();
        cursor += 1;
        let items = match answer {
            Answer::Ok(items) => items,
            Answer::Mismatch(problem) => {
                result.mismatches += 1;
                result.first_problem.get_or_insert(problem);
                continue;
            }
            Answer::Error(problem) => {
                result.errors += 1;
                result.first_problem.get_or_insert(problem);
                continue;
            }
        };
        if sent >= shared.measure_from && answered <= shared.end {
            let nanos = u64::try_from(answered.duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
            result.latency.saturating_record(nanos.max(1));
            result.calls += 1;
            result.items += items;
            result.last_answer = Some(answered);
        }
    }
    Ok(result)
}

enum Answer {
    /// Answered as expected, with this many items.
    Ok(u64),
    /// Answered, but not as expected.
    Mismatch(String),
    /// Failed.
    Error(String),
}

async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Answer> {
    match call.await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(Answer::Error(format!(
            "{:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}

async fn check(
    client: &mut AccessServiceClient<Channel>,
    case: &CheckCase,
    verify: bool,
    traced: bool,
) -> Answer {
    let response = match answer(client.check(request(case.request.clone(), traced))).await {
        Ok(response) => response,
        Err(answer) => return answer,
    };
    let allowed = response.decision.as_ref().map(|d| d.allowed);
    if verify && allowed != Some(case.allowed) {
        return Answer::Mismatch(format!(
            "{:?}: expected allowed = {}, got {:?}",
            case.request, case.allowed, response.decision
        ));
    }
    Answer::Ok(1)
}

async fn batch_check(
    client: &mut AccessServiceClient<Channel>,
    batch: &BatchCase,
    verify: bool,
    traced: bool,
) -> Answer {
    let response = match answer(client.batch_check(request(batch.request.clone(), traced))).await {
        Ok(response) => response,
        Err(answer) => return answer,
    };
    let count = batch.allowed.len();
    if response.decisions.len() != count {
        return Answer::Mismatch(format!(
            "BatchCheck of {count} checks got {} decisions",
            response.decisions.len()
        ));
    }
    if verify {
        let wrong = response
            .decisions
            .iter()
            .zip(&batch.allowed)
            .position(|(decision, allowed)| decision.allowed != *allowed);
        if let Some(at) = wrong {
            return Answer::Mismatch(format!(
                "BatchCheck item {at} ({:?}): expected allowed = {:?}, got {:?}",
                batch.request.checks.get(at),
                batch.allowed.get(at),
                response.decisions.get(at)
            ));
        }
    }
    Answer::Ok(u64::try_from(count).unwrap_or(u64::MAX))
}

async fn write_grant(
    client: &mut AdminServiceClient<Channel>,
    grant: &proto::GrantRequest,
) -> Answer {
    match answer(client.grant(grant.clone())).await {
        Ok(response) if response.changed => Answer::Ok(1),
        Ok(_) => Answer::Mismatch(format!("{grant:?}: a new grant answered changed = false")),
        Err(answer) => answer,
    }
}

/// CPU time of this process and of the server at one instant.
struct CpuSample {
    at: Instant,
    client: Option<f64>,
    server: Option<f64>,
}

impl CpuSample {
    fn take(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            client: process::cpu_seconds(None),
            server: server_pid.and_then(|pid| process::cpu_seconds(Some(pid))),
        }
    }

    /// Cores used by the client and the server between `self` and `later`.
    fn cores_until(&self, later: &Self) -> (Option<f64>, Option<f64>) {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64();
        let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
            _ => None,
        };
        (
            cores(self.client, later.client),
            cores(self.server, later.server),
        )
    }
}
