//! Moving data in and out: `export` as records, CSV or JSON, to standard output or a
//! file, and `import` of records, with its report of the lines it refused.

use accessd::proto;
use serde_json::Value;

use crate::harness::*;

use super::{accessd, acme, quote, write_file};

/// Two workspaces with every kind of record: owners (one holding a grant), members with
/// and without grants, a destination under its source, grants on one instance and on
/// all, and a user id that JSON must escape.
async fn populated(server: &TestServer) {
    acme(server).await;
    set_membership(server, "acme", "zoe", proto::Membership::Owner).await;
    add_member(server, "acme", "rita").await;
    add_member(server, "acme", r#"jo"jr\o'neil"#).await;
    register(server, "acme", "source", "android", "").await;
    register(server, "acme", "destination", "amplitude", "ios-prod").await;
    register(server, "acme", "warehouse", "bq", "").await;
    register(server, "acme", "tracking_plan", "checkout", "").await;
    grant(server, "acme", "sam", "protocols_read", all()).await;
    grant(
        server,
        "acme",
        "zoe",
        "source_read",
        one("source", "android"),
    )
    .await;
    grant(server, "acme", r#"jo"jr\o'neil"#, "warehouse_read", all()).await;
    create_workspace(server, "globex", "gina", &["personas"]).await;
    add_member(server, "globex", "sam").await;
    grant(server, "globex", "sam", "personas_user", all()).await;
}

/// The lines of acme in an export: the workspace, its resources (parents first), then
/// each user's membership (owners are in the workspace line) and grants.
const ACME_RECORDS: &str = r#"{"workspace":{"id":"acme","products":["connections","protocols"],"owners":["olivia","zoe"]}}
{"resource":{"workspace":"acme","type":"source","id":"android"}}
{"resource":{"workspace":"acme","type":"source","id":"ios-prod"}}
{"resource":{"workspace":"acme","type":"warehouse","id":"bq"}}
{"resource":{"workspace":"acme","type":"tracking_plan","id":"checkout"}}
{"resource":{"workspace":"acme","type":"destination","id":"amplitude","parent":"ios-prod"}}
{"member":{"workspace":"acme","user":"jo\"jr\\o'neil","membership":"member"}}
{"grant":{"workspace":"acme","user":"jo\"jr\\o'neil","role":"warehouse_read","scope":"all"}}
{"member":{"workspace":"acme","user":"rita","membership":"member"}}
{"member":{"workspace":"acme","user":"sam","membership":"member"}}
{"grant":{"workspace":"acme","user":"sam","role":"source_admin","scope":{"type":"source","id":"ios-prod"}}}
{"grant":{"workspace":"acme","user":"sam","role":"protocols_read","scope":"all"}}
{"grant":{"workspace":"acme","user":"zoe","role":"source_read","scope":{"type":"source","id":"android"}}}
"#;

/// The lines of globex in an export.
const GLOBEX_RECORDS: &str = r#"{"workspace":{"id":"globex","products":["connections","personas"],"owners":["gina"]}}
{"member":{"workspace":"globex","user":"sam","membership":"member"}}
{"grant":{"workspace":"globex","user":"sam","role":"personas_user","scope":"all"}}
"#;

#[tokio::test]
async fn export_records_writes_the_whole_database_or_one_workspace_to_stdout_or_a_file() {
    let server = TestServer::start().await;
    populated(&server).await;
    let whole = accessd(&server, "export --format records").await;
    let whole = whole.ok();
    assert_eq!(whole, format!("{ACME_RECORDS}{GLOBEX_RECORDS}"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    let to_file = accessd(
        &server,
        format!("export --format records --out {}", quote(file.display())),
    )
    .await;
    assert_eq!(to_file.ok(), "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), whole);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["all.jsonl"], "a temporary file was left behind");

    let one = "export --workspace globex --format records";
    assert_eq!(accessd(&server, one).await.ok(), GLOBEX_RECORDS);
    let file = dir.path().join("globex.jsonl");
    accessd(&server, format!("{one} --out {}", quote(file.display())))
        .await
        .ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), GLOBEX_RECORDS);

    let missing = dir.path().join("nope.jsonl");
    let run = accessd(
        &server,
        format!(
            "export --workspace nope --format records --out {}",
            quote(missing.display())
        ),
    )
    .await;
    assert!(
        run.failed(1).starts_with("accessd: NOT_FOUND: "),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "a file was left"
    );
}

#[tokio::test]
async fn import_of_an_export_into_a_fresh_server_reproduces_it_byte_for_byte() {
    let source = TestServer::start().await;
    populated(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.jsonl");
    let file = quote(path.display());
    accessd(&source, format!("export --format records --out {file}"))
        .await
        .ok();
    let exported = std::fs::read_to_string(&path).unwrap();
    let records = exported.lines().count() as u64;

    let target = TestServer::start().await;
    let report = accessd(&target, format!("import {file} --output json"))
        .await
        .json();
    assert_eq!(report["rejections"], serde_json::json!([]));
    for (field, expected) in [
        ("records", records),
        ("applied", records),
        ("unchanged", 0),
        ("rejected", 0),
        ("revision", 1),
        ("batches", 1),
    ] {
        assert_eq!(report[field], expected, "{field}: {report}");
    }
    assert!(report["seconds"].as_f64().unwrap() >= 0.0);
    assert!(report["records_per_second"].as_f64().unwrap() > 0.0);
    let again = accessd(&target, "export --format records").await;
    assert_eq!(again.ok(), exported);
    assert!(
        allowed(
            &target,
            "acme",
            "sam",
            "destination.update",
            res("destination", "amplitude")
        )
        .await
    );

    // Importing it again changes nothing, and says so.
    let rerun = accessd(&target, format!("import {file}")).await;
    let expected = format!(
        "{records} records: 0 applied, {records} unchanged, 0 rejected; revision 1 after 0 batches; "
    );
    assert!(rerun.ok().starts_with(&expected), "{}", rerun.stdout);
    assert!(rerun.stdout.ends_with(" records/s)\n"), "{}", rerun.stdout);
    assert_eq!(rerun.stdout.lines().count(), 1);

    // One workspace's export, imported alone, is that workspace alone.
    let globex = quote(dir.path().join("globex.jsonl").display());
    accessd(
        &source,
        format!("export --workspace globex --format records --out {globex}"),
    )
    .await
    .ok();
    let fresh = TestServer::start().await;
    let report = accessd(&fresh, format!("import {globex}")).await;
    assert!(report.ok().starts_with(
        "3 records: 3 applied, 0 unchanged, 0 rejected; revision 1 after 1 batches; "
    ));
    let whole = accessd(&fresh, "export --format records").await;
    assert_eq!(whole.ok(), GLOBEX_RECORDS);
}

/// A records file with blank lines, lines that do not parse, and records the server
/// refuses, each on a known line.
const FLAWED_RECORDS: &str = "{\"workspace\":{\"id\":\"acme\",\"products\":[],\"owners\":[\"olivia\"]}}

{\"member\":{\"workspace\":\"acme\",\"user\":\"sam\",\"membership\":\"member\"}}
not json
{\"team\":{\"workspace\":\"acme\"}}
   \t
{\"grant\":{\"workspace\":\"acme\",\"user\":\"sam\",\"role\":\"warehouse_read\",\"scope\":\"everything\"}}
{\"grant\":{\"workspace\":\"acme\",\"user\":\"sam\",\"role\":\"no_such_role\",\"scope\":\"all\"}}\r
{\"grant\":{\"workspace\":\"acme\",\"user\":\"bob\",\"role\":\"warehouse_read\",\"scope\":\"all\"}}
{\"grant\":{\"workspace\":\"acme\",\"user\":\"sam\",\"role\":\"warehouse_read\",\"scope\":\"all\"}}


{\"resource\":{\"workspace\":\"acme\",\"type\":\"source\",\"id\":\"ios\"}}
{\"grant\":{\"workspace\":\"acme\",\"user\":\"sam\",\"role\":\"source_admin\",\"scope\":{\"type\":\"source\"}}}
{\"grant\":{\"workspace\":\"acme\",\"user\":\"sam\",\"role\":\"source_admin\",\"scope\":{\"type\":\"source\",\"id\":\"ios\"}}}";

#[tokio::test]
async fn import_reports_malformed_and_refused_lines_by_line_number_and_applies_the_rest() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "flawed.jsonl", FLAWED_RECORDS);
    let file = quote(file.display());

    let run = accessd(&server, format!("import {file} --output json")).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let counts: Vec<u64> = ["records", "applied", "unchanged", "rejected", "batches"]
        .iter()
        .map(|field| report[field].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [11, 5, 0, 6, 1], "{report}");
    let rejections: Vec<(u64, &str)> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    let lines: Vec<u64> = rejections.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [4, 5, 7, 8, 9, 14], "{rejections:?}");
    assert_eq!(rejections[0].1, "malformed line: expected value (column 1)");
    assert!(
        rejections[1]
            .1
            .starts_with("malformed line: unknown variant `team`, expected one of `workspace`"),
        "{rejections:?}"
    );
    assert_eq!(
        rejections[2].1,
        "malformed line: `scope`: must be \"all\" or {\"type\", \"id\"}, not `everything`"
    );
    assert_eq!(rejections[3].1, "`grant.role`: unknown role `no_such_role`");
    assert!(
        rejections[4].1.contains("`bob`") && rejections[4].1.contains("not a member"),
        "{rejections:?}"
    );
    assert!(
        rejections[5]
            .1
            .starts_with("malformed line: a scope: \"all\" or {\"type\": TYPE, \"id\": ID}"),
        "{rejections:?}"
    );
    let team = accessd(&server, "list --workspace acme").await;
    assert_eq!(
        team.ok(),
        "USER    MEMBERSHIP  ROLE            SCOPE\n\
         olivia  owner       -               -\n\
         sam     member      source_admin    source:ios\n\
         sam     member      warehouse_read  all\n"
    );

    // Again, as a table: nothing is applied twice, the same lines are rejected.
    let rerun = accessd(&server, format!("import {file}")).await;
    assert_eq!(rerun.code, 3, "{}", rerun.stderr);
    let (summary, table) = rerun.stdout.split_once('\n').unwrap();
    assert!(
        summary.starts_with(
            "11 records: 0 applied, 5 unchanged, 6 rejected; revision 1 after 0 batches; "
        ),
        "{summary}"
    );
    let table: Vec<&str> = table.lines().collect();
    assert_eq!(table.len(), 7, "{table:?}");
    assert_eq!(table[0], "LINE  REASON");
    assert_eq!(table[1], "4     malformed line: expected value (column 1)");
    assert_eq!(table[4], "8     `grant.role`: unknown role `no_such_role`");
}

#[tokio::test]
async fn import_of_a_file_that_cannot_be_read_exits_one_naming_it() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let run = accessd(&server, format!("import {}", quote(missing.display()))).await;
    let stderr = run.failed(1);
    assert!(
        stderr.starts_with(&format!("accessd: `{}`: cannot read: ", missing.display())),
        "{stderr}"
    );
    assert!(run.stdout.is_empty());
    // A directory opens, but cannot be read.
    let run = accessd(&server, format!("import {}", quote(dir.path().display()))).await;
    assert!(
        run.failed(1).starts_with(&format!(
            "accessd: `{}`: cannot read: ",
            dir.path().display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(server.revision().await, 0);
}

#[tokio::test]
async fn export_csv_has_one_row_per_grant_and_quotes_ids_that_hold_commas() {
    let server = TestServer::start().await;
    acme(&server).await;
    add_member(&server, "acme", "jo,jr").await;
    grant(&server, "acme", "jo,jr", "warehouse_read", all()).await;
    grant(
        &server,
        "acme",
        "jo,jr",
        "source_read",
        one("source", "ios-prod"),
    )
    .await;
    let run = accessd(&server, "export --workspace acme --format csv").await;
    assert_eq!(
        run.ok(),
        "user_id,membership,role,scope_type,scope_id\n\
         \"jo,jr\",member,source_read,source,ios-prod\n\
         \"jo,jr\",member,warehouse_read,all,\n\
         olivia,owner,,,\n\
         sam,member,source_admin,source,ios-prod\n"
    );
}

#[tokio::test]
async fn export_json_to_a_file_holds_every_user_with_membership_and_grants() {
    let server = TestServer::start().await;
    acme(&server).await;
    add_member(&server, "acme", "rita").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("acme.json");
    let run = accessd(
        &server,
        format!(
            "export --workspace acme --format json --page-size 1 --out {}",
            quote(out.display())
        ),
    )
    .await;
    assert_eq!(run.ok(), "");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"user_id": "olivia", "membership": "owner", "grants": []},
            {"user_id": "rita", "membership": "member", "grants": []},
            {"user_id": "sam", "membership": "member",
             "grants": [{"role": "source_admin", "scope": "source:ios-prod"}]},
        ])
    );
    let missing = accessd(&server, "export --workspace nope").await;
    assert!(missing.failed(1).starts_with("accessd: NOT_FOUND: "));
}

#[tokio::test]
async fn export_as_csv_or_json_needs_a_workspace() {
    let server = TestServer::start().await;
    populated(&server).await;
    for format in ["csv", "json"] {
        let run = accessd(&server, format!("export --format {format}")).await;
        assert_eq!(
            run.failed(1),
            "accessd: `--workspace` is required for the csv and json team tables\n"
        );
        assert!(run.stdout.is_empty());
    }
}
