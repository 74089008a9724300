//! `accessd-bench replication`: a leader and its follower as processes; the follower's
//! start timed to SERVING, the lag of new grants on it, its Check figures against the
//! leader's. It never drives the floor.

pub mod checks;
pub mod cpu;
pub mod follower;
pub mod lag;
pub mod polling;
pub mod report;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use accessd::proto::{self, replication_service_client::ReplicationServiceClient};
use tonic::transport::Channel;

use crate::{
    args::ReplicationArgs,
    dataset::{Dataset, Sizes},
    driver::{DriveConfig, GrantPool, Workload, drive},
    load::{IMPORT_CHUNK, LoadMethod, load},
    mix::{self, CheckCase},
    process::{self, ScratchDir, ServerProcess, connect, cpu_seconds, dir_bytes},
    report::{self as table, Figures, thousands},
    run::{accessd_binary, first},
};

/// Grants of the leader's data set with `--skip-bootstrap`.
const SMALL_GRANTS: usize = 10_000;
/// Grants a member of the data set holds on average: one for half of them, two for
/// three in ten, three for the rest.
const GRANTS_PER_MEMBER: f64 = 1.7;
/// How long an accessd may take to stop after SIGTERM (it flushes its store first).
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// The callers of the pass that verifies the follower's copy.
const VERIFY_CONCURRENCY: usize = 64;
/// The most time that pass, or the round-trip measurement, may take.
const PASS_TIMEOUT: Duration = Duration::from_secs(600);
/// Checks asked of the follower one at a time, without waiting for a revision: the
/// round trip that every lag figure includes.
const ROUND_TRIPS: u64 = 2_000;
/// How long the follower may take to catch up after the lag runs.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// The number of workspaces of `members` average members that hold about `grants`
/// grants in all.
pub fn workspaces_for(grants: usize, members: usize) -> usize {
    let per_workspace = members.max(1) as f64 * GRANTS_PER_MEMBER;
    ((grants as f64 / per_workspace).round() as usize).max(1)
}

