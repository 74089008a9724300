//! One bench run: derive the data set and the requests, start the floor and accessd,
//! load the data set, drive every scenario against the floor then accessd back to back,
//! print the figures, and time a restart of accessd.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use tonic::transport::Channel;

use crate::{
    address::Address,
    args::{LoadWith, RunArgs, Scenario, Transport},
    catalog::PERMISSIONS,
    dataset::{Dataset, Sizes},
    driver::{DriveConfig, GrantPool, Workload, drive},
    floor,
    load::{LoadMethod, load},
    mix::{self, BatchCase, CheckCase},
    process::{ScratchDir, ServerProcess, connect},
    report::{self, Figures, Summary},
};

/// Which cores the load generator and the server were pinned to.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    /// The load generator's core.
    pub client_core: usize,
    /// The server's core (accessd and the floor alike).
    pub server_core: usize,
}

/// The most checks one BatchCheck may carry: accessd's limit (`MAX_BATCH_CHECKS` of its
/// `api` module), above which it refuses the call.
pub const MAX_BATCH_CHECKS: usize = 1000;

/// How long a server may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the whole bench; fails if any call failed or any answer was wrong.
pub async fn run(args: RunArgs, machine: &str, pinning: Option<Pinning>) -> Result<(), String> {
    println!("machine: {machine}");
    let servers = match args.addr {
        Some(_) => "the floor (accessd at --addr is not started, so not pinned, by this run)",
        None => "accessd and the floor",
    };
    match pinning {
        Some(p) => println!(
            "pinned: load generator to core {} (taskset -a -p -c {}), {servers} to core {} \
             (taskset -c {})",
            p.client_core, p.client_core, p.server_core, p.server_core
        ),
        None => println!("pinned: nothing (fewer than two cores, no taskset, or --no-pin)"),
    }

    let data = Dataset::generate(
        args.seed,
        Sizes {
            workspaces: args.workspaces,
            members: args.members,
            sources: args.sources,
            grant_pool: if args.scenarios.contains(&Scenario::Grant) {
                args.grant_pool
            } else {
                0
            },
        },
    );
    let cases: Arc<[CheckCase]> = mix::checks(&data, args.requests).into();
    let batch_size = args.batch_size.clamp(1, MAX_BATCH_CHECKS);
    let batches: Arc<[BatchCase]> = mix::batches(&cases, batch_size).into();
    let pool = Arc::new(GrantPool::new(data.grant_pool()));
    let counts = data.counts();
    println!(
        "data set (seed {}): {} workspaces ({} with protocols, {} with personas), {} owners, \
         {} members holding {} grants ({} all-scope), {} writer members, {} instances",
        args.seed,
        counts.workspaces,
        counts.with_protocols,
        counts.with_personas,
        counts.owners,
        counts.members,
        counts.grants,
        counts.all_scope_grants,
        counts.writers,
        counts.instances,
    );
    let allowed = cases.iter().filter(|c| c.allowed).count();
    println!(
        "requests: {} distinct checks over {} permissions, {:.1}% allowed; batches of {batch_size}; \
         {} new grants for the Grant scenario",
        cases.len(),
        PERMISSIONS.len(),
        100.0 * allowed as f64 / cases.len().max(1) as f64,
        data.grant_pool().len(),
    );

    let scratch = ScratchDir::new()?;
    let server_core = pinning.map(|p| p.server_core);
    let transports: Vec<Transport> = match &args.addr {
        Some(addr) => vec![addr.transport()],
        None => dedup(&args.transport),
    };
    let unix = transports.contains(&Transport::Unix);
    let drives_floor = !args.no_floor && args.scenarios.iter().any(|s| *s != Scenario::Grant);
    let floor_socket = scratch.path().join("floor.sock");
    let floor = if drives_floor {
        let lifetime = floor::lifetime_for(planned_time(&args));
        let socket = unix.then_some(floor_socket.as_path());
        let floor = ServerProcess::start_floor(server_core, lifetime, socket).await?;
        println!("floor: pid {} on {}", floor.pid, floor.addr);
        Some(floor)
    } else {
        None
    };
    let accessd_socket = scratch.path().join("accessd.sock");
    let mut accessd = match args.addr {
        Some(_) => None,
        None => {
            let binary = accessd_binary(args.accessd.as_deref())?;
            let mut extra = args.accessd_arg.clone();
            if unix {
                extra.push("--listen".to_owned());
                extra.push(format!("unix:{}", accessd_socket.display()));
            }
            let mut server = ServerProcess::start_accessd(
                &binary,
                &scratch.path().join("data"),
                server_core,
                &scratch.path().join("accessd.log"),
                &extra,
            )?;
            let took = server.wait_serving(args.start_timeout).await?;
            println!(
                "accessd: pid {} on {}{} ({}), serving after {:.0} ms",
                server.pid,
                server.addr,
                if unix { " and its Unix socket" } else { "" },
                binary.display(),
                took.as_secs_f64() * 1000.0
            );
            Some(server)
        }
    };
    let accessd_pid = accessd.as_ref().map(|s| s.pid);
    let connections = args.connections.max(1);
    // Each transport's channels to accessd and to the floor.
    let mut sides = Vec::with_capacity(transports.len());
    for &transport in &transports {
        let accessd_addr = match (&accessd, &args.addr, transport) {
            (_, Some(addr), _) => addr.clone(),
            (Some(server), None, Transport::Tcp) => Address::Tcp(server.addr),
            (Some(_), None, Transport::Unix) => Address::Unix(accessd_socket.clone()),
            (None, None, _) => return Err("no accessd to drive".into()),
        };
        let floor_addr = match transport {
            Transport::Tcp => floor.as_ref().map(|f| Address::Tcp(f.addr)),
            Transport::Unix => floor.as_ref().map(|_| Address::Unix(floor_socket.clone())),
        };
        sides.push(Side {
            transport,
            accessd: connect(accessd_addr, connections).await?,
            floor: match floor_addr {
                Some(addr) => Some(connect(addr, connections).await?),
                None => None,
            },
        });
    }
    let accessd_channels = sides
        .first()
        .map(|side| side.accessd.clone())
        .ok_or("no transport to drive")?;
    // Rows name their transport when there are several.
    let label = |server: &str, transport: Transport| {
        if sides.len() > 1 {
            format!("{server} {}", transport.name())
        } else {
            server.to_owned()
        }
    };

    if args.skip_load {
        println!("load: skipped (--skip-load)");
    } else {
        let method = LoadMethod::choose(
            args.load_with.map(LoadWith::is_import),
            counts.grants,
            args.load_concurrency,
        );
        let loaded = load(method, &accessd_channels, &data).await.map_err(|e| {
            match &args.addr {
                Some(addr) => format!(
                    "loading into {addr}: {e} (if it already holds this data set, pass --skip-load)"
                ),
                None => format!("loading: {e}"),
            }
        })?;
        println!("load: {}", report::loaded(method, &loaded, counts.grants));
    }
    if let Some(rss) = accessd.as_ref().and_then(ServerProcess::rss_bytes) {
        println!(
            "accessd memory after loading: {} resident",
            report::mib(rss)
        );
    }

    println!();
    println!("{}", report::header());
    let mut runs: BTreeMap<RunKey, (Vec<Figures>, Vec<Figures>)> = BTreeMap::new();
    let mut problems = (0, 0);
    // Rounds innermost but for the transports: the Grant scenario, which grows the data,
    // runs after every round of the others, and each round's floor and accessd runs on
    // each transport are seconds apart.
    for &scenario in &args.scenarios {
        for &concurrency in &args.concurrency {
            for _round in 0..args.rounds.max(1) {
                for side in &sides {
                    let concurrency = concurrency.max(1);
                    let conns = connections.min(concurrency);
                    let workload = match scenario {
                        Scenario::Check => Workload::Check(Arc::clone(&cases)),
                        Scenario::Batch => Workload::Batch(Arc::clone(&batches)),
                        Scenario::Grant => Workload::Grant(Arc::clone(&pool)),
                    };
                    let config = DriveConfig {
                        concurrency,
                        warmup: args.warmup,
                        duration: args.duration,
                        max_calls: args.max_requests,
                        verify: false,
                        server_pid: floor.as_ref().map(|f| f.pid),
                        traceparent: args.traceparent,
                    };
                    let entry = runs
                        .entry((scenario, concurrency, side.transport))
                        .or_default();
                    let mut floor_figures = None;
                    if let (Some(channels), true) = (&side.floor, scenario != Scenario::Grant) {
                        let outcome = drive(first(channels, conns), &workload, &config).await?;
                        let figures = Figures::of(&outcome);
                        let server = label("floor", side.transport);
                        println!(
                            "{}",
                            report::row(scenario, &server, concurrency, conns, &figures)
                        );
                        problem_note(&outcome, &mut problems);
                        entry.0.push(figures);
                        floor_figures = Some(figures);
                    }
                    let config = DriveConfig {
                        verify: true,
                        server_pid: accessd_pid,
                        ..config
                    };
                    let outcome = drive(first(&side.accessd, conns), &workload, &config).await?;
                    let figures = Figures::of(&outcome);
                    let server = label("accessd", side.transport);
                    println!(
                        "{}",
                        report::row(scenario, &server, concurrency, conns, &figures)
                    );
                    problem_note(&outcome, &mut problems);
                    if outcome.exhausted {
                        println!(
                            "{:>24} the grant pool ran out ({} written); raise --grant-pool",
                            "",
                            pool.taken()
                        );
                    }
                    if let Some(floor) = floor_figures {
                        println!("{}", report::versus_floor(&floor, &figures));
                    }
                    entry.1.push(figures);
                }
            }
        }
    }

    let medians: Vec<(Transport, Summary)> = runs
        .iter()
        .map(|(&(scenario, concurrency, transport), (floor, accessd))| {
            let summary = Summary {
                scenario,
                concurrency,
                floor: (!floor.is_empty()).then(|| Figures::median(floor)),
                accessd: Figures::median(accessd),
            };
            (transport, summary)
        })
        .collect();
    if args.rounds > 1 || sides.len() > 1 {
        println!();
        println!("medians over {} rounds:", args.rounds.max(1));
        println!("{}", report::header());
        for (transport, s) in &medians {
            let conns = connections.min(s.concurrency);
            if let Some(floor) = &s.floor {
                let server = label("floor", *transport);
                println!(
                    "{}",
                    report::row(s.scenario, &server, s.concurrency, conns, floor)
                );
            }
            let server = label("accessd", *transport);
            println!(
                "{}",
                report::row(s.scenario, &server, s.concurrency, conns, &s.accessd)
            );
            if let Some(floor) = &s.floor {
                println!("{}", report::versus_floor(floor, &s.accessd));
            }
        }
        for (transport, unix) in &medians {
            let tcp = medians.iter().find(|(other, s)| {
                *other == Transport::Tcp
                    && s.scenario == unix.scenario
                    && s.concurrency == unix.concurrency
            });
            if let (Transport::Unix, Some((_, tcp))) = (transport, tcp) {
                println!(
                    "{} {:>4} {}",
                    unix.scenario.name(),
                    unix.concurrency,
                    report::versus("unix/tcp", "accessd", &tcp.accessd, &unix.accessd)
                );
                if let (Some(tcp_floor), Some(unix_floor)) = (&tcp.floor, &unix.floor) {
                    println!(
                        "{} {:>4} {}",
                        unix.scenario.name(),
                        unix.concurrency,
                        report::versus("unix/tcp", "floor", tcp_floor, unix_floor)
                    );
                }
            }
        }
    }
    // The targets are stated for TCP.
    let summaries: Vec<Summary> = medians
        .into_iter()
        .filter(|(transport, _)| {
            *transport == sides.first().map_or(Transport::Tcp, |s| s.transport)
        })
        .map(|(_, summary)| summary)
        .collect();
    let targets = report::targets(&summaries);
    if !targets.is_empty() {
        println!();
        println!("targets of issue 4 measured by this run:");
        for line in targets {
            println!("  {line}");
        }
    }

    if let Some(server) = accessd.take() {
        if args.no_restart {
            server.stop(STOP_TIMEOUT).await?;
        } else {
            let grants = counts.grants + pool.taken();
            restart(server, &scratch, &args, server_core, grants).await?;
        }
    }
    if let Some(floor) = floor {
        floor.stop(STOP_TIMEOUT).await?;
    }
    match problems {
        (0, 0) => Ok(()),
        (errors, wrong) => Err(format!(
            "{errors} calls failed and {wrong} answers were wrong"
        )),
    }
}

