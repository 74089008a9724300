//! The operator CLI: the real `accessd` binary run against a TestServer (or, for
//! `serve`, run as the server), checking its output, its JSON and its exit status.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    time::Duration,
};

use accessd::{
    model::{Catalog, catalog::BUILT_IN},
    proto,
    server::ServeOptions,
};
use serde_json::Value;

use crate::harness::*;

/// What a run of the binary printed, and its exit status.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The standard output of a run that must have succeeded.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        &self.stdout
    }

    /// The standard output of a successful run, as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap()
    }

    /// The error message of a run that must have failed with `code`.
    fn failed(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}

/// Runs `accessd ARGS` with `env` and no other `ACCESSD_*` variable. The child runs on
/// a blocking thread so that an in-process TestServer keeps serving meanwhile.
async fn accessd_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_accessd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACCESSD_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `accessd ARGS` against `server` (named by `ACCESSD_ADDR`).
async fn accessd(server: &TestServer, args: &[&str]) -> Run {
    let addr = format!("http://{}", server.addr);
    accessd_with(&[("ACCESSD_ADDR", &addr)], args).await
}

/// Workspace `acme` owned by olivia, with member sam holding `source_admin` on the
/// registered source `ios-prod`.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &["protocols"]).await;
    add_member(server, "acme", "sam").await;
    register(server, "acme", "source", "ios-prod", "").await;
    grant(
        server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The built-in catalog without the `warehouse_read` role (nor its use by a legacy role).
fn catalog_without_warehouse_read() -> String {
    BUILT_IN
        .split("\n\n")
        .filter(|block| !block.contains("name = \"warehouse_read\""))
        .collect::<Vec<_>>()
        .join("\n\n")
        .lines()
        .filter(|line| !line.contains("role = \"warehouse_read\""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn check_prints_the_decision_with_its_basis_and_revision_and_exits_zero_either_way() {
    let server = TestServer::start().await;
    acme(&server).await;
    let allowed = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--permission",
            "source.update",
            "--resource",
            "source:ios-prod",
        ],
    )
    .await;
    let lines: Vec<&str> = allowed.ok().lines().collect();
    assert_eq!(lines[0], "DECISION  BASIS  REVISION  EXPLANATION");
    assert!(lines[1].starts_with("allowed   grant  4  "), "{}", lines[1]);
    assert!(lines[1].contains("`source_admin` on source `ios-prod`"));

    let create = [
        "check",
        "--workspace",
        "acme",
        "--user",
        "sam",
        "--permission",
        "source.create",
    ];
    let denied = accessd(&server, &create).await;
    assert!(
        denied
            .ok()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("denied    no_covering_grant")
    );
    let with_exit_code = accessd(&server, &[&create[..], &["--exit-code"]].concat()).await;
    assert_eq!(with_exit_code.code, 3);
    assert!(with_exit_code.stdout.contains("denied"));
}

#[tokio::test]
async fn an_allowed_check_with_exit_code_still_exits_zero() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "olivia",
            "--permission",
            "workspace.manage_access",
            "--exit-code",
        ],
    )
    .await;
    assert!(run.ok().contains("owner"));
}

#[tokio::test]
async fn check_output_json_is_the_decision_with_the_grant_and_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--permission",
            "destination.create",
            "--resource",
            "source:ios-prod",
            "--output",
            "json",
        ],
    )
    .await;
    let json = run.json();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["basis"], "grant");
    assert_eq!(json["grant"]["role"], "source_admin");
    assert_eq!(json["grant"]["scope"], "source:ios-prod");
    assert_eq!(json["revision"], 4);
    assert!(
        json["explanation"]
            .as_str()
            .unwrap()
            .starts_with("allowed: ")
    );

    let denied = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "nobody",
            "--permission",
            "workspace.read",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["basis"], "not_a_member");
    assert!(denied.get("grant").is_none());
}

#[tokio::test]
async fn a_check_the_server_refuses_prints_its_invalid_argument_message_and_exits_one() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--permission",
            "source.fly",
        ],
    )
    .await;
    let stderr = run.failed(1);
    assert!(
        stderr.starts_with("accessd: INVALID_ARGUMENT: `permission`"),
        "{stderr}"
    );
    assert!(stderr.contains("`source.fly`"), "{stderr}");
    assert!(run.stdout.is_empty());
}

