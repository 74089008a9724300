//! Disk-full sequences: the data directory on a small tmpfs, filled by the workload
//! (a ballast file takes most of it first), then either healed in place by freeing
//! space, or stopped, started while still full, and started again once space is back.
//! Skipped, saying why, where the machine refuses to mount a tmpfs.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use accessd::proto;
use tonic::{Code, Status};

use crate::{
    model::Workspace,
    process::{START_BOUND, Server},
    report,
    rng::Rng,
    setting, thousands,
    tmpfs::{Ballast, Tmpfs},
    verify::verify,
    workload::{self, Lane},
};

/// What a write refused for want of space must say.
const NO_SPACE: &str = "no space left on the data volume";

/// What the verifications made while the volume is full are called.
const FULL: &str = "full";

/// How long writes may stay refused once space is back: a bound, not a timing.
const HEAL_BOUND: Duration = Duration::from_secs(30);

/// What the workload is doing when the volume fills, so that it fills in different
/// places: between small writes' log appends and flushes, or inside large imports.
#[derive(Clone, Copy, Debug)]
enum Mix {
    SmallWrites,
    Imports,
    Both,
}

/// What one sequence found, for the summary.
#[derive(Default)]
struct Sequence {
    started_while_full: bool,
    refused_to_start: bool,
    refused_writes: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_volume_costs_no_acknowledged_write_and_heals() {
    let sequences = setting("ACCESSD_FAULT_DISK_FULL", 5);
    let seed = crate::seed("disk-full");
    let mut rng = Rng::new(seed);
    let mut lanes_total = Vec::new();
    // Every sequence runs, each on a volume of its own, so that one report shows them all.
    let mut all_failures = Vec::new();
    let (mut healed, mut restarted, mut started_full, mut refused_start, mut refused) =
        (0, 0, 0, 0, 0);
    for number in 1..=sequences {
        let tmpfs = match Tmpfs::mount(64) {
            Ok(tmpfs) => tmpfs,
            Err(reason) => {
                report(&format!("faults: disk-full: skipped: {reason}"));
                return;
            }
        };
        let mix = [Mix::SmallWrites, Mix::Imports, Mix::Both][rng.below(3)];
        let leave = rng.between(64 << 10, 6 << 20) as u64;
        let heal_in_place = number % 2 == 1;
        let sigterm = (number / 2) % 2 == 1;
        let context = format!(
            "seed {seed}, sequence {number} ({mix:?}, {leave} bytes left, {})",
            if heal_in_place {
                "heal in place".to_owned()
            } else {
                format!(
                    "restart after {}",
                    if sigterm { "SIGTERM" } else { "SIGKILL" }
                )
            }
        );
        let mut failures = Vec::new();
        let lanes = workload::lanes(rng.next_u64(), writers(mix), importer(mix));
        let (lanes, found) = if heal_in_place {
            healed += 1;
            heal_in_place_sequence(&tmpfs, lanes, leave, &mut failures).await
        } else {
            restarted += 1;
            restart_sequence(&tmpfs, lanes, leave, sigterm, &mut failures).await
        };
        all_failures.extend(failures.into_iter().map(|f| format!("{context}: {f}")));
        started_full += u64::from(found.started_while_full);
        refused_start += u64::from(found.refused_to_start);
        refused += found.refused_writes;
        lanes_total.extend(lanes);
    }
    let totals = workload::Totals::of(&lanes_total);
    report(&format!(
        "faults: disk-full: {sequences} sequences ({healed} healed in place, {restarted} \
         restarted: {started_full} started while full, {refused_start} refused to), {} writes \
         acknowledged ({} imports of {} records), {refused} refused for want of space, \
         lost or wrong {}, seed {seed}",
        thousands(totals.acknowledged),
        thousands(totals.imports),
        thousands(totals.records),
        all_failures.len(),
    ));
    assert!(all_failures.is_empty(), "{}", all_failures.join("\n"));
}

fn writers(mix: Mix) -> usize {
    match mix {
        Mix::SmallWrites => 3,
        Mix::Imports => 0,
        Mix::Both => 2,
    }
}

fn importer(mix: Mix) -> Option<usize> {
    match mix {
        Mix::SmallWrites => None,
        Mix::Imports => Some(30_000),
        Mix::Both => Some(8_000),
    }
}

/// Starts a server on the tmpfs, writes for a moment, then fills the volume with the
/// ballast but `leave` bytes and writes until every lane is refused.
async fn fill(
    tmpfs: &Tmpfs,
    lanes: Vec<Lane>,
    leave: u64,
    failures: &mut Vec<String>,
) -> (Server, Vec<Lane>, Ballast, u64) {
    let data = tmpfs.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = Server::start(&data, &[]).await;
    let lanes = run_for(&server, lanes, Duration::from_millis(300), failures).await;
    let ballast = Ballast::fill(&tmpfs.path().join("ballast"), leave);
    // Until every lane is refused: the bound is only a safety net.
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    let bound = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(300)).await;
        stopper.store(true, Ordering::SeqCst);
    });
    let ended = workload::run(lanes, &server.channel, &stop).await;
    bound.abort();
    let mut refused = 0;
    let mut lanes = Vec::new();
    for (lane, status) in ended {
        match status {
            None => failures.push(format!(
                "{}: never refused: the volume did not fill",
                lane.name
            )),
            Some(status) => {
                refused += 1;
                if let Some(failure) = not_for_want_of_space(&status) {
                    failures.push(format!("{}: {failure}", lane.name));
                }
            }
        }
        lanes.push(lane);
    }
    (server, lanes, ballast, refused)
}

