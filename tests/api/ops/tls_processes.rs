//! TLS as an operator runs it: the `accessd` binary serving with certificate files and a
//! callers file, reading a renewed certificate when its file changes; the CLI reaching
//! it over mTLS; and a follower following a leader over mTLS as a caller of its own.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    pki::{Authority, Leaf, LeafFiles},
    replication::process::{Node, check_at, free_address},
};

/// Runs `accessd status` against `https://localhost:PORT`, trusting `ca`, presenting
/// `client`; returns its output, or its error message.
fn status(port: u16, ca: &Path, client: &LeafFiles) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_accessd"))
        .args(["status", "--addr", &format!("https://localhost:{port}")])
        .arg("--tls-ca")
        .arg(ca)
        .arg("--tls-cert")
        .arg(&client.cert)
        .arg("--tls-key")
        .arg(&client.key)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Retries `attempt` until it succeeds, for at most `bound`.
fn eventually<T>(bound: Duration, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match attempt() {
            Ok(done) => return done,
            Err(why) if started.elapsed() > bound => panic!("still failing: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn port(node: &Node) -> u16 {
    node.addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A callers file where `control` (admin) and `follower-1` (replicate) are known by
/// their certificates' names.
fn callers_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("callers.toml");
    std::fs::write(
        &path,
        "[[caller]]\nname = \"control\"\ncertificate_names = [\"control\"]\nscopes = [\"admin\"]\n\n\
         [[caller]]\nname = \"follower-1\"\n\
         certificate_names = [\"spiffe://cluster.local/ns/app/sa/follower\"]\n\
         scopes = [\"replicate\"]\n",
    )
    .unwrap();
    path
}

struct Leader {
    node: Node,
    /// Where it answers health checks in plaintext.
    health: String,
    dir: tempfile::TempDir,
    authority: Authority,
    clients: Authority,
    server: LeafFiles,
}

/// A leader serving TLS with client certificates required, and its callers file.
async fn leader() -> Leader {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("leader CA");
    let clients = Authority::new("clients CA");
    let server = authority.server().write(dir.path(), "server");
    let client_ca = clients.write(dir.path(), "clients.pem");
    let callers = callers_file(dir.path());
    let data = dir.path().join("data");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let health = free_address();
    let node = Node::starting(
        &data,
        &[
            "--health-listen",
            &health,
            "--tls-cert",
            &path(&server.cert),
            "--tls-key",
            &path(&server.key),
            "--tls-client-ca",
            &path(&client_ca),
            "--callers",
            &path(&callers),
        ],
    )
    .await;
    Leader {
        node,
        health,
        dir,
        authority,
        clients,
        server,
    }
}

async fn tls_channel(port: u16, authority: &str, client: &Leaf) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(authority))
        .identity(Identity::from_pem(&client.cert, &client.key));
    Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_server_reads_a_renewed_certificate_and_the_cli_reaches_it_over_mtls() {
    let leader = leader().await;
    let dir = leader.dir.path();
    let ca = leader.authority.write(dir, "ca.pem");
    let control = leader
        .clients
        .client("control", &[], &[])
        .write(dir, "control");
    let port = port(&leader.node);

    let printed = eventually(Duration::from_secs(60), || status(port, &ca, &control));
    assert!(
        printed.contains("role") && printed.contains("leader"),
        "{printed}"
    );

    // Probes that speak neither TLS nor mTLS get the health status in plaintext on the
    // probe port, and nothing else.
    let probe = Channel::from_shared(format!("http://{}", leader.health))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The leader may still be loading its database: the probe says so until it is not.
    let started = Instant::now();
    let mut statuses = Vec::new();
    while statuses != [ServingStatus::Serving as i32; 3] {
        assert!(started.elapsed() < Duration::from_secs(60), "{statuses:?}");
        statuses.clear();
        for service in ["", "accessd.v1.AccessService", "accessd.v1.AdminService"] {
            let health = HealthClient::new(probe.clone())
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            statuses.push(health.status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = AccessServiceClient::new(probe)
        .check(proto::CheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::Unimplemented);

    // Without a client certificate of the client CA, the CLI is refused.
    let stranger = Authority::new("another CA")
        .client("control", &[], &[])
        .write(dir, "stranger");
    let refused = status(port, &ca, &stranger).unwrap_err();
    assert!(!refused.is_empty());

    // The certificate is renewed by a new authority, written over the old files as a
    // Secret's update would: the server takes it within a few seconds, no restart.
    let renewed = Authority::new("renewed CA");
    let leaf = renewed.server();
    std::fs::write(&leader.server.key, &leaf.key).unwrap();
    std::fs::write(&leader.server.cert, &leaf.cert).unwrap();
    let renewed_ca = renewed.write(dir, "renewed-ca.pem");
    eventually(Duration::from_secs(20), || {
        status(port, &renewed_ca, &control)
    });
    assert!(status(port, &ca, &control).is_err());
}

#[tokio::test]
async fn a_follower_follows_a_leader_over_mtls_as_a_caller_of_its_own() {
    let leader = leader().await;
    let dir = leader.dir.path();
    let port = port(&leader.node);
    let control = leader.clients.client("control", &[], &[]);
    let follower_cert = leader
        .clients
        .client(
            "follower",
            &["spiffe://cluster.local/ns/app/sa/follower"],
            &[],
        )
        .write(dir, "follower");
    let ca = leader.authority.write(dir, "ca.pem");
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    let to_leader = tls_channel(port, &leader.authority.pem, &control).await;
    let mut admin = AdminServiceClient::new(to_leader);
    let created = eventually_async(|| {
        let mut admin = admin.clone();
        async move {
            admin
                .create_workspace(proto::CreateWorkspaceRequest {
                    workspace_id: "acme".into(),
                    owner_user_id: "olivia".into(),
                    products: vec![],
                })
                .await
                .map(|answer| answer.into_inner().revision)
                .map_err(|status| status.to_string())
        }
    })
    .await;

    let follower = Node::follower_starting(
        &format!("https://localhost:{port}"),
        &dir.join("follower-data"),
        &[
            "--leader-tls-ca",
            &path(&ca),
            "--leader-tls-cert",
            &path(&follower_cert.cert),
            "--leader-tls-key",
            &path(&follower_cert.key),
        ],
    )
    .await;
    follower
        .wait_health("accessd.v1.AccessService", true, Duration::from_secs(60))
        .await;
    follower.wait_revision(created).await;
    let decision = follower
        .access()
        .check(check_at("acme", "olivia", "workspace.read", None, created))
        .await
        .unwrap()
        .into_inner();
    assert!(decision.decision.unwrap().allowed);

    // A write after the follower caught up reaches it through the change stream.
    let written = admin
        .set_membership(proto::SetMembershipRequest {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            membership: proto::Membership::Member.into(),
            actor_user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    follower.wait_revision(written).await;

    // A write sent to the follower goes on to the leader with the follower's own
    // certificate, whose caller may only replicate: it is refused, not made.
    let forwarded = follower
        .admin()
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: "globex".into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(
        forwarded.code(),
        Code::PermissionDenied,
        "{}",
        forwarded.message()
    );
}

/// Retries `attempt` until it succeeds, for at most a minute (the leader may still be
/// loading).
async fn eventually_async<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(why) if started.elapsed() > Duration::from_secs(60) => {
                panic!("still failing: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
