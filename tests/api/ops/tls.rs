//! TLS and mTLS through real clients: only clients that trust the server's authority get
//! an answer; with a client CA, only clients with its certificates get a connection; a
//! client certificate's names identify a caller exactly as a token does; certificates
//! are read again without a restart; stalled handshakes and idle TLS connections are
//! closed.

use std::{path::Path, sync::Arc, time::Duration};

use accessd::{
    api::callers::{Callers, digest_hex, token_digest},
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
        audit_service_client::AuditServiceClient,
        replication_service_client::ReplicationServiceClient,
    },
    server::{ClientAuth, Limits, ServeOptions, Tls, TlsFiles},
};
use arc_swap::ArcSwap;
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    harness::*,
    pki::{Authority, Leaf},
};

/// A TLS server's files and its authorities.
struct Pki {
    dir: tempfile::TempDir,
    authority: Authority,
    client_authority: Authority,
}

impl Pki {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            authority: Authority::new("accessd test CA"),
            client_authority: Authority::new("accessd test client CA"),
        }
    }

    /// The server's files: a certificate of `authority`, and with `client_auth` the
    /// client authority.
    fn files(&self, client_auth: Option<ClientAuth>) -> TlsFiles {
        let server = self.authority.server().write(self.dir.path(), "server");
        TlsFiles {
            cert: server.cert,
            key: server.key,
            client_ca: client_auth
                .map(|_| self.client_authority.write(self.dir.path(), "clients.pem")),
            client_auth: client_auth.unwrap_or_default(),
        }
    }
}

async fn start(files: TlsFiles, options: ServeOptions) -> (TestServer, Arc<Tls>) {
    let tls = Arc::new(Tls::load(files).unwrap());
    let server = TestServer::start_with_options(ServeOptions {
        tls: Some(Arc::clone(&tls)),
        ..options
    })
    .await;
    (server, tls)
}

/// A connection to `server` over TLS, trusting `authority`, presenting `identity`.
async fn connect(
    server: &TestServer,
    authority: &str,
    identity: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(authority));
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert, &leaf.key));
    }
    Endpoint::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

async fn check(channel: &Channel) -> Result<bool, tonic::Status> {
    AccessServiceClient::new(channel.clone())
        .check(check_req("acme", "sam", "workspace.read", None))
        .await
        .map(|answer| answer.into_inner().decision.is_some_and(|d| d.allowed))
}

