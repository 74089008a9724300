//! `migrate-legacy`: a dry run that reports and writes nothing, a migration that a rerun
//! leaves alone, and a malformed file refused before anything is sent.

use serde_json::Value;

use crate::harness::*;

use super::{accessd, quote, write_file};

const LEGACY_CSV: &str = "workspace_id,user_id,legacy_role,source_id
acme,olivia,workspace_owner,
acme,rita,workspace_read_only,
acme,carl,source_collaborator,ios-prod
acme,carl,source_collaborator,android
nope,zed,workspace_owner,
acme,ann,admin,
";

#[tokio::test]
async fn migrate_legacy_dry_run_reports_rejected_rows_by_line_and_writes_nothing() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols"]).await;
    register(&server, "acme", "source", "ios-prod", "").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "legacy.csv", LEGACY_CSV);
    let file = quote(file.display());

    let dry = accessd(
        &server,
        format!("migrate-legacy --file {file} --dry-run --output json"),
    )
    .await;
    assert_eq!(dry.code, 3, "{}", dry.stderr);
    let report: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["revision"], 2);
    assert_eq!(
        report["changed"],
        serde_json::json!([
            {"workspace_id": "acme", "user_id": "carl", "membership_set": "member",
             "grants_added": [{"role": "source_admin", "scope": "source:ios-prod"}]},
            {"workspace_id": "acme", "user_id": "rita", "membership_set": "member",
             "grants_added": [{"role": "source_read", "scope": "all"},
                              {"role": "warehouse_read", "scope": "all"},
                              {"role": "protocols_read", "scope": "all"}]},
        ])
    );
    let rejected: Vec<(u64, &str)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["user_id"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(5, "carl"), (6, "zed"), (7, "ann")]);
    let unknown_role = report["rejected"][2]["reason"].as_str().unwrap();
    assert!(
        unknown_role.contains("the file says `admin`"),
        "{unknown_role}"
    );

    let table = accessd(&server, format!("migrate-legacy --file {file} --dry-run")).await;
    assert_eq!(table.code, 3);
    assert!(table.stdout.starts_with(
        "dry run: 2 users would change, 3 rows rejected; nothing was written (revision 2)\n"
    ));
    assert!(
        table
            .stdout
            .contains("\nLINE  WORKSPACE  USER  LEGACY ROLE")
    );
    let team = accessd(&server, "list --workspace acme --output json")
        .await
        .json();
    assert_eq!(team.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn migrate_legacy_migrates_once_and_a_rerun_changes_nothing() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    register(&server, "acme", "source", "ios-prod", "").await;
    let dir = tempfile::tempdir().unwrap();
    let clean: String = LEGACY_CSV
        .lines()
        .filter(|line| {
            !line.contains("android") && !line.contains("nope") && !line.contains("admin")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let file = write_file(dir.path(), "legacy.csv", &clean);
    let migrate = format!("migrate-legacy --file {}", quote(file.display()));

    let first = accessd(&server, &migrate).await;
    assert!(
        first
            .ok()
            .starts_with("2 users changed, 0 rows rejected (revision ")
    );
    assert!(
        first
            .stdout
            .contains("source_read on all, warehouse_read on all\n")
    );
    let second = accessd(&server, &migrate).await;
    assert!(
        second
            .ok()
            .starts_with("0 users changed, 0 rows rejected (revision ")
    );
    assert!(
        allowed(
            &server,
            "acme",
            "carl",
            "source.update",
            res("source", "ios-prod")
        )
        .await
    );
    assert!(!allowed(&server, "acme", "carl", "workspace.manage_access", None).await);
}

#[tokio::test]
async fn a_malformed_legacy_csv_is_refused_with_its_line_before_anything_is_sent() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "legacy.csv",
        "workspace_id,user_id,legacy_role,source_id\nacme,olivia,workspace_owner,\nacme,sam\n",
    );
    let run = accessd(
        &server,
        format!("migrate-legacy --file {}", quote(file.display())),
    )
    .await;
    assert_eq!(
        run.failed(1),
        format!(
            "accessd: `{}`: line 3: expected 4 fields \
             (`workspace_id,user_id,legacy_role,source_id`), found 2\n",
            file.display()
        )
    );
    let header = write_file(dir.path(), "header.csv", "ws,user\nacme,olivia\n");
    let run = accessd(
        &server,
        format!("migrate-legacy --file {}", quote(header.display())),
    )
    .await;
    assert!(run.failed(1).contains("line 1: expected the header"));
    let missing = dir.path().join("missing.csv");
    let run = accessd(
        &server,
        format!("migrate-legacy --file {}", quote(missing.display())),
    )
    .await;
    assert!(run.failed(1).contains("cannot read"));
}
