//! The soak's report: what was driven, the memory readings, the calls of each kind, the
//! verdict; as lines for people or as one JSON object. It judges and formats; it drives
//! nothing.

use serde::Serialize;

use super::{
    lanes::Counted,
    memory::{Growth, Sample},
};
use crate::report::{mib, thousands};

/// The server the soak drove.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// Its process id.
    pub pid: u32,
    /// Where it listened.
    pub addr: String,
    /// Whether the soak started it (on a fresh data directory) rather than found it.
    pub started_here: bool,
}

/// The data set loaded before the mixed load.
#[derive(Debug, Clone, Serialize)]
pub struct DataSet {
    /// Its seed.
    pub seed: u64,
    /// Workspaces.
    pub workspaces: usize,
    /// Members with grants.
    pub members: usize,
    /// Members kept aside for the grant churn.
    pub writers: usize,
    /// Grants.
    pub grants: usize,
    /// Registered instances.
    pub instances: usize,
    /// Import records.
    pub records: usize,
    /// How long its Import took, in seconds.
    pub load_seconds: f64,
}

/// The resident memory readings and what they say.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// The time between readings, in seconds.
    pub sample_every_seconds: f64,
    /// The bound on growth after the warm-up, in percent.
    pub max_growth_percent: f64,
    /// The readings judged; absent if they could not be.
    pub growth: Option<Growth>,
    /// Every reading.
    pub samples: Vec<Sample>,
}

/// Everything a soak measured, and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Whether memory stayed within its bound and no call went otherwise than the load
    /// asked.
    pub passed: bool,
    /// Why not, one line each.
    pub failures: Vec<String>,
    /// The machine and the time.
    pub machine: String,
    /// The server driven.
    pub server: Server,
    /// The data set.
    pub data_set: DataSet,
    /// How long the mixed load ran, in seconds.
    pub duration_seconds: f64,
    /// Its first part, not judged, in seconds.
    pub warmup_seconds: f64,
    /// The server's resident memory.
    pub memory: Memory,
    /// The calls of each kind.
    pub calls: Vec<Counted>,
    /// Calls refused as the load asked, all kinds together.
    pub expected_errors: u64,
    /// Calls that failed or were answered otherwise than expected, all kinds together.
    pub unexpected_errors: u64,
}

impl SoakReport {
    /// Sums the errors and sets the verdict from the figures.
    pub fn judge(&mut self) {
        self.expected_errors = self.calls.iter().map(|c| c.expected_errors).sum();
        self.unexpected_errors = self.calls.iter().map(|c| c.unexpected_errors).sum();
        let mut failures = Vec::new();
        match self.memory.growth {
            None => failures.push(
                "resident memory could not be judged: a reading failed (did the server \
                 exit?) or none fell in the warm-up"
                    .to_owned(),
            ),
            Some(growth) if growth.growth_percent > self.memory.max_growth_percent => failures
                .push(format!(
                    "resident memory grew {:+.1}% after the warm-up ({} to {}), more than {}%",
                    growth.growth_percent,
                    mib(growth.at_warmup_end),
                    mib(growth.max_after_warmup),
                    self.memory.max_growth_percent
                )),
            Some(_) => {}
        }
        for counted in &self.calls {
            if counted.calls == 0 {
                failures.push(format!("no `{}` call was made", counted.kind));
            }
            if counted.unexpected_errors > 0 {
                failures.push(format!(
                    "{} `{}` calls went otherwise than expected, the first: {}",
                    counted.unexpected_errors,
                    counted.kind,
                    counted.first_problem.as_deref().unwrap_or("unknown")
                ));
            }
        }
        self.passed = failures.is_empty();
        self.failures = failures;
    }

    /// The report as lines for people.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("machine: {}", self.machine),
            format!(
                "accessd: pid {} on {}, {}",
                self.server.pid,
                self.server.addr,
                if self.server.started_here {
                    "started by the soak on a fresh data directory"
                } else {
                    "already running"
                }
            ),
            format!(
                "data set (seed {}): {} workspaces, {} members holding {} grants, {} \
                 instances, {} members kept aside: {} records, imported in {:.1} s",
                self.data_set.seed,
                thousands(self.data_set.workspaces),
                thousands(self.data_set.members),
                thousands(self.data_set.grants),
                thousands(self.data_set.instances),
                thousands(self.data_set.writers),
                thousands(self.data_set.records),
                self.data_set.load_seconds
            ),
            format!(
                "mixed load for {:.0} s, warm-up {:.0} s",
                self.duration_seconds, self.warmup_seconds
            ),
        ];
        lines.push(self.memory_line());
        lines.push(format!("readings (MiB): {}", self.readings()));
        lines.push(format!(
            "{:<20} {:>10} {:>9} {:>12} {:>9} {:>10}",
            "call", "calls", "per s", "items", "expected", "unexpected"
        ));
        for c in &self.calls {
            lines.push(format!(
                "{:<20} {:>10} {:>9.1} {:>12} {:>9} {:>10}",
                c.kind,
                thousands(usize::try_from(c.calls).unwrap_or(usize::MAX)),
                c.calls as f64 / self.duration_seconds.max(f64::MIN_POSITIVE),
                thousands(usize::try_from(c.items).unwrap_or(usize::MAX)),
                c.expected_errors,
                c.unexpected_errors
            ));
        }
        lines.push(format!(
            "errors: {} expected (asked for by the load), {} unexpected",
            thousands(usize::try_from(self.expected_errors).unwrap_or(usize::MAX)),
            thousands(usize::try_from(self.unexpected_errors).unwrap_or(usize::MAX))
        ));
        if self.passed {
            lines.push("soak passed".to_owned());
        } else {
            lines.extend(self.failures.iter().map(|f| format!("FAILED: {f}")));
        }
        lines
    }

    fn memory_line(&self) -> String {
        let every = self.memory.sample_every_seconds;
        let count = self.memory.samples.len();
        match self.memory.growth {
            Some(g) => format!(
                "resident memory (VmRSS every {every:.0} s, {count} readings): {} at the \
                 warm-up's end, at most {} after it, {} at the end: {:+.1}% (bound {}%)",
                mib(g.at_warmup_end),
                mib(g.max_after_warmup),
                mib(g.end),
                g.growth_percent,
                self.memory.max_growth_percent
            ),
            None => {
                format!("resident memory (VmRSS every {every:.0} s, {count} readings): not judged")
            }
        }
    }

    /// About a dozen readings spread over the run, as `seconds: MiB`.
    fn readings(&self) -> String {
        const SHOWN: usize = 12;
        let samples = &self.memory.samples;
        let stride = samples.len().div_ceil(SHOWN).max(1);
        let mut shown: Vec<&Sample> = samples.iter().step_by(stride).collect();
        if let Some(last) = samples.last()
            && !shown.last().is_some_and(|s| std::ptr::eq(*s, last))
        {
            shown.push(last);
        }
        shown
            .iter()
            .map(|s| match s.bytes {
                Some(bytes) => format!("{:.0}s {:.1}", s.seconds, bytes as f64 / 1048576.0),
                None => format!("{:.0}s ?", s.seconds),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
