//! The server: the two services with health, reflection, request spans, the optional
//! admin token, and graceful shutdown with a drain deadline. It is a function of a bound
//! listener and a shutdown future, so tests run the very same code on `127.0.0.1:0`.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::{oneshot, watch},
};
use tokio_stream::StreamExt as _;
use tonic::transport::{
    Server,
    server::{Connected, TcpIncoming},
};
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::{
    api::{
        AccessApi, AdminApi, StoreSlot,
        audit::AuditApi,
        auth::{Authenticate, Credentials},
        callers::{Callers, Scope, token_digest},
        forward::LeaderForward,
        replication::{Progress, ReplicationApi},
    },
    follower::{self, FollowError, FollowOptions},
    proto::{
        FILE_DESCRIPTOR_SET, access_service_server::AccessServiceServer,
        admin_service_server::AdminServiceServer, audit_service_server::AuditServiceServer,
        replication_service_server::ReplicationServiceServer,
    },
    store::Store,
};

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
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            admin_token: None,
            callers: None,
            reflection: true,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            follow: None,
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
}

const SERVICES: [&str; 3] = [
    "accessd.v1.AccessService",
    "accessd.v1.AdminService",
    "accessd.v1.ReplicationService",
];

/// Serves `store` on `listener` until `shutdown` completes, then reports NOT_SERVING,
/// drains in-flight calls for at most `options.drain_timeout`, closes the connections of
/// those still running, and returns. The caller closes the store afterwards.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_loading(listener, async { Ok(store) }, options, shutdown)
        .await
        .map(drop)
}

