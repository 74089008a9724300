//! Smoke tests of the read side; the full suite lives beside it.

use accessd::proto;

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
    let _ = proto::Membership::Owner;
}

use tonic::Code;

use proto::{DenialReason, decision::Basis};

/// Builds `acme` (owner olivia, products protocols) with members sam and rita, a source
/// `ios-prod` with destination `ios-to-s3`, a source `web`, and warehouse `wh`.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &["protocols"]).await;
    add_member(server, "acme", "sam").await;
    add_member(server, "acme", "rita").await;
    register(server, "acme", "source", "ios-prod", "").await;
    register(server, "acme", "destination", "ios-to-s3", "ios-prod").await;
    register(server, "acme", "source", "web", "").await;
    register(server, "acme", "warehouse", "wh", "").await;
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
async fn batch_check_answers_in_request_order_at_one_revision() {
    let server = TestServer::start().await;
    acme(&server).await;
    let written = grant(&server, "acme", "sam", "warehouse_read", all()).await;
    let checks = vec![
        check_req("acme", "sam", "warehouse.read", res("warehouse", "wh")),
        check_req("acme", "sam", "warehouse.update", res("warehouse", "wh")),
        check_req("acme", "olivia", "warehouse.create", None),
        check_req("nowhere", "sam", "workspace.read", None),
        check_req("acme", "rita", "workspace.read", None),
        check_req("acme", "olivia", "source.read", res("source", "unknown")),
    ];
    let answer = server
        .access()
        .batch_check(proto::BatchCheckRequest { checks })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revision, written.revision);
    let summary: Vec<(bool, Option<DenialReason>)> = answer
        .decisions
        .iter()
        .map(|d| (d.allowed, denial(d)))
        .collect();
    assert_eq!(
        summary,
        [
            (true, None),
            (false, Some(DenialReason::NoCoveringGrant)),
            (true, None),
            (false, Some(DenialReason::NotAMember)),
            (true, None),
            (false, Some(DenialReason::ResourceNotRegistered)),
        ]
    );
    assert!(answer.decisions.iter().all(|d| !d.explanation.is_empty()));

    let empty = server
        .access()
        .batch_check(proto::BatchCheckRequest { checks: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.decisions.is_empty());
    assert_eq!(empty.revision, written.revision);
}

