//! Who is on the other end of a call's connection, as the transport tells each call: the
//! peer's address, the client certificate it presented over mTLS, and the count of the
//! connection's calls in progress (kept by the transport, which closes idle ones).

use std::{fmt, net::SocketAddr, sync::Arc};

/// The peer of a call's connection, in the call's request extensions.
#[derive(Clone)]
pub struct Peer {
    address: PeerAddress,
    certificate: Option<Arc<ClientCertificate>>,
    calls: Arc<dyn CallCounter>,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddress {
    /// A TCP peer's address.
    Tcp(SocketAddr),
    /// A process on this host, through a Unix socket: its process and user ids, as the
    /// kernel gave them when it connected.
    Unix {
        /// Its process id, if the kernel says.
        pid: Option<i32>,
        /// Its user id.
        uid: Option<u32>,
    },
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => address.fmt(f),
            Self::Unix { pid, uid } => {
                f.write_str("unix")?;
                if let Some(uid) = uid {
                    write!(f, " uid {uid}")?;
                }
                if let Some(pid) = pid {
                    write!(f, " pid {pid}")?;
                }
                Ok(())
            }
        }
    }
}

/// What counts a connection's calls in progress.
pub trait CallCounter: Send + Sync {
    /// A call started on the connection.
    fn started(&self);
    /// A call on the connection ended.
    fn ended(&self);
}

/// The names a verified client certificate carries, any of which a callers file may
/// list: its subject's common names, and its DNS, URI (such as a SPIFFE id) and e-mail
/// subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// Its subject, as the certificate writes it, for logs.
    pub subject: String,
    /// Its names.
    pub names: Vec<String>,
}

impl Peer {
    /// The peer at `address`, with the certificate it presented, on a connection whose
    /// calls `calls` counts.
    pub fn new(
        address: PeerAddress,
        certificate: Option<Arc<ClientCertificate>>,
        calls: Arc<dyn CallCounter>,
    ) -> Self {
        Self {
            address,
            certificate,
            calls,
        }
    }

    /// The peer's address.
    pub fn address(&self) -> PeerAddress {
        self.address
    }

    /// The verified client certificate it presented, if any.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        self.certificate.as_deref()
    }

    /// What counts the connection's calls.
    pub fn calls(&self) -> &Arc<dyn CallCounter> {
        &self.calls
    }
}
