//! The replication run's report: each lag run, the bootstrap, the follower's Check
//! figures against the leader's, and the targets met or missed with their
//! numbers. It formats; it measures nothing.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::{checks::Compared, cpu::Cores, follower::BootstrapLog, lag::LagRun, polling};
use crate::{
    args::Visibility,
    report::{Figures, mib, thousands},
};

/// The replication lag the target allows at its write rate.
pub const LAG_P99_TARGET: Duration = Duration::from_millis(50);
/// The write rate the lag target is stated at.
pub const LAG_TARGET_RATE: u32 = 1000;
/// The longest a follower may take from start to SERVING under the bootstrap target.
pub const BOOTSTRAP_TARGET: Duration = Duration::from_secs(10);
/// The grants the bootstrap target is stated for.
pub const BOOTSTRAP_TARGET_GRANTS: usize = 1_000_000;
/// How far the follower's Check throughput may fall below the leader's.
pub const CHECK_TOLERANCE: f64 = 0.05;

/// The median, the 99th percentile and the maximum of a histogram of nanoseconds, in
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Millis {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest value.
    pub max: f64,
}

impl Millis {
    /// The percentiles of `nanos`, or `None` if it holds nothing.
    pub fn of(nanos: &Histogram<u64>) -> Option<Self> {
        if nanos.is_empty() {
            return None;
        }
        let millis = |n: u64| n as f64 / 1e6;
        Some(Self {
            p50: millis(nanos.value_at_quantile(0.50)),
            p99: millis(nanos.value_at_quantile(0.99)),
            max: millis(nanos.max()),
        })
    }
}

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.p50, self.p99, self.max
        )
    }
}

/// Cores used by each process, in one phrase.
pub fn cores(cores: &Cores) -> String {
    let one = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.2}"));
    format!(
        "cores used: load generator {}, leader {}, follower {}",
        one(cores.bench),
        one(cores.leader),
        one(cores.follower)
    )
}

/// A lag run's figures, under `title`.
pub fn lag_run(title: &str, run: &LagRun) -> Vec<String> {
    let none = || "none".to_owned();
    let mut lines = vec![
        format!("{title}:"),
        format!(
            "  writes: {} acknowledged, {:.0}/s; {} to acknowledged: {}{}",
            thousands(usize::try_from(run.writes).unwrap_or(usize::MAX)),
            run.writes_per_second(),
            if run.behind.is_some() { "due" } else { "sent" },
            Millis::of(&run.write_latency).map_or_else(none, |m| m.to_string()),
            run.behind.map_or_else(String::new, |behind| format!(
                "; each sent at most {:.2} ms after it was due",
                behind.as_secs_f64() * 1000.0
            )),
        ),
        format!(
            "  lag, from the leader's acknowledgement to {}: {} over {} writes",
            seen_by(run.visibility),
            Millis::of(&run.lag).map_or_else(none, |m| m.to_string()),
            thousands(usize::try_from(run.lag.len()).unwrap_or(usize::MAX)),
        ),
        format!(
            "  lag's median over the run's first tenth {}, over its last tenth {}{}",
            millis(run.trend.0),
            millis(run.trend.1),
            if falling_behind(run.trend) {
                ": growing, the follower applies fewer writes a second than the leader takes"
            } else {
                ""
            }
        ),
        format!(
            "  {}; failed: {} writes, {} probes; {} probes denied",
            cores(&run.cores),
            run.write_errors,
            run.probe_errors,
            run.wrong
        ),
    ];
    if let Some(problem) = &run.first_problem {
        lines.push(format!("  first problem: {problem}"));
    }
    if run.exhausted {
        lines.push("  the grant pool ran out before the end: raise --grant-pool".into());
    }
    lines
}

/// What a lag is measured to, by `visibility`.
fn seen_by(visibility: Visibility) -> String {
    match visibility {
        Visibility::Check => "the follower's answer to a Check with at_least_revision = \
                              the write's revision"
            .to_owned(),
        Visibility::Status => format!(
            "the first GetReplicationStatus answer of the follower showing the write's \
             revision (asked every {} ms)",
            polling::POLL_EVERY.as_millis()
        ),
    }
}

fn millis(d: Option<Duration>) -> String {
    d.map_or("?".to_owned(), |d| {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    })
}

/// Whether the lag at the end of a run is more than twice, and 10 ms more than, its lag
/// at the start.
pub fn falling_behind((early, late): (Option<Duration>, Option<Duration>)) -> bool {
    match (early, late) {
        (Some(early), Some(late)) => late > early * 2 && late > early + Duration::from_millis(10),
        _ => false,
    }
}

/// What the follower's start measured.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    /// Grants the leader held.
    pub grants: usize,
    /// From just before the process started to SERVING.
    pub serving_after: Duration,
    /// What the follower's log said of its bootstrap.
    pub log: Option<BootstrapLog>,
    /// CPU seconds the follower used until SERVING.
    pub follower_cpu: Option<f64>,
    /// CPU seconds the leader used meanwhile (serving the snapshot).
    pub leader_cpu: Option<f64>,
    /// The follower's resident memory and its peak, once SERVING.
    pub follower_memory: (Option<u64>, Option<u64>),
    /// The leader's resident memory and its peak, at the same moment.
    pub leader_memory: (Option<u64>, Option<u64>),
    /// Bytes in the follower's and the leader's data directories.
    pub directories: (u64, u64),
}

