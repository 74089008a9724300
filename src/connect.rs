//! Reaching a server as a client: its address (a URL, or `unix:PATH` for a Unix
//! socket), TLS for an `https://` one (the CA to trust, the system's roots without one,
//! and for mTLS the client's certificate and key), and the bearer token sent with every
//! call. Shared by the command-line client and a follower's connection to its leader.

use std::{
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

/// A client's TLS files; all optional.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA certificates (PEM) that signed the server's certificate.
    pub ca: Option<PathBuf>,
    /// The client's certificate (PEM), for mTLS.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
}

impl ClientTls {
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// Why a server cannot be reached as asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    /// The address is not a URL.
    #[error("`{0}` is not an address: {1}")]
    Address(String, String),
    /// TLS files were given for a plain address.
    #[error("TLS settings were given for `{0}`: use an `https://` address")]
    NotHttps(String),
    /// TLS files were given for a Unix socket, which carries none.
    #[error("TLS settings were given for `{0}`: a Unix socket carries no TLS")]
    UnixTls(String),
    /// A file cannot be read.
    #[error("cannot read `{0}`: {1}")]
    File(PathBuf, std::io::Error),
    /// Only one of a certificate and its key was given.
    #[error("a client certificate needs its key, and a key its certificate")]
    HalfIdentity,
    /// tonic refused the settings.
    #[error("TLS: {0}")]
    Tls(String),
}

/// `address` as a URL: `HOST:PORT` alone means `http://HOST:PORT`; a `unix:PATH`
/// address stays as it is.
pub fn url(address: &str) -> String {
    if address.contains("://") || unix_socket(address).is_some() {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// The socket file of a `unix:PATH` (or `unix:///PATH`) address.
fn unix_socket(address: &str) -> Option<&Path> {
    let path = address.strip_prefix("unix:")?;
    Some(Path::new(path.strip_prefix("//").unwrap_or(path)))
}

/// A server to reach: its endpoint (timeouts, keep-alive and TLS), and for a `unix:`
/// address the socket file that reaches it.
#[derive(Debug, Clone)]
pub struct Target {
    endpoint: Endpoint,
    socket: Option<Arc<Path>>,
}

impl Target {
    /// The same server, its endpoint's settings changed by `configure`.
    pub fn configured(self, configure: impl FnOnce(Endpoint) -> Endpoint) -> Self {
        Self {
            endpoint: configure(self.endpoint),
            ..self
        }
    }

    /// A channel connected to the server.
    pub async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        match &self.socket {
            Some(path) => {
                self.endpoint
                    .connect_with_connector(UnixConnector(Arc::clone(path)))
                    .await
            }
            None => self.endpoint.connect().await,
        }
    }

    /// A channel that connects on its first call, and again after losing the connection.
    pub fn connect_lazy(&self) -> Channel {
        match &self.socket {
            Some(path) => self
                .endpoint
                .connect_with_connector_lazy(UnixConnector(Arc::clone(path))),
            None => self.endpoint.connect_lazy(),
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

/// The server at `address`; for an `https://` one, with `tls`'s files as they read now.
pub fn endpoint(address: &str, tls: &ClientTls) -> Result<Target, ClientTlsError> {
    if let Some(path) = unix_socket(address) {
        if tls.is_set() {
            return Err(ClientTlsError::UnixTls(address.to_owned()));
        }
        if path.as_os_str().is_empty() {
            return Err(ClientTlsError::Address(
                address.to_owned(),
                "write `unix:PATH`, as in `unix:/run/accessd/accessd.sock`".to_owned(),
            ));
        }
        // The channel still needs a URI: its authority is sent as `:authority`.
        return Ok(Target {
            endpoint: Endpoint::from_static("http://localhost"),
            socket: Some(Arc::from(path)),
        });
    }
    let url = url(address);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| ClientTlsError::Address(address.to_owned(), e.to_string()))?;
    let plain = |endpoint| Target {
        endpoint,
        socket: None,
    };
    if !url.starts_with("https://") {
        if tls.is_set() {
            return Err(ClientTlsError::NotHttps(url));
        }
        return Ok(plain(endpoint));
    }
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => config.with_native_roots(),
    };
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => return Err(ClientTlsError::HalfIdentity),
    }
    endpoint
        .tls_config(config)
        .map(plain)
        .map_err(|e| ClientTlsError::Tls(causes(&e)))
}

/// An error with its causes, which tonic's transport errors keep their substance in.
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn read(path: &Path) -> Result<Vec<u8>, ClientTlsError> {
    std::fs::read(path).map_err(|e| ClientTlsError::File(path.to_owned(), e))
}

/// Adds `authorization: Bearer TOKEN` to every call, when there is a token.
#[derive(Debug, Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

/// A token that cannot be sent in a header.
#[derive(Debug, thiserror::Error)]
#[error("a token is visible ASCII characters")]
pub struct TokenNotAscii;

impl BearerToken {
    /// The header value for `token`, if there is one.
    pub fn new(token: Option<&str>) -> Result<Self, TokenNotAscii> {
        token
            .map(|token| format!("Bearer {token}").parse().map_err(|_| TokenNotAscii))
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
