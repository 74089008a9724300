//! The audit trail's retention through `ListChanges`: what the change log keeps past
//! its budget for replicas, and where the trail says it starts.

use std::time::Duration;

use accessd::{
    proto::{self, audit_service_client::AuditServiceClient},
    store::StoreConfig,
};

use crate::harness::{TestServer, add_member, create_workspace};

/// A server whose change log budget holds a few dozen writes, with `audit_retention`.
async fn server(audit_retention: Duration) -> TestServer {
    TestServer::start_with_store(&StoreConfig {
        change_log_bytes: 4 << 10,
        audit_retention,
        ..StoreConfig::default()
    })
    .await
}

/// A workspace and 60 members: 61 revisions, three times the budget.
async fn write(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &[]).await;
    for i in 0..60 {
        add_member(server, "acme", &format!("user-{i:02}")).await;
    }
}

async fn trail(server: &TestServer) -> proto::ListChangesResponse {
    AuditServiceClient::new(server.channel.clone())
        .list_changes(proto::ListChangesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_audit_retention_keeps_changes_the_change_log_budget_would_drop() {
    let kept = server(Duration::from_secs(90 * 86_400)).await;
    write(&kept).await;
    let page = trail(&kept).await;
    let revisions: Vec<u64> = page.entries.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (1..=61).collect::<Vec<_>>());
    assert_eq!(page.oldest_revision, 1);
    assert_eq!(page.oldest_unix_millis, page.entries[0].unix_millis);

    let dropped = server(Duration::ZERO).await;
    write(&dropped).await;
    let page = trail(&dropped).await;
    let first = &page.entries[0];
    assert!(
        first.revision > 1 && page.entries.len() < 61,
        "{}",
        first.revision
    );
    assert_eq!(page.entries.last().unwrap().revision, 61);
    // The trail says where it starts, so that a query reaching before it can say so.
    assert_eq!(page.oldest_revision, first.revision);
    assert_eq!(page.oldest_unix_millis, first.unix_millis);
}
