//! CreateWorkspace, SetProducts and DeleteWorkspace: the products a workspace enables,
//! and everything its deletion takes with it.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::DenialReason;

use super::acme;

fn create_req(ws: &str, owner: &str, products: &[&str]) -> proto::CreateWorkspaceRequest {
    proto::CreateWorkspaceRequest {
        workspace_id: ws.into(),
        owner_user_id: owner.into(),
        products: products.iter().map(|p| p.to_string()).collect(),
    }
}

#[tokio::test]
async fn create_workspace_makes_its_owner_an_owner_with_the_products_asked_for() {
    let server = TestServer::start().await;
    let revision = create_workspace(&server, "acme", "olivia", &["personas"]).await;
    assert!(revision > 0);
    assert_eq!(
        team(&server, "acme").await,
        (revision, vec!["olivia owner []".to_owned()])
    );
    assert!(allowed(&server, "acme", "olivia", "personas.update_settings", None).await);
    assert!(allowed(&server, "acme", "olivia", "source.create", None).await);
    let protocols = decide(&server, "acme", "olivia", "tracking_plan.create", None).await;
    assert_eq!(denial(&protocols), Some(DenialReason::ProductNotEnabled));
    // `connections` may be listed; it is always enabled anyway.
    create_workspace(&server, "beta", "olivia", &["connections", "protocols"]).await;
    assert!(allowed(&server, "beta", "olivia", "tracking_plan.create", None).await);
}

#[tokio::test]
async fn creating_a_workspace_twice_is_already_exists_and_changes_nothing() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    let before = team(&server, "acme").await;
    let result = server
        .admin()
        .create_workspace(create_req("acme", "mallory", &["personas"]))
        .await;
    expect_error(result, Code::AlreadyExists, "workspace_id");
    assert_eq!(team(&server, "acme").await, before);
    let personas = decide(&server, "acme", "olivia", "personas.read_settings", None).await;
    assert_eq!(denial(&personas), Some(DenialReason::ProductNotEnabled));
}

#[tokio::test]
async fn create_workspace_refuses_malformed_ids_and_unknown_products() {
    let server = TestServer::start().await;
    let long = "x".repeat(129);
    for bad in ["", long.as_str(), "a b", "ünïcode"] {
        let cases = [
            (create_req(bad, "olivia", &[]), "workspace_id"),
            (create_req("acme", bad, &[]), "owner_user_id"),
        ];
        for (request, field) in cases {
            let result = server.admin().create_workspace(request).await;
            expect_error(result, Code::InvalidArgument, field);
        }
    }
    let result = server
        .admin()
        .create_workspace(create_req("acme", "olivia", &["protocols", "crm"]))
        .await;
    let status = expect_error(result, Code::InvalidArgument, "products[1]");
    assert!(status.message().contains("`crm`"), "{}", status.message());
    assert_eq!(
        server.revision().await,
        0,
        "a refused write changed something"
    );
}

#[tokio::test]
async fn set_products_denies_a_disabled_products_permissions_and_restores_its_grants() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols", "personas"]).await;
    add_member(&server, "acme", "sam").await;
    register(&server, "acme", "tracking_plan", "tp", "").await;
    grant(&server, "acme", "sam", "protocols_admin", all()).await;
    grant(&server, "acme", "sam", "personas_read", all()).await;
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "tracking_plan.update",
            res("tracking_plan", "tp")
        )
        .await
    );

    let disabled = set_products(&server, "acme", &["personas"]).await;
    assert!(disabled.changed);
    for user in ["sam", "olivia"] {
        let decision = decide(
            &server,
            "acme",
            user,
            "tracking_plan.read",
            res("tracking_plan", "tp"),
        )
        .await;
        assert_eq!(
            denial(&decision),
            Some(DenialReason::ProductNotEnabled),
            "{user}"
        );
        let create = decide(&server, "acme", user, "tracking_plan.create", None).await;
        assert_eq!(
            denial(&create),
            Some(DenialReason::ProductNotEnabled),
            "{user}"
        );
    }
    let audience = decide(
        &server,
        "acme",
        "sam",
        "audience.read",
        res("audience", "a"),
    )
    .await;
    assert_eq!(denial(&audience), Some(DenialReason::ResourceNotRegistered));
    assert!(allowed(&server, "acme", "sam", "personas.read_settings", None).await);
    // The grant stays stored, and listed (grants come in catalog role order).
    assert_eq!(
        team(&server, "acme").await.1,
        [
            "olivia owner []",
            "sam member [protocols_admin@all, personas_read@all]"
        ]
    );
    // Enabling the same set again changes nothing.
    let again = set_products(&server, "acme", &["personas", "connections"]).await;
    assert!(!again.changed);
    assert_eq!(again.revision, disabled.revision);

    let enabled = set_products(&server, "acme", &["personas", "protocols"]).await;
    assert!(enabled.changed);
    assert!(enabled.revision > disabled.revision);
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "tracking_plan.update",
            res("tracking_plan", "tp")
        )
        .await
    );
    assert!(allowed(&server, "acme", "sam", "tracking_plan.create", None).await);
}

#[tokio::test]
async fn set_products_refuses_unknown_products_and_workspaces() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols"]).await;
    let before = server.revision().await;
    let unknown_product = server
        .admin()
        .set_products(proto::SetProductsRequest {
            workspace_id: "acme".into(),
            products: vec!["crm".into()],
        })
        .await;
    expect_error(unknown_product, Code::InvalidArgument, "products[0]");
    let unknown_workspace = server
        .admin()
        .set_products(proto::SetProductsRequest {
            workspace_id: "nowhere".into(),
            products: vec![],
        })
        .await;
    expect_error(unknown_workspace, Code::NotFound, "workspace_id");
    assert_eq!(server.revision().await, before);
    assert!(allowed(&server, "acme", "olivia", "tracking_plan.create", None).await);
}

#[tokio::test]
async fn deleting_a_workspace_removes_everything_in_it() {
    let server = TestServer::start().await;
    acme(&server).await;
    grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    create_workspace(&server, "other", "olivia", &[]).await;

    let deleted = delete_workspace(&server, "acme").await;
    assert!(deleted.changed);
    for (user, permission, resource) in [
        ("olivia", "workspace.read", None),
        ("sam", "workspace.read", None),
        ("sam", "source.update", res("source", "ios-prod")),
        (
            "olivia",
            "destination.read",
            res("destination", "ios-to-s3"),
        ),
    ] {
        let decision = decide(&server, "acme", user, permission, resource).await;
        assert_eq!(
            denial(&decision),
            Some(DenialReason::NotAMember),
            "{user} {permission}"
        );
    }
    expect_error(
        server.access().list_access(list_req("acme")).await,
        Code::NotFound,
        "workspace_id",
    );
    // Other workspaces are untouched.
    assert!(allowed(&server, "other", "olivia", "workspace.delete", None).await);

    // Deleting it again changes nothing; a new workspace of the same id starts empty.
    let again = delete_workspace(&server, "acme").await;
    assert!(!again.changed);
    assert_eq!(again.revision, deleted.revision);
    create_workspace(&server, "acme", "newt", &[]).await;
    assert_eq!(team(&server, "acme").await.1, ["newt owner []"]);
    let old_source = decide(
        &server,
        "acme",
        "newt",
        "source.read",
        res("source", "ios-prod"),
    )
    .await;
    assert_eq!(
        denial(&old_source),
        Some(DenialReason::ResourceNotRegistered)
    );
}
