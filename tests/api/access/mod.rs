//! The read side against the real server: Check, BatchCheck and ListAccess, what each
//! answers, at which revision, and every refusal with the field it names.

mod at_least_revision;
mod batch_check;
mod check;
mod list_access;

use crate::harness::*;

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
