//! RegisterResource and DeleteResource: parents, idempotency, and the grants and
//! destinations a deletion takes with it.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::DenialReason;

use super::{acme, register_req};

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
