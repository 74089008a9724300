//! A second, plaintext listener serving only `grpc.health.v1`, for probes that cannot
//! speak TLS or present a client certificate (the kubelet's gRPC probes). It answers
//! the same statuses as the main port and nothing else: no data, no reflection.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tonic::transport::Server;
use tracing::{info, warn};

use super::{
    connections::Connections,
    incoming::{self, Accepting},
    listeners::Listener,
    open_calls::OpenCallsLayer,
};

/// Probes open a connection or two: a few more are allowed, and no more.
const MAX_CONNECTIONS: usize = 16;
/// A probe's connection lives for one check; one idle this long is let go.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A probe makes one call at a time.
const MAX_CONCURRENT_STREAMS: u32 = 4;

/// Stops the probe port when dropped.
pub struct ProbePort(JoinHandle<()>);

impl Drop for ProbePort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `health` on `address` until the guard is dropped.
pub async fn serve<S>(address: SocketAddr, health: S) -> std::io::Result<ProbePort>
where
    S: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let (connections, stop_accepting) = incoming::accept(
        vec![Listener::Tcp(listener)],
        Accepting {
            connections: Arc::new(Connections::new(MAX_CONNECTIONS, Some(IDLE_TIMEOUT))),
            tls: None,
            tcp_keepalive: None,
            handshake_timeout: Duration::from_secs(1),
        },
    );
    info!(health_address = %bound, "health probes answered in plaintext");
    let task = tokio::spawn(async move {
        let _stop_accepting = stop_accepting;
        let served = Server::builder()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .layer(OpenCallsLayer)
            .add_service(health)
            .serve_with_incoming(connections)
            .await;
        if let Err(err) = served {
            warn!(%err, "the health probe port stopped");
        }
    });
    Ok(ProbePort(task))
}
