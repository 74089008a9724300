//! `accessd-bench soak`: a long mixed load against one accessd (started here on a fresh
//! data directory, or found at `--addr`) with its resident memory read at a steady
//! interval. Checks and BatchChecks, lists and lookups, churning writes of every kind,
//! Imports and Exports, and requests that must fail, each paced at its own rate; the data
//! stays the same size, so memory has a steady state to reach. It fails on growth past
//! `--max-growth` after the warm-up, and on any call that went otherwise than asked.

pub mod calls;
pub mod lanes;
pub mod memory;
pub mod report;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::time::Instant as TokioInstant;

use self::{
    calls::Context,
    lanes::{Lane, LaneKind},
    report::{DataSet, Memory, Server, SoakReport},
};
use crate::{
    args::{Format, SoakArgs},
    dataset::{Dataset, Sizes},
    load::{IMPORT_CHUNK, LoadMethod, load},
    mix,
    process::{ScratchDir, ServerProcess, connect},
    report::mib,
    run::{MAX_BATCH_CHECKS, accessd_binary},
};

/// Grants to members kept aside, churned in turn: each is granted and revoked again
/// about every `GRANT_POOL / write rate` seconds.
const GRANT_POOL: usize = 2_000;
/// Checks one Check caller is paced at, at most: enough callers that a slow answer does
/// not lower the rate.
const CHECKS_PER_CALLER: u32 = 250;
/// The most callers of one lane.
const MAX_CALLERS: u32 = 16;
/// Callers of each list, lookup and churn lane.
const FEW_CALLERS: usize = 2;
/// How long the started accessd may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a line of progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Runs the soak, prints its report as `--format` says, and fails if the soak did.
pub async fn soak(args: SoakArgs, machine: &str) -> Result<(), String> {
    let report = run(&args, machine).await?;
    match args.format {
        Format::Text => {
            for line in report.lines() {
                println!("{line}");
            }
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| format!("json: {e}"))?
        ),
    }
    if report.passed {
        Ok(())
    } else {
        Err(format!("the soak failed: {}", report.failures.join("; ")))
    }
}