#[tokio::test]
async fn batch_check_takes_1000_checks_and_refuses_1001() {
    let server = TestServer::start().await;
    acme(&server).await;
    grant(&server, "acme", "sam", "source_read", one("source", "web")).await;
    // Alternate an allowed and a denied check so that order is visible in the answer.
    let checks: Vec<proto::CheckRequest> = (0..1000)
        .map(|i| {
            let source = if i % 2 == 0 { "web" } else { "ios-prod" };
            check_req("acme", "sam", "source.read", res("source", source))
        })
        .collect();
    let answer = server
        .access()
        .batch_check(proto::BatchCheckRequest {
            checks: checks.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.decisions.len(), 1000);
    for (i, decision) in answer.decisions.iter().enumerate() {
        assert_eq!(decision.allowed, i % 2 == 0, "decision {i}");
    }

    let mut too_many = checks;
    too_many.push(check_req("acme", "sam", "workspace.read", None));
    let status = expect_error(
        server
            .access()
            .batch_check(proto::BatchCheckRequest { checks: too_many })
            .await,
        Code::InvalidArgument,
        "checks",
    );
    assert!(status.message().contains("1001"), "{}", status.message());
}

#[tokio::test]
async fn an_invalid_batch_item_fails_the_whole_call_naming_its_index() {
    let server = TestServer::start().await;
    acme(&server).await;
    let valid = check_req("acme", "sam", "workspace.read", None);
    let cases = [
        (
            check_req("acme", "", "workspace.read", None),
            "checks[2].user_id",
        ),
        (
            check_req("acme", "sam", "source.fly", None),
            "checks[2].permission",
        ),
        (
            check_req("ac me", "sam", "workspace.read", None),
            "checks[2].workspace_id",
        ),
        (
            check_req("acme", "sam", "source.read", None),
            "checks[2].resource",
        ),
        (
            check_req("acme", "sam", "source.read", res("warehouse", "wh")),
            "checks[2].resource.type",
        ),
    ];
    for (invalid, field) in cases {
        let checks = vec![valid.clone(), valid.clone(), invalid, valid.clone()];
        let result = server
            .access()
            .batch_check(proto::BatchCheckRequest { checks })
            .await;
        expect_error(result, Code::InvalidArgument, field);
    }
}

/// Users of `acme` and their grants for the ListAccess tests.
async fn team_of_acme(server: &TestServer) {
    acme(server).await;
    for user in ["zoe", "bob", "Adam", "carl", "dan"] {
        add_member(server, "acme", user).await;
    }
    set_membership(server, "acme", "dan", proto::Membership::Owner).await;
    grant(
        server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(server, "acme", "sam", "warehouse_read", all()).await;
    grant(server, "acme", "rita", "source_read", all()).await;
    grant(server, "acme", "zoe", "source_admin", one("source", "web")).await;
    grant(server, "acme", "bob", "protocols_read", all()).await;
    grant(server, "acme", "carl", "warehouse_admin", all()).await;
}

#[tokio::test]
async fn list_access_is_the_team_table_in_user_id_order() {
    let server = TestServer::start().await;
    team_of_acme(&server).await;
    let (revision, rows) = team(&server, "acme").await;
    assert_eq!(revision, server.revision().await);
    assert_eq!(
        rows,
        [
            "Adam member []",
            "bob member [protocols_read@all]",
            "carl member [warehouse_admin@all]",
            "dan owner []",
            "olivia owner []",
            "rita member [source_read@all]",
            "sam member [source_admin@source/ios-prod, warehouse_read@all]",
            "zoe member [source_admin@source/web]",
        ]
    );
    // Every grant message names its holder.
    for entry in list_all(&server, list_req("acme")).await {
        assert!(entry.grants.iter().all(|g| g.user_id == entry.user_id));
    }
    // The same request answers the same.
    assert_eq!(team(&server, "acme").await.1, rows);
}

#[tokio::test]
async fn list_access_filters_by_user_role_and_resource() {
    let server = TestServer::start().await;
    team_of_acme(&server).await;
    let list = |request: proto::ListAccessRequest| {
        let server = &server;
        async move { table(&list_all(server, request).await) }
    };
    assert_eq!(
        list(proto::ListAccessRequest {
            user_id: "sam".into(),
            ..list_req("acme")
        })
        .await,
        ["sam member [source_admin@source/ios-prod, warehouse_read@all]"]
    );
    assert!(
        list(proto::ListAccessRequest {
            user_id: "stranger".into(),
            ..list_req("acme")
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(proto::ListAccessRequest {
            role: "source_admin".into(),
            ..list_req("acme")
        })
        .await,
        [
            "sam member [source_admin@source/ios-prod]",
            "zoe member [source_admin@source/web]",
        ]
    );
    assert!(
        list(proto::ListAccessRequest {
            role: "personas_read".into(),
            ..list_req("acme")
        })
        .await
        .is_empty()
    );
    // Owners, and members whose grants cover the instance, with only those grants.
    assert_eq!(
        list(proto::ListAccessRequest {
            resource: res("source", "ios-prod"),
            ..list_req("acme")
        })
        .await,
        [
            "dan owner []",
            "olivia owner []",
            "rita member [source_read@all]",
            "sam member [source_admin@source/ios-prod]",
        ]
    );
    // A destination's access follows its source.
    assert_eq!(
        list(proto::ListAccessRequest {
            resource: res("destination", "ios-to-s3"),
            ..list_req("acme")
        })
        .await,
        [
            "dan owner []",
            "olivia owner []",
            "rita member [source_read@all]",
            "sam member [source_admin@source/ios-prod]",
        ]
    );
    assert_eq!(
        list(proto::ListAccessRequest {
            resource: res("warehouse", "wh"),
            ..list_req("acme")
        })
        .await,
        [
            "carl member [warehouse_admin@all]",
            "dan owner []",
            "olivia owner []",
            "sam member [warehouse_read@all]",
        ]
    );
    // Filters combine.
    assert_eq!(
        list(proto::ListAccessRequest {
            user_id: "sam".into(),
            role: "warehouse_read".into(),
            resource: res("warehouse", "wh"),
            ..list_req("acme")
        })
        .await,
        ["sam member [warehouse_read@all]"]
    );
}

#[tokio::test]
async fn list_access_pages_walk_every_user_once_in_order() {
    let server = TestServer::start().await;
    create_workspace(&server, "big", "owner-00", &[]).await;
    for i in 1..25 {
        add_member(&server, "big", &format!("user-{i:02}")).await;
    }
    let everyone = table(&list_all(&server, list_req("big")).await);
    assert_eq!(everyone.len(), 25);

    for page_size in [1, 7, 12, 25, 1000] {
        let mut request = proto::ListAccessRequest {
            page_size,
            ..list_req("big")
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = server
                .access()
                .list_access(request.clone())
                .await
                .unwrap()
                .into_inner();
            pages += 1;
            assert!(page.entries.len() <= page_size as usize);
            seen.extend(table(&page.entries));
            if page.next_page_token.is_empty() {
                break;
            }
            assert_eq!(page.entries.len(), page_size as usize);
            request.page_token = page.next_page_token;
        }
        assert_eq!(seen, everyone, "page size {page_size}");
        assert_eq!(
            pages,
            25usize.div_ceil(page_size as usize),
            "page size {page_size}"
        );
    }
}

#[tokio::test]
async fn a_page_token_resumes_after_its_user_even_across_writes() {
    let server = TestServer::start().await;
    create_workspace(&server, "ws", "b-owner", &[]).await;
    for user in ["d", "f", "h"] {
        add_member(&server, "ws", user).await;
    }
    let first = server
        .access()
        .list_access(proto::ListAccessRequest {
            page_size: 2,
            ..list_req("ws")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(table(&first.entries), ["b-owner owner []", "d member []"]);
    // A user before the cursor is not seen; one after it is; a removed one is gone.
    add_member(&server, "ws", "a").await;
    add_member(&server, "ws", "e").await;
    remove_member(&server, "ws", "f").await;
    let rest = list_all(
        &server,
        proto::ListAccessRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..list_req("ws")
        },
    )
    .await;
    assert_eq!(table(&rest), ["e member []", "h member []"]);
}

#[tokio::test]
async fn list_access_pagination_applies_to_filtered_tables() {
    let server = TestServer::start().await;
    create_workspace(&server, "ws", "owner", &[]).await;
    for i in 0..10 {
        let user = format!("u{i}");
        add_member(&server, "ws", &user).await;
        if i % 3 == 0 {
            grant(&server, "ws", &user, "warehouse_read", all()).await;
        }
    }
    let filtered = list_all(
        &server,
        proto::ListAccessRequest {
            role: "warehouse_read".into(),
            page_size: 1,
            ..list_req("ws")
        },
    )
    .await;
    let users: Vec<&str> = filtered.iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(users, ["u0", "u3", "u6", "u9"]);
}

#[tokio::test]
async fn list_access_refuses_bad_requests_naming_the_field() {
    let server = TestServer::start().await;
    acme(&server).await;
    let cases = [
        (
            proto::ListAccessRequest {
                page_token: "not a token".into(),
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "page_token",
        ),
        (
            proto::ListAccessRequest {
                page_token: "31".repeat(3) + "z",
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "page_token",
        ),
        (
            proto::ListAccessRequest {
                page_size: 1001,
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "page_size",
        ),
        (list_req(""), Code::InvalidArgument, "workspace_id"),
        (
            proto::ListAccessRequest {
                user_id: "a b".into(),
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "user_id",
        ),
        (
            proto::ListAccessRequest {
                role: "source_owner".into(),
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "role",
        ),
        (
            proto::ListAccessRequest {
                resource: res("spaceship", "x"),
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "resource.type",
        ),
        (
            proto::ListAccessRequest {
                resource: res("source", ""),
                ..list_req("acme")
            },
            Code::InvalidArgument,
            "resource.id",
        ),
        (
            proto::ListAccessRequest {
                resource: res("source", "unknown"),
                ..list_req("acme")
            },
            Code::NotFound,
            "resource",
        ),
        (list_req("nowhere"), Code::NotFound, "workspace_id"),
    ];
    for (request, code, field) in cases {
        expect_error(server.access().list_access(request).await, code, field);
    }
    // The largest page size is accepted.
    server
        .access()
        .list_access(proto::ListAccessRequest {
            page_size: 1000,
            ..list_req("acme")
        })
        .await
        .unwrap();
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
