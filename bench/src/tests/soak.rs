//! The soak for a few seconds against an in-process accessd (a debug build, sharing this
//! process, whose memory is the one read): every kind of call is made and answered as
//! the load asks, and the report has its shape. The memory bound is generous: the other
//! tests of this binary run beside it.

use accessd::proto::{self, admin_service_client::AdminServiceClient};
use clap::Parser;

use super::start_accessd;
use crate::{
    args::{Cli, Command},
    process::connect,
    soak,
};

#[tokio::test]
async fn a_short_soak_makes_every_kind_of_call_as_asked_and_reports_its_memory() {
    let server = start_accessd().await;
    let addr = server.addr.to_string();
    let pid = std::process::id().to_string();
    let cli = Cli::parse_from([
        "accessd-bench",
        "soak",
        "--addr",
        &addr,
        "--pid",
        &pid,
        "--duration",
        "5s",
        "--warmup",
        "2s",
        "--sample-every",
        "250ms",
        "--max-growth",
        "200",
        "--workspaces",
        "12",
        "--members",
        "8",
        "--sources",
        "5",
        "--requests",
        "600",
        "--check-rate",
        "200",
        "--batch-rate",
        "4",
        "--batch-size",
        "50",
        "--read-rate",
        "10",
        "--write-rate",
        "10",
        "--bulk-every",
        "1s",
        "--import-workspaces",
        "5",
        "--invalid-every",
        "200ms",
        "--connections",
        "2",
        "--format",
        "json",
    ]);
    let Command::Soak(args) = cli.command else {
        panic!("not the soak: {:?}", cli.command);
    };
    let report = soak::run(&args, "test").await.unwrap();
    let channel = connect(server.addr, 1).await.unwrap().remove(0);
    let mut export = AdminServiceClient::new(channel)
        .export(proto::ExportRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut records = 0;
    while let Some(chunk) = export.message().await.unwrap() {
        records += chunk.records.len();
    }
    server.stop().await;
    assert_eq!(
        records, report.data_set.records,
        "the churn left the data as it found it"
    );

    assert!(report.passed, "{:#?}", report.failures);
    assert_eq!(report.unexpected_errors, 0);
    let kinds: Vec<&str> = report.calls.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            "check",
            "batch_check",
            "list_access",
            "lookup_resources",
            "lookup_subjects",
            "grant",
            "revoke",
            "set_membership",
            "remove_member",
            "register_resource",
            "delete_resource",
            "import",
            "export",
            "check_malformed_id",
            "grant_to_non_member",
        ]
    );
    for counted in &report.calls {
        assert!(counted.calls > 0, "{counted:?}");
        if counted.must_fail {
            assert_eq!(counted.expected_errors, counted.calls, "{counted:?}");
        } else {
            assert_eq!(counted.expected_errors, 0, "{counted:?}");
            // A member may read no source, so a lookup of resources may find none.
            if counted.kind != "lookup_resources" {
                assert!(counted.items > 0, "{counted:?}");
            }
        }
    }
    let of = |kind: &str| report.calls.iter().find(|c| c.kind == kind).unwrap();
    // Paced, not flat out: at most 200 checks a second for 5 s, whatever the machine.
    assert!(of("check").calls <= 1_001, "{:?}", of("check"));
    assert_eq!(of("batch_check").items, of("batch_check").calls * 50);
    // Every grant was revoked, every member removed, every destination deleted again.
    for (made, undone) in [
        ("grant", "revoke"),
        ("set_membership", "remove_member"),
        ("register_resource", "delete_resource"),
    ] {
        assert_eq!(of(made).calls, of(undone).calls, "{made} against {undone}");
    }
    assert!(of("export").items >= report.data_set.records as u64);

    let growth = report.memory.growth.unwrap();
    assert!(report.memory.samples.len() >= 3, "{:?}", report.memory);
    assert!(growth.at_warmup_end > 0 && growth.max_after_warmup >= growth.end);
    assert!(growth.growth_percent <= 200.0);

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for key in [
        "passed",
        "failures",
        "server",
        "data_set",
        "memory",
        "calls",
        "expected_errors",
        "unexpected_errors",
    ] {
        assert!(json.get(key).is_some(), "no `{key}` in {json}");
    }
    assert!(json["memory"]["growth"]["growth_percent"].is_f64());
    let text = report.lines().join("\n");
    assert!(text.contains("at the warm-up's end"), "{text}");
    assert!(text.ends_with("soak passed"), "{text}");
}

#[test]
fn a_failed_soak_says_why() {
    use crate::soak::{
        lanes::Counted,
        memory::{Growth, Sample},
        report::{DataSet, Memory, Server, SoakReport},
    };
    let counted = |kind, calls, unexpected| Counted {
        kind,
        must_fail: false,
        calls,
        items: calls,
        expected_errors: 0,
        unexpected_errors: unexpected,
        first_problem: (unexpected > 0).then(|| "Internal: boom".to_owned()),
    };
    let mut report = SoakReport {
        passed: true,
        failures: Vec::new(),
        machine: String::new(),
        server: Server {
            pid: 1,
            addr: "127.0.0.1:1".into(),
            started_here: true,
        },
        data_set: DataSet {
            seed: 1,
            workspaces: 1,
            members: 1,
            writers: 1,
            grants: 1,
            instances: 1,
            records: 5,
            load_seconds: 0.1,
        },
        duration_seconds: 10.0,
        warmup_seconds: 2.0,
        memory: Memory {
            sample_every_seconds: 1.0,
            max_growth_percent: 10.0,
            growth: Some(Growth {
                at_warmup_end: 100 << 20,
                max_after_warmup: 120 << 20,
                end: 115 << 20,
                growth_percent: 20.0,
            }),
            samples: vec![Sample {
                seconds: 0.0,
                bytes: Some(1),
            }],
        },
        calls: vec![
            counted("check", 10, 0),
            counted("grant", 4, 1),
            counted("export", 0, 0),
        ],
        expected_errors: 0,
        unexpected_errors: 0,
    };
    report.judge();
    assert!(!report.passed);
    assert_eq!(report.unexpected_errors, 1);
    assert_eq!(report.failures.len(), 3, "{:?}", report.failures);
    assert!(
        report.failures[0].contains("grew +20.0%"),
        "{}",
        report.failures[0]
    );
    assert!(report.failures[1].contains("`grant`") && report.failures[1].contains("boom"));
    assert!(report.failures[2].contains("no `export` call"));
    assert!(report.lines().last().unwrap().starts_with("FAILED: "));
}