/// The follower's start, in a few lines.
pub fn bootstrap(b: &Bootstrap) -> Vec<String> {
    let size = |bytes: Option<u64>| bytes.map_or("?".to_owned(), mib);
    let seconds = |s: Option<f64>| s.map_or("?".to_owned(), |s| format!("{s:.1} s"));
    vec![
        format!(
            "follower of a leader holding {} grants: SERVING {:.2} s after the process started{}",
            thousands(b.grants),
            b.serving_after.as_secs_f64(),
            b.log.map_or_else(
                || " (its log has no bootstrap line)".to_owned(),
                |log| format!(
                    "; its log: bootstrapped {} records at revision {} in {:.2} s",
                    thousands(usize::try_from(log.records).unwrap_or(usize::MAX)),
                    log.revision,
                    log.seconds
                )
            ),
        ),
        format!(
            "  CPU until then: follower {}, leader {} (serving the snapshot)",
            seconds(b.follower_cpu),
            seconds(b.leader_cpu)
        ),
        format!(
            "  resident: follower {} ({} at most), leader {} ({} at most, loaded by Import); \
             data directories: follower {}, leader {}",
            size(b.follower_memory.0),
            size(b.follower_memory.1),
            size(b.leader_memory.0),
            size(b.leader_memory.1),
            mib(b.directories.0),
            mib(b.directories.1),
        ),
    ]
}

/// The follower against the leader at one concurrency: throughput ratio, the ratio of
/// server CPU per check, and the latency differences.
pub fn versus_leader(c: &Compared) -> String {
    let (l, f) = (&c.leader, &c.follower);
    let cpu = match (l.server_micros_per_item(), f.server_micros_per_item()) {
        (Some(l), Some(f)) => format!("; server CPU per check {f:.2} against {l:.2} µs"),
        _ => String::new(),
    };
    let [d50, _, d99, _] = [0, 1, 2, 3]
        .map(|i| f.micros.get(i).copied().unwrap_or(0.0) - l.micros.get(i).copied().unwrap_or(0.0));
    format!(
        "concurrency {}: follower/leader throughput {:.3} ({:.0} against {:.0} checks/s){cpu}; \
         latency p50 {d50:+.1} µs, p99 {d99:+.1} µs",
        c.concurrency,
        ratio(f.items_per_s, l.items_per_s),
        f.items_per_s,
        l.items_per_s,
    )
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// What the targets are judged on; a part not measured is `None` or empty.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// The paced lag runs' rate.
    pub rate: u32,
    /// The paced lag runs, one for each way of seeing writes.
    pub paced: &'a [LagRun],
    /// The follower's start, if the bootstrap target is judged.
    pub bootstrap: Option<&'a Bootstrap>,
    /// The Check medians of both servers.
    pub checks: &'a [Compared],
}

/// The targets this run measured, each met or missed with its numbers.
pub fn targets(measured: &Measured<'_>) -> Vec<String> {
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let mut lines = Vec::new();
    let rate = measured.rate;
    for run in measured.paced {
        let failures = run.probe_errors + run.wrong + run.write_errors;
        let line = match Millis::of(&run.lag) {
            Some(lag) => format!(
                "replication lag p99 under {} ms at {} writes/s{}, seen by {}: {:.2} ms ({lag}){}: {}",
                LAG_P99_TARGET.as_millis(),
                thousands(rate as usize),
                if rate == LAG_TARGET_RATE {
                    String::new()
                } else {
                    format!(
                        " (the target is stated at {})",
                        thousands(LAG_TARGET_RATE as usize)
                    )
                },
                match run.visibility {
                    Visibility::Check => "a waiting Check",
                    Visibility::Status => "status polls",
                },
                lag.p99,
                match failures {
                    0 => String::new(),
                    n => format!(", {n} writes or probes failed"),
                },
                verdict(lag.p99 < LAG_P99_TARGET.as_secs_f64() * 1000.0 && failures == 0)
            ),
            None => "replication lag: no write was seen on the follower: MISSED".to_owned(),
        };
        lines.push(line);
    }
    if let Some(b) = measured.bootstrap {
        lines.push(format!(
            "follower SERVING within {} s of its start, bootstrapping {} grants{}: {:.2} s: {}",
            BOOTSTRAP_TARGET.as_secs(),
            thousands(b.grants),
            if b.grants < BOOTSTRAP_TARGET_GRANTS {
                format!(
                    " (the target is stated for {})",
                    thousands(BOOTSTRAP_TARGET_GRANTS)
                )
            } else {
                String::new()
            },
            b.serving_after.as_secs_f64(),
            verdict(b.serving_after < BOOTSTRAP_TARGET)
        ));
    }
    for c in measured.checks {
        let throughput = ratio(c.follower.items_per_s, c.leader.items_per_s);
        lines.push(format!(
            "follower Check throughput at concurrency {} within {:.0}% of the leader's: \
             {:.1}% ({:.0} against {:.0}/s): {}",
            c.concurrency,
            CHECK_TOLERANCE * 100.0,
            throughput * 100.0,
            c.follower.items_per_s,
            c.leader.items_per_s,
            verdict(throughput >= 1.0 - CHECK_TOLERANCE)
        ));
        if let Some(line) = by_server_cpu(&c.leader, &c.follower) {
            lines.push(line);
        }
    }
    lines
}

/// The throughput ratio a saturated server core would show: leader's CPU per check over
/// the follower's.
fn by_server_cpu(leader: &Figures, follower: &Figures) -> Option<String> {
    let (l, f) = (
        leader.server_micros_per_item()?,
        follower.server_micros_per_item()?,
    );
    let capacity = ratio(l, f);
    Some(format!(
        "  the same by server CPU per check (follower {f:.2} µs, leader {l:.2} µs): {:.1}%: {}{}",
        capacity * 100.0,
        if capacity >= 1.0 - CHECK_TOLERANCE {
            "met"
        } else {
            "MISSED"
        },
        if leader.client_saturated() || follower.client_saturated() {
            " (the load generator's core was saturated: trust this line over the one above)"
        } else {
            ""
        }
    ))
}
