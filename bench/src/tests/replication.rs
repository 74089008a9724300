//! The pure parts of `replication`: the open loop's schedule, the lag percentiles, the
//! probe of each new grant, the follower's bootstrap line and the targets' verdicts.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use accessd::proto;

use crate::{
    args::Visibility,
    catalog,
    dataset::{Dataset, Sizes},
    driver::histogram,
    replication::{
        checks::Compared,
        cpu::Cores,
        follower::{BootstrapLog, bootstrap_log},
        lag::{LagRun, Schedule, early_and_late, probe, probe_permission},
        polling,
        report::{Bootstrap, Measured, Millis, falling_behind, targets},
        workspaces_for,
    },
    report::Figures,
};

#[test]
fn writes_fall_due_at_the_rate_counted_from_the_start() {
    let start = Instant::now();
    let schedule = Schedule::new(start, 1000);
    assert_eq!(schedule.due(0), start);
    assert_eq!(schedule.due(1), start + Duration::from_millis(1));
    assert_eq!(schedule.due(10_000), start + Duration::from_secs(10));
    assert_eq!(schedule.count(Duration::from_secs(10)), 10_000);

    // A rate that does not divide a second: no rounding error accumulates.
    let thirds = Schedule::new(start, 3);
    assert_eq!(thirds.due(1), start + Duration::from_nanos(333_333_333));
    assert_eq!(thirds.due(3), start + Duration::from_secs(1));
    assert_eq!(thirds.due(3_000), start + Duration::from_secs(1000));
    assert_eq!(thirds.count(Duration::from_millis(999)), 2);
    assert_eq!(Schedule::new(start, 0).count(Duration::from_secs(5)), 5);
}

#[test]
fn lag_percentiles_are_read_in_milliseconds() {
    let mut nanos = histogram().unwrap();
    assert_eq!(Millis::of(&nanos), None);
    for ms in 1..=1000u64 {
        nanos.record(ms * 1_000_000).unwrap();
    }
    let millis = Millis::of(&nanos).unwrap();
    // Three significant digits: within a tenth of a percent.
    assert!((millis.p50 - 500.0).abs() <= 0.5, "{millis:?}");
    assert!((millis.p99 - 990.0).abs() <= 1.0, "{millis:?}");
    assert!((millis.max - 1000.0).abs() <= 1.0, "{millis:?}");
}

#[test]
fn a_growing_lag_shows_in_its_first_and_last_tenths() {
    let ms = Duration::from_millis;
    // One write every 10 ms for a second, each seen 2 ms later, then 1 ms later per
    // write from the middle on: a follower falling behind.
    let samples: Vec<(Duration, Duration)> = (0..100u64)
        .map(|i| (ms(i * 10), ms(2 + i.saturating_sub(50))))
        .collect();
    let trend = early_and_late(&samples, ms(1000));
    assert_eq!(trend, (Some(ms(2)), Some(ms(47))));
    assert!(falling_behind(trend));
    let steady: Vec<(Duration, Duration)> = (0..100u64).map(|i| (ms(i * 10), ms(3))).collect();
    assert!(!falling_behind(early_and_late(&steady, ms(1000))));
    assert_eq!(early_and_late(&[], ms(1000)), (None, None));
    assert!(!falling_behind((Some(ms(1)), Some(ms(5)))));
}

#[test]
fn a_write_is_visible_at_the_first_status_answer_that_reaches_its_revision() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let polls = [
        (t0, 10),
        (t0 + ms(1), 10),
        (t0 + ms(2), 12),
        (t0 + ms(3), 15),
    ];
    let acknowledged = [
        (11, t0 + ms(1)),
        (12, t0),
        (15, t0 + ms(2)),
        (9, t0 + ms(5)),
        (16, t0),
    ];
    assert_eq!(
        polling::lags(&acknowledged, &polls),
        [
            Some(ms(1)),
            Some(ms(2)),
            Some(ms(1)),
            Some(Duration::ZERO),
            None
        ]
    );
}

#[test]
fn each_new_grant_is_probed_by_a_permission_no_earlier_grant_of_its_writer_allows() {
    let data = Dataset::generate(
        3,
        Sizes {
            workspaces: 6,
            members: 4,
            sources: 4,
            grant_pool: 400,
        },
    );
    let pool = data.grant_pool();
    assert_eq!(pool.len(), 400);
    let mut held: HashSet<(String, String, String)> = HashSet::new();
    for (revision, grant) in (1..).zip(&pool) {
        let check = probe(grant, revision).unwrap();
        assert_eq!(check.at_least_revision, revision);
        assert_eq!(check.workspace_id, grant.workspace_id);
        assert_eq!(check.user_id, grant.user_id);
        let Some(proto::scope::Kind::Instance(source)) = grant.scope.clone().unwrap().kind else {
            panic!("the pool grants on one source: {grant:?}");
        };
        assert_eq!(check.resource.as_ref(), Some(&source));
        let role = |name: &str| catalog::role(name).unwrap();
        assert!(role(&grant.role).allows(&check.permission), "{grant:?}");
        let key = |role: &str| (grant.user_id.clone(), source.id.clone(), role.to_owned());
        for earlier in [catalog::SOURCE_READ, catalog::SOURCE_ADMIN] {
            if held.contains(&key(earlier)) {
                assert!(!role(earlier).allows(&check.permission), "{grant:?}");
            }
        }
        held.insert(key(&grant.role));
    }
    assert_eq!(probe_permission("workspace_admin"), None);
}

