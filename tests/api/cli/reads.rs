//! The read commands: `check` with its table, JSON and exit codes, `list` over pages and
//! filters, and `lookup`.

use crate::harness::*;

use super::{accessd, acme};

#[tokio::test]
async fn check_prints_the_decision_with_its_basis_and_revision_and_exits_zero_either_way() {
    let server = TestServer::start().await;
    acme(&server).await;
    let allowed = accessd(
        &server,
        "check --workspace acme --user sam --permission source.update --resource source:ios-prod",
    )
    .await;
    let lines: Vec<&str> = allowed.ok().lines().collect();
    assert_eq!(lines[0], "DECISION  BASIS  REVISION  EXPLANATION");
    assert!(lines[1].starts_with("allowed   grant  4  "), "{}", lines[1]);
    assert!(lines[1].contains("`source_admin` on source `ios-prod`"));

    let create = "check --workspace acme --user sam --permission source.create";
    let denied = accessd(&server, create).await;
    assert!(
        denied
            .ok()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("denied    no_covering_grant")
    );
    let with_exit_code = accessd(&server, format!("{create} --exit-code")).await;
    assert_eq!(with_exit_code.code, 3);
    assert!(with_exit_code.stdout.contains("denied"));
}

#[tokio::test]
async fn an_allowed_check_with_exit_code_still_exits_zero() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        "check --workspace acme --user olivia --permission workspace.manage_access --exit-code",
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
        "check --workspace acme --user sam --permission destination.create \
         --resource source:ios-prod --output json",
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
        "check --workspace acme --user nobody --permission workspace.read --output json",
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
        "check --workspace acme --user sam --permission source.fly",
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
async fn a_resource_flag_without_a_type_is_a_usage_error_naming_the_expected_form() {
    let server = TestServer::start().await;
    let run = accessd(
        &server,
        "check --workspace acme --user sam --permission source.read --resource ios-prod",
    )
    .await;
    assert!(
        run.failed(2)
            .contains("expected `TYPE:ID` such as `source:ios-prod`, got `ios-prod`")
    );
}

#[tokio::test]
async fn list_follows_page_tokens_to_the_end_and_filters() {
    let server = TestServer::start().await;
    acme(&server).await;
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        add_member(&server, "acme", user).await;
    }
    grant(&server, "acme", "u3", "warehouse_read", all()).await;
    let everyone = accessd(&server, "list --workspace acme --page-size 2 --output json")
        .await
        .json();
    let users: Vec<&str> = everyone
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["olivia", "sam", "u1", "u2", "u3", "u4", "u5"]);

    let by_role = accessd(&server, "list --workspace acme --role warehouse_read").await;
    assert_eq!(
        by_role.ok(),
        "USER  MEMBERSHIP  ROLE            SCOPE\n\
         u3    member      warehouse_read  all\n"
    );
    let by_resource = accessd(
        &server,
        "list --workspace acme --resource source:ios-prod --page-size 1",
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
        "lookup resources --workspace acme --user sam --permission source.update \
         --page-size 1 --output json",
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
        "lookup subjects --workspace acme --permission source.update --resource source:ios-prod",
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
        "lookup subjects --workspace acme --permission source.update",
    )
    .await;
    assert!(refused.failed(1).starts_with("accessd: INVALID_ARGUMENT: "));
}
