//! The bounds on what callers can hold: connections, streams, idle time, message sizes,
//! call time and exports. Enforcing them is left to the transport, the connection
//! registry and the services; this only names them and their defaults.

use std::time::Duration;

use crate::api::Exports;

/// The bounds on what callers can hold. `None` turns a bound off.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// How long a connection with no call in progress is kept open.
    pub idle_timeout: Option<Duration>,
    /// Concurrent calls per connection, advertised in HTTP/2 SETTINGS: a client opens no
    /// more, and a stream beyond them is refused.
    pub max_concurrent_streams: u32,
    /// Streams the server may refuse or reset on one connection (a client opening more
    /// than advertised) before it closes the connection with GOAWAY.
    pub max_refused_streams: usize,
    /// How often to ping an HTTP/2 connection to detect a peer that is gone.
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for a ping's answer before closing the connection.
    pub keepalive_timeout: Duration,
    /// How long a TCP connection is silent before the kernel probes it.
    pub tcp_keepalive: Option<Duration>,
    /// How long a client has to complete its TLS handshake.
    pub handshake_timeout: Duration,
    /// The longest a call may take to answer (the start of its answer, for a stream),
    /// whatever deadline the caller sets.
    pub call_timeout: Option<Duration>,
    /// The largest AccessService request message, refused before it is decoded.
    pub max_check_message_bytes: usize,
    /// The largest message of any other service (one import message, say).
    pub max_message_bytes: usize,
    /// Exports running at once; one more is refused with RESOURCE_EXHAUSTED.
    pub max_exports: usize,
    /// How long an export waits for its reader to take a message before it is ended.
    pub export_stall_timeout: Duration,
}

impl Limits {
    /// Open connections unless configured otherwise.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4_096;
    /// Idle time before a connection is closed, unless configured otherwise.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// Concurrent streams per connection unless configured otherwise.
    pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
    /// Refused streams per connection unless configured otherwise: a client that keeps
    /// to the advertised maximum has none refused; one that has 1,024 is flooding.
    pub const DEFAULT_MAX_REFUSED_STREAMS: usize = 1_024;
    /// HTTP/2 ping interval unless configured otherwise.
    pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
    /// HTTP/2 ping answer wait unless configured otherwise.
    pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
    /// TCP keepalive idle time unless configured otherwise.
    pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);
    /// TLS handshake time unless configured otherwise: ample for a client across a
    /// continent, short enough that connections stalled in their handshake are let go.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longest call unless configured otherwise: long enough for an import of millions
    /// of records.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);
    /// Largest AccessService request unless configured otherwise: a BatchCheck of the
    /// 1,000 checks it allows, every id at its 128-character maximum, is about 450 KB.
    pub const DEFAULT_MAX_CHECK_MESSAGE_BYTES: usize = 512 * 1024;
    /// Largest message of the other services unless configured otherwise: tonic's own.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            max_concurrent_streams: Self::DEFAULT_MAX_CONCURRENT_STREAMS,
            max_refused_streams: Self::DEFAULT_MAX_REFUSED_STREAMS,
            keepalive_interval: Some(Self::DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: Self::DEFAULT_KEEPALIVE_TIMEOUT,
            tcp_keepalive: Some(Self::DEFAULT_TCP_KEEPALIVE),
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            call_timeout: Some(Self::DEFAULT_CALL_TIMEOUT),
            max_check_message_bytes: Self::DEFAULT_MAX_CHECK_MESSAGE_BYTES,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            max_exports: Exports::DEFAULT_MAX,
            export_stall_timeout: Exports::DEFAULT_STALL_TIMEOUT,
        }
    }
}
