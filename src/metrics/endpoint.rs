//! The metrics' HTTP/1.1 listener: `GET /metrics` and nothing else (404), with no
//! credentials, so it belongs on an address only the scraper reaches. Bounded like the
//! gRPC port: a few connections at once, one request each, headers of a few KiB, and a
//! deadline on the whole exchange.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinHandle};
use tracing::{debug, info};

use super::Metrics;

/// Scrapers connect one at a time; a few more are allowed, and the rest wait in the
/// kernel's backlog.
const MAX_CONNECTIONS: usize = 8;
/// How long a connection may take to send its request and receive its answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of request hyper buffers: a scrape's headers are a few hundred.
const MAX_REQUEST_BYTES: usize = 16 << 10;
/// What Prometheus is told the answer is.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Stops the metrics listener when dropped.
pub struct MetricsPort(JoinHandle<()>);

impl Drop for MetricsPort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `metrics` on `address` until the guard is dropped; logs the address bound.
pub async fn serve(address: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<MetricsPort> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    info!(metrics_address = %bound, "metrics served at http://{bound}/metrics");
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    debug!(%err, "metrics: accept failed");
                    continue;
                }
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let _permit = permit;
                let service = service_fn(move |request| answer(Arc::clone(&metrics), request));
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_REQUEST_BYTES)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(EXCHANGE_TIMEOUT, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => debug!(%peer, %err, "metrics: connection failed"),
                    Err(_) => debug!(%peer, "metrics: connection timed out"),
                }
            });
        }
    });
    Ok(MetricsPort(task))
}

/// The answer to one request: the metrics for `GET /metrics`, else 404.
async fn answer(
    metrics: Arc<Metrics>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "only GET /metrics is served here\n",
        ));
    }
    // Walking a large store's members takes milliseconds: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || metrics.render()).await;
    Ok(match rendered {
        Ok(text) => Response::builder()
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(text)))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "")),
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be rendered\n",
        ),
    })
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