/// What is wrong with `status` as the refusal of a write for want of space.
fn not_for_want_of_space(status: &Status) -> Option<String> {
    let code_ok = matches!(status.code(), Code::ResourceExhausted | Code::Unavailable);
    if code_ok && status.message().contains(NO_SPACE) {
        return None;
    }
    Some(format!(
        "a write refused with the volume full answered {:?} \"{}\", not RESOURCE_EXHAUSTED \
         or UNAVAILABLE saying \"{NO_SPACE}\"",
        status.code(),
        status.message()
    ))
}

/// Runs the lanes against `server` for `time`; every write must be acknowledged.
async fn run_for(
    server: &Server,
    lanes: Vec<Lane>,
    time: Duration,
    failures: &mut Vec<String>,
) -> Vec<Lane> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    tokio::spawn(async move {
        tokio::time::sleep(time).await;
        stopper.store(true, Ordering::SeqCst);
    });
    let ended = workload::run(lanes, &server.channel, &stop).await;
    ended
        .into_iter()
        .map(|(lane, status)| {
            if let Some(status) = status {
                failures.push(format!(
                    "{}: a write was refused with room on the volume: {status:?}",
                    lane.name
                ));
            }
            lane
        })
        .collect()
}

/// Verifies `server`, adding what it finds wrong to `failures`; the server's revision.
async fn check_all(
    server: &Server,
    lanes: &mut [Lane],
    others: &BTreeMap<String, Option<Workspace>>,
    floor: u64,
    when: &str,
    failures: &mut Vec<String>,
) -> u64 {
    let verified = verify(server, lanes, others, floor, when == FULL).await;
    failures.extend(
        verified
            .failures
            .into_iter()
            .map(|f| format!("{when}: {f}")),
    );
    verified.revision
}

/// (a): with the volume full, writes are refused and say why, AdminService is
/// NOT_SERVING while AccessService serves; once the ballast goes, writes are taken
/// again without a restart, and what was refused was not applied.
async fn heal_in_place_sequence(
    tmpfs: &Tmpfs,
    lanes: Vec<Lane>,
    leave: u64,
    failures: &mut Vec<String>,
) -> (Vec<Lane>, Sequence) {
    let (mut server, mut lanes, ballast, refused_writes) =
        fill(tmpfs, lanes, leave, failures).await;
    for lane in &mut lanes {
        lane.refused();
    }
    let mut others = BTreeMap::new();
    if server.serving("accessd.v1.AdminService").await {
        failures.push("full: health says accessd.v1.AdminService SERVING".into());
    }
    if !server.serving("accessd.v1.AccessService").await {
        failures.push("full: health says accessd.v1.AccessService not SERVING".into());
    }
    let floor = check_all(&server, &mut lanes, &others, 0, FULL, failures).await;
    ballast.remove();
    match heal(&server, &mut others).await {
        Ok(()) => {}
        Err(failure) => failures.push(failure),
    }
    let floor = check_all(&server, &mut lanes, &others, floor, "healed", failures).await;
    let lanes = run_for(&server, lanes, Duration::from_millis(300), failures).await;
    let mut lanes = lanes;
    let floor = check_all(
        &server,
        &mut lanes,
        &others,
        floor,
        "written after healing",
        failures,
    )
    .await;
    if server.terminate(Duration::from_secs(60)).await.is_none() {
        failures.push("healed: did not exit within 60 s of SIGTERM".into());
    }
    let server = Server::start(&server.data_dir.clone(), &[]).await;
    check_all(
        &server,
        &mut lanes,
        &others,
        floor,
        "healed and restarted",
        failures,
    )
    .await;
    let sequence = Sequence {
        refused_writes,
        ..Sequence::default()
    };
    (lanes, sequence)
}

