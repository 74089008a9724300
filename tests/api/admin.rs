//! The write side against the real server: every AdminService call, its cascades, its
//! idempotency, and every refusal with its code and the field it names.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::DenialReason;

/// `acme`: owner olivia, member sam, source `ios-prod` with destination `ios-to-s3`.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &[]).await;
    add_member(server, "acme", "sam").await;
    register(server, "acme", "source", "ios-prod", "").await;
    register(server, "acme", "destination", "ios-to-s3", "ios-prod").await;
}

fn create_req(ws: &str, owner: &str, products: &[&str]) -> proto::CreateWorkspaceRequest {
    proto::CreateWorkspaceRequest {
        workspace_id: ws.into(),
        owner_user_id: owner.into(),
        products: products.iter().map(|p| p.to_string()).collect(),
    }
}

fn register_req(ws: &str, ty: &str, id: &str, parent: &str) -> proto::RegisterResourceRequest {
    proto::RegisterResourceRequest {
        workspace_id: ws.into(),
        resource: res(ty, id),
        parent_id: parent.into(),
    }
}

fn remove_req(ws: &str, user: &str) -> proto::RemoveMemberRequest {
    proto::RemoveMemberRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        actor_user_id: String::new(),
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

#[tokio::test]
async fn set_membership_adds_promotes_and_demotes_users() {
    let server = TestServer::start().await;
    acme(&server).await;
    let promoted = set_membership(&server, "acme", "sam", proto::Membership::Owner).await;
    assert!(promoted.changed);
    assert!(allowed(&server, "acme", "sam", "workspace.manage_access", None).await);
    let same = set_membership(&server, "acme", "sam", proto::Membership::Owner).await;
    assert!(!same.changed);
    assert_eq!(same.revision, promoted.revision);
    // With two owners, either may be demoted.
    let demoted = set_membership(&server, "acme", "olivia", proto::Membership::Member).await;
    assert!(demoted.changed);
    assert!(demoted.revision > promoted.revision);
    let decision = decide(&server, "acme", "olivia", "workspace.manage_access", None).await;
    assert_eq!(denial(&decision), Some(DenialReason::NoCoveringGrant));
    assert_eq!(
        team(&server, "acme").await.1,
        ["olivia member []", "sam owner []"]
    );
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let server = TestServer::start().await;
    acme(&server).await;
    let before = team(&server, "acme").await;
    let demote = server
        .admin()
        .set_membership(membership_req("acme", "olivia", proto::Membership::Member))
        .await;
    expect_error(demote, Code::FailedPrecondition, "user_id");
    let remove = server
        .admin()
        .remove_member(remove_req("acme", "olivia"))
        .await;
    expect_error(remove, Code::FailedPrecondition, "user_id");
    assert_eq!(team(&server, "acme").await, before);
    // With a second owner, the first may go.
    set_membership(&server, "acme", "sam", proto::Membership::Owner).await;
    assert!(remove_member(&server, "acme", "olivia").await.changed);
    let sam = server
        .admin()
        .remove_member(remove_req("acme", "sam"))
        .await;
    expect_error(sam, Code::FailedPrecondition, "user_id");
}

#[tokio::test]
async fn set_membership_refuses_malformed_requests() {
    let server = TestServer::start().await;
    acme(&server).await;
    let before = team(&server, "acme").await;
    let long = "x".repeat(129);
    for bad in ["", long.as_str(), "a b", "ünïcode"] {
        let cases = [
            (
                membership_req(bad, "sam", proto::Membership::Member),
                "workspace_id",
            ),
            (
                membership_req("acme", bad, proto::Membership::Member),
                "user_id",
            ),
        ];
        for (request, field) in cases {
            let result = server.admin().set_membership(request).await;
            expect_error(result, Code::InvalidArgument, field);
        }
    }
    for bad in [long.as_str(), "a b", "ünïcode"] {
        let request = proto::SetMembershipRequest {
            actor_user_id: bad.into(),
            ..membership_req("acme", "rita", proto::Membership::Member)
        };
        let result = server.admin().set_membership(request).await;
        expect_error(result, Code::InvalidArgument, "actor_user_id");
    }
    for membership in [0, 7] {
        let request = proto::SetMembershipRequest {
            membership,
            ..membership_req("acme", "rita", proto::Membership::Member)
        };
        let result = server.admin().set_membership(request).await;
        expect_error(result, Code::InvalidArgument, "membership");
    }
    let unknown = server
        .admin()
        .set_membership(membership_req("nowhere", "sam", proto::Membership::Member))
        .await;
    expect_error(unknown, Code::NotFound, "workspace_id");
    assert_eq!(team(&server, "acme").await, before);
}

#[tokio::test]
async fn removing_a_member_removes_their_grants_and_readding_them_starts_empty() {
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
    grant(&server, "acme", "sam", "warehouse_read", all()).await;
    let removed = remove_member(&server, "acme", "sam").await;
    assert!(removed.changed);
    let gone = decide(
        &server,
        "acme",
        "sam",
        "source.update",
        res("source", "ios-prod"),
    )
    .await;
    assert_eq!(denial(&gone), Some(DenialReason::NotAMember));
    assert_eq!(team(&server, "acme").await.1, ["olivia owner []"]);

    let again = remove_member(&server, "acme", "sam").await;
    assert!(!again.changed);
    assert_eq!(again.revision, removed.revision);

    add_member(&server, "acme", "sam").await;
    assert_eq!(
        team(&server, "acme").await.1,
        ["olivia owner []", "sam member []"]
    );
    let readded = decide(
        &server,
        "acme",
        "sam",
        "source.update",
        res("source", "ios-prod"),
    )
    .await;
    assert_eq!(denial(&readded), Some(DenialReason::NoCoveringGrant));
    assert!(
        !allowed(
            &server,
            "acme",
            "sam",
            "warehouse.read",
            res("warehouse", "w")
        )
        .await
    );
}

#[tokio::test]
async fn register_resource_checks_parents_and_is_idempotent() {
    let server = TestServer::start().await;
    acme(&server).await;
    let first = server
        .admin()
        .register_resource(register_req("acme", "warehouse", "wh", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(first.changed);
    let again = server
        .admin()
        .register_resource(register_req("acme", "warehouse", "wh", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.changed, again.revision), (false, first.revision));
    let same_parent = server
        .admin()
        .register_resource(register_req("acme", "destination", "ios-to-s3", "ios-prod"))
        .await
        .unwrap()
        .into_inner();
    assert!(!same_parent.changed);

    register(&server, "acme", "source", "web", "").await;
    let before = server.revision().await;
    let long = "x".repeat(129);
    let cases = [
        (
            register_req("acme", "destination", "orphan", ""),
            Code::InvalidArgument,
            "parent_id",
        ),
        (
            register_req("acme", "warehouse", "wh2", "ios-prod"),
            Code::InvalidArgument,
            "parent_id",
        ),
        (
            register_req("acme", "destination", "d", "a b"),
            Code::InvalidArgument,
            "parent_id",
        ),
        (
            register_req("acme", "destination", "d", "missing"),
            Code::NotFound,
            "parent_id",
        ),
        (
            register_req("acme", "destination", "ios-to-s3", "web"),
            Code::AlreadyExists,
            "resource",
        ),
        (
            register_req("acme", "spaceship", "x", ""),
            Code::InvalidArgument,
            "resource.type",
        ),
        (
            register_req("acme", "", "x", ""),
            Code::InvalidArgument,
            "resource.type",
        ),
        (
            register_req("acme", "source", "", ""),
            Code::InvalidArgument,
            "resource.id",
        ),
        (
            register_req("acme", "source", &long, ""),
            Code::InvalidArgument,
            "resource.id",
        ),
        (
            register_req("acme", "source", "a b", ""),
            Code::InvalidArgument,
            "resource.id",
        ),
        (
            register_req("acme", "source", "ünï", ""),
            Code::InvalidArgument,
            "resource.id",
        ),
        (
            register_req("a b", "source", "s", ""),
            Code::InvalidArgument,
            "workspace_id",
        ),
        (
            register_req("nowhere", "source", "s", ""),
            Code::NotFound,
            "workspace_id",
        ),
        (
            proto::RegisterResourceRequest {
                resource: None,
                ..register_req("acme", "source", "s", "")
            },
            Code::InvalidArgument,
            "resource",
        ),
    ];
    for (request, code, field) in cases {
        let result = server.admin().register_resource(request).await;
        expect_error(result, code, field);
    }
    assert_eq!(
        server.revision().await,
        before,
        "a refused write changed something"
    );
    assert!(
        allowed(
            &server,
            "acme",
            "olivia",
            "destination.read",
            res("destination", "ios-to-s3")
        )
        .await
    );
}

#[tokio::test]
async fn deleting_a_resource_removes_its_grants_and_a_sources_destinations() {
    let server = TestServer::start().await;
    acme(&server).await;
    add_member(&server, "acme", "rita").await;
    register(&server, "acme", "source", "web", "").await;
    grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(&server, "acme", "sam", "source_read", one("source", "web")).await;
    grant(&server, "acme", "rita", "source_read", all()).await;
    grant(
        &server,
        "acme",
        "rita",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;

    let deleted = delete_resource(&server, "acme", "source", "ios-prod").await;
    assert!(deleted.changed);
    assert_eq!(
        team(&server, "acme").await.1,
        [
            "olivia owner []",
            "rita member [source_read@all]",
            "sam member [source_read@source/web]",
        ]
    );
    for (permission, resource) in [
        ("source.read", res("source", "ios-prod")),
        ("destination.read", res("destination", "ios-to-s3")),
    ] {
        let decision = decide(&server, "acme", "olivia", permission, resource).await;
        assert_eq!(
            denial(&decision),
            Some(DenialReason::ResourceNotRegistered),
            "{permission}"
        );
    }
    let again = delete_resource(&server, "acme", "source", "ios-prod").await;
    assert_eq!((again.changed, again.revision), (false, deleted.revision));
    let missing_destination = delete_resource(&server, "acme", "destination", "ios-to-s3").await;
    assert!(!missing_destination.changed);

    // Registering it again does not bring the grants back; all-scope grants cover it.
    register(&server, "acme", "source", "ios-prod", "").await;
    assert!(
        !allowed(
            &server,
            "acme",
            "sam",
            "source.read",
            res("source", "ios-prod")
        )
        .await
    );
    assert!(
        allowed(
            &server,
            "acme",
            "rita",
            "source.read",
            res("source", "ios-prod")
        )
        .await
    );
    assert!(
        !allowed(
            &server,
            "acme",
            "rita",
            "source.update",
            res("source", "ios-prod")
        )
        .await
    );
}

#[tokio::test]
async fn deleting_a_destination_keeps_its_source_and_the_grants_on_it() {
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
    assert!(
        delete_resource(&server, "acme", "destination", "ios-to-s3")
            .await
            .changed
    );
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "source.update",
            res("source", "ios-prod")
        )
        .await
    );
    let destination = decide(
        &server,
        "acme",
        "sam",
        "destination.read",
        res("destination", "ios-to-s3"),
    )
    .await;
    assert_eq!(
        denial(&destination),
        Some(DenialReason::ResourceNotRegistered)
    );
    let unknown = server
        .admin()
        .delete_resource(proto::DeleteResourceRequest {
            workspace_id: "nowhere".into(),
            resource: res("source", "ios-prod"),
        })
        .await;
    expect_error(unknown, Code::NotFound, "workspace_id");
    let bad_type = server
        .admin()
        .delete_resource(proto::DeleteResourceRequest {
            workspace_id: "acme".into(),
            resource: res("spaceship", "ios-prod"),
        })
        .await;
    expect_error(bad_type, Code::InvalidArgument, "resource.type");
}

#[tokio::test]
async fn grant_and_revoke_change_access_and_are_idempotent() {
    let server = TestServer::start().await;
    acme(&server).await;
    let granted = grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    assert!(granted.changed);
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "destination.delete",
            res("destination", "ios-to-s3")
        )
        .await
    );

    let regranted = grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    assert_eq!(
        (regranted.changed, regranted.revision),
        (false, granted.revision)
    );

    let revoked = revoke(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    assert!(revoked.changed);
    assert!(revoked.revision > granted.revision);
    assert!(
        !allowed(
            &server,
            "acme",
            "sam",
            "source.read",
            res("source", "ios-prod")
        )
        .await
    );

    let cases = [
        ("sam", "source_admin", one("source", "ios-prod")),
        ("sam", "source_admin", all()),
        ("sam", "personas_admin", all()),
        ("stranger", "source_read", all()),
        ("sam", "source_admin", one("source", "never-registered")),
    ];
    for (user, role, scope) in cases {
        let missing = revoke(&server, "acme", user, role, scope).await;
        assert_eq!(
            (missing.changed, missing.revision),
            (false, revoked.revision),
            "{user} {role}"
        );
    }
    assert_eq!(server.revision().await, revoked.revision);
}

#[tokio::test]
async fn revisions_strictly_increase_across_writes() {
    let server = TestServer::start().await;
    let mut revisions = vec![create_workspace(&server, "acme", "olivia", &[]).await];
    let admin = server.admin();
    let mut push = |response: proto::WriteResponse| {
        assert!(response.changed);
        revisions.push(response.revision);
    };
    push(set_membership(&server, "acme", "sam", proto::Membership::Member).await);
    push(
        admin
            .clone()
            .register_resource(register_req("acme", "source", "s", ""))
            .await
            .unwrap()
            .into_inner(),
    );
    push(grant(&server, "acme", "sam", "source_read", one("source", "s")).await);
    push(set_products(&server, "acme", &["protocols"]).await);
    push(revoke(&server, "acme", "sam", "source_read", one("source", "s")).await);
    push(delete_resource(&server, "acme", "source", "s").await);
    push(remove_member(&server, "acme", "sam").await);
    push(delete_workspace(&server, "acme").await);
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert_eq!(server.revision().await, *revisions.last().unwrap());
}

#[tokio::test]
async fn grants_the_model_forbids_are_refused_with_precise_codes() {
    let server = TestServer::start().await;
    acme(&server).await;
    register(&server, "acme", "warehouse", "wh", "").await;
    add_member(&server, "acme", "rita").await;
    grant(&server, "acme", "rita", "source_admin", all()).await;
    let before = team(&server, "acme").await;
    let with_actor = |actor: &str| proto::GrantRequest {
        actor_user_id: actor.into(),
        ..grant_req("acme", "sam", "source_read", all())
    };
    let cases = [
        (
            grant_req("acme", "stranger", "source_read", all()),
            Code::FailedPrecondition,
            "user_id",
        ),
        (
            grant_req("acme", "sam", "protocols_read", all()),
            Code::FailedPrecondition,
            "role",
        ),
        (
            grant_req("acme", "sam", "personas_admin", all()),
            Code::FailedPrecondition,
            "role",
        ),
        (
            grant_req("acme", "sam", "source_owner", all()),
            Code::InvalidArgument,
            "role",
        ),
        (
            grant_req("acme", "sam", "", all()),
            Code::InvalidArgument,
            "role",
        ),
        (
            grant_req("acme", "sam", "warehouse_admin", one("warehouse", "wh")),
            Code::InvalidArgument,
            "scope",
        ),
        (
            grant_req("acme", "sam", "source_admin", one("warehouse", "wh")),
            Code::InvalidArgument,
            "scope",
        ),
        (
            grant_req(
                "acme",
                "sam",
                "source_read",
                one("destination", "ios-to-s3"),
            ),
            Code::InvalidArgument,
            "scope",
        ),
        (
            grant_req("acme", "sam", "source_read", None),
            Code::InvalidArgument,
            "scope",
        ),
        (
            grant_req(
                "acme",
                "sam",
                "source_read",
                Some(proto::Scope { kind: None }),
            ),
            Code::InvalidArgument,
            "scope",
        ),
        (
            grant_req("acme", "sam", "source_read", one("spaceship", "x")),
            Code::InvalidArgument,
            "scope.instance.type",
        ),
        (
            grant_req("acme", "sam", "source_read", one("source", "a b")),
            Code::InvalidArgument,
            "scope.instance.id",
        ),
        (
            grant_req("acme", "sam", "source_read", one("source", "unregistered")),
            Code::NotFound,
            "scope.instance",
        ),
        (
            grant_req("nowhere", "sam", "source_read", all()),
            Code::NotFound,
            "workspace_id",
        ),
        (with_actor("sam"), Code::PermissionDenied, "actor_user_id"),
        (with_actor("rita"), Code::PermissionDenied, "actor_user_id"),
        (
            with_actor("stranger"),
            Code::PermissionDenied,
            "actor_user_id",
        ),
    ];
    for (request, code, field) in cases {
        let described = format!("{request:?}");
        let result = server.admin().grant(request).await;
        let status = expect_error(result, code, field);
        assert!(!status.message().is_empty(), "{described}");
    }
    let long = "x".repeat(129);
    for bad in ["", long.as_str(), "a b", "ünïcode"] {
        let cases = [
            (grant_req(bad, "sam", "source_read", all()), "workspace_id"),
            (grant_req("acme", bad, "source_read", all()), "user_id"),
            (
                grant_req("acme", "sam", "source_read", one("source", bad)),
                "scope.instance.id",
            ),
        ];
        for (request, field) in cases {
            let result = server.admin().grant(request).await;
            expect_error(result, Code::InvalidArgument, field);
        }
    }
    assert_eq!(
        team(&server, "acme").await,
        before,
        "a refused grant changed something"
    );
    // An owner as actor may grant.
    let by_owner = server
        .admin()
        .grant(with_actor("olivia"))
        .await
        .unwrap()
        .into_inner();
    assert!(by_owner.changed);
}

#[tokio::test]
async fn only_owners_named_as_actors_may_change_memberships_and_revoke() {
    let server = TestServer::start().await;
    acme(&server).await;
    add_member(&server, "acme", "rita").await;
    grant(&server, "acme", "rita", "source_admin", all()).await;
    grant(&server, "acme", "sam", "source_read", all()).await;
    let before = team(&server, "acme").await;
    for actor in ["sam", "rita", "stranger"] {
        let membership = server
            .admin()
            .set_membership(proto::SetMembershipRequest {
                actor_user_id: actor.into(),
                ..membership_req("acme", "newcomer", proto::Membership::Member)
            })
            .await;
        expect_error(membership, Code::PermissionDenied, "actor_user_id");
        let removal = server
            .admin()
            .remove_member(proto::RemoveMemberRequest {
                actor_user_id: actor.into(),
                ..remove_req("acme", "sam")
            })
            .await;
        expect_error(removal, Code::PermissionDenied, "actor_user_id");
        let revocation = server
            .admin()
            .revoke(proto::RevokeRequest {
                actor_user_id: actor.into(),
                ..revoke_req("acme", "sam", "source_read", all())
            })
            .await;
        expect_error(revocation, Code::PermissionDenied, "actor_user_id");
    }
    assert_eq!(
        team(&server, "acme").await,
        before,
        "a refused write changed something"
    );

    let revoked = server
        .admin()
        .revoke(proto::RevokeRequest {
            actor_user_id: "olivia".into(),
            ..revoke_req("acme", "sam", "source_read", all())
        })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.changed);
    let added = server
        .admin()
        .set_membership(proto::SetMembershipRequest {
            actor_user_id: "olivia".into(),
            ..membership_req("acme", "newcomer", proto::Membership::Member)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(added.changed);
}

#[tokio::test]
async fn revoke_refuses_malformed_requests() {
    let server = TestServer::start().await;
    acme(&server).await;
    let before = server.revision().await;
    let cases = [
        (
            revoke_req("a b", "sam", "source_read", all()),
            Code::InvalidArgument,
            "workspace_id",
        ),
        (
            revoke_req("acme", "", "source_read", all()),
            Code::InvalidArgument,
            "user_id",
        ),
        (
            revoke_req("acme", "sam", "source_owner", all()),
            Code::InvalidArgument,
            "role",
        ),
        (
            revoke_req("acme", "sam", "source_read", None),
            Code::InvalidArgument,
            "scope",
        ),
        (
            revoke_req("acme", "sam", "source_read", one("spaceship", "x")),
            Code::InvalidArgument,
            "scope.instance.type",
        ),
        (
            revoke_req("nowhere", "sam", "source_read", all()),
            Code::NotFound,
            "workspace_id",
        ),
    ];
    for (request, code, field) in cases {
        expect_error(server.admin().revoke(request).await, code, field);
    }
    assert_eq!(server.revision().await, before);
}