#[tokio::test]
async fn grant_to_a_non_member_prints_the_servers_failed_precondition_message_and_exits_one() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        &[
            "grant",
            "--workspace",
            "acme",
            "--user",
            "bob",
            "--role",
            "warehouse_read",
            "--all",
        ],
    )
    .await;
    let stderr = run.failed(1);
    assert!(
        stderr.starts_with("accessd: FAILED_PRECONDITION: `user_id`: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("`bob`") && stderr.contains("not a member"),
        "{stderr}"
    );
}

#[tokio::test]
async fn grant_and_revoke_on_one_instance_and_on_all_instances_show_in_the_team_table() {
    let server = TestServer::start().await;
    acme(&server).await;
    register(&server, "acme", "source", "android", "").await;
    let on_android = [
        "--workspace",
        "acme",
        "--user",
        "sam",
        "--role",
        "source_read",
        "--resource",
        "source:android",
    ];
    let granted = accessd(&server, &[&["grant"][..], &on_android].concat()).await;
    assert_eq!(granted.ok(), "changed at revision 6\n");
    let again = accessd(&server, &[&["grant"][..], &on_android].concat()).await;
    assert_eq!(again.ok(), "no change: already in effect at revision 6\n");
    let all = accessd(
        &server,
        &[
            "grant",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--role",
            "warehouse_read",
            "--all",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(all, serde_json::json!({"changed": true, "revision": 7}));

    let table = accessd(&server, &["list", "--workspace", "acme"]).await;
    assert_eq!(
        table.ok(),
        "USER    MEMBERSHIP  ROLE            SCOPE\n\
         olivia  owner       -               -\n\
         sam     member      source_admin    source:ios-prod\n\
         sam     member      source_read     source:android\n\
         sam     member      warehouse_read  all\n"
    );

    let revoked = accessd(&server, &[&["revoke"][..], &on_android].concat()).await;
    assert_eq!(revoked.ok(), "changed at revision 8\n");
    let again = accessd(&server, &[&["revoke"][..], &on_android].concat()).await;
    assert!(again.ok().starts_with("no change"));
    let revoked_all = accessd(
        &server,
        &[
            "revoke",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--role",
            "warehouse_read",
            "--all",
        ],
    )
    .await;
    assert!(revoked_all.ok().starts_with("changed"));
    let sam = accessd(
        &server,
        &[
            "list",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(
        sam,
        serde_json::json!([{"user_id": "sam", "membership": "member",
            "grants": [{"role": "source_admin", "scope": "source:ios-prod"}]}])
    );
}

#[tokio::test]
async fn grant_needs_exactly_one_of_all_and_resource() {
    let server = TestServer::start().await;
    let base = [
        "grant",
        "--workspace",
        "acme",
        "--user",
        "sam",
        "--role",
        "source_admin",
    ];
    let neither = accessd(&server, &base).await;
    assert!(neither.failed(2).contains("<--all|--resource <TYPE:ID>>"));
    let both = accessd(
        &server,
        &[&base[..], &["--all", "--resource", "source:ios-prod"]].concat(),
    )
    .await;
    assert!(both.failed(2).contains("cannot be used with"));
}

#[tokio::test]
async fn a_resource_flag_without_a_type_is_a_usage_error_naming_the_expected_form() {
    let server = TestServer::start().await;
    let run = accessd(
        &server,
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--permission",
            "source.read",
            "--resource",
            "ios-prod",
        ],
    )
    .await;
    assert!(
        run.failed(2)
            .contains("expected `TYPE:ID` such as `source:ios-prod`, got `ios-prod`")
    );
}

#[tokio::test]
async fn members_add_set_and_remove_change_membership_and_the_last_owner_stays() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    let member = |verb: &'static str, user: &'static str, extra: &'static [&'static str]| {
        [
            &["members", verb, "--workspace", "acme", "--user", user][..],
            extra,
        ]
        .concat()
    };
    accessd(&server, &member("add", "sam", &[])).await.ok();
    accessd(&server, &member("add", "rita", &[])).await.ok();
    let refused = accessd(&server, &member("add", "eve", &["--actor", "sam"])).await;
    assert!(
        refused
            .failed(1)
            .starts_with("accessd: PERMISSION_DENIED: `actor_user_id`: ")
    );
    accessd(&server, &member("add", "eve", &["--actor", "olivia"]))
        .await
        .ok();
    accessd(&server, &member("set", "sam", &["--owner"]))
        .await
        .ok();
    accessd(&server, &member("remove", "olivia", &[]))
        .await
        .ok();
    accessd(&server, &member("remove", "rita", &["--actor", "sam"]))
        .await
        .ok();
    let table = accessd(&server, &["list", "--workspace", "acme"]).await;
    assert_eq!(
        table.ok(),
        "USER  MEMBERSHIP  ROLE  SCOPE\n\
         eve   member      -     -\n\
         sam   owner       -     -\n"
    );
    let last = accessd(&server, &member("set", "sam", &[])).await;
    assert!(last.failed(1).starts_with("accessd: FAILED_PRECONDITION: "));
    let last = accessd(&server, &member("remove", "sam", &[])).await;
    assert!(last.failed(1).contains("last owner"));
}

#[tokio::test]
async fn resources_register_and_delete_a_source_with_its_destination() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "rita").await;
    let resources = |verb: &'static str, extra: &'static [&'static str]| {
        [&["resources", verb, "--workspace", "acme"][..], extra].concat()
    };
    accessd(
        &server,
        &resources("register", &["--resource", "source:ios-prod"]),
    )
    .await
    .ok();
    let no_parent = accessd(
        &server,
        &resources("register", &["--resource", "destination:amplitude"]),
    )
    .await;
    assert!(
        no_parent
            .failed(1)
            .starts_with("accessd: INVALID_ARGUMENT: `parent_id`")
    );
    accessd(
        &server,
        &resources(
            "register",
            &[
                "--resource",
                "destination:amplitude",
                "--parent",
                "ios-prod",
            ],
        ),
    )
    .await
    .ok();
    grant(&server, "acme", "rita", "source_read", all()).await;
    let check = [
        "check",
        "--workspace",
        "acme",
        "--user",
        "rita",
        "--permission",
        "destination.read",
        "--resource",
        "destination:amplitude",
        "--output",
        "json",
    ];
    assert_eq!(accessd(&server, &check).await.json()["allowed"], true);
    let deleted = accessd(
        &server,
        &resources("delete", &["--resource", "source:ios-prod"]),
    )
    .await;
    assert!(deleted.ok().starts_with("changed"));
    let gone = accessd(&server, &check).await.json();
    assert_eq!(gone["basis"], "resource_not_registered");
}