/// Runs the soak and returns its report, judged; fails only when it could not be run.
pub async fn run(args: &SoakArgs, machine: &str) -> Result<SoakReport, String> {
    let warmup = args.warmup.unwrap_or(args.duration / 5);
    if warmup >= args.duration {
        return Err(format!(
            "the warm-up ({warmup:?}) must be shorter than the duration ({:?})",
            args.duration
        ));
    }
    if args.batch_size == 0 || args.batch_size > MAX_BATCH_CHECKS {
        return Err(format!(
            "--batch-size must be 1 to {MAX_BATCH_CHECKS}, not {}",
            args.batch_size
        ));
    }
    let scratch = match &args.scratch {
        Some(parent) => ScratchDir::new_in(parent)?,
        None => ScratchDir::new()?,
    };
    let (started, addr, pid) = match (args.addr, args.pid) {
        (Some(addr), Some(pid)) => (None, addr, pid),
        _ => {
            let binary = accessd_binary(args.accessd.as_deref())?;
            let mut server = ServerProcess::start_accessd(
                &binary,
                &scratch.path().join("data"),
                None,
                &scratch.path().join("accessd.log"),
                &args.accessd_arg,
            )?;
            server.wait_serving(args.start_timeout).await?;
            let (addr, pid) = (server.addr, server.pid);
            (Some(server), addr, pid)
        }
    };
    let progress = args.format == Format::Text;
    if progress {
        eprintln!("soak: accessd pid {pid} on {addr}; deriving and importing the data set");
    }

    let data = Dataset::generate(
        args.seed,
        Sizes {
            workspaces: args.workspaces,
            members: args.members,
            sources: args.sources,
            grant_pool: GRANT_POOL,
        },
    );
    let counts = data.counts();
    let channels = connect(addr, args.connections).await?;
    let loading = Instant::now();
    let method = LoadMethod::Import {
        chunk: IMPORT_CHUNK,
    };
    load(method, &channels, &data)
        .await
        .map_err(|e| format!("loading the data set: {e}"))?;
    let load_seconds = loading.elapsed().as_secs_f64();

    let cases = mix::checks(&data, args.requests);
    let context = Arc::new(Context {
        batches: mix::batches(&cases, args.batch_size),
        cases,
        grants: data.grant_pool(),
        nonce: nonce(),
        import_workspaces: args.import_workspaces,
        records: u64::try_from(counts.records()).unwrap_or(u64::MAX),
        data,
    });
    let lanes = plan(args);
    if progress {
        eprintln!(
            "soak: {} records imported in {load_seconds:.1} s; mixed load for {:?}, warm-up {warmup:?}",
            counts.records(),
            args.duration
        );
    }

    let start = TokioInstant::now();
    let end = start + args.duration;
    let mut running = tokio::task::JoinSet::new();
    for lane in &lanes {
        let (lane, context) = (Arc::clone(lane), Arc::clone(&context));
        let channels = channels.clone();
        running.spawn(async move { lanes::run(lane, context, &channels, start, end).await });
    }
    let tallies: Vec<Arc<lanes::Tally>> = lanes.iter().flat_map(|l| l.tallies.clone()).collect();
    let mut next_progress = PROGRESS_EVERY.as_secs_f64();
    let mut samples = memory::sample(pid, args.sample_every, start, end, |sample| {
        if progress && sample.seconds >= next_progress {
            next_progress += PROGRESS_EVERY.as_secs_f64();
            let (calls, unexpected) = tallies.iter().map(|t| t.read()).fold((0, 0), |sum, c| {
                (sum.0 + c.calls, sum.1 + c.unexpected_errors)
            });
            eprintln!(
                "soak: {:.0} s, VmRSS {}, {calls} calls, {unexpected} unexpected",
                sample.seconds,
                sample.bytes.map_or("unreadable".to_owned(), mib)
            );
        }
    })
    .await;
    while let Some(joined) = running.join_next().await {
        joined.map_err(|e| format!("a lane failed: {e}"))??;
    }
    // Read once more after the last calls were answered: the growth is judged on what
    // the load left, not only on what it held mid-call.
    samples.push(memory::take(pid, start));
    drop(channels);
    let started_here = started.is_some();
    if let Some(server) = started {
        server.stop(STOP_TIMEOUT).await?;
    }

    let mut report = SoakReport {
        passed: false,
        failures: Vec::new(),
        machine: machine.to_owned(),
        server: Server {
            pid,
            addr: addr.to_string(),
            started_here,
        },
        data_set: DataSet {
            seed: args.seed,
            workspaces: counts.workspaces,
            members: counts.members,
            writers: counts.writers,
            grants: counts.grants,
            instances: counts.instances,
            records: counts.records(),
            load_seconds,
        },
        duration_seconds: args.duration.as_secs_f64(),
        warmup_seconds: warmup.as_secs_f64(),
        memory: Memory {
            sample_every_seconds: args.sample_every.as_secs_f64(),
            max_growth_percent: args.max_growth,
            growth: memory::growth(&samples, warmup),
            samples,
        },
        calls: tallies.iter().map(|t| t.read()).collect(),
        expected_errors: 0,
        unexpected_errors: 0,
    };
    report.judge();
    Ok(report)
}

/// The lanes `args` asks for: every kind whose rate is above zero.
fn plan(args: &SoakArgs) -> Vec<Arc<Lane>> {
    let check_callers = (args.check_rate / CHECKS_PER_CALLER).clamp(1, MAX_CALLERS);
    let batch_callers = (args.batch_rate / 10).clamp(1, 4);
    let paced = [
        (LaneKind::Check, args.check_rate, check_callers as usize),
        (LaneKind::Batch, args.batch_rate, batch_callers as usize),
        (LaneKind::ListAccess, args.read_rate, FEW_CALLERS),
        (LaneKind::LookupResources, args.read_rate, FEW_CALLERS),
        (LaneKind::LookupSubjects, args.read_rate, FEW_CALLERS),
        (LaneKind::GrantChurn, args.write_rate, FEW_CALLERS),
        (LaneKind::MembershipChurn, args.write_rate, FEW_CALLERS),
        (LaneKind::ResourceChurn, args.write_rate, FEW_CALLERS),
    ];
    let mut lanes: Vec<Lane> = paced
        .into_iter()
        .filter_map(|(kind, rate, callers)| Lane::at_rate(kind, rate, callers))
        .collect();
    lanes.push(Lane::every(LaneKind::Import, args.bulk_every, 1));
    lanes.push(Lane::every(LaneKind::Export, args.bulk_every, 1));
    lanes.push(Lane::every(LaneKind::Invalid, args.invalid_every, 1));
    lanes.into_iter().map(Arc::new).collect()
}

/// A number that differs from one run to the next, for the names this run churns.
fn nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
