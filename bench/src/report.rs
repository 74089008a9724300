//! Printing results: one table row per scenario run, accessd beside the floor as ratios
//! and latency differences, medians over rounds, and the targets met or missed.
//! It formats; it measures nothing.

use std::time::Duration;

use crate::{
    args::Scenario,
    driver::Outcome,
    load::{LoadMethod, LoadOutcome},
};

/// The figures of one run, or the medians of several.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Calls per second.
    pub calls_per_s: f64,
    /// Items (checks or grants) per second.
    pub items_per_s: f64,
    /// Latency percentiles, in microseconds: p50, p90, p99, p99.9.
    pub micros: [f64; 4],
    /// Failed calls.
    pub errors: u64,
    /// Answers that differed from the expected ones.
    pub mismatches: u64,
    /// Cores used by the load generator.
    pub client_cpu: Option<f64>,
    /// Cores used by the server.
    pub server_cpu: Option<f64>,
}

/// Above this many cores busy, the load generator (on one core) is the bottleneck.
const SATURATED: f64 = 0.9;

const QUANTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];

impl Figures {
    /// The figures of one run.
    pub fn of(outcome: &Outcome) -> Self {
        Self {
            calls_per_s: outcome.calls_per_second(),
            items_per_s: outcome.items_per_second(),
            micros: QUANTILES.map(|q| outcome.micros_at(q)),
            errors: outcome.errors,
            mismatches: outcome.mismatches,
            client_cpu: outcome.client_cpu,
            server_cpu: outcome.server_cpu,
        }
    }

    /// Medians of every figure over the runs that answered anything (a Grant run may
    /// find its pool empty); errors and mismatches are summed over all.
    pub fn median(all: &[Self]) -> Self {
        let answered: Vec<Self> = all
            .iter()
            .filter(|r| r.items_per_s > 0.0)
            .copied()
            .collect();
        let runs = if answered.is_empty() { all } else { &answered };
        let of = |f: &dyn Fn(&Self) -> f64| median(runs.iter().map(f).collect());
        let optional = |f: &dyn Fn(&Self) -> Option<f64>| {
            let values: Vec<f64> = runs.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| median(values))
        };
        Self {
            calls_per_s: of(&|r| r.calls_per_s),
            items_per_s: of(&|r| r.items_per_s),
            micros: [0, 1, 2, 3].map(|i| of(&|r| r.micros.get(i).copied().unwrap_or(0.0))),
            errors: all.iter().map(|r| r.errors).sum(),
            mismatches: all.iter().map(|r| r.mismatches).sum(),
            client_cpu: optional(&|r| r.client_cpu),
            server_cpu: optional(&|r| r.server_cpu),
        }
    }

    /// Server CPU time per item (check or grant), in microseconds: what the server's
    /// core can sustain, whoever was the bottleneck of this run.
    pub fn server_micros_per_item(&self) -> Option<f64> {
        let cores = self.server_cpu?;
        (self.items_per_s > 0.0).then(|| cores * 1e6 / self.items_per_s)
    }

    /// Whether the load generator's core was (nearly) fully busy.
    pub fn client_saturated(&self) -> bool {
        self.client_cpu.is_some_and(|c| c >= SATURATED)
    }

    fn p50(&self) -> f64 {
        self.micros.first().copied().unwrap_or(0.0)
    }

    fn p99(&self) -> f64 {
        self.micros.get(2).copied().unwrap_or(0.0)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values.get(n / 2).copied().unwrap_or(0.0),
        n => {
            let (a, b) = (values.get(n / 2 - 1), values.get(n / 2));
            (a.copied().unwrap_or(0.0) + b.copied().unwrap_or(0.0)) / 2.0
        }
    }
}

/// The table's header line.
pub fn header() -> String {
    format!(
        "{:<6} {:<11} {:>4} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6} {:>5} {:>11} {:>10}",
        "what",
        "server",
        "conc",
        "conns",
        "calls/s",
        "items/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "errors",
        "wrong",
        "cpu cli/srv",
        "srv µs/item",
    )
}

