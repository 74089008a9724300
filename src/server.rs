//! The server: the two services with health, reflection, request spans, the optional
//! admin token, the limits on what callers can hold, and graceful shutdown with a drain
//! deadline. It is a function of a bound listener and a shutdown future, so tests run
//! the very same code on `127.0.0.1:0`.

mod call_status;
mod connections;
mod decode_status;
mod incoming;
mod limits;
mod listeners;
mod open_calls;
mod probe_port;
mod tls;
mod write_health;

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch};
use tonic::{service::interceptor::InterceptedService, transport::Server};
use tonic_health::ServingStatus;
use tracing::{field::Empty, info, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    api::{
        AccessApi, AdminApi, Exports, StoreSlot,
        audit::AuditApi,
        auth::{Authenticate, Credentials},
        callers::{Callers, Scope, token_digest},
        forward::LeaderForward,
        replication::{Progress, ReplicationApi},
        trace_context,
    },
    follower::{self, FollowError, FollowOptions},
    metrics::{Metrics, Open, RpcMetricsLayer, Sources},
    proto::{
        FILE_DESCRIPTOR_SET, access_service_server::AccessServiceServer,
        admin_service_server::AdminServiceServer, audit_service_server::AuditServiceServer,
        replication_service_server::ReplicationServiceServer,
    },
    store::Store,
};
use call_status::CallStatusLayer;
use connections::Connections;
use decode_status::DecodeStatusLayer;
use incoming::Accepting;
pub use limits::Limits;
pub use listeners::{
    DEFAULT_SOCKET_MODE, ListenAddress, ListenError, Listener, SocketFile, bind_all,
    parse_socket_mode,
};
use open_calls::OpenCallsLayer;
pub use tls::{ClientAuth, Tls, TlsError, TlsFiles};

/// How long a stopping server waits for in-flight calls unless told otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// How long connections get to close once the drain deadline has failed their reads and
/// writes; only a connection that never touches its socket again would need it.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Settings of the server beyond its listener and store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// If set (and no callers are), AdminService and ReplicationService calls must carry
    /// `authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// The callers, as the callers file says now: every service but health then needs a
    /// caller's token with the scope for it.
    pub callers: Option<Arc<ArcSwap<Callers>>>,
    /// Whether gRPC reflection is served (it describes the API, never data).
    pub reflection: bool,
    /// After the shutdown signal, how long to wait for in-flight calls before closing
    /// their connections anyway.
    pub drain_timeout: Duration,
    /// Follow a leader instead of taking writes: answer checks from a copy of its data,
    /// and forward AdminService calls to it.
    pub follow: Option<FollowOptions>,
    /// The bounds on what callers can hold.
    pub limits: Limits,
    /// TLS, and with a client CA mTLS; plain TCP without.
    pub tls: Option<Arc<Tls>>,
    /// Also answer health checks alone, in plaintext, on this address: for probes that
    /// cannot speak TLS.
    pub health_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics on this address, from these metrics (the store given
    /// to the server reports its writes to them).
    pub metrics: Option<(SocketAddr, Arc<Metrics>)>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            admin_token: None,
            callers: None,
            reflection: true,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            follow: None,
            limits: Limits::default(),
            tls: None,
            health_listen: None,
            metrics: None,
        }
    }
}

