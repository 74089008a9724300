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
    verify::Verifier,
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

/// One sequence's lanes, the workspaces written outside them, what it found wrong,
/// and what it saw, for the summary.
struct Sequence {
    lanes: Vec<Lane>,
    others: BTreeMap<String, Option<Workspace>>,
    verifier: Verifier,
    failures: Vec<String>,
    started_while_full: bool,
    refused_to_start: bool,
    refused_writes: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_volume_costs_no_acknowledged_write_and_heals() {
    let sequences = setting("ACCESSD_FAULT_DISK_FULL", 5);
    let seed = crate::seed("disk-full");
    let mut rng = Rng::new(seed);
    let mut lanes = Vec::new();
    // Every sequence runs, each on a volume of its own, so that one report shows them all.
    let mut failures = Vec::new();
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
        let variant = match (heal_in_place, sigterm) {
            (true, _) => "heal in place",
            (false, true) => "restart after SIGTERM",
            (false, false) => "restart after SIGKILL",
        };
        let context =
            format!("seed {seed}, sequence {number} ({mix:?}, {leave} bytes left, {variant})");
        let mut sequence = Sequence {
            lanes: workload::lanes(rng.next_u64(), writers(mix), importer(mix)),
            others: BTreeMap::new(),
            verifier: Verifier::default(),
            failures: Vec::new(),
            started_while_full: false,
            refused_to_start: false,
            refused_writes: 0,
        };
        let data = tmpfs.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let server = Server::start(&data, &[]).await;
        sequence
            .write_for(&server, Duration::from_millis(300))
            .await;
        let ballast = Ballast::fill(&tmpfs.path().join("ballast"), leave);
        sequence.write_until_full(&server).await;
        if heal_in_place {
            healed += 1;
            sequence.heal_in_place(server, ballast).await;
        } else {
            restarted += 1;
            sequence.restart(server, ballast, sigterm).await;
        }
        failures.extend(sequence.failures.iter().map(|f| format!("{context}: {f}")));
        started_full += u64::from(sequence.started_while_full);
        refused_start += u64::from(sequence.refused_to_start);
        refused += sequence.refused_writes;
        lanes.extend(sequence.lanes);
    }
    let totals = workload::Totals::of(&lanes);
    report(&format!(
        "faults: disk-full: {sequences} sequences ({healed} healed in place, {restarted} \
         restarted: {started_full} started while full, {refused_start} refused to), {} writes \
         acknowledged ({} imports of {} records), {refused} refused while full, \
         lost or wrong {}, seed {seed}",
        thousands(totals.acknowledged),
        thousands(totals.imports),
        thousands(totals.records),
        failures.len(),
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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

impl Sequence {
    /// Runs the lanes against `server` for `time`; every write must be acknowledged.
    async fn write_for(&mut self, server: &Server, time: Duration) {
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = Arc::clone(&stop);
        tokio::spawn(async move {
            tokio::time::sleep(time).await;
            stopper.store(true, Ordering::SeqCst);
        });
        let lanes = std::mem::take(&mut self.lanes);
        for (lane, status) in workload::run(lanes, &server.channel, &stop).await {
            if let Some(status) = status {
                self.failures.push(format!(
                    "{}: a write was refused with room on the volume: {status:?}",
                    lane.name
                ));
            }
            self.lanes.push(lane);
        }
    }

    /// Runs the lanes until each is refused, which must be for want of space.
    async fn write_until_full(&mut self, server: &Server) {
        // The bound is only a safety net.
        let stop = Arc::new(AtomicBool::new(false));
        let stopper = Arc::clone(&stop);
        let bound = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(300)).await;
            stopper.store(true, Ordering::SeqCst);
        });
        let lanes = std::mem::take(&mut self.lanes);
        for (lane, status) in workload::run(lanes, &server.channel, &stop).await {
            match status {
                None => self.failures.push(format!(
                    "{}: never refused: the volume did not fill",
                    lane.name
                )),
                Some(status) => {
                    self.refused_writes += 1;
                    if let Some(failure) = not_for_want_of_space(&status) {
                        self.failures.push(format!("{}: {failure}", lane.name));
                    }
                }
            }
            self.lanes.push(lane);
        }
        bound.abort();
    }

    /// Verifies `server`, recording what it finds wrong `when`.
    async fn check(&mut self, server: &Server, when: &str) {
        let verified = self
            .verifier
            .verify(server, &mut self.lanes, &self.others, when == FULL)
            .await;
        let found = verified.failures.into_iter();
        self.failures.extend(found.map(|f| format!("{when}: {f}")));
    }

    /// (a): with the volume full, writes are refused and say why, AdminService is
    /// NOT_SERVING while AccessService serves; once the ballast goes, writes are taken
    /// again without a restart, and what was refused was not applied.
    async fn heal_in_place(&mut self, mut server: Server, ballast: Ballast) {
        for lane in &mut self.lanes {
            lane.refused();
        }
        if server.serving("accessd.v1.AdminService").await {
            self.failures
                .push("full: health says accessd.v1.AdminService SERVING".into());
        }
        if !server.serving("accessd.v1.AccessService").await {
            self.failures
                .push("full: health says accessd.v1.AccessService not SERVING".into());
        }
        self.check(&server, FULL).await;
        ballast.remove();
        if let Err(failure) = self.heal(&server).await {
            self.failures.push(failure);
        }
        self.check(&server, "healed").await;
        self.write_for(&server, Duration::from_millis(300)).await;
        self.check(&server, "written after healing").await;
        if server.terminate(Duration::from_secs(60)).await.is_none() {
            self.failures
                .push("healed: did not exit within 60 s of SIGTERM".into());
        }
        let server = Server::start(&server.data_dir.clone(), &[]).await;
        self.check(&server, "healed and restarted").await;
    }

    /// Probes with new workspaces until one is acknowledged (recorded in `others`, the
    /// refused ones as absent) and AdminService's health is SERVING again, at most
    /// [`HEAL_BOUND`].
    async fn heal(&mut self, server: &Server) -> Result<(), String> {
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
                    self.others.insert(ws, Some(created));
                    break;
                }
                Err(status) => {
                    self.others.insert(ws, None);
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
    /// may fail, with a message, but not hang), and started again once the ballast is
    /// gone: it must open, with every acknowledged write.
    async fn restart(&mut self, mut server: Server, ballast: Ballast, sigterm: bool) {
        let data = server.data_dir.clone();
        if sigterm {
            if server.terminate(Duration::from_secs(60)).await.is_none() {
                self.failures
                    .push("full: did not exit within 60 s of SIGTERM".into());
            }
        } else {
            server.kill();
        }
        drop(server);
        match Server::try_start(&data, &[], Duration::from_secs(60)).await {
            Ok(mut server) => {
                self.started_while_full = true;
                self.check(&server, "started while full").await;
                server.kill();
            }
            Err(failure) => {
                self.refused_to_start = true;
                self.failures.extend(start_failure_problem(&failure));
            }
        }
        ballast.remove();
        let server = match Server::try_start(&data, &[], START_BOUND).await {
            Ok(server) => server,
            Err(failure) => {
                self.failures.push(format!(
                    "space back: the database did not open ({:?}):\n{}",
                    failure.status,
                    tail(&failure.logs)
                ));
                return;
            }
        };
        self.check(&server, "space back, restarted").await;
        self.write_for(&server, Duration::from_millis(300)).await;
        self.check(&server, "written after the restart").await;
    }
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
