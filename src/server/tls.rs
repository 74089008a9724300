//! TLS for the server: its certificate and key, and for mTLS the authorities whose client
//! certificates are accepted, all read from PEM files and read again when they change
//! without dropping a connection (each new handshake uses what was read last). A client
//! certificate's names are what a callers file maps to a caller.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use crate::api::peer::ClientCertificate;
use arc_swap::ArcSwap;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{RootCertStore, ServerConfig, crypto::ring, server::WebPkiClientVerifier},
    server::TlsStream,
};

/// Whether a client certificate is asked for, with `--tls-client-ca`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuth {
    /// Every connection presents a certificate signed by the client CA, or its handshake
    /// fails.
    #[default]
    Required,
    /// A certificate is verified when presented; a connection without one is let in,
    /// and its calls need a token as they would without mTLS.
    Optional,
}

/// Where the server's TLS material is.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The authorities whose client certificates are accepted (PEM), for mTLS.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required, with `client_ca`.
    pub client_auth: ClientAuth,
}

impl TlsFiles {
    /// Every file read, for watching them for a change.
    pub fn paths(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Whether only clients with a certificate of the client CA get a connection.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some() && self.client_auth == ClientAuth::Required
    }
}

/// Why TLS material cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The server's side of TLS: the configuration read last, which each new handshake uses.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Reads the files.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(&files)?;
        Ok(Self {
            files,
            config: ArcSwap::from(config),
        })
    }

    /// The files read.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; connections from now on use them. On an error the
    /// configuration read before stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.config.store(server_config(&self.files)?);
        Ok(())
    }

    /// Completes the handshake of `stream` within `timeout`, and names the client's
    /// verified certificate, if it presented one.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> io::Result<(TlsStream<TcpStream>, Option<Arc<ClientCertificate>>)> {
        let acceptor = TlsAcceptor::from(self.config.load_full());
        let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the handshake did not complete within the handshake timeout",
                )
            })??;
        let certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(client_certificate(leaf)));
        Ok((tls, certificate))
    }
}

fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| file_error("--tls-cert", &files.cert, &e))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "--tls-cert `{}`: holds no PEM certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error("--tls-key", &files.key, &e))?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let authorities = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| file_error("--tls-client-ca", path, &e))?;
            let (added, _) = roots.add_parsable_certificates(authorities);
            if added == 0 {
                return Err(TlsError(format!(
                    "--tls-client-ca `{}`: holds no usable CA certificate",
                    path.display()
                )));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match files.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsError(format!("--tls-client-ca `{}`: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "--tls-cert `{}` with --tls-key `{}`: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    // gRPC is HTTP/2 only; a client that offers ALPN learns so in the handshake.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn file_error(flag: &str, path: &Path, err: &dyn fmt::Display) -> TlsError {
    TlsError(format!("{flag} `{}`: {err}", path.display()))
}

/// The names of a verified client certificate; one that does not parse (rustls has
/// verified it, so it does) has none, and so identifies no caller.
fn client_certificate(der: &CertificateDer<'_>) -> ClientCertificate {
    use x509_parser::{extensions::GeneralName, prelude::FromDer as _};
    let Ok((_, certificate)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return ClientCertificate {
            subject: String::new(),
            names: Vec::new(),
        };
    };
    let subject = certificate.subject();
    let mut names: Vec<String> = subject
        .iter_common_name()
        .filter_map(|name| name.as_str().ok())
        .map(str::to_owned)
        .collect();
    if let Ok(Some(alternatives)) = certificate.subject_alternative_name() {
        for name in &alternatives.value.general_names {
            match name {
                GeneralName::DNSName(name)
                | GeneralName::URI(name)
                | GeneralName::RFC822Name(name) => names.push((*name).to_owned()),
                _ => {}
            }
        }
    }
    names.sort();
    names.dedup();
    ClientCertificate {
        subject: subject.to_string(),
        names,
    }
}