#[tokio::test]
async fn workspaces_create_set_products_and_delete() {
    let server = TestServer::start().await;
    let create = [
        "workspaces",
        "create",
        "--workspace",
        "acme",
        "--owner",
        "olivia",
        "--products",
        "protocols,personas",
    ];
    accessd(&server, &create).await.ok();
    let exists = accessd(&server, &create).await;
    assert!(exists.failed(1).starts_with("accessd: ALREADY_EXISTS: "));
    let check = [
        "check",
        "--workspace",
        "acme",
        "--user",
        "olivia",
        "--permission",
        "tracking_plan.create",
        "--output",
        "json",
    ];
    assert_eq!(accessd(&server, &check).await.json()["allowed"], true);
    accessd(
        &server,
        &[
            "workspaces",
            "set-products",
            "--workspace",
            "acme",
            "--products",
            "",
        ],
    )
    .await
    .ok();
    assert_eq!(
        accessd(&server, &check).await.json()["basis"],
        "product_not_enabled"
    );
    accessd(
        &server,
        &[
            "workspaces",
            "set-products",
            "--workspace",
            "acme",
            "--products",
            "protocols",
        ],
    )
    .await
    .ok();
    assert_eq!(accessd(&server, &check).await.json()["allowed"], true);
    accessd(&server, &["workspaces", "delete", "--workspace", "acme"])
        .await
        .ok();
    assert_eq!(
        accessd(&server, &check).await.json()["basis"],
        "not_a_member"
    );
    let missing = accessd(&server, &["list", "--workspace", "acme"]).await;
    assert!(missing.failed(1).starts_with("accessd: NOT_FOUND: "));
}

