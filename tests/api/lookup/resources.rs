//! LookupResources: the instances a user holds a permission on, in id order and pages,
//! and the permissions it cannot answer for.

use accessd::proto;
use tonic::Code;

use crate::harness::*;

use super::acme;

fn resources_req(ws: &str, user: &str, permission: &str) -> proto::LookupResourcesRequest {
    proto::LookupResourcesRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        permission: permission.into(),
        ..Default::default()
    }
}

/// Every instance id `request` selects, walking all its pages, and each page's size.
async fn all_resources(
    server: &TestServer,
    mut request: proto::LookupResourcesRequest,
) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let page = server
            .access()
            .lookup_resources(request.clone())
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.resources.len());
        for resource in page.resources {
            ids.push(resource.id);
        }
        if page.next_page_token.is_empty() {
            return (ids, sizes);
        }
        request.page_token = page.next_page_token;
    }
}

/// The instance ids `user` holds `permission` on, all pages.
async fn reachable(server: &TestServer, ws: &str, user: &str, permission: &str) -> Vec<String> {
    all_resources(server, resources_req(ws, user, permission))
        .await
        .0
}

#[tokio::test]
async fn lookup_resources_lists_what_each_grant_covers_in_id_order() {
    let server = acme().await;
    let every_source = ["android", "ios-prod", "web"];
    let every_destination = ["d-ios-1", "d-ios-2", "d-web"];
    assert_eq!(
        reachable(&server, "acme", "sam", "source.update").await,
        ["ios-prod"]
    );
    assert_eq!(
        reachable(&server, "acme", "sam", "destination.delete").await,
        ["d-ios-1", "d-ios-2"]
    );
    assert_eq!(
        reachable(&server, "acme", "sam", "destination.create").await,
        ["ios-prod"]
    );
    assert_eq!(
        reachable(&server, "acme", "rita", "source.read").await,
        every_source
    );
    assert_eq!(
        reachable(&server, "acme", "rita", "destination.read").await,
        every_destination
    );
    assert!(
        reachable(&server, "acme", "rita", "source.update")
            .await
            .is_empty()
    );
    assert_eq!(
        reachable(&server, "acme", "adam", "destination.update").await,
        every_destination
    );
    assert_eq!(
        reachable(&server, "acme", "olivia", "source.delete").await,
        every_source
    );
    assert!(
        reachable(&server, "acme", "nora", "source.read")
            .await
            .is_empty()
    );
    assert!(
        reachable(&server, "acme", "olivia", "warehouse.read")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn lookup_resources_is_empty_for_non_members_and_unknown_workspaces() {
    let server = acme().await;
    assert!(
        reachable(&server, "acme", "mallory", "source.read")
            .await
            .is_empty()
    );
    assert!(
        reachable(&server, "globex", "olivia", "source.read")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn lookup_resources_answers_at_the_revision_of_the_last_write() {
    let server = acme().await;
    register(&server, "acme", "source", "zeta", "").await;
    let written = grant(&server, "acme", "sam", "source_read", one("source", "zeta")).await;
    let page = server
        .access()
        .lookup_resources(resources_req("acme", "sam", "source.read"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.revision, written.revision);
    let ids: Vec<_> = page.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["ios-prod", "zeta"]);
    assert!(page.resources.iter().all(|r| r.r#type == "source"));
}

#[tokio::test]
async fn lookup_resources_of_a_disabled_product_is_empty_even_for_owners_until_it_returns() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols"]).await;
    add_member(&server, "acme", "sam").await;
    register(&server, "acme", "tracking_plan", "tp-2", "").await;
    register(&server, "acme", "tracking_plan", "tp-1", "").await;
    grant(&server, "acme", "sam", "protocols_read", all()).await;
    assert_eq!(
        reachable(&server, "acme", "sam", "tracking_plan.read").await,
        ["tp-1", "tp-2"]
    );

    set_products(&server, "acme", &[]).await;
    for user in ["olivia", "sam"] {
        assert!(
            reachable(&server, "acme", user, "tracking_plan.read")
                .await
                .is_empty()
        );
    }

    set_products(&server, "acme", &["protocols"]).await;
    assert_eq!(
        reachable(&server, "acme", "sam", "tracking_plan.read").await,
        ["tp-1", "tp-2"]
    );
}

#[tokio::test]
async fn lookup_resources_walks_every_page_in_id_order() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    add_member(&server, "acme", "sam").await;
    let mut sources: Vec<String> = (0..7).map(|i| format!("src-{}", 7 - i)).collect();
    for source in &sources {
        register(&server, "acme", "source", source, "").await;
    }
    for source in ["src-2", "src-3", "src-5", "src-6", "src-7"] {
        grant(&server, "acme", "sam", "source_read", one("source", source)).await;
    }
    sources.sort();

    let request = proto::LookupResourcesRequest {
        page_size: 3,
        ..resources_req("acme", "olivia", "source.read")
    };
    let (ids, sizes) = all_resources(&server, request).await;
    assert_eq!(ids, sources);
    assert_eq!(sizes, [3, 3, 1]);

    let request = proto::LookupResourcesRequest {
        page_size: 2,
        ..resources_req("acme", "sam", "source.read")
    };
    let (ids, sizes) = all_resources(&server, request).await;
    assert_eq!(ids, ["src-2", "src-3", "src-5", "src-6", "src-7"]);
    assert_eq!(sizes, [2, 2, 1]);
}

#[tokio::test]
async fn lookup_resources_rejects_permissions_that_name_no_instance_type() {
    let server = acme().await;
    let mut access = server.access();
    let status = expect_error(
        access
            .lookup_resources(resources_req("acme", "olivia", "source.create"))
            .await,
        Code::InvalidArgument,
        "permission",
    );
    assert!(status.message().contains("`source.create`"), "{status:?}");
    expect_error(
        access
            .lookup_resources(resources_req("acme", "olivia", "source.fly"))
            .await,
        Code::InvalidArgument,
        "permission",
    );
    expect_error(
        access
            .lookup_resources(resources_req("acme", "", "source.read"))
            .await,
        Code::InvalidArgument,
        "user_id",
    );
    expect_error(
        access
            .lookup_resources(proto::LookupResourcesRequest {
                page_token: "not-a-token".into(),
                ..resources_req("acme", "olivia", "source.read")
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );
    expect_error(
        access
            .lookup_resources(proto::LookupResourcesRequest {
                page_size: 1001,
                ..resources_req("acme", "olivia", "source.read")
            })
            .await,
        Code::InvalidArgument,
        "page_size",
    );
}
