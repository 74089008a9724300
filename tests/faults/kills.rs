//! Kill cycles: writers of every kind and an importer against the real server, killed
//! with SIGKILL at a random moment, restarted on the same data directory, and verified.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use crate::{process::Server, report, rng::Rng, setting, thousands, verify::Verifier, workload};

/// The server's settings: a change log large enough that no revision is ever trimmed.
const ARGS: [&str; 2] = ["--change-log-mb", "4096"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kills_at_random_moments() {
    let cycles = setting("ACCESSD_FAULT_KILLS", 20);
    let seed = crate::seed("kills");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut lanes = workload::lanes(seed, 3, Some(25_000));
    let mut server = Server::start(dir.path(), &ARGS).await;
    let mut verifier = Verifier::default();
    let (mut revision, mut applied, mut absent, mut killed_opening) = (0, 0, 0, 0);
    for cycle in 1..=cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let channel = server.channel.clone();
        let running = tokio::spawn(async move { workload::run(lanes, &channel, &stop).await });
        // Anywhere from the first writes to well into an import.
        let moment = rng.between(20, 2_000) as u64;
        tokio::time::sleep(Duration::from_millis(moment)).await;
        server.kill();
        lanes = running
            .await
            .unwrap()
            .into_iter()
            .map(|(lane, _)| lane)
            .collect();
        // One restart in four is killed too, while it opens the database and redoes
        // the log, unless it is serving by then.
        if rng.chance(25) {
            let opening = Duration::from_millis(rng.between(0, 300) as u64);
            if let Ok(mut server) = Server::try_start(dir.path(), &ARGS, opening).await {
                server.kill();
            }
            killed_opening += 1;
        }
        server = Server::start(dir.path(), &ARGS).await;
        let verified = verifier
            .verify(&server, &mut lanes, &BTreeMap::new(), false)
            .await;
        assert!(
            verified.failures.is_empty(),
            "seed {seed}, cycle {cycle}, killed after {moment} ms: {} writes lost or wrong:\n{}",
            verified.failures.len(),
            verified.failures.join("\n")
        );
        revision = verified.revision;
        applied += verified.in_flight_applied;
        absent += verified.in_flight_absent;
    }
    let totals = workload::Totals::of(&lanes);
    report(&format!(
        "faults: kills: {cycles} cycles ({killed_opening} killed again while opening), {} writes acknowledged ({} imports of {} records), \
         in flight at the kill {applied} applied and {absent} not, lost 0, revision {revision}, \
         seed {seed}",
        thousands(totals.acknowledged),
        thousands(totals.imports),
        thousands(totals.records),
    ));
}
