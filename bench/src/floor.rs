//! The floor: accessd's AccessService on the same stack (tonic server, the same generated
//! trait and messages, the same runtime, allocator and socket options), answering a
//! constant. What it costs is what any gRPC call costs here; accessd is reported as a
//! ratio to it. It decides nothing and holds no data.

use std::{future::Future, io::Write as _, path::PathBuf, sync::Arc, time::Duration};

use accessd::proto::{self, access_service_server::AccessService};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::{oneshot, watch},
};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{
    Request, Response, Status,
    transport::{Server, server::TcpIncoming},
};

use crate::{address::Address, args::FloorArgs};

/// The no-op AccessService: every Check gets the same answer, every BatchCheck as many
/// copies of it as it has checks.
#[derive(Debug, Clone)]
pub struct Floor {
    /// The answer to every check: an allowed-by-grant decision with its explanation, of
    /// the size of accessd's typical answers.
    decision: Arc<proto::Decision>,
}

impl Floor {
    /// The floor service.
    pub fn new() -> Self {
        let user = "usr_2Qx8jK4vR7mZ0aLpT3nB9c";
        let source = "src_7HgT2kLm9QwE4rYu1IoP5a";
        Self {
            decision: Arc::new(proto::Decision {
                allowed: true,
                basis: Some(proto::decision::Basis::Grant(proto::Grant {
                    user_id: user.to_owned(),
                    role: "source_admin".to_owned(),
                    scope: Some(proto::Scope {
                        kind: Some(proto::scope::Kind::Instance(proto::ResourceRef {
                            r#type: "source".to_owned(),
                            id: source.to_owned(),
                        })),
                    }),
                })),
                explanation: format!("allowed: `{user}` holds `source_admin` on source `{source}`"),
            }),
        }
    }
}

/// The revision every floor answer carries.
const REVISION: u64 = 123_456;

#[tonic::async_trait]
impl AccessService for Floor {
    async fn check(
        &self,
        _request: Request<proto::CheckRequest>,
    ) -> Result<Response<proto::CheckResponse>, Status> {
        Ok(Response::new(proto::CheckResponse {
            decision: Some(proto::Decision::clone(&self.decision)),
            revision: REVISION,
        }))
    }

    async fn batch_check(
        &self,
        request: Request<proto::BatchCheckRequest>,
    ) -> Result<Response<proto::BatchCheckResponse>, Status> {
        let count = request.get_ref().checks.len();
        Ok(Response::new(proto::BatchCheckResponse {
            decisions: vec![proto::Decision::clone(&self.decision); count],
            revision: REVISION,
        }))
    }

    async fn list_access(
        &self,
        _request: Request<proto::ListAccessRequest>,
    ) -> Result<Response<proto::ListAccessResponse>, Status> {
        Err(Status::unimplemented(
            "the floor answers only Check and BatchCheck",
        ))
    }

    async fn lookup_resources(
        &self,
        _request: Request<proto::LookupResourcesRequest>,
    ) -> Result<Response<proto::LookupResourcesResponse>, Status> {
        Err(Status::unimplemented(
            "the floor answers only Check and BatchCheck",
        ))
    }

    async fn lookup_subjects(
        &self,
        _request: Request<proto::LookupSubjectsRequest>,
    ) -> Result<Response<proto::LookupSubjectsResponse>, Status> {
        Err(Status::unimplemented(
            "the floor answers only Check and BatchCheck",
        ))
    }
}

/// Serves the floor on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    // As accessd's server: TCP_NODELAY on, default HTTP/2 settings.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(proto::access_service_server::AccessServiceServer::new(
            Floor::new(),
        ))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Serves the floor on a Unix socket until `shutdown` completes.
pub async fn serve_unix(
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(proto::access_service_server::AccessServiceServer::new(
            Floor::new(),
        ))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
}

/// A bound listener of the floor.
enum Bound {
    Tcp(TcpListener),
    /// With its socket file, removed when the floor stops.
    Unix(UnixListener, PathBuf),
}

async fn bind(address: &Address) -> Result<(Bound, Address), String> {
    let failed = |e| format!("cannot listen on {address}: {e}");
    match address {
        Address::Tcp(address) => {
            let listener = TcpListener::bind(address).await.map_err(failed)?;
            let bound = listener.local_addr().map_err(failed)?;
            Ok((Bound::Tcp(listener), Address::Tcp(bound)))
        }
        Address::Unix(path) => {
            let listener = UnixListener::bind(path).map_err(failed)?;
            Ok((Bound::Unix(listener, path.clone()), address.clone()))
        }
    }
}

/// `accessd-bench floor`: binds every `--listen`, prints `listening on ADDR` for each,
/// and serves until stdin closes (the parent run ended), a signal, or the lifetime is
/// over.
pub async fn run(args: FloorArgs) -> Result<(), String> {
    let mut listeners = Vec::with_capacity(args.listen.len());
    let mut stdout = std::io::stdout();
    for address in &args.listen {
        let (listener, bound) = bind(address).await?;
        listeners.push(listener);
        writeln!(stdout, "listening on {bound}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    let stdin_closed = if args.ignore_stdin {
        None
    } else {
        Some(stdin_closed())
    };
    let lifetime = args.lifetime;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let stdin = async {
            match stdin_closed {
                Some(closed) => {
                    let _ = closed.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stdin => {},
            () = terminated() => {},
            () = tokio::time::sleep(lifetime) => {},
        }
        stop.send_replace(true);
    });
    let mut servers = tokio::task::JoinSet::new();
    let mut socket_files = Vec::new();
    for listener in listeners {
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        match listener {
            Bound::Tcp(listener) => servers.spawn(serve(listener, shutdown)),
            Bound::Unix(listener, path) => {
                socket_files.push(path);
                servers.spawn(serve_unix(listener, shutdown))
            }
        };
    }
    let mut result = Ok(());
    while let Some(served) = servers.join_next().await {
        if let Ok(Err(e)) = served {
            result = Err(format!("floor transport error: {e}"));
        }
    }
    for path in socket_files {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Completes when stdin reaches its end (a thread blocks on it: std has no async stdin).
fn stdin_closed() -> oneshot::Receiver<()> {
    let (closed, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    receiver
}

/// Completes on SIGINT or SIGTERM.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = terminate.recv() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    // If signals cannot be watched at all, the lifetime and stdin still stop the floor.
    std::future::pending::<()>().await;
}

/// How long the floor of a run may live: a last bound, as the parent closes the floor's
/// stdin when it is done (loading a large data set takes part of this too).
pub fn lifetime_for(run_time: Duration) -> Duration {
    run_time.saturating_mul(2) + Duration::from_secs(3600)
}
