//! The server: the two services with health, reflection, request spans, the optional
//! admin token, and graceful shutdown. It is a function of a bound listener and a
//! shutdown future, so tests run the very same code on `127.0.0.1:0`.

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;
use tonic::{
    Request, Status,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tracing::info;

use crate::{
    api::{
        AccessApi, AdminApi,
        pb::FILE_DESCRIPTOR_SET,
        pb::{
            access_service_server::AccessServiceServer, admin_service_server::AdminServiceServer,
        },
    },
    store::Store,
};

/// Settings of the server beyond its listener and store.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// If set, AdminService calls must carry `authorization: Bearer <token>`.
    pub admin_token: Option<String>,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

const SERVICES: [&str; 2] = ["accessd.v1.AccessService", "accessd.v1.AdminService"];

/// Serves on `listener` until `shutdown` completes, then reports NOT_SERVING, drains
/// in-flight calls and returns. The caller closes the store afterwards.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let token = options.admin_token.map(|t| format!("Bearer {t}"));
    let admin = AdminServiceServer::with_interceptor(
        AdminApi::new(Arc::clone(&store)),
        move |request: Request<()>| {
            authenticate(token.as_deref(), &request)?;
            Ok(request)
        },
    );

    let mut drain_reporter = reporter.clone();
    let signal = async move {
        shutdown.await;
        info!("shutting down: draining in-flight calls");
        set_status(&drain_reporter, ServingStatus::NotServing).await;
        // A health watch never ends by itself and the drain waits for every open call:
        // end the watches (they have just sent NOT_SERVING), then answer checks anew.
        for service in std::iter::once("").chain(SERVICES) {
            drain_reporter.clear_service_status(service).await;
        }
        set_status(&drain_reporter, ServingStatus::NotServing).await;
    };

    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let router = Server::builder()
        .trace_fn(|request| tracing::info_span!("grpc", method = %request.uri().path()))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AccessServiceServer::new(AccessApi::new(store)))
        .add_service(admin);
    set_status(&reporter, ServingStatus::Serving).await;
    info!(%address, "serving");
    router
        .serve_with_incoming_shutdown(incoming, signal)
        .await?;
    Ok(())
}

async fn set_status(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}

/// Refuses a call without the admin token, when one is configured.
fn authenticate(expected: Option<&str>, request: &Request<()>) -> Result<(), Status> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Compare in constant time so the token cannot be guessed byte by byte.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Status::unauthenticated(
            "AdminService needs `authorization: Bearer <token>` with the server's admin token",
        ))
    }
}