/// As [`serve`], but the store is still being loaded by `load`: meanwhile the server
/// already answers on `listener`, health says NOT_SERVING and calls fail with
/// UNAVAILABLE, so that probes and clients see a starting server rather than a closed
/// port. Returns the store, unless `shutdown` came before it was loaded.
pub async fn serve_loading(
    listener: TcpListener,
    load: impl Future<Output = Result<Arc<Store>, Box<dyn std::error::Error + Send + Sync>>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<Arc<Store>>, ServeError> {
    let slot: StoreSlot = Arc::default();
    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;

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
    let (stop, stopping) = watch::channel(false);
    let follower = match &options.follow {
        Some(follow) => {
            let channel = follower::leader_channel(&follow.leader)?;
            let client = follower::leader_client(channel.clone(), follow.leader_token.as_deref())?;
            let progress = Arc::new(Progress::new(
                follow.leader.clone(),
                follow.selection.clone(),
            ));
            Some((follow.clone(), channel, client, progress))
        }
        None => None,
    };
    // AdminService is the leader's own, or a follower's forwarding to its leader, which
    // checks the caller's credentials itself.
    let (admin, forward, access, replication) = match &follower {
        None => (
            Some(AdminServiceServer::with_interceptor(
                AdminApi::new(Arc::clone(&slot)),
                authenticate(Scope::Admin, "AdminService"),
            )),
            None,
            AccessApi::new(Arc::clone(&slot)),
            ReplicationApi::leader(Arc::clone(&slot), stopping.clone()),
        ),
        Some((follow, channel, _, progress)) => (
            None,
            Some(AdminServiceServer::new(LeaderForward::new(
                channel.clone(),
                follow.leader.clone(),
            ))),
            AccessApi::with_selection(Arc::clone(&slot), follow.selection.clone()),
            ReplicationApi::follower(Arc::clone(&slot), Arc::clone(progress), stopping.clone()),
        ),
    };
    let replication = ReplicationServiceServer::with_interceptor(
        replication,
        authenticate(Scope::Replicate, "ReplicationService"),
    );
    // Checks pass through an interceptor only when callers are named: the hot path
    // pays for no conversion of its metadata otherwise.
    let (access, access_of_callers) = match credentials {
        Credentials::Callers(_) => (
            None,
            Some(AccessServiceServer::with_interceptor(
                access,
                authenticate(Scope::Check, "AccessService"),
            )),
        ),
        Credentials::Open | Credentials::AdminToken(_) => {
            (Some(AccessServiceServer::new(access)), None)
        }
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

    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let connections = Arc::new(Connections::default());
    let accepted = Arc::clone(&connections);
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(move |io| io.map(|io| accepted.open(io)));
    let router = Server::builder()
        .trace_fn(request_span)
        .add_service(health)
        .add_optional_service(options.reflection.then_some(reflection_v1))
        .add_optional_service(options.reflection.then_some(reflection_v1alpha))
        .add_optional_service(access)
        .add_optional_service(access_of_callers)
        .add_optional_service(admin)
        .add_optional_service(forward)
        .add_service(replication)
        .add_service(AuditServiceServer::with_interceptor(
            AuditApi::new(Arc::clone(&slot)),
            authenticate(Scope::Admin, "AuditService"),
        ));
    info!(%address, "listening; loading the database");
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
            info!(%address, "serving");
        }
        Some((follow, _, client, progress)) => {
            info!(%address, leader = %follow.leader, selection = %follow.selection, "following");
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
                client,
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

/// The open connections, so that the drain deadline can close them: once `closed` is
/// set, every read and write of every connection fails, and hyper drops them.
#[derive(Default)]
struct Connections {
    /// Set when the drain deadline passes.
    closed: AtomicBool,
    /// The task of each open connection, woken when `closed` is set so that an idle
    /// connection notices too. A std mutex: it is held for no `.await`, and only at
    /// accept and at the deadline.
    tasks: Mutex<Vec<Weak<Mutex<Option<Waker>>>>>,
}

impl Connections {
    /// Wraps an accepted connection.
    fn open<IO>(self: &Arc<Self>, io: IO) -> Abortable<IO> {
        let task = Arc::new(Mutex::new(None));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|task| task.strong_count() > 0);
            tasks.push(Arc::downgrade(&task));
        }
        Abortable {
            io,
            connections: Arc::clone(self),
            task,
            registered: None,
        }
    }

    /// Fails every connection's reads and writes from now on, and wakes them to notice.
    fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let tasks = self
            .tasks
            .lock()
            .map(|tasks| tasks.clone())
            .unwrap_or_default();
        for task in tasks.iter().filter_map(Weak::upgrade) {
            if let Some(waker) = task.lock().ok().and_then(|mut waker| waker.take()) {
                waker.wake();
            }
        }
    }
}

/// An accepted connection that fails its reads and writes once [`Connections::close_all`]
/// has run, so that hyper drops it and the calls on it end.
struct Abortable<IO> {
    /// The connection.
    io: IO,
    /// Whether to fail, and where to leave the waker.
    connections: Arc<Connections>,
    /// The waker of the task driving this connection, for `close_all`.
    task: Arc<Mutex<Option<Waker>>>,
    /// The waker last left in `task`: the same task polls every time, so the lock is
    /// taken only when it changes.
    registered: Option<Waker>,
}

impl<IO> Abortable<IO> {
    /// An error once the connections are closed; until then, leaves the waker for
    /// `close_all` (before reading the flag, so that one of the two sees the other).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            let waker = cx.waker().clone();
            if let Ok(mut task) = self.task.lock() {
                *task = Some(waker.clone());
            }
            self.registered = Some(waker);
        }
        if self.connections.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the drain deadline passed",
            ))
        } else {
            Ok(())
        }
    }
}

impl<IO: Connected> Connected for Abortable<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Abortable<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Abortable<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The span of one call. Checks are the hot path and a span costs about half a
/// microsecond to record, so the read side's spans are at debug level
/// (`ACCESSD_LOG=debug`); writes and everything else get info-level spans.
fn request_span(request: &http::Request<()>) -> tracing::Span {
    let method = request.uri().path();
    if method.starts_with("/accessd.v1.AccessService/") {
        tracing::debug_span!("grpc", method)
    } else {
        tracing::info_span!("grpc", method)
    }
}

async fn set_status(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}
