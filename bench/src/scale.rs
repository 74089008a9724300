//! The scale scenario of issue 4: the same shape of workspace at two sizes (ten thousand
//! and ten million grants with the defaults), each loaded into its own accessd, Checks
//! driven against both back to back, then a restart of each timed to SERVING with its
//! memory. It compares accessd with itself at two sizes; it does not drive the floor.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::transport::Channel;

use crate::{
    args::{LoadWith, ScaleArgs, Scenario},
    dataset::{Dataset, Sizes},
    driver::{DriveConfig, Workload, drive},
    load::{LoadMethod, load},
    mix::{self, CheckCase},
    process::{self, ScratchDir, ServerProcess, connect},
    report::{self, Figures, ScaleLarge, Summary},
    run::{Pinning, accessd_binary, first, problem_note},
};

/// How long an accessd may take to stop after SIGTERM (it flushes its store first).
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// The callers of a verification pass.
const VERIFY_CONCURRENCY: usize = 64;
/// The most time a verification pass may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(600);

/// One of the two data sets, and the accessd that holds it.
struct Side {
    /// `small` or `large`, in reports.
    name: &'static str,
    data: Dataset,
    grants: usize,
    cases: Arc<[CheckCase]>,
    data_dir: PathBuf,
    server: Option<ServerProcess>,
    channels: Vec<Channel>,
    /// Memory held resident after loading.
    resident_loaded: Option<u64>,
    /// Memory held resident after restarting and verifying.
    resident_restarted: Option<u64>,
    /// From process start to SERVING, on the restart.
    serving_again: Option<Duration>,
}

/// Runs the scale scenario; fails if any call failed or any answer was wrong.
pub async fn scale(args: ScaleArgs, machine: &str, pinning: Option<Pinning>) -> Result<(), String> {
    println!("machine: {machine}");
    match pinning {
        Some(p) => println!(
            "pinned: load generator to core {}; each accessd loads and restarts on every core \
             and is pinned to core {} (taskset -a -p -c {}) before Checks are driven",
            p.client_core, p.server_core, p.server_core
        ),
        None => println!("pinned: nothing (fewer than two cores, no taskset, or --no-pin)"),
    }
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

    let mut sides = Vec::with_capacity(2);
    for (name, workspaces) in [
        ("small", args.small_workspaces),
        ("large", args.large_workspaces),
    ] {
        let started = Instant::now();
        let data = Dataset::generate(
            args.seed,
            Sizes {
                workspaces,
                members: args.members,
                sources: args.sources,
                grant_pool: 0,
            },
        );
        let counts = data.counts();
        let cases: Arc<[CheckCase]> = mix::checks(&data, args.requests).into();
        println!(
            "{name} data set (seed {}): {} workspaces, {} members holding {} grants ({} \
             all-scope), {} instances: {} records; {} checks, {:.1}% allowed; derived in {:.1} s",
            args.seed,
            report::thousands(counts.workspaces),
            report::thousands(counts.members),
            report::thousands(counts.grants),
            report::thousands(counts.all_scope_grants),
            report::thousands(counts.instances),
            report::thousands(counts.records()),
            cases.len(),
            100.0 * cases.iter().filter(|c| c.allowed).count() as f64 / cases.len().max(1) as f64,
            started.elapsed().as_secs_f64(),
        );
        sides.push(Side {
            name,
            grants: counts.grants,
            data,
            cases,
            data_dir: scratch.path().join(name),
            server: None,
            channels: Vec::new(),
            resident_loaded: None,
            resident_restarted: None,
            serving_again: None,
        });
    }

    for side in &mut sides {
        println!();
        let server = start(&binary, side, &scratch, &args, "start").await?;
        side.channels = connect(server.addr, args.connections.max(1)).await?;
        let method = LoadMethod::choose(
            args.load_with.map(LoadWith::is_import),
            side.grants,
            args.load_concurrency,
        );
        let loaded = load(method, &side.channels, &side.data)
            .await
            .map_err(|e| format!("loading the {} data set: {e}", side.name))?;
        println!(
            "{} load: {}",
            side.name,
            report::loaded(method, &loaded, side.grants)
        );
        let resident = server.rss_bytes();
        side.resident_loaded = resident;
        println!(
            "{} memory after loading: {} resident, {} at most so far (VmHWM)",
            side.name,
            resident.map_or("?".into(), report::mib),
            server.peak_rss_bytes().map_or("?".into(), report::mib),
        );
        verify(side, &side.channels).await?;
        if let Some(p) = pinning {
            process::pin(server.pid, p.server_core)?;
        }
        side.server = Some(server);
    }

    println!();
    println!("{}", report::header());
    let mut runs: BTreeMap<(usize, usize), Vec<Figures>> = BTreeMap::new();
    let mut problems = (0, 0);
    for _round in 0..args.rounds.max(1) {
        for &concurrency in &args.concurrency {
            let concurrency = concurrency.max(1);
            let conns = args.connections.max(1).min(concurrency);
            for (index, side) in sides.iter().enumerate() {
                let config = DriveConfig {
                    concurrency,
                    warmup: args.warmup,
                    duration: args.duration,
                    max_calls: args.max_requests,
                    verify: true,
                    server_pid: side.server.as_ref().map(|s| s.pid),
                    traceparent: false,
                };
                let workload = Workload::Check(Arc::clone(&side.cases));
                let outcome = drive(first(&side.channels, conns), &workload, &config).await?;
                let figures = Figures::of(&outcome);
                println!(
                    "{}",
                    report::row(Scenario::Check, side.name, concurrency, conns, &figures)
                );
                problem_note(&outcome, &mut problems);
                runs.entry((index, concurrency)).or_default().push(figures);
            }
        }
    }
    let summaries = |index: usize| -> Vec<Summary> {
        runs.iter()
            .filter(|((i, _), _)| *i == index)
            .map(|(&(_, concurrency), figures)| Summary {
                scenario: Scenario::Check,
                concurrency,
                floor: None,
                accessd: Figures::median(figures),
            })
            .collect()
    };
    let (small, large) = (summaries(0), summaries(1));
    println!();
    println!("medians over {} rounds:", args.rounds.max(1));
    println!("{}", report::header());
    for (side, summaries) in sides.iter().zip([&small, &large]) {
        for s in summaries {
            let conns = args.connections.max(1).min(s.concurrency);
            println!(
                "{}",
                report::row(s.scenario, side.name, s.concurrency, conns, &s.accessd)
            );
        }
    }

    for side in &mut sides {
        println!();
        restart(side, &binary, &scratch, &args).await?;
    }

    let (small_side, large_side) = match sides.as_slice() {
        [small, large] => (small, large),
        _ => return Err("the scale run lost a data set".into()),
    };
    let targets = report::scale_targets(
        &small,
        &large,
        &ScaleLarge {
            small_grants: small_side.grants,
            grants: large_side.grants,
            resident_restarted: large_side.resident_restarted,
            resident_loaded: large_side.resident_loaded,
            serving: large_side.serving_again,
        },
    );
    println!();
    println!("the scale target of issue 4, as this run measured it:");
    for line in targets {
        println!("  {line}");
    }
    match problems {
        (0, 0) => Ok(()),
        (errors, wrong) => Err(format!(
            "{errors} calls failed and {wrong} answers were wrong"
        )),
    }
}

