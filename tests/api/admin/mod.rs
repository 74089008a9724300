//! The write side against the real server: every AdminService call, its cascades, its
//! idempotency, and every refusal with its code and the field it names.

mod grants;
mod memberships;
mod resources;
mod revisions;
mod workspaces;

use accessd::proto;

use crate::harness::*;

/// `acme`: owner olivia, member sam, source `ios-prod` with destination `ios-to-s3`.
async fn acme(server: &TestServer) {
    create_workspace(server, "acme", "olivia", &[]).await;
    add_member(server, "acme", "sam").await;
    register(server, "acme", "source", "ios-prod", "").await;
    register(server, "acme", "destination", "ios-to-s3", "ios-prod").await;
}

fn register_req(ws: &str, ty: &str, id: &str, parent: &str) -> proto::RegisterResourceRequest {
    proto::RegisterResourceRequest {
        workspace_id: ws.into(),
        resource: res(ty, id),
        parent_id: parent.into(),
    }
}
