//! LookupSubjects: who holds a permission on an instance and why, in user order and
//! pages, with or without the index of grant holders large workspaces keep.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use super::acme;

fn subjects_req(
    ws: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
) -> proto::LookupSubjectsRequest {
    proto::LookupSubjectsRequest {
        workspace_id: ws.into(),
        permission: permission.into(),
        resource,
        ..Default::default()
    }
}

/// Every subject `request` selects, walking all its pages, and each page's size.
async fn all_subjects(
    server: &TestServer,
    mut request: proto::LookupSubjectsRequest,
) -> (Vec<proto::Subject>, Vec<usize>) {
    let (mut subjects, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let page = server
            .access()
            .lookup_subjects(request.clone())
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.subjects.len());
        subjects.extend(page.subjects);
        if page.next_page_token.is_empty() {
            return (subjects, sizes);
        }
        request.page_token = page.next_page_token;
    }
}

/// The user ids holding `permission` on `resource`, all pages.
async fn holders(
    server: &TestServer,
    ws: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
) -> Vec<String> {
    all_subjects(server, subjects_req(ws, permission, resource))
        .await
        .0
        .into_iter()
        .map(|s| s.user_id)
        .collect()
}

#[tokio::test]
async fn lookup_subjects_names_each_holder_with_the_decision_check_gives() {
    let server = acme().await;
    for (permission, resource) in [
        ("source.update", res("source", "ios-prod")),
        ("destination.delete", res("destination", "d-ios-1")),
        ("destination.read", res("destination", "d-web")),
        ("source.read", res("source", "android")),
        ("source.create", None),
    ] {
        let (subjects, _) =
            all_subjects(&server, subjects_req("acme", permission, resource.clone())).await;
        for subject in &subjects {
            let decision = decide(
                &server,
                "acme",
                &subject.user_id,
                permission,
                resource.clone(),
            )
            .await;
            assert_eq!(subject.decision.as_ref(), Some(&decision), "{permission}");
            assert!(decision.allowed);
        }
        for user in ["olivia", "sam", "rita", "adam", "nora", "mallory"] {
            let listed = subjects.iter().any(|s| s.user_id == user);
            let allowed = allowed(&server, "acme", user, permission, resource.clone()).await;
            assert_eq!(listed, allowed, "{user} {permission}");
        }
    }
    assert_eq!(
        holders(
            &server,
            "acme",
            "destination.update",
            res("destination", "d-ios-2")
        )
        .await,
        ["adam", "olivia", "sam"]
    );
    assert_eq!(
        holders(&server, "acme", "source.read", res("source", "web")).await,
        ["adam", "olivia", "rita"]
    );
    assert_eq!(
        holders(&server, "acme", "source.create", None).await,
        ["adam", "olivia"]
    );
    assert_eq!(
        holders(&server, "acme", "workspace.manage_access", None).await,
        ["olivia"]
    );
}

#[tokio::test]
async fn lookup_subjects_of_workspace_read_is_every_member_with_their_membership() {
    let server = acme().await;
    let (subjects, _) = all_subjects(&server, subjects_req("acme", "workspace.read", None)).await;
    let users: Vec<_> = subjects.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(users, ["adam", "nora", "olivia", "rita", "sam"]);
    for subject in subjects {
        let expected = if subject.user_id == "olivia" {
            proto::Membership::Owner
        } else {
            proto::Membership::Member
        };
        assert_eq!(
            subject.decision.unwrap().basis,
            Some(proto::decision::Basis::Membership(expected.into()))
        );
    }
}

#[tokio::test]
async fn lookup_subjects_is_empty_for_unregistered_instances_and_disabled_products() {
    let server = acme().await;
    assert!(
        holders(&server, "acme", "source.read", res("source", "gone"))
            .await
            .is_empty()
    );
    assert!(
        holders(&server, "globex", "workspace.read", None)
            .await
            .is_empty()
    );
    assert!(
        holders(&server, "acme", "personas.read_settings", None)
            .await
            .is_empty()
    );
    delete_resource(&server, "acme", "source", "ios-prod").await;
    assert!(
        holders(
            &server,
            "acme",
            "destination.read",
            res("destination", "d-ios-1")
        )
        .await
        .is_empty()
    );
    assert_eq!(
        holders(&server, "acme", "source.read", res("source", "web")).await,
        ["adam", "olivia", "rita"]
    );
}

#[tokio::test]
async fn lookup_subjects_walks_every_page_in_user_order() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "user-4", &[]).await;
    register(&server, "acme", "source", "web", "").await;
    let mut expected = vec!["user-4".to_owned()];
    for i in [8, 1, 6, 3, 9, 2] {
        let user = format!("user-{i}");
        add_member(&server, "acme", &user).await;
        let scope = if i % 2 == 0 {
            all()
        } else {
            one("source", "web")
        };
        grant(&server, "acme", &user, "source_read", scope).await;
        expected.push(user);
    }
    add_member(&server, "acme", "user-5").await;
    expected.sort();

    let request = proto::LookupSubjectsRequest {
        page_size: 3,
        ..subjects_req("acme", "source.read", res("source", "web"))
    };
    let (subjects, sizes) = all_subjects(&server, request).await;
    let users: Vec<_> = subjects.into_iter().map(|s| s.user_id).collect();
    assert_eq!(users, expected);
    assert_eq!(sizes, [3, 3, 1]);
}

