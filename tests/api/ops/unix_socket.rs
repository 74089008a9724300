//! `serve --listen unix:PATH` beside a TCP listener, as a sidecar runs: the same services
//! on both, the socket file's mode, a stale socket replaced, anything else at its path
//! refused and left alone, the file removed at SIGTERM; and the CLI over the socket.

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::Path,
    process::{Command, Stdio},
};

use accessd::{
    connect::{self, ClientTls},
    proto::{
        self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    },
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::STOP_DEADLINE;
use crate::{
    durability::process::{START_BOUND, Server},
    harness::check_req,
};

/// A channel through the Unix socket at `path`, as the CLI and a follower make one.
async fn through(path: &Path) -> Channel {
    connect::endpoint(&format!("unix:{}", path.display()), &ClientTls::default())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `accessd serve --listen unix:PATH` with `flags` besides, its TCP listener included.
async fn serve_with_socket(data_dir: &Path, socket: &Path, flags: &[&str]) -> Server {
    let listen = format!("unix:{}", socket.display());
    let mut args = vec!["--listen", listen.as_str()];
    args.extend_from_slice(flags);
    Server::start(data_dir, &args).await
}

/// Runs `accessd ARGS` with no `ACCESSD_*` variable; its exit code, stdout and stderr.
async fn accessd(args: Vec<String>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_accessd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACCESSD_") {
            command.env_remove(name);
        }
    }
    command.args(args).stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_server_answers_on_tcp_and_its_unix_socket_and_removes_the_socket_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("accessd.sock");
    let mut server = serve_with_socket(&dir.path().join("data"), &socket, &[]).await;

    let file = std::fs::metadata(&socket).unwrap();
    assert!(file.file_type().is_socket());
    assert_eq!(file.permissions().mode() & 0o777, 0o660);
    let serving = server
        .logs()
        .into_iter()
        .find(|line| line.contains(r#""message":"serving""#))
        .unwrap();
    assert!(
        serving.contains(&format!(
            r#""addresses":"{}, unix:{}""#,
            server.address,
            socket.display()
        )),
        "{serving}"
    );

    let unix = through(&socket).await;
    let health = HealthClient::new(unix.clone())
        .check(HealthCheckRequest {
            service: "accessd.v1.AccessService".into(),
        })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);

    // Written through the socket, read over TCP; written over TCP, read through the socket.
    AdminServiceClient::new(unix.clone())
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: "acme".into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        })
        .await
        .unwrap();
    let check = check_req("acme", "olivia", "warehouse.create", None);
    let over_tcp = server.access().check(check.clone()).await.unwrap();
    assert!(over_tcp.into_inner().decision.unwrap().allowed);
    server
        .admin()
        .set_membership(proto::SetMembershipRequest {
            workspace_id: "acme".into(),
            user_id: "sam".into(),
            membership: proto::Membership::Member.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let sam = check_req("acme", "sam", "warehouse.create", None);
    let through_socket = AccessServiceClient::new(unix)
        .check(sam)
        .await
        .unwrap()
        .into_inner();
    assert!(!through_socket.decision.unwrap().allowed);
    assert_eq!(through_socket.revision, 2);

    // The CLI through the socket.
    let addr = format!("unix:{}", socket.display());
    let (code, listed, stderr) =
        accessd(words(&format!("list --workspace acme --addr {addr}"))).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        listed.contains("olivia") && listed.contains("sam"),
        "{listed}"
    );

    let status = server.terminate(STOP_DEADLINE).await.unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket file outlived the server");
    let (code, _, stderr) = accessd(words(&format!("list --workspace acme --addr {addr}"))).await;
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("accessd: cannot connect to `{addr}`: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("accessd.sock");
    let data = dir.path().join("data");
    let mut killed = serve_with_socket(&data, &socket, &["--socket-mode", "0600"]).await;
    killed.kill();
    assert!(socket.exists(), "a killed server leaves its socket file");

    let server = serve_with_socket(&data, &socket, &["--socket-mode", "0600"]).await;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("removed a stale socket file")),
        "{:?}",
        server.logs()
    );
    HealthClient::new(through(&socket).await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();

    let other = dir.path().join("other");
    let listen = format!("unix:{}", socket.display());
    let refused = Server::try_start(&other, &["--listen", &listen], START_BOUND)
        .await
        .err()
        .unwrap();
    assert!(!refused.status.unwrap().success());
    let said = refused.logs.join("\n");
    assert!(
        said.contains(&format!(
            "cannot listen on `{listen}`: another server is listening on it"
        )),
        "{said}"
    );
    // The server it would have displaced still answers through its socket.
    HealthClient::new(through(&socket).await)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accessd.sock");
    std::fs::write(&path, "precious").unwrap();
    let listen = format!("unix:{}", path.display());
    let data = dir.path().join("data");
    let refused = Server::try_start(&data, &["--listen", &listen], START_BOUND)
        .await
        .err()
        .unwrap();
    let said = refused.logs.join("\n");
    assert!(
        said.contains(&format!(
            "cannot listen on `{listen}`: a file that is not a socket is there"
        )),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");

    let missing = dir.path().join("run").join("accessd.sock");
    let listen = format!("unix:{}", missing.display());
    let refused = Server::try_start(&data, &["--listen", &listen], START_BOUND)
        .await
        .err()
        .unwrap();
    let said = refused.logs.join("\n");
    assert!(
        said.contains(&format!(
            "the directory `{}` does not exist",
            dir.path().join("run").display()
        )),
        "{said}"
    );
}

#[tokio::test]
async fn bad_listen_addresses_and_socket_modes_are_errors_naming_the_flag() {
    for (flags, flag) in [
        ("--listen localhost:50051", "--listen"),
        ("--listen unix:", "--listen"),
        ("--listen 127.0.0.1:0,unix:", "--listen"),
        ("--socket-mode 0999", "--socket-mode"),
        ("--socket-mode 01777", "--socket-mode"),
    ] {
        let (code, _, stderr) = accessd(words(&format!("serve {flags}"))).await;
        assert_eq!(code, 2, "{flags}: {stderr}");
        assert!(stderr.contains(flag), "{flags}: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", dir.path().join("a.sock").display());
    let (code, _, stderr) = accessd(words(&format!(
        "serve --listen {socket} --listen {socket} --data-dir {}",
        dir.path().join("data").display()
    )))
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("`--listen {socket}` is given twice")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_socket_is_refused_where_a_client_certificate_is_the_only_credential() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", dir.path().join("a.sock").display());
    // Refused before the TLS files are read: they need not exist.
    let (code, _, stderr) = accessd(words(&format!(
        "serve --listen 127.0.0.1:0 --listen {socket} --tls-cert c.pem --tls-key k.pem \
         --tls-client-ca ca.pem --data-dir {}",
        dir.path().join("data").display()
    )))
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "refusing to listen on {socket}: a Unix socket carries no TLS"
        )),
        "{stderr}"
    );
    let (code, _, stderr) = accessd(words(&format!(
        "serve --listen {socket} --tls-cert c.pem --tls-key k.pem --data-dir {}",
        dir.path().join("data").display()
    )))
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the only listeners are Unix sockets"),
        "{stderr}"
    );
    assert!(!dir.path().join("a.sock").exists());
}
