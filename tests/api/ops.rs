//! Operating the server: gRPC health, reflection v1 and v1alpha, the admin token, and
//! persistence across restarts.

use std::time::Duration;

use accessd::{proto, server::ServeOptions};
use prost::Message as _;
use prost_types::FileDescriptorProto;
use tonic::{Code, Request, Status, service::Interceptor, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::*;

const SERVICES: [&str; 3] = ["", "accessd.v1.AccessService", "accessd.v1.AdminService"];

/// A guard against hanging forever on a server that does not stop; not a wait.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

async fn health_status(channel: Channel, service: &str) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let server = TestServer::start().await;
    for service in SERVICES {
        let status = health_status(server.channel.clone(), service)
            .await
            .unwrap();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health_status(server.channel.clone(), "accessd.v1.NoSuchService").await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn health_turns_not_serving_or_closes_once_a_stop_is_requested() {
    let mut server = TestServer::start().await;
    let mut watches = Vec::new();
    for service in SERVICES {
        let mut watch = HealthClient::new(server.channel.clone())
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = watch.message().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving, "{service:?}");
        watches.push(watch);
    }
    server.request_stop();
    for (service, watch) in SERVICES.iter().zip(&mut watches) {
        // Either the drain is announced, or the stream ends with the connection.
        if let Ok(Some(next)) = watch.message().await {
            assert_eq!(next.status(), ServingStatus::NotServing, "{service:?}");
        }
    }
    drop(watches);
    let channel = server.channel.clone();
    tokio::time::timeout(STOP_DEADLINE, server.stop())
        .await
        .expect("the server did not stop");
    let after = health_status(channel, "").await;
    assert_eq!(after.unwrap_err().code(), Code::Unavailable);
}

#[tokio::test]
async fn an_open_health_watch_does_not_keep_the_server_from_stopping() {
    let mut server = TestServer::start().await;
    let mut watch = HealthClient::new(server.connect().await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    server.request_stop();
    // The watcher keeps its stream open and unread while the server drains.
    tokio::time::timeout(STOP_DEADLINE, server.stop())
        .await
        .expect("an open health watch kept the server from draining");
    // It was told the server is not serving, then its stream ended.
    let last = watch.message().await.unwrap().unwrap();
    assert_eq!(last.status(), ServingStatus::NotServing);
    assert!(watch.message().await.unwrap().is_none());
}

/// Reflection queries over one version of the reflection protocol.
macro_rules! reflection_client {
    ($version:ident) => {
        mod $version {
            use prost::Message as _;
            use prost_types::FileDescriptorProto;
            use tonic::transport::Channel;
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, ServerReflectionResponse,
                server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };

            async fn ask(channel: Channel, request: MessageRequest) -> MessageResponse {
                let request = ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                };
                let mut answers = ServerReflectionClient::new(channel)
                    .server_reflection_info(tokio_stream::iter([request]))
                    .await
                    .unwrap()
                    .into_inner();
                let answer: ServerReflectionResponse = answers.message().await.unwrap().unwrap();
                answer.message_response.unwrap()
            }

            /// The names of the services the server lists.
            pub async fn services(channel: Channel) -> Vec<String> {
                match ask(channel, MessageRequest::ListServices(String::new())).await {
                    MessageResponse::ListServicesResponse(list) => {
                        list.service.into_iter().map(|s| s.name).collect()
                    }
                    other => panic!("unexpected reflection answer {other:?}"),
                }
            }

            /// The file named `name`.
            pub async fn file_named(channel: Channel, name: &str) -> Vec<FileDescriptorProto> {
                match ask(channel, MessageRequest::FileByFilename(name.into())).await {
                    MessageResponse::FileDescriptorResponse(files) => files
                        .file_descriptor_proto
                        .iter()
                        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).unwrap())
                        .collect(),
                    other => panic!("unexpected reflection answer {other:?}"),
                }
            }

            /// The file declaring `symbol` (tonic sends no imports; clients ask by name).
            pub async fn files_containing(
                channel: Channel,
                symbol: &str,
            ) -> Vec<FileDescriptorProto> {
                match ask(channel, MessageRequest::FileContainingSymbol(symbol.into())).await {
                    MessageResponse::FileDescriptorResponse(files) => files
                        .file_descriptor_proto
                        .iter()
                        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).unwrap())
                        .collect(),
                    other => panic!("unexpected reflection answer {other:?}"),
                }
            }
        }
    };
}

reflection_client!(v1);
reflection_client!(v1alpha);

/// The comments attached to `file`'s declarations.
fn comments(file: &FileDescriptorProto) -> Vec<&str> {
    file.source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .filter_map(|location| location.leading_comments.as_deref())
        .collect()
}

fn file<'a>(files: &'a [FileDescriptorProto], name: &str) -> &'a FileDescriptorProto {
    files
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("reflection did not send `{name}`"))
}