/// Stops accessd and starts it again on the same data: how long until SERVING, and
/// how much memory it then holds.
async fn restart(
    server: ServerProcess,
    scratch: &ScratchDir,
    args: &RunArgs,
    core: Option<usize>,
    grants: usize,
) -> Result<(), String> {
    let before = server.rss_bytes();
    server.stop(STOP_TIMEOUT).await?;
    let binary = accessd_binary(args.accessd.as_deref())?;
    let started = Instant::now();
    let mut again = ServerProcess::start_accessd(
        &binary,
        &scratch.path().join("data"),
        core,
        &scratch.path().join("accessd-restart.log"),
        &args.accessd_arg,
    )?;
    again.wait_serving(args.start_timeout).await?;
    let took = started.elapsed();
    println!();
    println!(
        "restart with {grants} grants: SERVING {:.0} ms after start (process start, store \
         load, bind); resident {} after restart, {} before it",
        took.as_secs_f64() * 1000.0,
        again.rss_bytes().map_or("?".into(), report::mib),
        before.map_or("?".into(), report::mib),
    );
    again.stop(STOP_TIMEOUT).await
}

/// What a run's figures are gathered under: its scenario, concurrency and transport.
type RunKey = (Scenario, usize, Transport);

/// The channels to accessd and to the floor over one transport.
struct Side {
    transport: Transport,
    accessd: Vec<Channel>,
    floor: Option<Vec<Channel>>,
}

