//! The open connections: at most so many (one more is closed as it is accepted), each
//! closed once it has had no call in progress for the idle timeout, and all of them
//! closed at once when the drain deadline passes. It knows nothing of HTTP/2 or gRPC:
//! the calls in progress are counted by [`super::open_calls`].

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;
use tracing::warn;

/// How often, at most, a refused connection is logged: an attacker's flood makes one
/// line per period, with the number refused.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The open connections.
pub struct Connections {
    /// Set when the drain deadline passes.
    closed: AtomicBool,
    /// The most connections open at once.
    max: usize,
    /// How long a connection with no call in progress stays open; `None`: for ever.
    idle_timeout: Option<Duration>,
    /// How many are open now.
    open: AtomicUsize,
    /// Set once a call could not be matched to its connection: then no connection is
    /// known to be idle.
    untracked: AtomicBool,
    /// Each open connection by its peer's address, where a call finds its connection. A
    /// std mutex: it is held for no `.await`, only to insert, remove or clone one entry.
    by_peer: Mutex<HashMap<SocketAddr, Weak<Link>>>,
    /// Connections refused since the last warning, and when that was.
    refusals: Mutex<Refusals>,
}

#[derive(Default)]
struct Refusals {
    count: u64,
    last_warned: Option<Instant>,
}

/// What a connection shares with the calls made on it.
pub struct Link {
    /// The waker of the task driving the connection, to notice the drain deadline or the
    /// start of its idle time.
    task: Mutex<Option<Waker>>,
    /// Calls in progress.
    calls: AtomicUsize,
    /// When the last call ended (or the connection was accepted), if none is in progress.
    idle_since: Mutex<Instant>,
}

impl Link {
    fn new() -> Self {
        Self {
            task: Mutex::new(None),
            calls: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    /// Wakes the connection's task; the waker stays, for the next time.
    fn wake(&self) {
        if let Some(waker) = self.task.lock().ok().and_then(|waker| waker.clone()) {
            waker.wake();
        }
    }
}

/// A call in progress on a connection, counted until it is dropped.
pub struct CallGuard {
    link: Arc<Link>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.link.calls.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Ok(mut since) = self.link.idle_since.lock() {
                *since = Instant::now();
            }
            // The connection's task arms its idle timer when it next polls.
            self.link.wake();
        }
    }
}

impl Connections {
    /// At most `max` connections, each closed after `idle_timeout` without a call.
    pub fn new(max: usize, idle_timeout: Option<Duration>) -> Self {
        Self {
            closed: AtomicBool::new(false),
            max,
            idle_timeout,
            open: AtomicUsize::new(0),
            untracked: AtomicBool::new(false),
            by_peer: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Refusals::default()),
        }
    }

    /// Wraps an accepted connection, or closes it (by dropping it) when as many as
    /// allowed are open already.
    pub fn open(self: &Arc<Self>, io: TcpStream) -> Option<Abortable<TcpStream>> {
        let peer = io.peer_addr().ok()?;
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            self.refuse(peer);
            return None;
        }
        let link = Arc::new(Link::new());
        if let Ok(mut by_peer) = self.by_peer.lock() {
            by_peer.insert(peer, Arc::downgrade(&link));
        }
        Some(Abortable {
            io,
            peer,
            connections: Arc::clone(self),
            link,
            registered: None,
            idle_timer: None,
        })
    }

    /// Counts a call on the connection from `peer` while the guard lives. A call whose
    /// connection cannot be found (its transport names no peer address we know) turns
    /// the idle timeout off for good, so that busy connections are never taken for idle.
    pub fn call_from(&self, peer: Option<SocketAddr>) -> Option<CallGuard> {
        let link = peer.and_then(|peer| {
            let by_peer = self.by_peer.lock().ok()?;
            by_peer.get(&peer)?.upgrade()
        });
        let Some(link) = link else {
            if self.idle_timeout.is_some() && !self.untracked.swap(true, Ordering::SeqCst) {
                warn!(
                    peer = ?peer,
                    "a call came on a connection that cannot be told apart: connections \
                     will not be closed for being idle (--idle-timeout)"
                );
            }
            return None;
        };
        link.calls.fetch_add(1, Ordering::SeqCst);
        Some(CallGuard { link })
    }

    fn refuse(&self, peer: SocketAddr) {
        let Ok(mut refusals) = self.refusals.lock() else {
            return;
        };
        refusals.count += 1;
        let now = Instant::now();
        if refusals
            .last_warned
            .is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_PERIOD)
        {
            return;
        }
        warn!(
            max_connections = self.max,
            refused = refusals.count,
            last_peer = %peer,
            "refused {} connection(s): {} are open, the most allowed (--max-connections)",
            refusals.count,
            self.max
        );
        refusals.count = 0;
        refusals.last_warned = Some(now);
    }

    /// Fails every connection's reads and writes from now on, and wakes them to notice.
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let links: Vec<Arc<Link>> = self
            .by_peer
            .lock()
            .map(|by_peer| by_peer.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for link in links {
            link.wake();
        }
    }
}

/// An accepted connection that fails its reads and writes once [`Connections::close_all`]
/// has run, or its reads once it has been idle too long, so that hyper drops it and the
/// calls on it end.
pub struct Abortable<IO> {
    /// The connection.
    io: IO,
    /// Its peer, its key in `connections`.
    peer: SocketAddr,
    /// Whether to fail, and where to leave the waker.
    connections: Arc<Connections>,
    /// What the calls on this connection share with it.
    link: Arc<Link>,
    /// The waker last left in `link`: the same task polls every time, so the lock is
    /// taken only when it changes.
    registered: Option<Waker>,
    /// Fires when the idle timeout would pass, to wake the task to close the connection.
    idle_timer: Option<Pin<Box<Sleep>>>,
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
            if let Ok(mut task) = self.link.task.lock() {
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

    /// An error once no call has been in progress for the idle timeout; until then, a
    /// timer wakes the task when it would pass. Hyper always has a read pending, so
    /// checking on reads is enough.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(timeout) = self.connections.idle_timeout else {
            return Ok(());
        };
        if self.link.calls.load(Ordering::SeqCst) > 0
            || self.connections.untracked.load(Ordering::SeqCst)
        {
            return Ok(());
        }
        let Ok(since) = self.link.idle_since.lock().map(|since| *since) else {
            return Ok(());
        };
        let deadline = since + timeout;
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if Instant::now() >= deadline || timer.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle for the idle timeout",
            ));
        }
        Ok(())
    }
}

impl<IO> Drop for Abortable<IO> {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut by_peer) = self.connections.by_peer.lock() {
            // A new connection from the same address may have taken the entry already.
            let ours = by_peer
                .get(&self.peer)
                .is_some_and(|link| std::ptr::eq(link.as_ptr(), Arc::as_ptr(&self.link)));
            if ours {
                by_peer.remove(&self.peer);
            }
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
        self.check_idle(cx)?;
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