/// One table row.
pub fn row(
    scenario: Scenario,
    server: &str,
    concurrency: usize,
    connections: usize,
    f: &Figures,
) -> String {
    let cpu = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.2}"));
    let [p50, p90, p99, p999] = f.micros;
    format!(
        "{:<6} {:<11} {:>4} {:>5} {:>10.0} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>5} {:>11} {:>10}",
        scenario.name(),
        server,
        concurrency,
        connections,
        f.calls_per_s,
        f.items_per_s,
        p50,
        p90,
        p99,
        p999,
        f.errors,
        f.mismatches,
        format!("{}/{}", cpu(f.client_cpu), cpu(f.server_cpu)),
        f.server_micros_per_item()
            .map_or("-".to_owned(), |us| format!("{us:.2}")),
    )
}

/// accessd relative to the floor: throughput ratio, latency differences, and the ratio
/// of server CPU per item (the throughput ratio a saturated server core would show).
pub fn versus_floor(floor: &Figures, accessd: &Figures) -> String {
    format!("{:>24} {}", "", versus("accessd/floor", "", floor, accessd))
}

/// `other` against `base`: throughput and server CPU per item as ratios, latencies as
/// differences; `what` names the ratio (`accessd/floor`), `server` the server compared.
pub fn versus(what: &str, server: &str, base: &Figures, other: &Figures) -> String {
    let [d50, d90, d99, d999] = [0, 1, 2, 3].map(|i| {
        other.micros.get(i).copied().unwrap_or(0.0) - base.micros.get(i).copied().unwrap_or(0.0)
    });
    let capacity = match (
        base.server_micros_per_item(),
        other.server_micros_per_item(),
    ) {
        (Some(b), Some(o)) => format!("; server CPU/item ratio {:.3}", ratio(b, o)),
        _ => String::new(),
    };
    let saturated = if base.client_saturated() || other.client_saturated() {
        " (load generator saturated)"
    } else {
        ""
    };
    let server = if server.is_empty() {
        String::new()
    } else {
        format!("{server} ")
    };
    format!(
        "{server}{what}: throughput {:.3}{saturated}{capacity}; latency p50 {d50:+.1} µs, p90 {d90:+.1}, p99 {d99:+.1}, p99.9 {d999:+.1}",
        ratio(other.items_per_s, base.items_per_s),
    )
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median figures of one scenario at one concurrency, for the targets.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// The scenario.
    pub scenario: Scenario,
    /// Its concurrency.
    pub concurrency: usize,
    /// The floor's medians, if it was driven.
    pub floor: Option<Figures>,
    /// accessd's medians.
    pub accessd: Figures,
}

