//! Revisions: every kind of write that changes something reports a higher one.

use accessd::proto;

use crate::harness::*;

use super::register_req;

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
