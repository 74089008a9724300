//! gRPC reflection, v1 and v1alpha: the services listed, and descriptors that carry the
//! proto files' comments.

use accessd::proto;
use prost::Message as _;
use prost_types::FileDescriptorProto;

use crate::harness::*;

/// Reflection queries over one version of the reflection protocol.
macro_rules! reflection_client {
    ($version:ident) => {
        pub(super) mod $version {
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

#[test]
fn the_descriptor_set_served_by_reflection_keeps_source_comments() {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let access = file(&set.file, "accessd/v1/access.proto");
    assert!(!comments(access).is_empty());
}

#[tokio::test]
async fn reflection_can_be_turned_off() {
    let server = TestServer::start_with_options(accessd::server::ServeOptions {
        reflection: false,
        ..Default::default()
    })
    .await;
    for answer in [
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            server.channel.clone(),
        )
        .server_reflection_info(tokio_stream::iter([]))
        .await
        .map(drop),
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            server.channel.clone(),
        )
        .server_reflection_info(tokio_stream::iter([]))
        .await
        .map(drop),
    ] {
        assert_eq!(answer.unwrap_err().code(), tonic::Code::Unimplemented);
    }
}