#[test]
fn the_follower_s_bootstrap_is_read_from_its_json_log() {
    let log = r#"{"timestamp":"2026-12-02T14:00:00.1Z","level":"INFO","fields":{"message":"listening; loading the database","address":"127.0.0.1:5"},"target":"accessd::server"}
not json
{"timestamp":"2026-12-02T14:00:04.2Z","level":"INFO","fields":{"message":"bootstrapped from the leader's snapshot","revision":512,"records":2201234,"workspaces":9804,"seconds":4.25},"target":"accessd::follower::bootstrap"}
{"timestamp":"2026-12-02T14:00:04.3Z","level":"INFO","fields":{"message":"caught up with the leader","revision":512},"target":"accessd::follower::stream"}"#;
    assert_eq!(
        bootstrap_log(log),
        Some(BootstrapLog {
            seconds: 4.25,
            records: 2_201_234,
            revision: 512
        })
    );
    assert_eq!(
        bootstrap_log("{\"fields\":{\"message\":\"serving\"}}"),
        None
    );
}

#[test]
fn the_data_set_has_as_many_workspaces_as_the_grants_asked_for_need() {
    assert_eq!(workspaces_for(1_000_000, 60), 9_804);
    assert_eq!(workspaces_for(10_000, 60), 98);
    assert_eq!(workspaces_for(5, 60), 1);
    assert_eq!(workspaces_for(17, 0), 10);
}

fn lag_run(lag_ms: &[u64], probe_errors: u64) -> LagRun {
    lag_seen_by(Visibility::Check, lag_ms, probe_errors)
}

fn lag_seen_by(visibility: Visibility, lag_ms: &[u64], probe_errors: u64) -> LagRun {
    let mut lag = histogram().unwrap();
    for ms in lag_ms {
        lag.record(ms * 1_000_000).unwrap();
    }
    LagRun {
        visibility,
        writes: lag_ms.len() as u64,
        window: Duration::from_secs(1),
        write_latency: histogram().unwrap(),
        lag,
        write_errors: 0,
        probe_errors,
        wrong: 0,
        first_problem: None,
        exhausted: false,
        behind: Some(Duration::ZERO),
        cores: Cores::default(),
        trend: (None, None),
    }
}

fn figures(rate: f64, cpu: f64) -> Figures {
    Figures {
        calls_per_s: rate,
        items_per_s: rate,
        server_cpu: Some(cpu),
        ..Figures::default()
    }
}

#[test]
fn targets_judge_the_lag_the_bootstrap_and_the_follower_s_checks() {
    let fast = [
        lag_run(&[1, 2, 3, 40], 0),
        lag_seen_by(Visibility::Status, &[1, 2, 3, 4], 0),
    ];
    let bootstrap = Bootstrap {
        grants: 1_020_195,
        serving_after: Duration::from_millis(10_500),
        log: None,
        follower_cpu: None,
        leader_cpu: None,
        follower_memory: (None, None),
        leader_memory: (None, None),
        directories: (0, 0),
    };
    let checks = [Compared {
        concurrency: 64,
        leader: figures(100_000.0, 1.0),
        follower: figures(96_000.0, 1.0),
    }];
    let lines = targets(&Measured {
        rate: 1000,
        paced: &fast,
        bootstrap: Some(&bootstrap),
        checks: &checks,
    });
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "replication lag p99 under 50 ms at 1,000 writes/s, seen by a waiting Check: 40"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("met"), "{}", lines[0]);
    assert!(
        lines[1].contains("seen by status polls: 4.00 ms"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("1,020,195 grants: 10.50 s"),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with("MISSED"));
    assert!(lines[3].contains("96.0%") && lines[3].ends_with("met"));
    assert!(
        lines[4].ends_with("(follower 10.42 µs, leader 10.00 µs): 96.0%: met"),
        "{}",
        lines[4]
    );

    let slow = lag_run(&[10, 20, 60], 0);
    let failing = lag_run(&[1, 2], 3);
    for (run, why) in [(slow, "60.0"), (failing, "3 writes or probes failed")] {
        let lines = targets(&Measured {
            rate: 500,
            paced: &[run],
            bootstrap: None,
            checks: &[],
        });
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("at 500 writes/s (the target is stated at 1,000)"));
        assert!(lines[0].contains(why), "{}", lines[0]);
        assert!(lines[0].ends_with("MISSED"), "{}", lines[0]);
    }
}