/// Probes with new workspaces until one is acknowledged (recorded in `others`, the
/// refused ones as absent) and AdminService's health is SERVING again, at most
/// [`HEAL_BOUND`].
async fn heal(
    server: &Server,
    others: &mut BTreeMap<String, Option<Workspace>>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last = None;
    for probe in 0.. {
        if started.elapsed() > HEAL_BOUND {
            return Err(format!(
                "writes still refused {HEAL_BOUND:?} after space came back: {last:?}"
            ));
        }
        let ws = format!("probe-{probe}");
        let answer = server
            .admin()
            .create_workspace(proto::CreateWorkspaceRequest {
                workspace_id: ws.clone(),
                owner_user_id: "owner".into(),
                products: vec![],
            })
            .await;
        match answer {
            Ok(_) => {
                let mut created = Workspace::default();
                created.members.insert("owner".into(), true);
                others.insert(ws, Some(created));
                break;
            }
            Err(status) => {
                others.insert(ws, None);
                last = Some(status);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while !server.serving("accessd.v1.AdminService").await {
        if started.elapsed() > HEAL_BOUND {
            return Err(format!(
                "accessd.v1.AdminService still not SERVING {HEAL_BOUND:?} after space came back"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// (b): with the volume full, the server is stopped, started while still full (which
/// may fail, with a message, but not hang), and started again once the ballast is gone:
/// it must open, with every acknowledged write.
async fn restart_sequence(
    tmpfs: &Tmpfs,
    lanes: Vec<Lane>,
    leave: u64,
    sigterm: bool,
    failures: &mut Vec<String>,
) -> (Vec<Lane>, Sequence) {
    let (mut server, mut lanes, ballast, refused_writes) =
        fill(tmpfs, lanes, leave, failures).await;
    let data = server.data_dir.clone();
    let others = BTreeMap::new();
    if sigterm {
        if server.terminate(Duration::from_secs(60)).await.is_none() {
            failures.push("full: did not exit within 60 s of SIGTERM".into());
        }
    } else {
        server.kill();
    }
    drop(server);
    let mut sequence = Sequence {
        refused_writes,
        ..Sequence::default()
    };
    let floor = match Server::try_start(&data, &[], Duration::from_secs(60)).await {
        Ok(mut server) => {
            sequence.started_while_full = true;
            let floor = check_all(
                &server,
                &mut lanes,
                &others,
                0,
                "started while full",
                failures,
            )
            .await;
            server.kill();
            floor
        }
        Err(failure) => {
            sequence.refused_to_start = true;
            failures.extend(start_failure_problem(&failure));
            0
        }
    };
    ballast.remove();
    let server = match Server::try_start(&data, &[], START_BOUND).await {
        Ok(server) => server,
        Err(failure) => {
            failures.push(format!(
                "space back: the database did not open ({:?}):\n{}",
                failure.status,
                tail(&failure.logs)
            ));
            return (lanes, sequence);
        }
    };
    let floor = check_all(
        &server,
        &mut lanes,
        &others,
        floor,
        "space back, restarted",
        failures,
    )
    .await;
    let mut lanes = run_for(&server, lanes, Duration::from_millis(300), failures).await;
    check_all(
        &server,
        &mut lanes,
        &others,
        floor,
        "written after the restart",
        failures,
    )
    .await;
    (lanes, sequence)
}

/// What is wrong with how a start on a full volume failed: it must exit, non-zero,
/// saying why.
fn start_failure_problem(failure: &crate::process::StartFailure) -> Option<String> {
    let Some(status) = failure.status else {
        return Some(format!(
            "started while full: neither serving nor exited after 60 s:\n{}",
            tail(&failure.logs)
        ));
    };
    let said = failure
        .logs
        .iter()
        .any(|line| line.starts_with("accessd: "));
    if status.success() || !said {
        return Some(format!(
            "started while full: exited ({status}) without an error message:\n{}",
            tail(&failure.logs)
        ));
    }
    None
}

/// The last lines a process logged.
fn tail(logs: &[String]) -> String {
    logs[logs.len().saturating_sub(10)..].join("\n")
}
