//! Security events in the server's own log, as an operator reads it: refused
//! credentials, scope refusals and failed TLS handshakes each logged at info with the
//! peer's address (and the caller's name once known), and never a token or a request's
//! contents, even at the most verbose level.

use std::{path::Path, time::Duration};

use accessd::{
    api::callers::{digest_hex, token_digest},
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    },
};
use tokio::io::AsyncWriteExt as _;
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

use crate::{harness::with_token, pki::Authority, replication::process::Node};

const TOKEN: &str = "tok-3f9c2a7d1e5b8c40";
const WRONG_TOKEN: &str = "tok-0000wrong0000";
/// A user id that appears only in request bodies.
const BODY_MARKER: &str = "body-marker-51d7";

#[tokio::test]
async fn security_events_are_logged_with_the_peer_and_no_token_or_body_ever_is() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("log test CA");
    let server = authority.server().write(dir.path(), "server");
    let callers = dir.path().join("callers.toml");
    std::fs::write(
        &callers,
        format!(
            "[[caller]]\nname = \"orders\"\ntoken_sha256 = \"{}\"\nscopes = [\"check\"]\n",
            digest_hex(&token_digest(TOKEN))
        ),
    )
    .unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    // Trace: the most a person debugging would ever turn on, with every crate's lines.
    let node = Node::starting_logging(
        &dir.path().join("data"),
        "trace",
        &[
            "--tls-cert",
            &path(&server.cert),
            "--tls-key",
            &path(&server.key),
            "--callers",
            &path(&callers),
        ],
    )
    .await;
    let port = node.addr.rsplit(':').next().unwrap();
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&authority.pem)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let check = proto::CheckRequest {
        workspace_id: "acme".into(),
        user_id: BODY_MARKER.into(),
        permission: "workspace.read".into(),
        ..Default::default()
    };

    // Accepted; then an unknown token; then a caller outside its scope.
    let mut answered = false;
    for _ in 0..600 {
        match AccessServiceClient::new(channel.clone())
            .check(with_token(TOKEN, check.clone()))
            .await
        {
            Ok(_) => {
                answered = true;
                break;
            }
            // Still loading the database.
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    assert!(answered);
    let unknown = AccessServiceClient::new(channel.clone())
        .check(with_token(WRONG_TOKEN, check.clone()))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    let outside = AdminServiceClient::new(channel.clone())
        .create_workspace(with_token(
            TOKEN,
            proto::CreateWorkspaceRequest {
                workspace_id: BODY_MARKER.into(),
                owner_user_id: BODY_MARKER.into(),
                products: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(outside.code(), Code::PermissionDenied);
    // A client that speaks no TLS at all.
    let mut plain = tokio::net::TcpStream::connect(&node.addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    drop(plain);

    let expected = |what: &str, caller: &str| {
        let logs = node.logs.lock().unwrap();
        logs.iter().any(|line| {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                return false;
            };
            let fields = &event["fields"];
            event["level"] == "INFO"
                && fields["message"] == what
                && fields["peer"]
                    .as_str()
                    .is_some_and(|peer| peer.starts_with("127.0.0.1:"))
                && (caller.is_empty() || fields["caller"] == caller)
        })
    };
    let mut waited = Duration::ZERO;
    while !expected("TLS handshake failed", "") && waited < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert!(expected("call refused", "-"), "an unknown token");
    assert!(expected("call refused", "orders"), "a scope refusal");
    assert!(expected("TLS handshake failed", ""), "a handshake failure");

    let logs = node.logs.lock().unwrap();
    assert!(logs.len() > 100, "trace level logs much: {}", logs.len());
    for secret in [TOKEN, WRONG_TOKEN, BODY_MARKER] {
        let leaked: Vec<&String> = logs.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "`{secret}` logged: {leaked:?}");
    }
}
