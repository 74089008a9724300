//! LookupResources and LookupSubjects against the real server: what each grant reaches,
//! who holds a permission and why, pagination, and the caller's mistakes.

mod resources;
mod subjects;

use crate::harness::*;

/// acme: owner olivia; sam is `source_admin` on ios-prod, rita `source_read` on all
/// sources, adam `source_admin` on all sources, nora a member without grants.
/// Sources android, ios-prod, web; destinations d-ios-1 and d-ios-2 on ios-prod, d-web
/// on web.
async fn acme() -> TestServer {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    for user in ["sam", "rita", "adam", "nora"] {
        add_member(&server, "acme", user).await;
    }
    for source in ["web", "ios-prod", "android"] {
        register(&server, "acme", "source", source, "").await;
    }
    register(&server, "acme", "destination", "d-ios-2", "ios-prod").await;
    register(&server, "acme", "destination", "d-ios-1", "ios-prod").await;
    register(&server, "acme", "destination", "d-web", "web").await;
    grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(&server, "acme", "rita", "source_read", all()).await;
    grant(&server, "acme", "adam", "source_admin", all()).await;
    server
}