/// Asserts that the services are listed and that the descriptors carry the proto comments.
fn assert_documented(
    services: &[String],
    access: &[FileDescriptorProto],
    admin: &[FileDescriptorProto],
    imported: &[FileDescriptorProto],
) {
    for service in [
        "accessd.v1.AccessService",
        "accessd.v1.AdminService",
        "grpc.health.v1.Health",
        // Both versions of reflection, whichever one is asked.
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} not in {services:?}"
        );
    }
    let access_file = file(access, "accessd/v1/access.proto");
    assert!(
        access_file
            .service
            .iter()
            .any(|s| s.name() == "AccessService")
    );
    let access_comments = comments(access_file);
    for expected in [
        "Decides one permission for one user",
        "The workspace the check is made in.",
        "Why a check was denied.",
    ] {
        assert!(
            access_comments.iter().any(|c| c.contains(expected)),
            "no comment {expected:?} in access.proto's descriptor"
        );
    }
    let admin_file = file(admin, "accessd/v1/admin.proto");
    assert_eq!(admin_file.dependency, ["accessd/v1/access.proto"]);
    // The import is served by name, as `grpcurl describe` asks for it.
    assert!(!comments(file(imported, "accessd/v1/access.proto")).is_empty());
    let admin_comments = comments(admin_file);
    assert!(
        admin_comments
            .iter()
            .any(|c| c.contains("Grants a role to a member")),
        "no Grant comment in admin.proto's descriptor"
    );
}

#[tokio::test]
async fn reflection_v1_lists_the_services_and_serves_their_documented_descriptors() {
    let server = TestServer::start().await;
    let services = v1::services(server.channel.clone()).await;
    let access = v1::files_containing(server.channel.clone(), "accessd.v1.AccessService").await;
    let admin = v1::files_containing(server.channel.clone(), "accessd.v1.AdminService").await;
    let imported = v1::file_named(server.channel.clone(), "accessd/v1/access.proto").await;
    assert_documented(&services, &access, &admin, &imported);
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_and_serves_their_documented_descriptors() {
    let server = TestServer::start().await;
    let services = v1alpha::services(server.channel.clone()).await;
    let access =
        v1alpha::files_containing(server.channel.clone(), "accessd.v1.AccessService").await;
    let admin = v1alpha::files_containing(server.channel.clone(), "accessd.v1.AdminService").await;
    let imported = v1alpha::file_named(server.channel.clone(), "accessd/v1/access.proto").await;
    assert_documented(&services, &access, &admin, &imported);
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

/// A few checks whose answers tell the state of `acme` apart.
async fn answers(server: &TestServer) -> Vec<(bool, Option<proto::DenialReason>)> {
    let checks = [
        ("acme", "sam", "source.update", res("source", "ios-prod")),
        ("acme", "sam", "warehouse.read", res("warehouse", "wh")),
        ("acme", "rita", "workspace.read", None),
        ("acme", "olivia", "tracking_plan.create", None),
        (
            "acme",
            "olivia",
            "destination.read",
            res("destination", "web-to-s3"),
        ),
        ("gone", "olivia", "workspace.read", None),
    ];
    let mut decisions = Vec::new();
    for (ws, user, permission, resource) in checks {
        let decision = decide(server, ws, user, permission, resource).await;
        decisions.push((decision.allowed, denial(&decision)));
    }
    decisions
}

#[tokio::test]
async fn every_kind_of_write_survives_a_restart() {
    let server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &["protocols"]).await;
    create_workspace(&server, "gone", "olivia", &[]).await;
    for user in ["sam", "rita", "zoe"] {
        add_member(&server, "acme", user).await;
    }
    register(&server, "acme", "source", "ios-prod", "").await;
    register(&server, "acme", "source", "web", "").await;
    register(&server, "acme", "destination", "web-to-s3", "web").await;
    register(&server, "acme", "warehouse", "wh", "").await;
    grant(
        &server,
        "acme",
        "sam",
        "source_admin",
        one("source", "ios-prod"),
    )
    .await;
    grant(&server, "acme", "sam", "warehouse_read", all()).await;
    grant(&server, "acme", "rita", "source_read", one("source", "web")).await;
    grant(&server, "acme", "zoe", "source_admin", all()).await;
    set_membership(&server, "acme", "zoe", proto::Membership::Owner).await;
    revoke(&server, "acme", "sam", "warehouse_read", all()).await;
    remove_member(&server, "acme", "rita").await;
    delete_resource(&server, "acme", "source", "web").await;
    set_products(&server, "acme", &[]).await;
    delete_workspace(&server, "gone").await;
    let before = (team(&server, "acme").await, answers(&server).await);
    assert_eq!(
        before.0.1,
        [
            "olivia owner []",
            "sam member [source_admin@source/ios-prod]",
            "zoe owner [source_admin@all]",
        ]
    );

    let server = server.restart().await;
    let after = (team(&server, "acme").await, answers(&server).await);
    assert_eq!(after, before);
    expect_error(
        server.access().list_access(list_req("gone")).await,
        Code::NotFound,
        "workspace_id",
    );
}

#[tokio::test]
async fn revisions_keep_increasing_across_restarts() {
    let mut server = TestServer::start().await;
    let mut last = create_workspace(&server, "acme", "olivia", &[]).await;
    for round in 0..3 {
        let user = format!("user-{round}");
        let added = set_membership(&server, "acme", &user, proto::Membership::Member).await;
        assert!(added.revision > last);
        last = added.revision;
        server = server.restart().await;
        assert_eq!(server.revision().await, last, "round {round}");
        // An idempotent write after a restart reports the restored revision.
        let same = set_membership(&server, "acme", &user, proto::Membership::Member).await;
        assert_eq!((same.changed, same.revision), (false, last));
        let granted = grant(&server, "acme", &user, "source_read", all()).await;
        assert!(granted.revision > last, "round {round}");
        last = granted.revision;
    }
    assert_eq!(team(&server, "acme").await.1.len(), 4);
}

#[tokio::test]
async fn writes_acknowledged_while_the_server_stops_survive_the_restart() {
    let mut server = TestServer::start().await;
    create_workspace(&server, "acme", "olivia", &[]).await;
    let mut writes = Vec::new();
    for i in 0..40 {
        let channel = server.channel.clone();
        writes.push(tokio::spawn(async move {
            let user = format!("user-{i:02}");
            let result = proto::admin_service_client::AdminServiceClient::new(channel)
                .set_membership(membership_req("acme", &user, proto::Membership::Member))
                .await;
            (user, result.is_ok())
        }));
    }
    server.request_stop();
    let mut acknowledged = Vec::new();
    for write in writes {
        let (user, ok) = write.await.unwrap();
        if ok {
            acknowledged.push(user);
        }
    }
    let dir = tokio::time::timeout(STOP_DEADLINE, server.stop())
        .await
        .expect("the server did not stop");
    let server = TestServer::start_with(
        dir,
        accessd::model::Catalog::built_in(),
        ServeOptions::default(),
    )
    .await;
    let (_, rows) = team(&server, "acme").await;
    for user in acknowledged {
        let row = format!("{user} member []");
        assert!(rows.contains(&row), "acknowledged {user} was lost");
    }
}

#[test]
fn the_descriptor_set_served_by_reflection_keeps_source_comments() {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let access = file(&set.file, "accessd/v1/access.proto");
    assert!(!comments(access).is_empty());
}

#[tokio::test]
async fn a_call_still_open_at_the_drain_deadline_does_not_keep_the_server_from_stopping() {
    use tokio_stream::wrappers::ReceiverStream;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };

    let drain_timeout = Duration::from_millis(200);
    let mut server = TestServer::start_with_options(ServeOptions {
        drain_timeout,
        ..ServeOptions::default()
    })
    .await;
    let list = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    // A reflection stream stays open until its client ends its requests: this one never
    // does, so only the deadline can end the drain.
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    requests.send(list()).await.unwrap();
    let mut answers = ServerReflectionClient::new(server.connect().await)
        .server_reflection_info(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());

    server.request_stop();
    // The call is still served while the server drains.
    requests.send(list()).await.unwrap();
    assert!(answers.message().await.unwrap().is_some());
    // Well under the default deadline of 15 s: this one's 200 ms ended the drain.
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("an open call kept the server from stopping past its drain deadline");
    // Its connection was closed under it.
    let ended = tokio::time::timeout(STOP_DEADLINE, answers.message())
        .await
        .expect("the open call was left running");
    assert!(ended.is_err(), "{ended:?}");
    drop(requests);
}

