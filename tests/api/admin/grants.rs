//! Grant and Revoke: their effect on access, their idempotency, and every grant the
//! model forbids.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use super::acme;

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
