//! The follower's Check figures against the leader's: the same Check scenario driven
//! against each in turn, which goes first alternating from round to round, and the
//! medians of each. It compares the two servers with each other, not with the floor.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tonic::transport::Channel;

use crate::{
    args::Scenario,
    driver::{DriveConfig, Workload, drive},
    mix::CheckCase,
    report::{self, Figures},
    run::{first, problem_note},
};

/// One of the two servers, as the Check runs see it.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// `leader` or `follower`, in reports.
    pub name: &'static str,
    /// Connections to it.
    pub channels: &'a [Channel],
    /// Its process, for its CPU time.
    pub pid: u32,
}

/// How the Check runs are driven.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The concurrencies, each driven against both servers every round.
    pub concurrency: Vec<usize>,
    /// At most this many connections per run.
    pub connections: usize,
    /// Unmeasured time before each run.
    pub warmup: Duration,
    /// Measured time of each run.
    pub duration: Duration,
    /// Rounds.
    pub rounds: usize,
}

/// The medians of both servers at one concurrency.
#[derive(Debug, Clone, Copy)]
pub struct Compared {
    /// Calls in flight.
    pub concurrency: usize,
    /// The leader's medians.
    pub leader: Figures,
    /// The follower's medians.
    pub follower: Figures,
}

/// The most calls one Check run may make, whatever its duration.
const MAX_CALLS: u64 = 10_000_000;

/// Drives `cases` against `leader` and `follower` alternately as `plan` says, printing
/// each run; returns the medians, and adds failed calls and wrong answers to `problems`.
pub async fn compare(
    leader: Side<'_>,
    follower: Side<'_>,
    cases: &Arc<[CheckCase]>,
    plan: &Plan,
    problems: &mut (u64, u64),
) -> Result<Vec<Compared>, String> {
    println!("{}", report::header());
    let mut runs: BTreeMap<(usize, &'static str), Vec<Figures>> = BTreeMap::new();
    for round in 0..plan.rounds.max(1) {
        // Which goes first alternates, so that a drift of the machine within a round
        // does not always favour the same server.
        let order = if round % 2 == 0 {
            [leader, follower]
        } else {
            [follower, leader]
        };
        for &concurrency in &plan.concurrency {
            let concurrency = concurrency.max(1);
            let conns = plan.connections.max(1).min(concurrency);
            for side in order {
                let config = DriveConfig {
                    concurrency,
                    warmup: plan.warmup,
                    duration: plan.duration,
                    max_calls: MAX_CALLS,
                    verify: true,
                    server_pid: Some(side.pid),
                    traceparent: false,
                };
                let workload = Workload::Check(Arc::clone(cases));
                let outcome = drive(first(side.channels, conns), &workload, &config).await?;
                let figures = Figures::of(&outcome);
                println!(
                    "{}",
                    report::row(Scenario::Check, side.name, concurrency, conns, &figures)
                );
                problem_note(&outcome, problems);
                runs.entry((concurrency, side.name))
                    .or_default()
                    .push(figures);
            }
        }
    }
    let median = |concurrency: usize, name: &str| {
        runs.get(&(concurrency, name))
            .map(|all| Figures::median(all))
            .unwrap_or_default()
    };
    let mut concurrencies: Vec<usize> = plan.concurrency.iter().map(|c| (*c).max(1)).collect();
    concurrencies.dedup();
    Ok(concurrencies
        .into_iter()
        .map(|concurrency| Compared {
            concurrency,
            leader: median(concurrency, leader.name),
            follower: median(concurrency, follower.name),
        })
        .collect())
}
