//! The open connections: at most so many (one more is closed as it is accepted, and a
//! TLS handshake in progress counts), each closed once it has had no call in progress
//! for the idle timeout, and all of them closed at once when the drain deadline passes.
//! It knows nothing of HTTP/2 or gRPC: the calls in progress are counted by
//! [`super::open_calls`], which finds a call's connection in its [`Peer`].

use std::{
    collections::HashMap,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};
use tonic::transport::server::Connected;
use tracing::warn;

use crate::api::peer::{CallCounter, ClientCertificate, Peer, PeerAddress};

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
    /// The key of the next connection in `links`.
    next_id: AtomicU64,
    /// Each open connection's link, to wake them all when the drain deadline passes. A
    /// std mutex: it is held for no `.await`, only to insert, remove or clone entries.
    links: Mutex<HashMap<u64, Weak<Link>>>,
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
    /// The waker of the task driving the connection, to notice the drain deadline.
    task: Mutex<Option<Waker>>,
    /// Calls in progress.
    calls: AtomicUsize,
    /// When the connection was accepted: `idle_since` counts from it.
    accepted: Instant,
    /// Milliseconds from `accepted` to the end of the last call (0 before any), read only
    /// when no call is in progress. A call's end only records it: the connection's task
    /// looks at it when its idle timer fires, so that ending a call wakes no one.
    idle_since: AtomicU64,
}

impl Link {
    fn new() -> Self {
        Self {
            task: Mutex::new(None),
            calls: AtomicUsize::new(0),
            accepted: Instant::now(),
            idle_since: AtomicU64::new(0),
        }
    }

    /// When the last call ended, or the connection was accepted.
    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since.load(Ordering::Acquire))
    }

    /// Wakes the connection's task; the waker stays, for the next time.
    fn wake(&self) {
        if let Some(waker) = self.task.lock().ok().and_then(|waker| waker.clone()) {
            waker.wake();
        }
    }
}

impl CallCounter for Link {
    fn started(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    fn ended(&self) {
        // Recorded before the count falls, so that whoever sees no call in progress
        // sees when the last one ended. Rounded up: never closed early.
        let ended = self.accepted.elapsed().as_millis().saturating_add(1);
        self.idle_since
            .fetch_max(u64::try_from(ended).unwrap_or(u64::MAX), Ordering::Release);
        self.calls.fetch_sub(1, Ordering::SeqCst);
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
            next_id: AtomicU64::new(0),
            links: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Refusals::default()),
        }
    }

    /// Counts a connection just accepted from `address` among those open, or refuses it
    /// (the caller closes it by dropping it) when as many as allowed are open already.
    pub fn admit(self: &Arc<Self>, address: PeerAddress) -> Option<Admission> {
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            self.refuse(address);
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let link = Arc::new(Link::new());
        if let Ok(mut links) = self.links.lock() {
            links.insert(id, Arc::downgrade(&link));
        }
        Some(Admission {
            connections: Arc::clone(self),
            id,
            link,
            address,
        })
    }

    fn refuse(&self, peer: PeerAddress) {
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

    /// How many connections are open, and how many calls are in progress on them.
    pub fn open_now(&self) -> (usize, usize) {
        let calls = self.links.lock().map_or(0, |links| {
            links
                .values()
                .filter_map(Weak::upgrade)
                .map(|link| link.calls.load(Ordering::Relaxed))
                .sum()
        });
        (self.open.load(Ordering::Relaxed), calls)
    }

    /// Fails every connection's reads and writes from now on, and wakes them to notice.
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let links: Vec<Arc<Link>> = self
            .links
            .lock()
            .map(|links| links.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for link in links {
            link.wake();
        }
    }
}

/// A connection counted among the open ones until it is dropped; a TLS handshake holds
/// one while it runs.
pub struct Admission {
    connections: Arc<Connections>,
    /// Its key in `connections.links`.
    id: u64,
    link: Arc<Link>,
    address: PeerAddress,
}

impl Admission {
    /// The peer's address.
    pub fn address(&self) -> PeerAddress {
        self.address
    }

    /// The connection, over `io`, once it is ready for HTTP/2; `certificate` is the
    /// client's verified certificate, if it presented one.
    pub fn open<IO>(self, io: IO, certificate: Option<Arc<ClientCertificate>>) -> Abortable<IO> {
        Abortable {
            io,
            peer: Peer::new(self.address, certificate, Arc::clone(&self.link) as _),
            admission: self,
            registered: None,
            idle_timer: None,
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut links) = self.connections.links.lock() {
            links.remove(&self.id);
        }
    }
}

/// An accepted connection that fails its reads and writes once [`Connections::close_all`]
/// has run, or its reads once it has been idle too long, so that hyper drops it and the
/// calls on it end.
pub struct Abortable<IO> {
    /// The connection.
    io: IO,
    /// Who is on the other end, given to each call made on it.
    peer: Peer,
    /// Its place among the open connections.
    admission: Admission,
    /// The waker last left in the link: the same task polls every time, so the lock is
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
            if let Ok(mut task) = self.admission.link.task.lock() {
                *task = Some(waker.clone());
            }
            self.registered = Some(waker);
        }
        if self.admission.connections.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the drain deadline passed",
            ))
        } else {
            Ok(())
        }
    }

    /// An error once no call has been in progress for the idle timeout; until then, a
    /// timer wakes the task to look again: when the timeout would pass if no call
    /// started, or, while calls are in progress, a timeout from now. Hyper always has a
    /// read pending, so looking on reads is enough.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(timeout) = self.admission.connections.idle_timeout else {
            return Ok(());
        };
        let link = &self.admission.link;
        let now = Instant::now();
        let busy = link.calls.load(Ordering::SeqCst) > 0;
        let deadline = if busy {
            match &self.idle_timer {
                Some(timer) if timer.deadline() > now => timer.deadline(),
                _ => now + timeout,
            }
        } else {
            link.idle_since() + timeout
        };
        if !busy && now >= deadline {
            return Err(idle());
        }
        let timer = self
            .idle_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            if !busy {
                return Err(idle());
            }
            // The deadline passed between the look and the poll: look again later.
            timer.as_mut().reset(Instant::now() + timeout);
            let _ = timer.as_mut().poll(cx);
        }
        Ok(())
    }
}

fn idle() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the connection was idle for the idle timeout",
    )
}

impl<IO> Connected for Abortable<IO> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
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