#[tokio::test]
async fn list_follows_page_tokens_to_the_end_and_filters() {
    let server = TestServer::start().await;
    acme(&server).await;
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        add_member(&server, "acme", user).await;
    }
    grant(&server, "acme", "u3", "warehouse_read", all()).await;
    let everyone = accessd(
        &server,
        &[
            "list",
            "--workspace",
            "acme",
            "--page-size",
            "2",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    let users: Vec<&str> = everyone
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["olivia", "sam", "u1", "u2", "u3", "u4", "u5"]);

    let by_role = accessd(
        &server,
        &["list", "--workspace", "acme", "--role", "warehouse_read"],
    )
    .await;
    assert_eq!(
        by_role.ok(),
        "USER  MEMBERSHIP  ROLE            SCOPE\n\
         u3    member      warehouse_read  all\n"
    );
    let by_resource = accessd(
        &server,
        &[
            "list",
            "--workspace",
            "acme",
            "--resource",
            "source:ios-prod",
            "--page-size",
            "1",
        ],
    )
    .await;
    assert_eq!(
        by_resource.ok(),
        "USER    MEMBERSHIP  ROLE          SCOPE\n\
         olivia  owner       -             -\n\
         sam     member      source_admin  source:ios-prod\n"
    );
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
    let run = accessd(
        &server,
        &["export", "--workspace", "acme", "--format", "csv"],
    )
    .await;
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
        &[
            "export",
            "--workspace",
            "acme",
            "--format",
            "json",
            "--page-size",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
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
    let missing = accessd(&server, &["export", "--workspace", "nope"]).await;
    assert!(missing.failed(1).starts_with("accessd: NOT_FOUND: "));
}

#[tokio::test]
async fn lookup_resources_follows_pages_and_lookup_subjects_says_why() {
    let server = TestServer::start().await;
    acme(&server).await;
    for id in ["a", "b", "c", "d"] {
        register(&server, "acme", "source", id, "").await;
    }
    for id in ["b", "d"] {
        grant(&server, "acme", "sam", "source_admin", one("source", id)).await;
    }
    let resources = accessd(
        &server,
        &[
            "lookup",
            "resources",
            "--workspace",
            "acme",
            "--user",
            "sam",
            "--permission",
            "source.update",
            "--page-size",
            "1",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(
        resources,
        serde_json::json!([
            {"type": "source", "id": "b"},
            {"type": "source", "id": "d"},
            {"type": "source", "id": "ios-prod"},
        ])
    );
    let subjects = accessd(
        &server,
        &[
            "lookup",
            "subjects",
            "--workspace",
            "acme",
            "--permission",
            "source.update",
            "--resource",
            "source:ios-prod",
        ],
    )
    .await;
    assert_eq!(
        subjects.ok(),
        "USER    BASIS  ROLE          SCOPE\n\
         olivia  owner  -             -\n\
         sam     grant  source_admin  source:ios-prod\n"
    );
    let refused = accessd(
        &server,
        &[
            "lookup",
            "subjects",
            "--workspace",
            "acme",
            "--permission",
            "source.update",
        ],
    )
    .await;
    assert!(refused.failed(1).starts_with("accessd: INVALID_ARGUMENT: "));
}

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
    let file = file.to_str().unwrap();

    let dry = accessd(
        &server,
        &[
            "migrate-legacy",
            "--file",
            file,
            "--dry-run",
            "--output",
            "json",
        ],
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

    let table = accessd(&server, &["migrate-legacy", "--file", file, "--dry-run"]).await;
    assert_eq!(table.code, 3);
    assert!(table.stdout.starts_with(
        "dry run: 2 users would change, 3 rows rejected; nothing was written (revision 2)\n"
    ));
    assert!(
        table
            .stdout
            .contains("\nLINE  WORKSPACE  USER  LEGACY ROLE")
    );
    let team = accessd(
        &server,
        &["list", "--workspace", "acme", "--output", "json"],
    )
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
    let args = ["migrate-legacy", "--file", file.to_str().unwrap()];

    let first = accessd(&server, &args).await;
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
    let second = accessd(&server, &args).await;
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
        &["migrate-legacy", "--file", file.to_str().unwrap()],
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
        &["migrate-legacy", "--file", header.to_str().unwrap()],
    )
    .await;
    assert!(run.failed(1).contains("line 1: expected the header"));
    let missing = dir.path().join("missing.csv");
    let run = accessd(
        &server,
        &["migrate-legacy", "--file", missing.to_str().unwrap()],
    )
    .await;
    assert!(run.failed(1).contains("cannot read"));
}

#[tokio::test]
async fn admin_calls_send_the_token_from_the_flag_or_the_environment() {
    let options = ServeOptions {
        admin_token: Some("s3cret".into()),
        ..ServeOptions::default()
    };
    let server = TestServer::start_with(
        Arc::new(tempfile::tempdir().unwrap()),
        Catalog::built_in(),
        options,
    )
    .await;
    let create = [
        "workspaces",
        "create",
        "--workspace",
        "acme",
        "--owner",
        "olivia",
        "--products",
        "",
    ];
    let refused = accessd(&server, &create).await;
    assert!(refused.failed(1).starts_with("accessd: UNAUTHENTICATED: "));
    accessd(&server, &[&create[..], &["--token", "s3cret"]].concat())
        .await
        .ok();
    let addr = format!("http://{}", server.addr);
    accessd_with(
        &[("ACCESSD_ADDR", &addr), ("ACCESSD_ADMIN_TOKEN", "s3cret")],
        &["members", "add", "--workspace", "acme", "--user", "sam"],
    )
    .await
    .ok();
    let read = accessd(&server, &["list", "--workspace", "acme"]).await;
    assert!(read.ok().contains("sam"));
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_the_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let run = accessd_with(
        &[],
        &["list", "--workspace", "acme", "--addr", addr.as_str()],
    )
    .await;
    assert!(
        run.failed(1)
            .starts_with(&format!("accessd: cannot connect to `http://{addr}`: ")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn roles_prints_the_catalog_in_force() {
    let built_in = accessd_with(&[], &["roles"]).await;
    assert!(built_in.ok().contains("\nwarehouse_read "));
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "roles.toml", &catalog_without_warehouse_read());
    let trimmed = accessd_with(&[], &["roles", "--roles", file.to_str().unwrap()]).await;
    assert!(!trimmed.ok().contains("warehouse_read"));
    assert!(trimmed.stdout.contains("\nwarehouse_admin "));
}

#[tokio::test]
async fn serve_with_a_bad_roles_file_fails_fast_with_a_precise_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |file: &Path| {
        vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--data-dir".to_owned(),
            data.display().to_string(),
            "--roles".to_owned(),
            file.display().to_string(),
        ]
    };
    let unknown = BUILT_IN.replace(
        "permissions = [\"warehouse.read\"]",
        "permissions = [\"warehouse.peek\"]",
    );
    let file = write_file(dir.path(), "unknown.toml", &unknown);
    let args = serve(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = accessd_with(&[], &args).await;
    assert_eq!(
        run.failed(1).lines().last().unwrap(),
        format!(
            "accessd: role catalog `{}`: role `warehouse_read`: unknown permission `warehouse.peek`",
            file.display()
        )
    );

    let twice = BUILT_IN.replace("name = \"warehouse_read\"", "name = \"warehouse_admin\"");
    let file = write_file(dir.path(), "twice.toml", &twice);
    let args = serve(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = accessd_with(&[], &args).await;
    assert!(
        run.failed(1)
            .contains("role `warehouse_admin` is defined twice"),
        "{}",
        run.stderr
    );

    let file = dir.path().join("missing.toml");
    let args = serve(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = accessd_with(&[], &args).await;
    assert!(run.failed(1).contains("cannot read role catalog"));
    assert!(
        !data.exists(),
        "the database was opened before the catalog was valid"
    );
}

/// A `serve` child process, with its log lines as they come.
struct ServeProcess {
    child: std::process::Child,
    /// Its log lines not yet read.
    logs: mpsc::Receiver<Value>,
}

impl ServeProcess {
    /// Starts `accessd serve ARGS` on an ephemeral port with JSON logs, and waits for the
    /// line saying it serves; returns it with the address and the lines logged before.
    fn start(args: &[&str]) -> (Self, String, Vec<Value>) {
        let (sender, logs) = mpsc::channel();
        // Owned by `Self` at once, so that a failure below still stops it (see `Drop`).
        let mut process = Self {
            logs,
            child: Command::new(env!("CARGO_BIN_EXE_accessd"))
                .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
                .args(args)
                .env("ACCESSD_LOG", "info")
                .env_remove("ACCESSD_ADMIN_TOKEN")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        };
        let stderr = process.child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                // Keep draining after the test stops listening, so the server never
                // blocks on a full pipe.
                let _ = sender.send(value);
            }
        });
        let mut before = Vec::new();
        loop {
            let line = process.logs.recv_timeout(Duration::from_secs(60)).unwrap();
            if line["fields"]["message"] == "serving" {
                let addr = line["fields"]["address"].as_str().unwrap().to_owned();
                return (process, format!("http://{addr}"), before);
            }
            before.push(line);
        }
    }

    /// Stops it with SIGTERM, as an operator would, and expects a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
    }

    /// Stops it as `stop` does, and returns the lines it logged since it started serving.
    fn stop_with_logs(mut self) -> Vec<Value> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut lines = Vec::new();
        // The lines end when the process exits and closes its standard error.
        loop {
            match self.logs.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the server did not stop"),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {lines:?}");
        lines
    }
}

