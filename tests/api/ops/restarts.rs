//! Persistence across restarts: every kind of write, and revisions that keep increasing.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

/// A few checks whose answers tell the state of `acme` apart.
async fn answers(server: &TestServer) -> Vec<(bool, Option<proto::DenialReason>)> {
    let checks = [
        ("acme", "sam", "source.update", res("source", "ios-prod")),
        ("acme", "sam", "warehouse.read", res("warehouse", "wh")),
        ("acme", "rita", "workspace.read", None),
        ("acme", "olivia", "tracking_plan.create", None),
        (
            "acme",
            "olivia",
            "destination.read",
            res("destination", "web-to-s3"),
        ),
        ("gone", "olivia", "workspace.read", None),
    ];
    let mut decisions = Vec::new();
    for (ws, user, permission, resource) in checks {
        let decision = decide(server, ws, user, permission, resource).await;
        decisions.push((decision.allowed, denial(&decision)));
    }
    decisions
}

#[tokio::test]
async fn every_kind_of_write_survives_a_restart() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols"]).await;
    create_workspace(&server, "gone", "olivia", &[]).await;
    for user in ["sam", "rita", "zoe"] {
        add_member(&server, "acme", user).await;
    }
    register(&server, "acme", "source", "ios-prod", "").await;
    register(&server, "acme", "source", "web", "").await;
    register(&server, "acme", "destination", "web-to-s3", "web").await;
    register(&server, "acme", "warehouse", "wh", "").await;
    grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(&server, "acme", "sam", "warehouse_read", all()).await;
    grant(&server, "acme", "rita", "source_read", one("source", "web")).await;
    grant(&server, "acme", "zoe", "source_admin", all()).await;
    set_membership(&server, "acme", "zoe", proto::Membership::Owner).await;
    revoke(&server, "acme", "sam", "warehouse_read", all()).await;
    remove_member(&server, "acme", "rita").await;
    delete_resource(&server, "acme", "source", "web").await;
    set_products(&server, "acme", &[]).await;
    delete_workspace(&server, "gone").await;
    let before = (team(&server, "acme").await, answers(&server).await);
    assert_eq!(
        before.0.1,
        [
            "olivia owner []",
            "sam member [source_admin@source/ios-prod]",
            "zoe owner [source_admin@all]",
        ]
    );

    let server = server.restart().await;
    let after = (team(&server, "acme").await, answers(&server).await);
    assert_eq!(after, before);
    expect_error(
        server.access().list_access(list_req("gone")).await,
        Code::NotFound,
        "workspace_id",
    );
}

#[tokio::test]
async fn revisions_keep_increasing_across_restarts() {
    let mut server = TestServer::start().await;
    let mut last = create_workspace(&server, "acme", "olivia", &[]).await;
    for round in 0..3 {
        let user = format!("user-{round}");
        let added = set_membership(&server, "acme", &user, proto::Membership::Member).await;
        assert!(added.revision > last);
        last = added.revision;
        server = server.restart().await;
        assert_eq!(server.revision().await, last, "round {round}");
        // An idempotent write after a restart reports the restored revision.
        let same = set_membership(&server, "acme", &user, proto::Membership::Member).await;
        assert_eq!((same.changed, same.revision), (false, last));
        let granted = grant(&server, "acme", &user, "source_read", all()).await;
        assert!(granted.revision > last, "round {round}");
        last = granted.revision;
    }
    assert_eq!(team(&server, "acme").await.1.len(), 4);
}
