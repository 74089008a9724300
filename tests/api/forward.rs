//! A follower's AdminService: calls made to it land on the leader, and the leader's
//! answers, refusals and credentials checks come back through it.

use std::net::SocketAddr;

use accessd::{
    api::forward::LeaderForward,
    proto::{
        self, admin_service_client::AdminServiceClient, admin_service_server::AdminServiceServer,
        record::Kind,
    },
    server::ServeOptions,
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    Code, Request, Status,
    service::Interceptor,
    transport::{Channel, Server, server::TcpIncoming},
};

use crate::harness::*;

/// A server with only the forwarding AdminService, stopped on drop.
struct Forwarder {
    channel: Channel,
    _shutdown: oneshot::Sender<()>,
}

impl Forwarder {
    /// Forwards to `leader`, over a channel that connects on the first call.
    async fn start(leader: SocketAddr) -> Self {
        let address = format!("http://{leader}");
        let to_leader = Channel::from_shared(address.clone())
            .unwrap()
            .connect_lazy();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .add_service(AdminServiceServer::new(LeaderForward::new(
                    std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(to_leader)),
                    address,
                )))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = signal.await;
                }),
        );
        // The listener is already bound, so connecting needs no wait.
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            channel,
            _shutdown: shutdown,
        }
    }

    fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }
}

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

fn create_req(ws: &str, owner: &str) -> proto::CreateWorkspaceRequest {
    proto::CreateWorkspaceRequest {
        workspace_id: ws.into(),
        owner_user_id: owner.into(),
        products: vec![],
    }
}

fn workspace_record(ws: &str, owner: &str) -> proto::Record {
    proto::Record {
        kind: Some(Kind::Workspace(proto::WorkspaceRecord {
            workspace_id: ws.into(),
            products: vec![],
            owner_user_ids: vec![owner.into()],
        })),
    }
}

fn member_record(ws: &str, user: &str) -> proto::Record {
    proto::Record {
        kind: Some(Kind::Member(proto::MemberRecord {
            workspace_id: ws.into(),
            user_id: user.into(),
            membership: proto::Membership::Member.into(),
        })),
    }
}

#[tokio::test]
async fn writes_made_on_a_follower_land_on_the_leader_with_the_leader_s_revision() {
    let leader = TestServer::start().await;
    let follower = Forwarder::start(leader.addr).await;
    let mut admin = follower.admin();
    let created = admin
        .create_workspace(create_req("acme", "olivia"))
        .await
        .unwrap()
        .into_inner();
    assert!(created.changed);
    admin
        .set_membership(membership_req("acme", "sam", proto::Membership::Member))
        .await
        .unwrap();
    admin
        .register_resource(proto::RegisterResourceRequest {
            workspace_id: "acme".into(),
            resource: res("source", "ios"),
            parent_id: String::new(),
        })
        .await
        .unwrap();
    let granted = admin
        .grant(grant_req("acme", "sam", "source_read", all()))
        .await
        .unwrap()
        .into_inner();
    assert!(granted.changed);
    assert!(granted.revision > created.revision);

    let mut check = check_req("acme", "sam", "source.read", res("source", "ios"));
    check.at_least_revision = granted.revision;
    let answer = leader.access().check(check).await.unwrap().into_inner();
    assert!(answer.decision.unwrap().allowed);
    assert_eq!(answer.revision, granted.revision);
}

#[tokio::test]
async fn a_refused_write_comes_back_with_the_leader_s_code_and_message() {
    let leader = TestServer::start().await;
    create_workspace(&leader, "acme", "olivia", &[]).await;
    let follower = Forwarder::start(leader.addr).await;
    let to_stranger = grant_req("acme", "stranger", "source_read", all());

    let forwarded = follower
        .admin()
        .grant(to_stranger.clone())
        .await
        .unwrap_err();
    let direct = leader.admin().grant(to_stranger).await.unwrap_err();
    assert_eq!(forwarded.code(), Code::FailedPrecondition);
    assert_eq!(forwarded.code(), direct.code());
    assert_eq!(forwarded.message(), direct.message());
}