/// Runs the replication bench; fails if any call failed or any answer was wrong.
pub async fn replicate(args: ReplicationArgs, machine: &str) -> Result<(), String> {
    println!("machine: {machine}");
    println!("load average at the start: {}", load_average());
    let scratch = match &args.scratch {
        Some(parent) => ScratchDir::new_in(parent)?,
        None => ScratchDir::new()?,
    };
    let binary = accessd_binary(args.accessd.as_deref())?;
    println!(
        "accessd: {} {}",
        binary.display(),
        args.accessd_arg.join(" ")
    );

    let started = Instant::now();
    let grants = if args.skip_bootstrap {
        SMALL_GRANTS
    } else {
        args.grants
    };
    let data = Dataset::generate(
        args.seed,
        Sizes {
            workspaces: workspaces_for(grants, args.members),
            members: args.members,
            sources: args.sources,
            grant_pool: if args.skip_lag { 0 } else { args.grant_pool },
        },
    );
    let counts = data.counts();
    let cases: Arc<[CheckCase]> = mix::checks(&data, args.requests).into();
    let pool = Arc::new(GrantPool::new(data.grant_pool()));
    println!(
        "data set (seed {}): {} workspaces, {} members holding {} grants, {} instances, {} \
         writers for {} new grants: {} records; {} checks, {:.1}% allowed; derived in {:.1} s",
        args.seed,
        thousands(counts.workspaces),
        thousands(counts.members),
        thousands(counts.grants),
        thousands(counts.instances),
        thousands(counts.writers),
        thousands(data.grant_pool),
        thousands(counts.records()),
        cases.len(),
        100.0 * cases.iter().filter(|c| c.allowed).count() as f64 / cases.len().max(1) as f64,
        started.elapsed().as_secs_f64(),
    );

    let leader_dir = scratch.path().join("leader");
    let mut leader = ServerProcess::start_accessd(
        &binary,
        &leader_dir,
        None,
        &scratch.path().join("leader.log"),
        &args.accessd_arg,
    )?;
    let took = leader.wait_serving(args.start_timeout).await?;
    let connections = args.connections.max(1);
    let leader_channels = connect(leader.addr, connections).await?;
    let method = LoadMethod::Import {
        chunk: IMPORT_CHUNK,
    };
    let loaded = load(method, &leader_channels, &data)
        .await
        .map_err(|e| format!("loading the leader: {e}"))?;
    println!(
        "leader: pid {} on {}, SERVING {:.0} ms after it started; load: {}",
        leader.pid,
        leader.addr,
        took.as_secs_f64() * 1000.0,
        table::loaded(method, &loaded, counts.grants)
    );

    println!();
    let follower_dir = scratch.path().join("follower");
    let follower_log = scratch.path().join("follower.log");
    let leader_cpu = cpu_seconds(Some(leader.pid));
    let (follower, serving_after) = follower::start(
        &binary,
        leader.addr,
        &follower_dir,
        &follower_log,
        &args.accessd_arg,
        args.start_timeout,
    )
    .await?;
    let bootstrap = report::Bootstrap {
        grants: counts.grants,
        serving_after,
        log: std::fs::read_to_string(&follower_log)
            .ok()
            .and_then(|log| follower::bootstrap_log(&log)),
        follower_cpu: cpu_seconds(Some(follower.pid)),
        leader_cpu: cpu_seconds(Some(leader.pid))
            .zip(leader_cpu)
            .map(|(after, before)| after - before),
        follower_memory: (follower.rss_bytes(), follower.peak_rss_bytes()),
        leader_memory: (leader.rss_bytes(), leader.peak_rss_bytes()),
        directories: (dir_bytes(&follower_dir), dir_bytes(&leader_dir)),
    };
    println!("follower: pid {} on {}", follower.pid, follower.addr);
    for line in report::bootstrap(&bootstrap) {
        println!("{line}");
    }
    let follower_channels = connect(follower.addr, connections).await?;
    verify(&follower_channels, &cases).await?;

    let mut problems = (0, 0);
    let pair = lag::Pair {
        leader: &leader_channels,
        follower: &follower_channels,
        leader_pid: leader.pid,
        follower_pid: follower.pid,
    };
    let mut paced = Vec::new();
    if !args.skip_lag {
        println!();
        println!(
            "lag runs, nothing pinned (three processes share the cores), each until the \
             follower has shown its last write"
        );
        round_trip(&follower_channels, &cases).await?;
        for &visibility in &args.visibility {
            let run = lag::paced(&pair, &pool, args.rate, args.seconds, visibility).await?;
            let title = format!(
                "paced (open loop), seen by {}: {} writes/s for {:.0} s",
                visibility.name(),
                thousands(args.rate as usize),
                args.seconds.as_secs_f64()
            );
            print_lag(&title, &run, &mut problems);
            caught_up(&leader_channels, &follower_channels).await?;
            paced.push(run);
        }
        for &visibility in args.visibility.iter().filter(|_| args.writers > 0) {
            let run = lag::closed(&pair, &pool, args.writers, args.seconds, visibility).await?;
            let title = format!(
                "the leader's maximum (closed loop), seen by {}: {} writers for {:.0} s",
                visibility.name(),
                args.writers,
                args.seconds.as_secs_f64()
            );
            print_lag(&title, &run, &mut problems);
            caught_up(&leader_channels, &follower_channels).await?;
        }
    }

    let mut compared = Vec::new();
    if !args.skip_checks {
        println!();
        if pin(&args, &leader, &follower)? {
            println!(
                "Check runs: load generator pinned to core {}, leader and follower to core {}",
                args.client_core, args.server_core
            );
        } else {
            println!("Check runs: nothing pinned (fewer than two cores, no taskset, or --no-pin)");
        }
        let plan = checks::Plan {
            concurrency: args.concurrency.clone(),
            connections,
            warmup: args.warmup,
            duration: args.duration,
            rounds: args.rounds,
        };
        compared = checks::compare(
            checks::Side {
                name: "leader",
                channels: &leader_channels,
                pid: leader.pid,
            },
            checks::Side {
                name: "follower",
                channels: &follower_channels,
                pid: follower.pid,
            },
            &cases,
            &plan,
            &mut problems,
        )
        .await?;
        println!();
        println!("medians over {} rounds:", args.rounds.max(1));
        for c in &compared {
            println!("  {}", report::versus_leader(c));
        }
    }

    println!();
    println!("load average at the end: {}", load_average());
    println!("the replication targets, as this run measured them:");
    let measured = report::Measured {
        rate: args.rate,
        paced: &paced,
        bootstrap: (!args.skip_bootstrap).then_some(&bootstrap),
        checks: &compared,
    };
    for line in report::targets(&measured) {
        println!("  {line}");
    }

    drop((leader_channels, follower_channels));
    follower.stop(STOP_TIMEOUT).await?;
    leader.stop(STOP_TIMEOUT).await?;
    match problems {
        (0, 0) => Ok(()),
        (errors, wrong) => Err(format!(
            "{errors} calls failed and {wrong} answers were wrong"
        )),
    }
}

