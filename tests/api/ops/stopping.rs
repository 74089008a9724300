//! Stopping: neither an open health watch nor a call outliving the drain deadline keeps
//! the server running, and writes acknowledged during the drain are kept.

use std::time::Duration;

use accessd::{proto, server::ServeOptions};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::*;

use super::STOP_DEADLINE;

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
