//! Accepting connections on every listener: each one counted among the open ones as soon
//! as it is accepted (or closed at once past the most allowed), then, with TLS over TCP,
//! its handshake completed in a task of its own so that a slow client holds up no other,
//! and handed to the server ready for HTTP/2.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use socket2::{SockRef, TcpKeepalive};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use super::{
    connections::{Abortable, Connections},
    listeners::{Listener, SocketFile},
    tls::Tls,
};
use crate::api::peer::PeerAddress;

/// A connection ready for HTTP/2.
pub type Connection = Abortable<Transport>;

/// How many connections ready for HTTP/2 may wait for the server to take them; it takes
/// each at once, so this only smooths a burst.
const READY_QUEUE: usize = 64;

/// After an error accepting that is not the peer's (out of file descriptors, say), how
/// long to wait before accepting again, so that the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How many handshake failures are logged one by one in a second; the rest are counted
/// and the count logged with the next one let through.
const HANDSHAKE_FAILURES_LOGGED_PER_SECOND: u32 = 10;

/// A connection's bytes: plain TCP, TLS over it, or a Unix socket.
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS; boxed, as its session state is large.
    Tls(Box<TlsStream<TcpStream>>),
    /// A Unix socket: always plain, as its bytes never leave the host.
    Unix(UnixStream),
}

/// What accepting needs beyond the listeners.
#[derive(Clone)]
pub struct Accepting {
    /// The open connections, over every listener.
    pub connections: Arc<Connections>,
    /// TLS, if TCP connections use it.
    pub tls: Option<Arc<Tls>>,
    /// TCP keepalive idle time.
    pub tcp_keepalive: Option<Duration>,
    /// How long a client has to complete its TLS handshake.
    pub handshake_timeout: Duration,
}

/// Stops accepting when dropped: the listeners close with the server, and the socket
/// files of Unix ones are removed.
pub struct StopAccepting {
    loops: Vec<JoinHandle<()>>,
    _socket_files: Vec<SocketFile>,
}

impl Drop for StopAccepting {
    fn drop(&mut self) {
        for task in &self.loops {
            task.abort();
        }
    }
}

/// Accepts connections on every listener until the guard is dropped; the server takes
/// them from the stream, whichever listener they came in on.
pub fn accept(
    listeners: Vec<Listener>,
    accepting: Accepting,
) -> (ReceiverStream<io::Result<Connection>>, StopAccepting) {
    let (ready, connections) = mpsc::channel(READY_QUEUE);
    let mut stop = StopAccepting {
        loops: Vec::with_capacity(listeners.len()),
        _socket_files: Vec::new(),
    };
    for listener in listeners {
        let accepting = accepting.clone();
        let ready = ready.clone();
        let task = match listener {
            Listener::Tcp(listener) => tokio::spawn(accept_tcp(listener, accepting, ready)),
            Listener::Unix(listener, file) => {
                stop._socket_files.push(file);
                tokio::spawn(accept_unix(listener, accepting, ready))
            }
        };
        stop.loops.push(task);
    }
    (ReceiverStream::new(connections), stop)
}

/// After an error accepting, waits before the next try unless the error was the peer's.
async fn accept_failed(err: &io::Error) {
    if peer_gone(err) {
        return;
    }
    warn!(%err, "cannot accept a connection; trying again shortly");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

async fn accept_unix(
    listener: UnixListener,
    accepting: Accepting,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                accept_failed(&err).await;
                continue;
            }
        };
        let credentials = stream.peer_cred().ok();
        let peer = PeerAddress::Unix {
            pid: credentials.and_then(|c| c.pid()),
            uid: credentials.map(|c| c.uid()),
        };
        let Some(admission) = accepting.connections.admit(peer) else {
            continue;
        };
        let connection = admission.open(Transport::Unix(stream), None);
        if ready.send(Ok(connection)).await.is_err() {
            return;
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    accepting: Accepting,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    let failures = Arc::new(Mutex::new(FailureLog::default()));
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                accept_failed(&err).await;
                continue;
            }
        };
        let Some(admission) = accepting.connections.admit(PeerAddress::Tcp(address)) else {
            continue;
        };
        if let Err(err) = configure(&stream, accepting.tcp_keepalive) {
            warn!(%err, peer = %address, "cannot set the connection's socket options");
        }
        let Some(tls) = &accepting.tls else {
            let connection = admission.open(Transport::Plain(stream), None);
            if ready.send(Ok(connection)).await.is_err() {
                return;
            }
            continue;
        };
        let tls = Arc::clone(tls);
        let ready = ready.clone();
        let failures = Arc::clone(&failures);
        let timeout = accepting.handshake_timeout;
        tokio::spawn(async move {
            match tls.accept(stream, timeout).await {
                Ok((stream, certificate)) => {
                    let connection = admission.open(Transport::Tls(Box::new(stream)), certificate);
                    let _ = ready.send(Ok(connection)).await;
                }
                Err(err) => {
                    if let Ok(mut failures) = failures.lock() {
                        failures.log(&admission.address().to_string(), &err);
                    }
                }
            }
        });
    }
}

/// Whether an error accepting concerns only the connection being accepted.
fn peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

fn configure(stream: &TcpStream, keepalive: Option<Duration>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(idle) = keepalive {
        SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
    }
    Ok(())
}

/// Handshake failures are security events, logged at info with the peer's address; a
/// flood of them is logged as a count.
#[derive(Default)]
struct FailureLog {
    second: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl FailureLog {
    fn log(&mut self, peer: &str, err: &io::Error) {
        let now = Instant::now();
        if self
            .second
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
        {
            self.second = Some(now);
            self.logged = 0;
        }
        if self.logged >= HANDSHAKE_FAILURES_LOGGED_PER_SECOND {
            self.suppressed += 1;
            return;
        }
        self.logged += 1;
        let suppressed = std::mem::take(&mut self.suppressed);
        info!(peer, %err, suppressed, "TLS handshake failed");
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            Self::Unix(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            Self::Unix(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
            Self::Unix(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
            Self::Unix(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
            Self::Unix(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            Self::Unix(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