#[tokio::test]
async fn while_the_store_loads_health_says_not_serving_and_calls_are_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (release, loaded) = tokio::sync::oneshot::channel::<()>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = dir.path().to_owned();
    let load = async move {
        let _ = loaded.await;
        let store = accessd::store::Store::open(
            &path,
            std::sync::Arc::new(accessd::model::Catalog::built_in()),
            &accessd::store::StoreConfig::default(),
        )?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(std::sync::Arc::new(store))
    };
    let server = tokio::spawn(accessd::server::serve_loading(
        listener,
        load,
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    for service in ["", "accessd.v1.AccessService", "accessd.v1.AdminService"] {
        let answer = health.check(status(service)).await.unwrap().into_inner();
        assert_eq!(
            answer.status(),
            tonic_health::pb::health_check_response::ServingStatus::NotServing,
            "{service}"
        );
    }
    let mut access = accessd::proto::access_service_client::AccessServiceClient::new(channel);
    let refused = access
        .check(crate::harness::check_req(
            "acme",
            "sam",
            "workspace.read",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(
        refused.message().contains("still loading"),
        "{}",
        refused.message()
    );

    release.send(()).unwrap();
    // Health flips once the store is in place; watch for it rather than sleeping.
    let mut watch = health.watch(status("")).await.unwrap().into_inner();
    while let Some(update) = watch.message().await.unwrap() {
        if update.status() == tonic_health::pb::health_check_response::ServingStatus::Serving {
            break;
        }
    }
    let answer = access
        .check(crate::harness::check_req(
            "acme",
            "sam",
            "workspace.read",
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.decision.unwrap().allowed);
    drop(watch);
    stop.send(()).unwrap();
    let store = server.await.unwrap().unwrap().unwrap();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
}