/// `transports` in the order given, each once.
fn dedup(transports: &[Transport]) -> Vec<Transport> {
    let mut unique: Vec<Transport> = Vec::with_capacity(transports.len());
    for transport in transports {
        if !unique.contains(transport) {
            unique.push(*transport);
        }
    }
    unique
}

/// The first `count` connections (all of them if there are fewer).
pub fn first(channels: &[Channel], count: usize) -> &[Channel] {
    channels.get(..count).unwrap_or(channels)
}

/// Adds a run's failed calls and wrong answers to `problems`, printing the first.
pub fn problem_note(outcome: &crate::driver::Outcome, problems: &mut (u64, u64)) {
    problems.0 += outcome.errors;
    problems.1 += outcome.mismatches;
    if let Some(problem) = &outcome.first_problem {
        println!("{:>24} first problem: {problem}", "");
    }
}

/// The accessd binary to start: `--accessd`, or `accessd` beside this binary (which
/// `cargo build --release --bins` keeps as fresh as this one).
pub fn accessd_binary(accessd: Option<&Path>) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let binary = match accessd {
        Some(path) => path.to_owned(),
        None => me.with_file_name("accessd"),
    };
    if !binary.is_file() {
        return Err(format!(
            "no accessd binary at `{}`: build both with `cargo build --release --bins`, or pass --accessd",
            binary.display()
        ));
    }
    Ok(binary)
}

/// An upper bound of the run's duration, for the floor's lifetime.
fn planned_time(args: &RunArgs) -> Duration {
    let runs = args.rounds.max(1)
        * args.scenarios.len()
        * args.concurrency.len()
        * args.transport.len().max(1)
        * 2;
    let per_run = args.warmup + args.duration;
    per_run.saturating_mul(u32::try_from(runs).unwrap_or(u32::MAX)) + args.start_timeout
}
