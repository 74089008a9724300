//! Check: each decision with what decided it, denials that are answers rather than
//! errors, malformed requests, and grants on all instances.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::{DenialReason, decision::Basis};

use super::acme;

#[tokio::test]
async fn a_granted_source_admin_can_update_the_source_and_it_survives_a_restart() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "sam").await;
    register(&server, "acme", "source", "ios-prod", "").await;
    assert!(
        !allowed(
            &server,
            "acme",
            "sam",
            "source.update",
            res("source", "ios-prod")
        )
        .await
    );
    let written = grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    assert!(written.changed);
    let answer = server
        .access()
        .check(check_req(
            "acme",
            "sam",
            "source.update",
            res("source", "ios-prod"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.decision.as_ref().unwrap().allowed);
    assert_eq!(answer.revision, written.revision);

    let server = server.restart().await;
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
    assert!(!allowed(&server, "acme", "sam", "source.create", None).await);
}

#[tokio::test]
async fn check_names_the_membership_grant_or_denial_reason_and_the_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let written = grant(
        &server,
        "acme",
        "sam",
        "source_read",
        one("source", "ios-prod"),
    )
    .await;

    let answer = server
        .access()
        .check(check_req("acme", "olivia", "workspace.delete", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revision, written.revision);
    let owner = answer.decision.unwrap();
    assert!(owner.allowed);
    assert_eq!(
        owner.basis,
        Some(Basis::Membership(proto::Membership::Owner.into()))
    );
    assert!(!owner.explanation.is_empty());

    let member = decide(&server, "acme", "rita", "workspace.read", None).await;
    assert!(member.allowed);
    assert_eq!(
        member.basis,
        Some(Basis::Membership(proto::Membership::Member.into()))
    );
    assert!(!member.explanation.is_empty());

    let granted = decide(
        &server,
        "acme",
        "sam",
        "destination.read",
        res("destination", "ios-to-s3"),
    )
    .await;
    assert!(granted.allowed);
    match &granted.basis {
        Some(Basis::Grant(g)) => {
            assert_eq!(g.user_id, "sam");
            assert_eq!(grant_text(g), "source_read@source/ios-prod");
        }
        other => panic!("expected a grant basis, got {other:?}"),
    }
    assert!(granted.explanation.contains("source_read"));

    let cases = [
        (
            "sam",
            "source.update",
            res("source", "ios-prod"),
            DenialReason::NoCoveringGrant,
        ),
        (
            "sam",
            "source.read",
            res("source", "web"),
            DenialReason::NoCoveringGrant,
        ),
        (
            "sam",
            "workspace.manage_access",
            None,
            DenialReason::NoCoveringGrant,
        ),
        ("nobody", "workspace.read", None, DenialReason::NotAMember),
        (
            "olivia",
            "audience.read",
            res("audience", "vip"),
            DenialReason::ProductNotEnabled,
        ),
        (
            "olivia",
            "source.read",
            res("source", "gone"),
            DenialReason::ResourceNotRegistered,
        ),
    ];
    for (user, permission, resource, reason) in cases {
        let decision = decide(&server, "acme", user, permission, resource).await;
        assert!(!decision.allowed, "{user} {permission}");
        assert_eq!(denial(&decision), Some(reason), "{user} {permission}");
        assert!(!decision.explanation.is_empty(), "{user} {permission}");
    }
}

#[tokio::test]
async fn well_formed_checks_on_missing_data_are_denied_not_errors() {
    let server = TestServer::start().await;
    acme(&server).await;
    let cases = [
        (
            "nowhere",
            "olivia",
            "workspace.read",
            None,
            DenialReason::NotAMember,
        ),
        (
            "nowhere",
            "olivia",
            "source.read",
            res("source", "ios-prod"),
            DenialReason::NotAMember,
        ),
        (
            "acme",
            "stranger",
            "workspace.read",
            None,
            DenialReason::NotAMember,
        ),
        (
            "acme",
            "stranger",
            "source.read",
            res("source", "ios-prod"),
            DenialReason::NotAMember,
        ),
        (
            "acme",
            "olivia",
            "source.read",
            res("source", "unknown"),
            DenialReason::ResourceNotRegistered,
        ),
        (
            "acme",
            "olivia",
            "destination.read",
            res("destination", "unknown"),
            DenialReason::ResourceNotRegistered,
        ),
        (
            "acme",
            "olivia",
            "destination.create",
            res("source", "unknown"),
            DenialReason::ResourceNotRegistered,
        ),
        (
            "acme",
            "olivia",
            "tracking_plan.read",
            res("tracking_plan", "unknown"),
            DenialReason::ResourceNotRegistered,
        ),
        (
            "acme",
            "sam",
            "warehouse.read",
            res("warehouse", "unknown"),
            DenialReason::ResourceNotRegistered,
        ),
    ];
    for (ws, user, permission, resource, reason) in cases {
        let decision = decide(&server, ws, user, permission, resource).await;
        assert!(!decision.allowed, "{ws} {user} {permission}");
        assert_eq!(denial(&decision), Some(reason), "{ws} {user} {permission}");
    }
}

#[tokio::test]
async fn malformed_checks_are_invalid_arguments_naming_the_field() {
    let server = TestServer::start().await;
    acme(&server).await;
    let long = "x".repeat(129);
    for bad in ["", long.as_str(), "a b", "ünïcode"] {
        let cases = [
            (
                check_req(bad, "sam", "workspace.read", None),
                "workspace_id",
            ),
            (check_req("acme", bad, "workspace.read", None), "user_id"),
            (
                check_req("acme", "sam", "source.read", res("source", bad)),
                "resource.id",
            ),
        ];
        for (request, field) in cases {
            let result = server.access().check(request).await;
            expect_error(result, Code::InvalidArgument, field);
        }
    }
    let cases = [
        (check_req("acme", "sam", "", None), "permission"),
        (
            check_req("acme", "sam", "source.fly", res("source", "ios-prod")),
            "permission",
        ),
        (
            check_req("acme", "sam", "sources.read", res("source", "ios-prod")),
            "permission",
        ),
        (
            check_req("acme", "sam", "source.read", res("warehouse", "wh")),
            "resource.type",
        ),
        (
            check_req(
                "acme",
                "sam",
                "destination.create",
                res("destination", "ios-to-s3"),
            ),
            "resource.type",
        ),
        (
            check_req("acme", "sam", "source.read", res("spaceship", "wh")),
            "resource.type",
        ),
        (
            check_req("acme", "sam", "workspace.read", res("source", "ios-prod")),
            "resource",
        ),
        (
            check_req("acme", "sam", "source.create", res("source", "ios-prod")),
            "resource",
        ),
        (check_req("acme", "sam", "source.read", None), "resource"),
        (
            check_req("acme", "sam", "destination.read", None),
            "resource",
        ),
    ];
    for (request, field) in cases {
        let described = format!("{request:?}");
        let status = expect_error(
            server.access().check(request).await,
            Code::InvalidArgument,
            field,
        );
        assert!(!status.message().is_empty(), "{described}");
    }
    let status = expect_error(
        server
            .access()
            .check(check_req(
                "acme",
                "sam",
                "source.fly",
                res("source", "ios-prod"),
            ))
            .await,
        Code::InvalidArgument,
        "permission",
    );
    assert!(
        status.message().contains("`source.fly`"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn ids_of_128_printable_ascii_bytes_are_accepted() {
    let server = TestServer::start().await;
    let ws = "w".repeat(128);
    let user = format!("{}|~!", "u".repeat(124));
    create_workspace(&server, &ws, &user, &[]).await;
    let source = "s".repeat(128);
    register(&server, &ws, "source", &source, "").await;
    assert!(allowed(&server, &ws, &user, "source.delete", res("source", &source)).await);
}

#[tokio::test]
async fn all_scope_grants_cover_instances_registered_later_but_do_not_let_one_source_create() {
    let server = TestServer::start().await;
    acme(&server).await;
    grant(&server, "acme", "sam", "source_admin", all()).await;
    grant(
        &server,
        "acme",
        "rita",
        "source_admin",
        one("source", "web"),
    )
    .await;
    register(&server, "acme", "source", "android", "").await;
    register(&server, "acme", "destination", "android-to-bq", "android").await;
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "source.delete",
            res("source", "android")
        )
        .await
    );
    assert!(
        allowed(
            &server,
            "acme",
            "sam",
            "destination.update",
            res("destination", "android-to-bq")
        )
        .await
    );
    assert!(allowed(&server, "acme", "sam", "source.create", None).await);
    assert!(
        allowed(
            &server,
            "acme",
            "rita",
            "destination.create",
            res("source", "web")
        )
        .await
    );
    assert!(!allowed(&server, "acme", "rita", "source.create", None).await);
    assert!(
        !allowed(
            &server,
            "acme",
            "rita",
            "source.read",
            res("source", "android")
        )
        .await
    );
    assert!(!allowed(&server, "acme", "sam", "workspace.manage_access", None).await);
}
