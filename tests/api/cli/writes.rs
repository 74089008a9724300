//! The write commands: `grant` and `revoke`, `members`, `resources` and `workspaces`,
//! with what they print and the refusals of the server and of the parser.

use crate::harness::*;

use super::{accessd, acme};

#[tokio::test]
async fn grant_to_a_non_member_prints_the_servers_failed_precondition_message_and_exits_one() {
    let server = TestServer::start().await;
    acme(&server).await;
    let run = accessd(
        &server,
        "grant --workspace acme --user bob --role warehouse_read --all",
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
    let grant_android =
        "grant --workspace acme --user sam --role source_read --resource source:android";
    let revoke_android =
        "revoke --workspace acme --user sam --role source_read --resource source:android";
    let granted = accessd(&server, grant_android).await;
    assert_eq!(granted.ok(), "changed at revision 6\n");
    let again = accessd(&server, grant_android).await;
    assert_eq!(again.ok(), "no change: already in effect at revision 6\n");
    let all = accessd(
        &server,
        "grant --workspace acme --user sam --role warehouse_read --all --output json",
    )
    .await
    .json();
    assert_eq!(all, serde_json::json!({"changed": true, "revision": 7}));

    let table = accessd(&server, "list --workspace acme").await;
    assert_eq!(
        table.ok(),
        "USER    MEMBERSHIP  ROLE            SCOPE\n\
         olivia  owner       -               -\n\
         sam     member      source_admin    source:ios-prod\n\
         sam     member      source_read     source:android\n\
         sam     member      warehouse_read  all\n"
    );

    let revoked = accessd(&server, revoke_android).await;
    assert_eq!(revoked.ok(), "changed at revision 8\n");
    let again = accessd(&server, revoke_android).await;
    assert!(again.ok().starts_with("no change"));
    let revoked_all = accessd(
        &server,
        "revoke --workspace acme --user sam --role warehouse_read --all",
    )
    .await;
    assert!(revoked_all.ok().starts_with("changed"));
    let sam = accessd(&server, "list --workspace acme --user sam --output json")
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
    let neither = accessd(
        &server,
        "grant --workspace acme --user sam --role source_admin",
    )
    .await;
    assert!(neither.failed(2).contains("<--all|--resource <TYPE:ID>>"));
    let both = accessd(
        &server,
        "grant --workspace acme --user sam --role source_admin --all --resource source:ios-prod",
    )
    .await;
    assert!(both.failed(2).contains("cannot be used with"));
}

#[tokio::test]
async fn members_add_set_and_remove_change_membership_and_the_last_owner_stays() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    accessd(&server, "members add --workspace acme --user sam")
        .await
        .ok();
    accessd(&server, "members add --workspace acme --user rita")
        .await
        .ok();
    let refused = accessd(
        &server,
        "members add --workspace acme --user eve --actor sam",
    )
    .await;
    assert!(
        refused
            .failed(1)
            .starts_with("accessd: PERMISSION_DENIED: `actor_user_id`: ")
    );
    accessd(
        &server,
        "members add --workspace acme --user eve --actor olivia",
    )
    .await
    .ok();
    accessd(&server, "members set --workspace acme --user sam --owner")
        .await
        .ok();
    accessd(&server, "members remove --workspace acme --user olivia")
        .await
        .ok();
    accessd(
        &server,
        "members remove --workspace acme --user rita --actor sam",
    )
    .await
    .ok();
    let table = accessd(&server, "list --workspace acme").await;
    assert_eq!(
        table.ok(),
        "USER  MEMBERSHIP  ROLE  SCOPE\n\
         eve   member      -     -\n\
         sam   owner       -     -\n"
    );
    let last = accessd(&server, "members set --workspace acme --user sam").await;
    assert!(last.failed(1).starts_with("accessd: FAILED_PRECONDITION: "));
    let last = accessd(&server, "members remove --workspace acme --user sam").await;
    assert!(last.failed(1).contains("last owner"));
}

#[tokio::test]
async fn resources_register_and_delete_a_source_with_its_destination() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "rita").await;
    accessd(
        &server,
        "resources register --workspace acme --resource source:ios-prod",
    )
    .await
    .ok();
    let no_parent = accessd(
        &server,
        "resources register --workspace acme --resource destination:amplitude",
    )
    .await;
    assert!(
        no_parent
            .failed(1)
            .starts_with("accessd: INVALID_ARGUMENT: `parent_id`")
    );
    accessd(
        &server,
        "resources register --workspace acme --resource destination:amplitude --parent ios-prod",
    )
    .await
    .ok();
    grant(&server, "acme", "rita", "source_read", all()).await;
    let check = "check --workspace acme --user rita --permission destination.read \
                 --resource destination:amplitude --output json";
    assert_eq!(accessd(&server, check).await.json()["allowed"], true);
    let deleted = accessd(
        &server,
        "resources delete --workspace acme --resource source:ios-prod",
    )
    .await;
    assert!(deleted.ok().starts_with("changed"));
    let gone = accessd(&server, check).await.json();
    assert_eq!(gone["basis"], "resource_not_registered");
}

#[tokio::test]
async fn workspaces_create_set_products_and_delete() {
    let server = TestServer::start().await;
    let create = "workspaces create --workspace acme --owner olivia --products protocols,personas";
    accessd(&server, create).await.ok();
    let exists = accessd(&server, create).await;
    assert!(exists.failed(1).starts_with("accessd: ALREADY_EXISTS: "));
    let check =
        "check --workspace acme --user olivia --permission tracking_plan.create --output json";
    assert_eq!(accessd(&server, check).await.json()["allowed"], true);
    accessd(
        &server,
        "workspaces set-products --workspace acme --products ''",
    )
    .await
    .ok();
    assert_eq!(
        accessd(&server, check).await.json()["basis"],
        "product_not_enabled"
    );
    accessd(
        &server,
        "workspaces set-products --workspace acme --products protocols",
    )
    .await
    .ok();
    assert_eq!(accessd(&server, check).await.json()["allowed"], true);
    accessd(&server, "workspaces delete --workspace acme")
        .await
        .ok();
    assert_eq!(
        accessd(&server, check).await.json()["basis"],
        "not_a_member"
    );
    let missing = accessd(&server, "list --workspace acme").await;
    assert!(missing.failed(1).starts_with("accessd: NOT_FOUND: "));
}
