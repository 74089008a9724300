//! A process's resident memory as the kernel reports it (`VmRSS` of `/proc/PID/status`):
//! the baseline before an attack, the highest seen while it runs, and the level after.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// How often the resident memory is sampled: the growth this catches takes seconds to
/// build (the issue measured over a gigabyte), and a read of `/proc` costs microseconds.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// A process's resident memory in MiB, now; `None` once it is gone.
fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// A process's resident memory from a baseline on: sampled on a thread of its own, so
/// that a peak between two steps of the test is seen too.
pub struct Memory {
    pid: u32,
    /// Resident memory when the attack began.
    baseline_mib: u64,
    /// The most resident memory seen since.
    peak_mib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

impl Memory {
    /// Takes the baseline of `pid` now, and samples from then on.
    pub fn watch(pid: u32) -> Self {
        let baseline_mib = resident_mib(pid).expect("the server's resident memory");
        let peak_mib = Arc::new(AtomicU64::new(baseline_mib));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak_mib, stop) = (Arc::clone(&peak_mib), Arc::clone(&stop));
            std::thread::spawn(move || {
                // The process may be gone at the end of a failing test.
                while let Some(now) = resident_mib(pid) {
                    peak_mib.fetch_max(now, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Self {
            pid,
            baseline_mib,
            peak_mib,
            stop,
            sampler: Some(sampler),
        }
    }

    /// Asserts that resident memory, now and at its peak so far, is within `growth_mib`
    /// of the baseline; `when` names the moment, for the message.
    pub fn assert_within(&self, growth_mib: u64, when: &str) {
        let now = resident_mib(self.pid).expect("the server's resident memory");
        let peak = self.peak_mib.load(Ordering::Relaxed).max(now);
        let bound = self.baseline_mib + growth_mib;
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!(
                "resident memory {when}: baseline {} MiB, now {now} MiB, peak {peak} MiB, \
                 bound {bound} MiB",
                self.baseline_mib
            );
        }
        assert!(
            peak <= bound,
            "resident memory {when} peaked at {peak} MiB (now {now} MiB): more than the \
             baseline {} MiB + {growth_mib} MiB",
            self.baseline_mib
        );
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}
