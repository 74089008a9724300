//! Followers answer what the leader decided, at the revision a write returned.

use std::time::Duration;

use accessd::proto;

use super::process::{Node, check_at, create, team};
use crate::harness::{one, res};

async fn member(node: &Node, ws: &str, user: &str) -> u64 {
    node.admin()
        .set_membership(crate::harness::membership_req(
            ws,
            user,
            proto::Membership::Member,
        ))
        .await
        .unwrap()
        .into_inner()
        .revision
}

async fn register(node: &Node, ws: &str, id: &str) -> u64 {
    node.admin()
        .register_resource(proto::RegisterResourceRequest {
            workspace_id: ws.into(),
            resource: res("source", id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .revision
}

/// Whether `follower` allows sam `source.update` on ios, asked at `revision`; the
/// answer must be at that revision or later.
async fn sam_may_update_ios(follower: &Node, revision: u64) -> bool {
    let answer = follower
        .access()
        .check(check_at(
            "acme",
            "sam",
            "source.update",
            res("source", "ios"),
            revision,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.revision >= revision);
    answer.decision.unwrap().allowed
}

#[tokio::test]
async fn a_grant_and_a_revoke_on_the_leader_are_seen_by_every_follower_at_their_revision() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let leader = Node::leader(dirs[0].path(), &[]).await;
    create(&leader, "acme").await;
    member(&leader, "acme", "sam").await;
    register(&leader, "acme", "ios").await;
    let followers = [
        Node::follower(&leader, dirs[1].path(), &[]).await,
        Node::follower(&leader, dirs[2].path(), &[]).await,
    ];
    let granted = leader
        .admin()
        .grant(crate::harness::grant_req(
            "acme",
            "sam",
            "source_admin",
            one("source", "ios"),
        ))
        .await
        .unwrap()
        .into_inner()
        .revision;
    for follower in &followers {
        assert!(sam_may_update_ios(follower, granted).await, "granted");
    }
    let revoked = leader
        .admin()
        .revoke(crate::harness::revoke_req(
            "acme",
            "sam",
            "source_admin",
            one("source", "ios"),
        ))
        .await
        .unwrap()
        .into_inner()
        .revision;
    for follower in &followers {
        assert!(!sam_may_update_ios(follower, revoked).await, "revoked");
        let status = follower.status().await;
        assert_eq!(status.role, "follower");
        assert_eq!(status.history_id, leader.status().await.history_id);
    }
}

#[tokio::test]
async fn writes_sent_to_a_follower_land_on_the_leader() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(leader_dir.path(), &[]).await;
    let follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    let created = create(&follower, "acme").await;
    member(&follower, "acme", "sam").await;
    let revision = register(&follower, "acme", "ios").await;
    assert!(revision > created);
    assert_eq!(
        leader.status().await.revision,
        revision,
        "written by the leader"
    );
    // The follower answers at that revision once it has it.
    let answer = follower
        .access()
        .check(check_at("acme", "sam", "workspace.read", None, revision))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.decision.unwrap().allowed);
    // The leader's refusals come back as they are.
    let refused = follower
        .admin()
        .grant(crate::harness::grant_req(
            "acme",
            "bob",
            "source_read",
            one("source", "ios"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("not a member"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_check_for_a_revision_the_follower_lacks_waits_then_fails_naming_what_it_has() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = Node::leader(leader_dir.path(), &[]).await;
    let revision = create(&leader, "acme").await;
    let follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    follower.wait_revision(revision).await;
    let mut request = check_at("acme", "olivia", "workspace.read", None, revision + 100);
    request.set_timeout(Duration::from_secs(2));
    let refused = follower.access().check(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DeadlineExceeded, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("revision {}", revision + 100))
            && refused
                .message()
                .contains(&format!("applied revision {revision}")),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn a_follower_serves_only_once_bootstrapped_and_caught_up() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A leader that is not there yet: its port is taken and released.
    let leader = Node::leader(leader_dir.path(), &[]).await;
    for i in 0..50 {
        create(&leader, &format!("ws{i:02}")).await;
    }
    let follower = Node::follower(&leader, follower_dir.path(), &[]).await;
    follower
        .wait_health("accessd.v1.AccessService", true, Duration::from_secs(30))
        .await;
    let status = follower.status().await;
    assert!(status.revision >= 50, "{status:?}");
    assert_eq!(status.state, "following");
    assert_eq!(
        team(&follower, "ws07", 0).await,
        team(&leader, "ws07", 0).await
    );
}