impl ServeOptions {
    /// How callers are told apart: by the callers file, else by the admin token, else
    /// not at all.
    pub fn credentials(&self) -> Credentials {
        match (&self.callers, &self.admin_token) {
            (Some(callers), _) => Credentials::Callers(Arc::clone(callers)),
            (None, Some(token)) => Credentials::AdminToken(Arc::new(token_digest(token))),
            (None, None) => Credentials::Open,
        }
    }
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
    /// The store could not be opened.
    #[error("{0}")]
    Load(Box<dyn std::error::Error + Send + Sync>),
    /// The leader to follow cannot be.
    #[error("{0}")]
    Follow(#[from] FollowError),
    /// The health probe port cannot be listened on.
    #[error("cannot listen on {0} for health probes: {1}")]
    ProbePort(SocketAddr, std::io::Error),
    /// The metrics port cannot be listened on.
    #[error("`--metrics-listen`: cannot listen on {0}: {1}")]
    MetricsPort(SocketAddr, std::io::Error),
}

const SERVICES: [&str; 4] = [
    "accessd.v1.AccessService",
    "accessd.v1.AdminService",
    "accessd.v1.AuditService",
    "accessd.v1.ReplicationService",
];

/// The listeners a server takes connections on: one or more, each serving the same
/// services under the same limits.
pub struct Listeners(Vec<Listener>);

impl From<Vec<Listener>> for Listeners {
    fn from(listeners: Vec<Listener>) -> Self {
        Self(listeners)
    }
}

impl<L: Into<Listener>> From<L> for Listeners {
    fn from(listener: L) -> Self {
        Self(vec![listener.into()])
    }
}

/// Serves `store` on `listeners` until `shutdown` completes, then reports NOT_SERVING,
/// drains in-flight calls for at most `options.drain_timeout`, closes the connections of
/// those still running, and returns. The caller closes the store afterwards.
pub async fn serve(
    listeners: impl Into<Listeners>,
    store: Arc<Store>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_loading(listeners, async { Ok(store) }, options, shutdown)
        .await
        .map(drop)
}

/// As [`serve`], but the store is still being loaded by `load`: meanwhile the server
/// already answers on `listeners`, health says NOT_SERVING and calls fail with
/// UNAVAILABLE, so that probes and clients see a starting server rather than a closed
/// port. Returns the store, unless `shutdown` came before it was loaded.
pub async fn serve_loading(
    listeners: impl Into<Listeners>,
    load: impl Future<Output = Result<Arc<Store>, Box<dyn std::error::Error + Send + Sync>>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<Arc<Store>>, ServeError> {
    let slot: StoreSlot = Arc::default();
    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;
    let _probe_port = match options.health_listen {
        Some(address) => Some(
            probe_port::serve(address, health.clone())
                .await
                .map_err(|e| ServeError::ProbePort(address, e))?,
        ),
        None => None,
    };
    let _metrics_port = match &options.metrics {
        Some((address, metrics)) => Some(
            crate::metrics::serve(*address, Arc::clone(metrics))
                .await
                .map_err(|e| ServeError::MetricsPort(*address, e))?,
        ),
        None => None,
    };

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Each version lists the other too, so that a client sees every service served.
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let credentials = options.credentials();
    let authenticate = |scope, service| Authenticate::new(credentials.clone(), scope, service);
    let limits = options.limits.clone();
    let exports = Exports::new(limits.max_exports, limits.export_stall_timeout);
    let (stop, stopping) = watch::channel(false);
    let follower = match &options.follow {
        Some(follow) => {
            let leader = follower::Leader::new(follow)?;
            let files = leader.tls_files();
            if !files.is_empty() {
                let reloaded = Arc::clone(&leader);
                crate::reload::on_change("leader TLS files", files, move || {
                    reloaded.reload().map_err(|e| e.to_string())?;
                    Ok("new connections to the leader use them".to_owned())
                })
                .map_err(|e| ServeError::Load(e.into()))?;
            }
            let progress = Arc::new(Progress::new(
                follow.leader.clone(),
                follow.selection.clone(),
            ));
            Some((follow.clone(), leader, progress))
        }
        None => None,
    };
    // AdminService is the leader's own, or a follower's forwarding to its leader, which
    // checks the caller's credentials itself.
    let (admin, forward, access, replication) = match &follower {
        None => (
            Some(InterceptedService::new(
                AdminServiceServer::new(AdminApi::new(Arc::clone(&slot)).with_exports(exports))
                    .max_decoding_message_size(limits.max_message_bytes),
                authenticate(Scope::Admin, "AdminService"),
            )),
            None,
            AccessApi::new(Arc::clone(&slot)),
            ReplicationApi::leader(Arc::clone(&slot), stopping.clone()),
        ),
        Some((follow, leader, progress)) => (
            None,
            Some(
                AdminServiceServer::new(LeaderForward::new(
                    leader.channel(),
                    follow.leader.clone(),
                ))
                .max_decoding_message_size(limits.max_message_bytes),
            ),
            AccessApi::with_selection(Arc::clone(&slot), follow.selection.clone()),
            ReplicationApi::follower(Arc::clone(&slot), Arc::clone(progress), stopping.clone()),
        ),
    };
    let replication = InterceptedService::new(
        ReplicationServiceServer::new(replication)
            .max_decoding_message_size(limits.max_message_bytes),
        authenticate(Scope::Replicate, "ReplicationService"),
    );
    let access = match &options.metrics {
        Some((_, metrics)) => access.counting(metrics.decisions()),
        None => access,
    };
    // Checks pass through an interceptor only when callers are named: the hot path
    // pays for no conversion of its metadata otherwise.
    let access =
        AccessServiceServer::new(access).max_decoding_message_size(limits.max_check_message_bytes);
    let (access, access_of_callers) = match credentials {
        Credentials::Callers(_) => (
            None,
            Some(InterceptedService::new(
                access,
                authenticate(Scope::Check, "AccessService"),
            )),
        ),
        Credentials::Open | Credentials::AdminToken(_) => (Some(access), None),
    };

    let (drain_started, drain_start) = oneshot::channel();
    let mut drain_reporter = reporter.clone();
    let signal = async move {
        shutdown.await;
        info!("shutting down: draining in-flight calls");
        // Change streams and the follower's health end: they never end by themselves.
        stop.send_replace(true);
        set_status(&drain_reporter, ServingStatus::NotServing).await;
        // A health watch never ends by itself and the drain waits for every open call:
        // end the watches (they have just sent NOT_SERVING), then answer checks anew.
        for service in std::iter::once("").chain(SERVICES) {
            drain_reporter.clear_service_status(service).await;
        }
        set_status(&drain_reporter, ServingStatus::NotServing).await;
        let _ = drain_started.send(Instant::now());
    };

    let Listeners(listeners) = listeners.into();
    let addresses: Vec<String> = listeners.iter().map(Listener::address).collect();
    // Lines about the server as a whole name the first listener as `address`, which
    // scripts read, and every one as `addresses`.
    let address = addresses.first().cloned().unwrap_or_default();
    let transports: Vec<&str> = listeners
        .iter()
        .map(|listener| match (listener, &options.tls) {
            (Listener::Tcp(_), Some(_)) => "TLS",
            (Listener::Tcp(_), None) => "plain TCP",
            (Listener::Unix(..), _) => "Unix socket",
        })
        .collect();
    let connections = Arc::new(Connections::new(
        limits.max_connections,
        limits.idle_timeout,
    ));
    let (incoming, _stop_accepting) = incoming::accept(
        listeners,
        Accepting {
            connections: Arc::clone(&connections),
            tls: options.tls.clone(),
            tcp_keepalive: limits.tcp_keepalive,
            handshake_timeout: limits.handshake_timeout,
        },
    );
    if let Some((_, metrics)) = &options.metrics {
        let counted = Arc::clone(&connections);
        metrics.attach(Sources {
            store: Arc::clone(&slot),
            progress: follower
                .as_ref()
                .map(|(_, _, progress)| Arc::clone(progress)),
            open: Box::new(move || {
                let (connections, calls) = counted.open_now();
                Open {
                    connections: connections as u64,
                    calls: calls as u64,
                }
            }),
        });
    }
    let rpc_metrics = options.metrics.as_ref().map_or_else(
        || RpcMetricsLayer::new(None),
        |(_, metrics)| metrics.rpc_layer(),
    );
    let exporting = crate::telemetry::exporting();
    let mut builder = Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        // tonic turns h2's bound off unless told: without it a client that opens
        // streams beyond the maximum makes the server refuse them for ever, holding
        // memory for each refusal it queues.
        .http2_max_local_error_reset_streams(Some(limits.max_refused_streams))
        .http2_keepalive_interval(limits.keepalive_interval)
        .http2_keepalive_timeout(Some(limits.keepalive_timeout));
    if let Some(call_timeout) = limits.call_timeout {
        builder = builder.timeout(call_timeout);
    }
    let router = builder
        .layer(OpenCallsLayer)
        // Outside the decode status, so that a call is counted with the code answered.
        .layer(rpc_metrics)
        .layer(DecodeStatusLayer)
        .layer(CallStatusLayer { exporting })
        .trace_fn(move |request| request_span(request, exporting))
        .add_service(health)
        .add_optional_service(options.reflection.then_some(reflection_v1))
        .add_optional_service(options.reflection.then_some(reflection_v1alpha))
        .add_optional_service(access)
        .add_optional_service(access_of_callers)
        .add_optional_service(admin)
        .add_optional_service(forward)
        .add_service(replication)
        .add_service(InterceptedService::new(
            AuditServiceServer::new(AuditApi::new(Arc::clone(&slot)))
                .max_decoding_message_size(limits.max_message_bytes),
            authenticate(Scope::Admin, "AuditService"),
        ));
    for (address, transport) in addresses.iter().zip(transports) {
        info!(%address, transport, "listening; loading the database");
    }
    let addresses = addresses.join(", ");
    let serving = router.serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(serving);
    let store = tokio::select! {
        loaded = load => loaded.map_err(ServeError::Load)?,
        served = &mut serving => {
            served?;
            return Ok(None);
        }
    };
    let _ = slot.set(Arc::clone(&store));
    match follower {
        None => {
            set_status(&reporter, ServingStatus::Serving).await;
            tokio::spawn(write_health::report(
                reporter.clone(),
                store.writes(),
                stopping.clone(),
            ));
            info!(%address, %addresses, "serving");
        }
        Some((follow, leader, progress)) => {
            info!(%address, %addresses, leader = %follow.leader, selection = %follow.selection, "following");
            let has_copy = store.identity().following.is_some();
            tokio::spawn(follower::health::report(
                has_copy,
                follow.clone(),
                Arc::clone(&progress),
                reporter.clone(),
                stopping.clone(),
            ));
            tokio::spawn(follower::run(
                Arc::clone(&store),
                leader,
                follow,
                progress,
                stopping.clone(),
            ));
        }
    }
    let deadline = async {
        // Before the signal there is no deadline; a dropped sender means the server
        // stopped on its own.
        let Ok(started) = drain_start.await else {
            return std::future::pending().await;
        };
        match started.checked_add(options.drain_timeout) {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
        started
    };
    tokio::select! {
        served = &mut serving => {
            served?;
            return Ok(Some(store));
        }
        started = deadline => {
            let waited = started.elapsed().as_secs_f64();
            warn!(
                waited_seconds = waited,
                "drain deadline passed after {waited:.1} s: closing the connections of calls still in flight"
            );
        }
    }
    connections.close_all();
    match tokio::time::timeout(ABORT_GRACE, serving).await {
        Ok(served) => served?,
        Err(_) => warn!("some connections did not close; stopping without them"),
    }
    Ok(Some(store))
}

/// The span of one call. Checks are the hot path and a span costs about half a
/// microsecond to record, so the read side's spans are at debug level
/// (`ACCESSD_LOG=debug`); writes and everything else get info-level spans, and so does a
/// check whose caller sent a `traceparent`, so that its trace id is in its log lines
/// (`trace_id`) and, when `exporting`, its span is exported as a child of the caller's.
fn request_span(request: &http::Request<()>, exporting: bool) -> tracing::Span {
    let method = request.uri().path();
    let caller = trace_context::extract(request.headers());
    let span = match &caller {
        Some(caller) => tracing::info_span!(
            "grpc",
            method,
            trace_id = %caller.trace_id,
            otel.name = Empty,
            otel.kind = Empty
        ),
        None if method.starts_with("/accessd.v1.AccessService/") => {
            tracing::debug_span!("grpc", method, otel.name = Empty, otel.kind = Empty)
        }
        None => tracing::info_span!("grpc", method, otel.name = Empty, otel.kind = Empty),
    };
    if exporting && !span.is_disabled() {
        // As OpenTelemetry's conventions name an RPC server's span.
        let name = method.trim_start_matches('/');
        let (service, rpc) = name.split_once('/').unwrap_or((name, ""));
        span.record("otel.name", name);
        span.record("otel.kind", "server");
        span.set_attribute("rpc.system", "grpc");
        span.set_attribute("rpc.service", service.to_owned());
        span.set_attribute("rpc.method", rpc.to_owned());
        if let Some(caller) = caller {
            // Refused only if the span was started, and it is not until it is entered.
            let _ = span.set_parent(caller.context);
        }
    }
    span
}

async fn set_status(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}