#[tokio::test]
async fn the_caller_s_admin_token_passes_through_to_the_leader() {
    let leader = TestServer::start_with_options(ServeOptions {
        admin_token: Some("s3cret".into()),
        ..ServeOptions::default()
    })
    .await;
    let follower = Forwarder::start(leader.addr).await;

    let refused = follower
        .admin()
        .create_workspace(create_req("acme", "olivia"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unauthenticated,
        "{}",
        refused.message()
    );
    let chunks = import_chunks(&[workspace_record("globex", "gina")], 1);
    let refused = import_to_end(follower.admin().import(tokio_stream::iter(chunks)).await)
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unauthenticated,
        "{}",
        refused.message()
    );
    let refused = follower
        .admin()
        .export(proto::ExportRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::Unauthenticated,
        "{}",
        refused.message()
    );

    let mut admin = AdminServiceClient::with_interceptor(
        follower.channel.clone(),
        Authorization("Bearer s3cret"),
    );
    let created = admin
        .create_workspace(create_req("acme", "olivia"))
        .await
        .unwrap()
        .into_inner();
    assert!(created.changed);
    assert!(allowed(&leader, "acme", "olivia", "workspace.delete", None).await);
}

#[tokio::test]
async fn an_import_and_an_export_stream_through_a_follower() {
    let leader = TestServer::start().await;
    let follower = Forwarder::start(leader.addr).await;
    let chunks = vec![
        proto::ImportRequest {
            records: vec![workspace_record("acme", "olivia")],
            first_index: 0,
        },
        proto::ImportRequest {
            records: vec![member_record("acme", "sam"), member_record("acme", "ria")],
            first_index: 0,
        },
    ];
    let report = import_to_end(follower.admin().import(tokio_stream::iter(chunks)).await)
        .await
        .unwrap();
    assert_eq!((report.records, report.applied), (3, 3), "{report:?}");
    assert!(allowed(&leader, "acme", "sam", "workspace.read", None).await);

    let mut exported = follower
        .admin()
        .export(proto::ExportRequest {
            workspace_id: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = Vec::new();
    while let Some(chunk) = exported.message().await.unwrap() {
        assert_eq!(chunk.revision, report.revision);
        records.extend(chunk.records);
    }
    let (mut owners, mut members) = (Vec::new(), Vec::new());
    for record in &records {
        match &record.kind {
            Some(Kind::Workspace(workspace)) => owners.extend(workspace.owner_user_ids.clone()),
            Some(Kind::Member(member)) => members.push(member.user_id.clone()),
            _ => {}
        }
    }
    members.sort_unstable();
    assert_eq!(
        (owners, members),
        (
            vec!["olivia".to_owned()],
            vec!["ria".to_owned(), "sam".to_owned()]
        ),
        "{records:#?}"
    );
}

/// An ImportRequest whose records are raw bytes, so that a test can send ones that do
/// not decode.
#[derive(Clone, PartialEq, prost::Message)]
struct RawImportRequest {
    #[prost(bytes = "vec", repeated, tag = "1")]
    records: Vec<Vec<u8>>,
}

#[tokio::test]
async fn an_import_the_caller_breaks_is_refused_and_the_leader_applies_none_of_it() {
    let leader = TestServer::start().await;
    let follower = Forwarder::start(leader.addr).await;
    let chunks = vec![
        RawImportRequest {
            records: vec![prost::Message::encode_to_vec(&workspace_record(
                "acme", "olivia",
            ))],
        },
        // A truncated field key: the follower cannot decode this chunk.
        RawImportRequest {
            records: vec![vec![0xff]],
        },
    ];
    let mut grpc = tonic::client::Grpc::new(follower.channel.clone());
    grpc.ready().await.unwrap();
    let answer = grpc
        .streaming(
            Request::new(tokio_stream::iter(chunks)),
            http::uri::PathAndQuery::from_static("/accessd.v1.AdminService/Import"),
            tonic_prost::ProstCodec::<RawImportRequest, proto::ImportProgress>::default(),
        )
        .await;
    let status = import_to_end(answer).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{}", status.message());
    assert!(status.message().contains("decode"), "{}", status.message());

    // The leader drains its calls before stopping: a broken import taken for a complete
    // one would have applied the first chunk by then.
    let leader = leader.restart().await;
    assert_eq!(leader.revision().await, 0);
}

#[tokio::test]
async fn a_leader_that_is_down_is_named_in_an_unavailable_status() {
    let leader = TestServer::start().await;
    let addr = leader.addr;
    leader.stop().await;
    let follower = Forwarder::start(addr).await;

    let status = follower
        .admin()
        .create_workspace(create_req("acme", "olivia"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    let named = format!("the leader `http://{addr}` cannot be reached: ");
    assert!(status.message().starts_with(&named), "{}", status.message());
    assert!(
        status
            .message()
            .to_lowercase()
            .contains("connection refused"),
        "{}",
        status.message()
    );

    let status = follower
        .admin()
        .export(proto::ExportRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert!(status.message().starts_with(&named), "{}", status.message());
}
