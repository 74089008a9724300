//! The role catalog: `roles` prints the one in force, `serve` refuses a bad one before
//! opening the database, and grants of a role a catalog lacks are denied, not lost.

use std::path::Path;

use accessd::{
    model::{Catalog, catalog::BUILT_IN},
    proto,
    server::ServeOptions,
};
use serde_json::Value;

use crate::harness::*;

use super::{accessd_with, quote, serve::ServeProcess, write_file};

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
async fn roles_prints_the_catalog_in_force() {
    let built_in = accessd_with(&[], "roles").await;
    assert!(built_in.ok().contains("\nwarehouse_read "));
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "roles.toml", &catalog_without_warehouse_read());
    let trimmed = accessd_with(&[], format!("roles --roles {}", quote(file.display()))).await;
    assert!(!trimmed.ok().contains("warehouse_read"));
    assert!(trimmed.stdout.contains("\nwarehouse_admin "));
}

#[tokio::test]
async fn serve_with_a_bad_roles_file_fails_fast_with_a_precise_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |file: &Path| {
        format!(
            "serve --listen 127.0.0.1:0 --data-dir {} --roles {}",
            quote(data.display()),
            quote(file.display())
        )
    };
    let unknown = BUILT_IN.replace(
        "permissions = [\"warehouse.read\"]",
        "permissions = [\"warehouse.peek\"]",
    );
    let file = write_file(dir.path(), "unknown.toml", &unknown);
    let run = accessd_with(&[], serve(&file)).await;
    assert_eq!(
        run.failed(1).lines().last().unwrap(),
        format!(
            "accessd: role catalog `{}`: role `warehouse_read`: unknown permission `warehouse.peek`",
            file.display()
        )
    );

    let twice = BUILT_IN.replace("name = \"warehouse_read\"", "name = \"warehouse_admin\"");
    let file = write_file(dir.path(), "twice.toml", &twice);
    let run = accessd_with(&[], serve(&file)).await;
    assert!(
        run.failed(1)
            .contains("role `warehouse_admin` is defined twice"),
        "{}",
        run.stderr
    );

    let file = dir.path().join("missing.toml");
    let run = accessd_with(&[], serve(&file)).await;
    assert!(run.failed(1).contains("cannot read role catalog"));
    assert!(
        !data.exists(),
        "the database was opened before the catalog was valid"
    );
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
    let (serve, addr, logs) = ServeProcess::start(format!(
        "--data-dir {} --roles {}",
        quote(data.path().display()),
        quote(roles.display())
    ));
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
        "check --workspace acme --user rita --permission warehouse.read \
         --resource warehouse:snowflake --output json",
    )
    .await
    .json();
    assert_eq!(check["allowed"], false);
    assert_eq!(check["basis"], "no_covering_grant");
    let team = accessd_with(
        &[("ACCESSD_ADDR", &addr)],
        "list --workspace acme --user rita",
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
