//! ListAccess: the team table, its filters, its pages and their tokens, and the requests
//! it refuses.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use super::acme;

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
