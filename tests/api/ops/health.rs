//! gRPC health: serving for the server and each service, not serving while the store
//! loads and once a stop is requested.

use accessd::server::ServeOptions;
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::*;

use super::STOP_DEADLINE;

const SERVICES: [&str; 5] = [
    "",
    "accessd.v1.AccessService",
    "accessd.v1.AdminService",
    "accessd.v1.AuditService",
    "accessd.v1.ReplicationService",
];

/// What health answers for `service`, or the call's error.
pub(super) async fn health_status(
    channel: Channel,
    service: &str,
) -> Result<ServingStatus, Status> {
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