/// The targets that this run measured, each met or missed with its numbers.
pub fn targets(summaries: &[Summary]) -> Vec<String> {
    let mut lines = Vec::new();
    let find = |scenario: Scenario, concurrency: usize| {
        summaries
            .iter()
            .find(|s| s.scenario == scenario && s.concurrency == concurrency)
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    if let Some(Summary {
        floor: Some(floor),
        accessd,
        ..
    }) = find(Scenario::Check, 64)
    {
        let r = ratio(accessd.items_per_s, floor.items_per_s);
        lines.push(format!(
            "Check throughput at concurrency 64 >= 90% of the floor: {:.1}% ({:.0} vs {:.0}/s): {}",
            r * 100.0,
            accessd.items_per_s,
            floor.items_per_s,
            verdict(r >= 0.90)
        ));
        if let (Some(f), Some(a)) = (
            floor.server_micros_per_item(),
            accessd.server_micros_per_item(),
        ) {
            let capacity = ratio(f, a);
            lines.push(format!(
                "  the same by server CPU per check (floor {f:.2} µs, accessd {a:.2} µs): {:.1}%: {}{}",
                capacity * 100.0,
                verdict(capacity >= 0.90),
                if floor.client_saturated() || accessd.client_saturated() {
                    " (the load generator's core was saturated: trust this line over the one above)"
                } else {
                    ""
                }
            ));
        }
    }
    if let Some(Summary {
        floor: Some(floor),
        accessd,
        ..
    }) = find(Scenario::Check, 1)
    {
        let d50 = accessd.p50() - floor.p50();
        let d99 = accessd.p99() - floor.p99();
        lines.push(format!(
            "Check p50 at concurrency 1 within 10 µs of the floor: {d50:+.1} µs ({:.1} vs {:.1}): {}",
            accessd.p50(),
            floor.p50(),
            verdict(d50 <= 10.0)
        ));
        lines.push(format!(
            "Check p99 at concurrency 1 within 25 µs of the floor: {d99:+.1} µs ({:.1} vs {:.1}): {}",
            accessd.p99(),
            floor.p99(),
            verdict(d99 <= 25.0)
        ));
    }
    if let Some(summary) = find(Scenario::Grant, 64) {
        let rate = summary.accessd.items_per_s;
        lines.push(format!(
            "durable Grants with 64 concurrent writers >= 5,000/s: {rate:.0}/s: {}",
            verdict(rate >= 5000.0)
        ));
    }
    lines
}

/// `bytes` as MiB.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `n` with a comma between each group of three digits.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What a load did, in one line.
pub fn loaded(method: LoadMethod, outcome: &LoadOutcome, grants: usize) -> String {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    match method {
        LoadMethod::Rpc { .. } => format!(
            "{} durable writes in {seconds:.2} s ({:.0}/s), {}",
            thousands(outcome.writes),
            outcome.writes as f64 / seconds,
            method.describe(),
        ),
        LoadMethod::Import { .. } => {
            let unchanged = outcome
                .applied
                .map_or(0, |applied| (outcome.writes as u64).saturating_sub(applied));
            format!(
                "{} records ({} grants) in {seconds:.2} s: {:.0} records/s, {:.0} grants/s, in \
                 {} atomic batches{}; {}",
                thousands(outcome.writes),
                thousands(grants),
                outcome.writes as f64 / seconds,
                grants as f64 / seconds,
                outcome.batches,
                match unchanged {
                    0 => String::new(),
                    n => format!(" ({n} records were already in effect)"),
                },
                method.describe(),
            )
        }
    }
}

/// The most resident memory the scale target allows.
pub const SCALE_MAX_RESIDENT: u64 = 2 * 1024 * 1024 * 1024;
/// The longest a restart may take to SERVING under the scale target.
pub const SCALE_MAX_SERVING: Duration = Duration::from_secs(30);
/// How far the large data set's Check figures may fall from the small one's.
const SCALE_TOLERANCE: f64 = 0.10;

/// The large data set of a scale run: its size, memory and restart.
#[derive(Debug, Clone, Copy)]
pub struct ScaleLarge {
    /// Grants in the small data set.
    pub small_grants: usize,
    /// Grants in the large data set.
    pub grants: usize,
    /// Memory accessd held resident after restarting on it and verifying its answers:
    /// the measure.
    pub resident_restarted: Option<u64>,
    /// Memory accessd held resident right after loading it by `Import`, reported beside.
    pub resident_loaded: Option<u64>,
    /// How long the restart took from process start to SERVING.
    pub serving: Option<Duration>,
}

/// The scale target of issue 4, each part met or missed with its numbers: the large data
/// set's Check figures (`large`) against the small one's (`small`), its memory and its
/// restart.
pub fn scale_targets(small: &[Summary], large: &[Summary], sizes: &ScaleLarge) -> Vec<String> {
    let find = |summaries: &[Summary], concurrency: usize| {
        summaries
            .iter()
            .find(|s| s.scenario == Scenario::Check && s.concurrency == concurrency)
            .map(|s| s.accessd)
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let (with, against) = (thousands(sizes.grants), thousands(sizes.small_grants));
    let mut lines = Vec::new();
    if let (Some(s), Some(l)) = (find(small, 64), find(large, 64)) {
        let r = ratio(l.items_per_s, s.items_per_s);
        lines.push(format!(
            "Check throughput at concurrency 64, {with} grants within 10% of {against}: \
             {:.1}% ({:.0} vs {:.0}/s): {}",
            r * 100.0,
            l.items_per_s,
            s.items_per_s,
            verdict(r >= 1.0 - SCALE_TOLERANCE)
        ));
        if let (Some(a), Some(b)) = (l.server_micros_per_item(), s.server_micros_per_item()) {
            lines.push(format!(
                "  the same by server CPU per check ({a:.2} vs {b:.2} µs): {:.1}%: {}",
                ratio(b, a) * 100.0,
                verdict(ratio(b, a) >= 1.0 - SCALE_TOLERANCE)
            ));
        }
    }
    if let (Some(s), Some(l)) = (find(small, 1), find(large, 1)) {
        for (name, small, large) in [("p50", s.p50(), l.p50()), ("p99", s.p99(), l.p99())] {
            let change = ratio(large, small) - 1.0;
            lines.push(format!(
                "Check {name} at concurrency 1, {with} grants within 10% of {against}: \
                 {:+.1}% ({large:.1} vs {small:.1} µs): {}",
                change * 100.0,
                verdict(change <= SCALE_TOLERANCE)
            ));
        }
    }
    for (when, resident) in [
        ("after a restart", sizes.resident_restarted),
        ("right after loading", sizes.resident_loaded),
    ] {
        if let Some(resident) = resident {
            lines.push(format!(
                "resident memory with {with} grants {when} under 2 GiB: {}: {}",
                mib(resident),
                verdict(resident < SCALE_MAX_RESIDENT)
            ));
        }
    }
    if let Some(serving) = sizes.serving {
        lines.push(format!(
            "SERVING after a restart with {with} grants under 30 s: {:.1} s: {}",
            serving.as_secs_f64(),
            verdict(serving < SCALE_MAX_SERVING)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rate: f64, p50: f64, p99: f64) -> Figures {
        Figures {
            calls_per_s: rate,
            items_per_s: rate,
            micros: [p50, p50, p99, p99],
            ..Figures::default()
        }
    }

    #[test]
    fn medians_take_the_middle_run_of_each_figure() {
        let runs = [
            figures(10.0, 1.0, 9.0),
            figures(30.0, 3.0, 7.0),
            figures(20.0, 2.0, 8.0),
        ];
        let m = Figures::median(&runs);
        assert_eq!(m.calls_per_s, 20.0);
        assert_eq!(m.micros, [2.0, 2.0, 8.0, 8.0]);
        assert_eq!(median(vec![1.0, 2.0, 3.0, 4.0]), 2.5);
    }

    #[test]
    fn medians_leave_out_runs_that_answered_nothing() {
        let empty = Figures {
            errors: 1,
            ..Figures::default()
        };
        let m = Figures::median(&[figures(10.0, 1.0, 9.0), empty, figures(30.0, 3.0, 7.0)]);
        assert_eq!(m.calls_per_s, 20.0);
        assert_eq!(m.errors, 1);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_203_456), "10,203,456");
    }

    #[test]
    fn scale_targets_compare_the_large_data_set_with_the_small_one() {
        let check = |concurrency, accessd| Summary {
            scenario: Scenario::Check,
            concurrency,
            floor: None,
            accessd,
        };
        let small = [
            check(64, figures(1000.0, 50.0, 90.0)),
            check(1, figures(100.0, 50.0, 90.0)),
        ];
        let large = [
            check(64, figures(920.0, 60.0, 100.0)),
            check(1, figures(95.0, 54.0, 100.0)),
        ];
        let sizes = ScaleLarge {
            small_grants: 10_200,
            grants: 10_200_000,
            resident_restarted: Some(SCALE_MAX_RESIDENT - (1 << 20)),
            resident_loaded: Some(SCALE_MAX_RESIDENT + 1),
            serving: Some(Duration::from_secs(12)),
        };
        let lines = scale_targets(&small, &large, &sizes);
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert!(lines[0].contains("10,200,000 grants within 10% of 10,200"));
        assert!(lines[0].contains("92.0%") && lines[0].ends_with("met"));
        assert!(lines[1].contains("p50") && lines[1].contains("+8.0%"));
        assert!(lines[1].ends_with("met"));
        assert!(lines[2].contains("p99") && lines[2].contains("+11.1%"));
        assert!(lines[2].ends_with("MISSED"));
        assert!(lines[3].contains("after a restart") && lines[3].contains("2047.0 MiB"));
        assert!(lines[3].ends_with("met"));
        assert!(lines[4].contains("after loading") && lines[4].contains("2048.0 MiB"));
        assert!(lines[4].ends_with("MISSED"));
        assert!(lines[5].contains("12.0 s") && lines[5].ends_with("met"));
    }

    #[test]
    fn targets_report_met_and_missed_with_their_numbers() {
        let summaries = [
            Summary {
                scenario: Scenario::Check,
                concurrency: 64,
                floor: Some(figures(1000.0, 50.0, 90.0)),
                accessd: figures(850.0, 60.0, 100.0),
            },
            Summary {
                scenario: Scenario::Check,
                concurrency: 1,
                floor: Some(figures(100.0, 50.0, 90.0)),
                accessd: figures(95.0, 55.0, 130.0),
            },
        ];
        let lines = targets(&summaries);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("85.0%") && lines[0].ends_with("MISSED"));
        assert!(lines[1].contains("+5.0 µs") && lines[1].ends_with("met"));
        assert!(lines[2].contains("+40.0 µs") && lines[2].ends_with("MISSED"));
    }
}
