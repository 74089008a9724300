//! The crash and fault harness: the real `accessd serve` killed at random moments under
//! concurrent writes of every kind and imports, and its data volume filled, then healed
//! in place or restarted; after each, every acknowledged write must be there.
//!
//! `ACCESSD_FAULT_KILLS` and `ACCESSD_FAULT_DISK_FULL` set the number of cycles (20 and 5
//! by default), `ACCESSD_FAULT_SEED` the seed each run prints, to repeat a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests and their helpers stop at the first failing line"
)]

mod disk_full;
mod kills;
mod model;
#[path = "../process/mod.rs"]
mod process;
#[path = "../../bench/src/rng.rs"]
#[allow(
    dead_code,
    reason = "the bench's generator, of which the harness needs a part"
)]
mod rng;
mod tmpfs;
mod verify;
mod workload;

use std::io::Write as _;

/// The number in environment variable `name`, or `default`.
fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

/// The seed of this run: `ACCESSD_FAULT_SEED`, or one drawn from the clock; reported,
/// so that a failure can be repeated.
fn seed(test: &str) -> u64 {
    let seed = match std::env::var("ACCESSD_FAULT_SEED") {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("ACCESSD_FAULT_SEED={value}: not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    report(&format!(
        "faults: {test}: seed {seed} (ACCESSD_FAULT_SEED={seed} repeats it)"
    ));
    seed
}

/// Writes `line` to stderr past the test harness's capture, so that a passing run
/// shows its summary too.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `n` with thousands separated by commas, as the summaries print counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
