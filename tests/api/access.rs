//! Smoke tests of the read side; the full suite lives beside it.

use accessd::api::pb;

use crate::harness::*;

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
    let _ = pb::Membership::Owner;
}