/// Prints a lag run and adds its failures and wrong answers to `problems`.
fn print_lag(title: &str, run: &lag::LagRun, problems: &mut (u64, u64)) {
    println!();
    for line in report::lag_run(title, run) {
        println!("{line}");
    }
    problems.0 += run.write_errors + run.probe_errors;
    problems.1 += run.wrong;
}

/// Asks the follower every check once and fails unless each got its expected answer:
/// the bootstrap copied the data set whole.
async fn verify(channels: &[Channel], cases: &Arc<[CheckCase]>) -> Result<(), String> {
    let started = Instant::now();
    let config = DriveConfig {
        concurrency: VERIFY_CONCURRENCY,
        warmup: Duration::ZERO,
        duration: PASS_TIMEOUT,
        max_calls: cases.len() as u64,
        verify: true,
        server_pid: None,
        traceparent: false,
    };
    let outcome = drive(channels, &Workload::Check(Arc::clone(cases)), &config).await?;
    if outcome.errors > 0 || outcome.mismatches > 0 || outcome.calls < config.max_calls {
        return Err(format!(
            "verifying the follower: {} of {} checks answered, {} failed, {} wrong; first: {}",
            outcome.calls,
            cases.len(),
            outcome.errors,
            outcome.mismatches,
            outcome.first_problem.as_deref().unwrap_or("none"),
        ));
    }
    println!(
        "follower verified: all {} checks answered as the data set says ({:.1} s)",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Measures and prints a Check's round trip to the follower, one at a time and without
/// a revision to wait for: the share of each lag figure that is the probe's own call.
async fn round_trip(channels: &[Channel], cases: &Arc<[CheckCase]>) -> Result<(), String> {
    let config = DriveConfig {
        concurrency: 1,
        warmup: Duration::ZERO,
        duration: PASS_TIMEOUT,
        max_calls: ROUND_TRIPS,
        verify: true,
        server_pid: None,
        traceparent: false,
    };
    let outcome = drive(
        first(channels, 1),
        &Workload::Check(Arc::clone(cases)),
        &config,
    )
    .await?;
    let figures = Figures::of(&outcome);
    println!(
        "a Check's round trip to the follower, one at a time: p50 {:.0} µs, p99 {:.0} µs \
         (part of every lag figure below)",
        figures.micros.first().copied().unwrap_or(0.0),
        figures.micros.get(2).copied().unwrap_or(0.0),
    );
    Ok(())
}

/// Waits until the follower has applied the leader's revision, then prints where both
/// stand as GetReplicationStatus says.
async fn caught_up(leader: &[Channel], follower: &[Channel]) -> Result<(), String> {
    let (Some(leader), Some(follower)) = (leader.first(), follower.first()) else {
        return Err("no connection to ask for the replication status".into());
    };
    let target = status(leader).await?.revision;
    let started = Instant::now();
    loop {
        let now = status(follower).await?;
        if now.revision >= target {
            println!(
                "follower caught up: revision {} (the leader's {target}), state `{}`, \
                 {} revisions behind the leader's latest it heard of",
                now.revision, now.state, now.lag_revisions
            );
            return Ok(());
        }
        if started.elapsed() > CATCH_UP_TIMEOUT {
            return Err(format!(
                "the follower is still at revision {} of the leader's {target} after \
                 {CATCH_UP_TIMEOUT:?}: {now:?}",
                now.revision
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status(channel: &Channel) -> Result<proto::ReplicationStatus, String> {
    ReplicationServiceClient::new(channel.clone())
        .get_replication_status(proto::GetReplicationStatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("GetReplicationStatus: {:?}: {}", s.code(), s.message()))
}

/// Pins this process to `--client-core` and both servers to `--server-core` when the
/// machine has two cores or more, `taskset` runs and `--no-pin` is not given; returns
/// whether it did.
fn pin(
    args: &ReplicationArgs,
    leader: &ServerProcess,
    follower: &ServerProcess,
) -> Result<bool, String> {
    if args.no_pin || process::cores() < 2 || !process::taskset_available() {
        return Ok(false);
    }
    process::pin_self(args.client_core)?;
    process::pin(leader.pid, args.server_core)?;
    process::pin(follower.pid, args.server_core)?;
    Ok(true)
}

/// The system's load averages over 1, 5 and 15 minutes, as `/proc/loadavg` gives them.
fn load_average() -> String {
    std::fs::read_to_string(Path::new("/proc/loadavg"))
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