#[tokio::test]
async fn checks_are_answered_over_tls_to_clients_that_trust_the_server_only() {
    let pki = Pki::new();
    let (server, _) = start(pki.files(None), ServeOptions::default()).await;

    let trusted = connect(&server, &pki.authority.pem, None).await.unwrap();
    assert!(!check(&trusted).await.unwrap());

    let stranger = Authority::new("another CA");
    assert!(
        connect(&server, &stranger.pem, None).await.is_err(),
        "a client that does not trust the server's authority gets no connection"
    );

    // A plaintext client reaches no service: the server speaks TLS only.
    let plaintext = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(plaintext) = plaintext {
        let answer = tokio::time::timeout(Duration::from_secs(10), check(&plaintext))
            .await
            .expect("the server answers a plaintext client at once");
        assert!(answer.is_err(), "{answer:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn with_client_certificates_required_only_clients_with_one_of_the_client_ca_get_in() {
    let pki = Pki::new();
    let (server, _) = start(
        pki.files(Some(ClientAuth::Required)),
        ServeOptions::default(),
    )
    .await;

    let client = pki.client_authority.client("orders", &[], &[]);
    let channel = connect(&server, &pki.authority.pem, Some(&client))
        .await
        .unwrap();
    assert!(!check(&channel).await.unwrap());

    // Without a certificate, or with one of another authority, the handshake fails:
    // tonic's connection is lazy about reporting it, so the call fails.
    let stranger = Authority::new("another CA").client("orders", &[], &[]);
    for identity in [None, Some(&stranger)] {
        let outcome = match connect(&server, &pki.authority.pem, identity).await {
            Ok(channel) => check(&channel).await.map(drop).map_err(|s| s.code()),
            Err(_) => Err(Code::Unavailable),
        };
        // TLS 1.3 lets the client send its request before the server has refused its
        // certificate: the refusal then ends the request rather than the connection.
        assert!(
            matches!(outcome, Err(Code::Unavailable | Code::Unknown)),
            "{outcome:?} with a certificate: {}",
            identity.is_some()
        );
    }
    server.stop().await;
}

/// Callers known by certificate: `checker` (check, by its common name), `tenant`
/// (check, bound to acme, by a SPIFFE id), `control` (admin, by a DNS name; may not
/// name actors), `ops` (admin, by token only, may name actors), `both` (check, by a
/// token and a name).
fn callers() -> Arc<ArcSwap<Callers>> {
    let token = |name: &str| digest_hex(&token_digest(&format!("token-of-{name}")));
    let file = format!(
        r#"
[[caller]]
name = "checker"
certificate_names = ["checker"]
scopes = ["check"]

[[caller]]
name = "tenant"
certificate_names = ["spiffe://example.org/ns/acme/sa/app"]
scopes = ["check"]
workspaces = ["acme"]

[[caller]]
name = "control"
certificate_names = ["control.internal"]
scopes = ["admin"]

[[caller]]
name = "ops"
token_sha256 = "{}"
scopes = ["admin"]
may_name_actor = true

[[caller]]
name = "both"
token_sha256 = "{}"
certificate_names = ["both"]
scopes = ["check"]
"#,
        token("ops"),
        token("both"),
    );
    Arc::new(ArcSwap::from_pointee(Callers::parse(&file).unwrap()))
}

fn create(ws: &str) -> proto::CreateWorkspaceRequest {
    proto::CreateWorkspaceRequest {
        workspace_id: ws.into(),
        owner_user_id: "olivia".into(),
        products: vec![],
    }
}

#[tokio::test]
async fn a_client_certificate_identifies_its_caller_exactly_as_a_token_does() {
    let pki = Pki::new();
    let (server, _) = start(
        pki.files(Some(ClientAuth::Optional)),
        ServeOptions {
            callers: Some(callers()),
            ..ServeOptions::default()
        },
    )
    .await;
    let ca = &pki.client_authority;
    let (owned, trust) = (server, &pki.authority.pem);
    let server = &owned;
    let as_cert = |leaf: Leaf| async move { connect(server, trust, Some(&leaf)).await.unwrap() };
    let control = as_cert(ca.client("someone", &[], &["control.internal"])).await;
    let checker = as_cert(ca.client("checker", &[], &[])).await;
    let tenant = as_cert(ca.client("app", &["spiffe://example.org/ns/acme/sa/app"], &[])).await;
    let nobody = as_cert(ca.client("nobody", &[], &["nobody.internal"])).await;
    let two = as_cert(ca.client("checker", &[], &["control.internal"])).await;
    let anonymous = connect(server, trust, None).await.unwrap();

    // An admin by its certificate writes, and the audit trail names it.
    for ws in ["acme", "globex"] {
        AdminServiceClient::new(control.clone())
            .create_workspace(create(ws))
            .await
            .unwrap();
    }
    let changes = AuditServiceClient::new(control.clone())
        .list_changes(proto::ListChangesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(!changes.is_empty() && changes.iter().all(|c| c.caller == "control"));

    // A check-scoped caller by certificate checks, and cannot write.
    assert!(!check(&checker).await.unwrap());
    let write = AdminServiceClient::new(checker.clone())
        .create_workspace(create("initech"))
        .await;
    assert_eq!(write.unwrap_err().code(), Code::PermissionDenied);

    // A workspace-bound caller by certificate reads its workspace only.
    let list = |ws: &str| list_req(ws);
    let mut access = AccessServiceClient::new(tenant.clone());
    access.list_access(list("acme")).await.unwrap();
    let other = access.list_access(list("globex")).await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert!(
        !other.message().contains("not found"),
        "{}",
        other.message()
    );

    // A caller by certificate that may not name actors is refused when it does.
    let spoofed = AdminServiceClient::new(control.clone())
        .set_membership(proto::SetMembershipRequest {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            membership: proto::Membership::Member.into(),
            actor_user_id: "olivia".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        spoofed.code(),
        Code::PermissionDenied,
        "{}",
        spoofed.message()
    );
    assert!(
        spoofed.message().contains("actor_user_id"),
        "{}",
        spoofed.message()
    );

    // A token decides whatever the certificate: the check-scoped certificate with an
    // admin's token writes.
    AdminServiceClient::new(checker.clone())
        .create_workspace(with_token("token-of-ops", create("initech")))
        .await
        .unwrap();

    // Neither a caller's certificate nor a token: refused as unauthenticated.
    for channel in [&nobody, &anonymous, &two] {
        let refused = check(channel).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::Unauthenticated,
            "{}",
            refused.message()
        );
    }
    let ambiguous = check(&two).await.unwrap_err();
    assert!(
        ambiguous.message().contains("two callers"),
        "{}",
        ambiguous.message()
    );
    // Without a certificate (optional), a token is the way in.
    let mut by_token = AccessServiceClient::new(anonymous.clone());
    by_token
        .check(with_token(
            "token-of-both",
            check_req("acme", "sam", "workspace.read", None),
        ))
        .await
        .unwrap();
    owned.stop().await;
}

#[tokio::test]
async fn certificates_are_read_again_without_a_restart_and_bad_ones_are_not_taken() {
    let pki = Pki::new();
    let files = pki.files(None);
    let (server, tls) = start(files.clone(), ServeOptions::default()).await;
    let before = connect(&server, &pki.authority.pem, None).await.unwrap();

    // A renewed certificate from a new authority, written where the old one was.
    let renewed = Authority::new("renewed CA");
    let leaf = renewed.server();
    std::fs::write(&files.cert, &leaf.cert).unwrap();
    std::fs::write(&files.key, &leaf.key).unwrap();
    tls.reload().unwrap();
    connect(&server, &renewed.pem, None).await.unwrap();
    assert!(connect(&server, &pki.authority.pem, None).await.is_err());
    // A connection opened before keeps working.
    assert!(!check(&before).await.unwrap());

    // A certificate that does not match its key, or is not PEM, is refused, naming the
    // file, and the one read before stays in force.
    let stray = renewed.server();
    std::fs::write(&files.key, &stray.key).unwrap();
    let mismatch = tls.reload().unwrap_err().to_string();
    assert!(
        mismatch.contains("--tls-cert") && mismatch.contains("--tls-key"),
        "{mismatch}"
    );
    std::fs::write(&files.cert, "not a certificate").unwrap();
    let garbage = tls.reload().unwrap_err().to_string();
    assert!(
        garbage.contains(&files.cert.display().to_string()),
        "{garbage}"
    );
    connect(&server, &renewed.pem, None).await.unwrap();

    let missing = Tls::load(TlsFiles {
        cert: Path::new("/nonexistent/cert.pem").to_owned(),
        ..files
    })
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("--tls-cert `/nonexistent/cert.pem`"),
        "{missing}"
    );
    server.stop().await;
}

/// Waits for the server to close `stream`, for at most `bound`; returns whether it did.
async fn closed_within(stream: &mut (impl AsyncReadExt + Unpin), bound: Duration) -> bool {
    let mut buf = [0_u8; 1024];
    let read = tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.is_ok()
}

#[tokio::test]
async fn a_stalled_handshake_and_an_idle_tls_connection_are_closed() {
    let pki = Pki::new();
    let (server, _) = start(
        pki.files(None),
        ServeOptions {
            limits: Limits {
                handshake_timeout: Duration::from_secs(1),
                idle_timeout: Some(Duration::from_secs(1)),
                ..Limits::default()
            },
            ..ServeOptions::default()
        },
    )
    .await;

    // A client that connects and never starts its handshake.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut stalled, Duration::from_secs(10)).await);

    // A client that completes its handshake and makes no call is idle: closed too.
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::pem_slice_iter(
            pki.authority.pem.as_bytes(),
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut idle = connector.connect(name, tcp).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(10)).await);

    // A call in progress keeps a TLS connection open past the idle timeout: a change
    // stream's heartbeats (one a second) keep arriving on it.
    let channel = connect(&server, &pki.authority.pem, None).await.unwrap();
    let mut watch = ReplicationServiceClient::new(channel)
        .watch(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(watch.message().await.unwrap().is_some());
    }
    server.stop().await;
}