#[tokio::test]
async fn lookup_subjects_rejects_wrong_resources_unknown_permissions_and_bad_tokens() {
    let server = acme().await;
    let mut access = server.access();
    expect_error(
        access
            .lookup_subjects(subjects_req(
                "acme",
                "source.update",
                res("destination", "d-web"),
            ))
            .await,
        Code::InvalidArgument,
        "resource.type",
    );
    expect_error(
        access
            .lookup_subjects(subjects_req("acme", "source.create", res("source", "web")))
            .await,
        Code::InvalidArgument,
        "resource",
    );
    expect_error(
        access
            .lookup_subjects(subjects_req("acme", "source.update", None))
            .await,
        Code::InvalidArgument,
        "resource",
    );
    expect_error(
        access
            .lookup_subjects(subjects_req("acme", "source.teleport", None))
            .await,
        Code::InvalidArgument,
        "permission",
    );
    expect_error(
        access
            .lookup_subjects(proto::LookupSubjectsRequest {
                page_token: "31zz".into(),
                ..subjects_req("acme", "workspace.read", None)
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );
    expect_error(
        access
            .lookup_subjects(proto::LookupSubjectsRequest {
                page_size: 5000,
                ..subjects_req("acme", "workspace.read", None)
            })
            .await,
        Code::InvalidArgument,
        "page_size",
    );
}

/// Member `i` of "big": every 7th holds `source_read` on source web, every 11th
/// `source_admin` on all sources, every 5th `source_read` on source ios.
async fn join_big(server: &TestServer, i: usize) {
    let user = format!("u{i:04}");
    add_member(server, "big", &user).await;
    if i % 7 == 0 {
        grant(server, "big", &user, "source_read", one("source", "web")).await;
    }
    if i % 11 == 0 {
        grant(server, "big", &user, "source_admin", all()).await;
    }
    if i % 5 == 0 {
        grant(server, "big", &user, "source_read", one("source", "ios")).await;
    }
}

/// Who should hold destination.read on d-web (web's destination) with `members`.
fn big_expected(members: std::ops::Range<usize>) -> Vec<String> {
    let mut users: Vec<String> = members
        .filter(|i| i % 7 == 0 || i % 11 == 0)
        .map(|i| format!("u{i:04}"))
        .collect();
    users.push("owner".to_owned());
    users.sort();
    users
}

/// Who holds destination.read on d-web, in pages of 10.
async fn big_holders(server: &TestServer) -> Vec<String> {
    let request = proto::LookupSubjectsRequest {
        page_size: 10,
        ..subjects_req("big", "destination.read", res("destination", "d-web"))
    };
    let (subjects, _) = all_subjects(server, request).await;
    subjects.into_iter().map(|s| s.user_id).collect()
}

/// Workspaces past 256 members find subjects through an index of grant holders, smaller
/// ones by reading their members: the answers must not change as a workspace crosses
/// over, is loaded again at a restart, or shrinks back.
#[tokio::test]
async fn lookup_subjects_answers_the_same_whether_the_workspace_indexes_its_holders_or_not() {
    let mut server = TestServer::start().await;
    create_workspace(&server, "big", "owner", &[]).await;
    for source in ["web", "ios"] {
        register(&server, "big", "source", source, "").await;
    }
    register(&server, "big", "destination", "d-web", "web").await;

    for i in 0..100 {
        join_big(&server, i).await;
    }
    assert_eq!(
        big_holders(&server).await,
        big_expected(0..100),
        "100 members: no index"
    );
    for i in 100..300 {
        join_big(&server, i).await;
    }
    assert_eq!(
        big_holders(&server).await,
        big_expected(0..300),
        "300 members: indexed"
    );

    server = server.restart().await;
    assert_eq!(
        big_holders(&server).await,
        big_expected(0..300),
        "indexed at start-up"
    );

    for i in 0..200 {
        remove_member(&server, "big", &format!("u{i:04}")).await;
    }
    assert_eq!(
        big_holders(&server).await,
        big_expected(200..300),
        "100 members: dropped"
    );
    let on_ios: Vec<String> = (200..300)
        .filter(|i| i % 5 == 0 || i % 11 == 0)
        .map(|i| format!("u{i:04}"))
        .chain(["owner".to_owned()])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    delete_resource(&server, "big", "source", "web").await;
    assert_eq!(
        holders(&server, "big", "source.read", res("source", "ios")).await,
        on_ios,
        "deleting a source leaves the grants on another"
    );
}
