//! SetMembership and RemoveMember: promotions and demotions, the last owner who must
//! stay, the grants a removal takes, and who may act on memberships.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use proto::DenialReason;

use super::acme;

fn remove_req(ws: &str, user: &str) -> proto::RemoveMemberRequest {
    proto::RemoveMemberRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        actor_user_id: String::new(),
    }
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
