//! Where a server under test listens: a TCP address, or a Unix socket file
//! (`unix:PATH`); and connecting to it.

use std::{
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `IP:PORT`.
    Tcp(SocketAddr),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl From<SocketAddr> for Address {
    fn from(address: SocketAddr) -> Self {
        Self::Tcp(address)
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.strip_prefix("unix:") {
            Some("") => Err(format!("`{text}` names no socket file: write `unix:PATH`")),
            Some(path) => Ok(Self::Unix(PathBuf::from(path))),
            None => text
                .parse()
                .map(Self::Tcp)
                .map_err(|_| format!("`{text}` is neither `IP:PORT` nor `unix:PATH`")),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => address.fmt(f),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Address {
    /// The transport it is reached over.
    pub fn transport(&self) -> crate::args::Transport {
        match self {
            Self::Tcp(_) => crate::args::Transport::Tcp,
            Self::Unix(_) => crate::args::Transport::Unix,
        }
    }

    /// One new HTTP/2 connection to it, with TCP_NODELAY as accessd's clients set it.
    pub async fn connect(&self, timeout: Duration) -> Result<Channel, String> {
        let failed = |e: tonic::transport::Error| format!("cannot connect to {self}: {e}");
        match self {
            Self::Tcp(address) => Endpoint::from_shared(format!("http://{address}"))
                .map_err(|e| format!("bad address {address}: {e}"))?
                .tcp_nodelay(true)
                .connect_timeout(timeout)
                .connect()
                .await
                .map_err(failed),
            Self::Unix(path) => Endpoint::from_static("http://localhost")
                .connect_timeout(timeout)
                .connect_with_connector(UnixConnector(Arc::from(path.as_path())))
                .await
                .map_err(failed),
        }
    }
}

/// Opens a connection to a Unix socket, whatever URI the channel asks for.
#[derive(Clone)]
struct UnixConnector(Arc<Path>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move { UnixStream::connect(&*path).await.map(TokioIo::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_tcp_or_a_unix_socket() {
        assert_eq!(
            "127.0.0.1:1".parse(),
            Ok(Address::Tcp(([127, 0, 0, 1], 1).into()))
        );
        assert_eq!(
            "unix:/a/b.sock".parse(),
            Ok(Address::Unix("/a/b.sock".into()))
        );
        assert_eq!(
            Address::Unix("/a/b.sock".into()).to_string(),
            "unix:/a/b.sock"
        );
        assert!("unix:".parse::<Address>().is_err());
        assert!("localhost:1".parse::<Address>().is_err());
    }
}