impl Drop for ServeProcess {
    /// A failing test must not leave the server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn grants_of_a_role_the_catalog_no_longer_has_are_reported_at_start_up_and_denied() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "rita").await;
    grant(&server, "acme", "rita", "warehouse_read", all()).await;
    grant(&server, "acme", "rita", "source_read", all()).await;
    register(&server, "acme", "warehouse", "snowflake", "").await;
    let snowflake = || res("warehouse", "snowflake");
    assert!(allowed(&server, "acme", "rita", "warehouse.read", snowflake()).await);
    let data = server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let roles = write_file(dir.path(), "roles.toml", &catalog_without_warehouse_read());
    let (serve, addr, logs) = ServeProcess::start(&[
        "--data-dir",
        data.path().to_str().unwrap(),
        "--roles",
        roles.to_str().unwrap(),
    ]);
    let summary: Vec<&Value> = logs
        .iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "accessd::run")
        .collect();
    assert_eq!(summary.len(), 1, "{logs:?}");
    assert_eq!(
        summary[0]["fields"]["message"],
        "1 stored grant of 1 role the catalog does not have is denied: `warehouse_read` (1); \
         they apply again once a catalog with that role is in force"
    );
    let check = accessd_with(
        &[("ACCESSD_ADDR", &addr)],
        &[
            "check",
            "--workspace",
            "acme",
            "--user",
            "rita",
            "--permission",
            "warehouse.read",
            "--resource",
            "warehouse:snowflake",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(check["allowed"], false);
    assert_eq!(check["basis"], "no_covering_grant");
    let team = accessd_with(
        &[("ACCESSD_ADDR", &addr)],
        &["list", "--workspace", "acme", "--user", "rita"],
    )
    .await;
    assert_eq!(
        team.ok(),
        "USER  MEMBERSHIP  ROLE         SCOPE\n\
         rita  member      source_read  all\n"
    );
    serve.stop();

    let server = TestServer::start_with(data, Catalog::built_in(), ServeOptions::default()).await;
    assert!(allowed(&server, "acme", "rita", "warehouse.read", snowflake()).await);
    let listed = server
        .access()
        .list_access(proto::ListAccessRequest {
            workspace_id: "acme".into(),
            user_id: "rita".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<&str> = listed.entries[0]
        .grants
        .iter()
        .map(|g| g.role.as_str())
        .collect();
    assert_eq!(roles, ["source_read", "warehouse_read"]);
}

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
    let whole = accessd(&server, &["export", "--format", "records"]).await;
    let whole = whole.ok();
    assert_eq!(whole, format!("{ACME_RECORDS}{GLOBEX_RECORDS}"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    let to_file = accessd(
        &server,
        &[
            "export",
            "--format",
            "records",
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(to_file.ok(), "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), whole);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["all.jsonl"], "a temporary file was left behind");

    let one = ["export", "--workspace", "globex", "--format", "records"];
    assert_eq!(accessd(&server, &one).await.ok(), GLOBEX_RECORDS);
    let file = dir.path().join("globex.jsonl");
    accessd(
        &server,
        &[&one[..], &["--out", file.to_str().unwrap()]].concat(),
    )
    .await
    .ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), GLOBEX_RECORDS);

    let missing = dir.path().join("nope.jsonl");
    let run = accessd(
        &server,
        &[
            "export",
            "--workspace",
            "nope",
            "--format",
            "records",
            "--out",
            missing.to_str().unwrap(),
        ],
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
    let file = dir.path().join("all.jsonl");
    let file = file.to_str().unwrap();
    accessd(&source, &["export", "--format", "records", "--out", file])
        .await
        .ok();
    let exported = std::fs::read_to_string(file).unwrap();
    let records = exported.lines().count() as u64;

    let target = TestServer::start().await;
    let report = accessd(&target, &["import", file, "--output", "json"])
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
    let again = accessd(&target, &["export", "--format", "records"]).await;
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
    let rerun = accessd(&target, &["import", file]).await;
    let expected = format!(
        "{records} records: 0 applied, {records} unchanged, 0 rejected; revision 1 after 0 batches; "
    );
    assert!(rerun.ok().starts_with(&expected), "{}", rerun.stdout);
    assert!(rerun.stdout.ends_with(" records/s)\n"), "{}", rerun.stdout);
    assert_eq!(rerun.stdout.lines().count(), 1);

    // One workspace's export, imported alone, is that workspace alone.
    let globex = dir.path().join("globex.jsonl");
    let globex = globex.to_str().unwrap();
    accessd(
        &source,
        &[
            "export",
            "--workspace",
            "globex",
            "--format",
            "records",
            "--out",
            globex,
        ],
    )
    .await
    .ok();
    let fresh = TestServer::start().await;
    let report = accessd(&fresh, &["import", globex]).await;
    assert!(report.ok().starts_with(
        "3 records: 3 applied, 0 unchanged, 0 rejected; revision 1 after 1 batches; "
    ));
    let whole = accessd(&fresh, &["export", "--format", "records"]).await;
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
    let file = file.to_str().unwrap();

    let run = accessd(&server, &["import", file, "--output", "json"]).await;
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
    let team = accessd(&server, &["list", "--workspace", "acme"]).await;
    assert_eq!(
        team.ok(),
        "USER    MEMBERSHIP  ROLE            SCOPE\n\
         olivia  owner       -               -\n\
         sam     member      source_admin    source:ios\n\
         sam     member      warehouse_read  all\n"
    );

    // Again, as a table: nothing is applied twice, the same lines are rejected.
    let rerun = accessd(&server, &["import", file]).await;
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
    let run = accessd(&server, &["import", missing.to_str().unwrap()]).await;
    let stderr = run.failed(1);
    assert!(
        stderr.starts_with(&format!("accessd: `{}`: cannot read: ", missing.display())),
        "{stderr}"
    );
    assert!(run.stdout.is_empty());
    // A directory opens, but cannot be read.
    let run = accessd(&server, &["import", dir.path().to_str().unwrap()]).await;
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
async fn export_as_csv_or_json_needs_a_workspace() {
    let server = TestServer::start().await;
    populated(&server).await;
    for format in ["csv", "json"] {
        let run = accessd(&server, &["export", "--format", format]).await;
        assert_eq!(
            run.failed(1),
            "accessd: `--workspace` is required for the csv and json team tables\n"
        );
        assert!(run.stdout.is_empty());
    }
}

#[tokio::test]
async fn serve_stops_at_its_drain_deadline_with_a_call_still_open_and_says_so() {
    use tokio_stream::wrappers::ReceiverStream;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };

    let dir = tempfile::tempdir().unwrap();
    let (serve, addr, _) = ServeProcess::start(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--drain-timeout",
        "1",
    ]);
    // A reflection stream whose client never ends its requests stays open.
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(addr)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());

    let logs = tokio::task::spawn_blocking(move || serve.stop_with_logs())
        .await
        .unwrap();
    let warnings: Vec<&Value> = logs.iter().filter(|line| line["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "{logs:?}");
    let waited = warnings[0]["fields"]["waited_seconds"].as_f64().unwrap();
    assert!((1.0..15.0).contains(&waited), "{waited}");
    assert!(
        warnings[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("drain deadline passed after 1.0 s: "),
        "{logs:?}"
    );
    assert!(answers.message().await.is_err());
    drop(requests);
}