/// Starts accessd on `side`'s data directory, on every core, and waits for SERVING.
async fn start(
    binary: &std::path::Path,
    side: &Side,
    scratch: &ScratchDir,
    args: &ScaleArgs,
    what: &str,
) -> Result<ServerProcess, String> {
    let log = scratch.path().join(format!("{}-{what}.log", side.name));
    let mut server =
        ServerProcess::start_accessd(binary, &side.data_dir, None, &log, &args.accessd_arg)?;
    let took = server.wait_serving(args.start_timeout).await?;
    println!(
        "{} accessd ({what}): pid {} on {}, SERVING {:.0} ms after the process started, {} resident",
        side.name,
        server.pid,
        server.addr,
        took.as_secs_f64() * 1000.0,
        server.rss_bytes().map_or("?".into(), report::mib),
    );
    Ok(server)
}

/// Stops `side`'s accessd with SIGTERM, starts it again on the same data, and times it
/// to SERVING; then verifies every check again and reads its memory.
async fn restart(
    side: &mut Side,
    binary: &std::path::Path,
    scratch: &ScratchDir,
    args: &ScaleArgs,
) -> Result<(), String> {
    // Close the connections first, so that the server has no call to drain.
    side.channels.clear();
    let Some(server) = side.server.take() else {
        return Ok(());
    };
    let before = (server.rss_bytes(), server.peak_rss_bytes());
    let stopping = Instant::now();
    server.stop(STOP_TIMEOUT).await?;
    println!(
        "{} accessd: stopped {:.0} ms after SIGTERM; it held {} resident, {} at most; its \
         data directory holds {}",
        side.name,
        stopping.elapsed().as_secs_f64() * 1000.0,
        before.0.map_or("?".into(), report::mib),
        before.1.map_or("?".into(), report::mib),
        report::mib(process::dir_bytes(&side.data_dir)),
    );
    let started = Instant::now();
    let again = start(binary, side, scratch, args, "restart").await?;
    side.serving_again = Some(started.elapsed());
    let channels = connect(again.addr, args.connections.max(1)).await?;
    verify(side, &channels).await?;
    drop(channels);
    let resident = again.rss_bytes();
    side.resident_restarted = resident;
    println!(
        "{} memory after the restart and the verification: {} resident, {} at most (VmHWM)",
        side.name,
        resident.map_or("?".into(), report::mib),
        again.peak_rss_bytes().map_or("?".into(), report::mib),
    );
    again.stop(STOP_TIMEOUT).await
}

/// Asks every check of `side` once and fails unless each got its expected answer.
async fn verify(side: &Side, channels: &[Channel]) -> Result<(), String> {
    let started = Instant::now();
    let config = DriveConfig {
        concurrency: VERIFY_CONCURRENCY,
        warmup: Duration::ZERO,
        duration: VERIFY_TIMEOUT,
        max_calls: side.cases.len() as u64,
        verify: true,
        server_pid: None,
        traceparent: false,
    };
    let outcome = drive(channels, &Workload::Check(Arc::clone(&side.cases)), &config).await?;
    if outcome.errors > 0 || outcome.mismatches > 0 || outcome.calls < config.max_calls {
        return Err(format!(
            "verifying the {} data set: {} of {} checks answered, {} failed, {} wrong; first: {}",
            side.name,
            outcome.calls,
            side.cases.len(),
            outcome.errors,
            outcome.mismatches,
            outcome.first_problem.as_deref().unwrap_or("none"),
        ));
    }
    println!(
        "{} verified: all {} checks answered as the data set says ({:.1} s)",
        side.name,
        side.cases.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
