//! The admin token: every admin call needs it exactly, and nothing else does.

use accessd::{proto, server::ServeOptions};
use tonic::{Code, Request, Status, service::Interceptor};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::*;

use super::{health::health_status, reflection::v1};

/// Sends `authorization: VALUE` with every call.
#[derive(Clone)]
struct Authorization(&'static str);

impl Interceptor for Authorization {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.parse().unwrap());
        Ok(request)
    }
}

#[tokio::test]
async fn with_an_admin_token_only_admin_calls_need_it() {
    let server = TestServer::start_with_options(ServeOptions {
        admin_token: Some("s3cret".into()),
        ..ServeOptions::default()
    })
    .await;
    let create = proto::CreateWorkspaceRequest {
        workspace_id: "acme".into(),
        owner_user_id: "olivia".into(),
        products: vec![],
    };
    let refused = server.admin().create_workspace(create.clone()).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    for wrong in [
        "Bearer nope",
        "s3cret",
        "Bearer s3cret2",
        "Basic s3cret",
        "Bearer ",
    ] {
        let client = proto::admin_service_client::AdminServiceClient::with_interceptor(
            server.channel.clone(),
            Authorization(wrong),
        );
        let status = client
            .clone()
            .create_workspace(create.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{wrong:?}");
        let status = client
            .clone()
            .delete_workspace(proto::DeleteWorkspaceRequest {
                workspace_id: "acme".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{wrong:?}");
    }
    assert_eq!(
        server.revision().await,
        0,
        "an unauthenticated write changed something"
    );

    let mut admin = proto::admin_service_client::AdminServiceClient::with_interceptor(
        server.channel.clone(),
        Authorization("Bearer s3cret"),
    );
    let written = admin.create_workspace(create).await.unwrap().into_inner();
    assert!(written.changed);
    // The read side, health and reflection need no token.
    assert!(allowed(&server, "acme", "olivia", "workspace.delete", None).await);
    assert_eq!(
        health_status(server.channel.clone(), "accessd.v1.AdminService")
            .await
            .unwrap(),
        ServingStatus::Serving
    );
    assert!(!v1::services(server.channel.clone()).await.is_empty());
}
