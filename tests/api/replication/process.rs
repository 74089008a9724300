//! Leaders and followers as real `accessd serve` processes on `127.0.0.1:0`, each with
//! its own data directory, killed for real.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use accessd::proto::{
    self, access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
    replication_service_client::ReplicationServiceClient,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A server process, its address, and the data directory it was started on.
pub struct Node {
    child: Child,
    pub addr: String,
    /// Every line the server has logged so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    pub channel: Channel,
    pub data_dir: PathBuf,
    args: Vec<String>,
}

impl Drop for Node {
    /// A failing test must not leave its servers running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// A leader on `data_dir`, with `args` besides.
    pub async fn leader(data_dir: &Path, args: &[&str]) -> Self {
        let node = Self::spawn(data_dir, args.iter().map(|a| (*a).to_owned()).collect()).await;
        node.wait_health("", true, Duration::from_secs(60)).await;
        node
    }

    /// A follower of `leader` on `data_dir`, with `args` besides, once it answers
    /// checks (bootstrapped and caught up).
    pub async fn follower(leader: &Node, data_dir: &Path, args: &[&str]) -> Self {
        let node = Self::follower_starting(&leader.addr, data_dir, args).await;
        node.wait_health("accessd.v1.AccessService", true, Duration::from_secs(60))
            .await;
        node
    }

    /// A server with `args`, as soon as it listens.
    pub async fn starting(data_dir: &Path, args: &[&str]) -> Self {
        Self::spawn(data_dir, args.iter().map(|a| (*a).to_owned()).collect()).await
    }

    /// A follower of the leader at `leader`, as soon as it listens.
    pub async fn follower_starting(leader: &str, data_dir: &Path, args: &[&str]) -> Self {
        let mut all = vec!["--follow".to_owned(), leader.to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self::spawn(data_dir, all).await
    }

    async fn spawn(data_dir: &Path, args: Vec<String>) -> Self {
        Self::spawn_on(data_dir, "127.0.0.1:0", args).await
    }

    async fn spawn_on(data_dir: &Path, listen: &str, args: Vec<String>) -> Self {
        let level = std::env::var("TEST_ACCESSD_LOG").unwrap_or_else(|_| "info".into());
        Self::spawn_logging(data_dir, listen, args, &level).await
    }

    /// A server with `args`, as soon as it listens, logging at `level` (`ACCESSD_LOG`).
    pub async fn starting_logging(data_dir: &Path, level: &str, args: &[&str]) -> Self {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::spawn_logging(data_dir, "127.0.0.1:0", args, level).await
    }

    async fn spawn_logging(data_dir: &Path, listen: &str, args: Vec<String>, level: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_accessd"))
            .args(["serve", "--listen", listen, "--log-format", "json"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(&args)
            .env("ACCESSD_LOG", level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, addresses) = mpsc::channel();
        let echo = std::env::var_os("TEST_LOG").is_some();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let logged = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                logged.lock().unwrap().push(line.clone());
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(address) = event["fields"]["address"].as_str() {
                    let _ = sender.send(address.to_owned());
                }
            }
        });
        // The server logs its address as soon as it listens; the bound is a safety net.
        let addr = addresses.recv_timeout(Duration::from_secs(60)).unwrap();
        // A server with TLS gets no plaintext connection: its tests make their own.
        let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
        let channel = if args.iter().any(|arg| arg == "--tls-cert") {
            endpoint.connect_lazy()
        } else {
            endpoint.connect().await.unwrap()
        };
        Self {
            child,
            addr,
            logs,
            channel,
            data_dir: data_dir.to_owned(),
            args,
        }
    }

    /// Kills the process with SIGKILL: no drain, no flush.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    /// Starts the process again on the same data directory with the same arguments
    /// (on a new port), as soon as it listens.
    pub async fn restart(mut self) -> Self {
        self.kill();
        let args = std::mem::take(&mut self.args);
        Self::spawn(&self.data_dir.clone(), args).await
    }

    /// The process id, to read what the kernel says of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    pub fn replication(&self) -> ReplicationServiceClient<Channel> {
        ReplicationServiceClient::new(self.channel.clone())
    }

    pub async fn status(&self) -> proto::ReplicationStatus {
        self.replication()
            .get_replication_status(proto::GetReplicationStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    /// Whether health reports `service` SERVING.
    pub async fn serving(&self, service: &str) -> bool {
        let answer = HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await;
        answer.is_ok_and(|a| a.into_inner().status == 1)
    }

    /// Waits (at most `bound`) until `service`'s health is `serving`; returns how long
    /// it took.
    pub async fn wait_health(&self, service: &str, serving: bool, bound: Duration) -> Duration {
        let started = Instant::now();
        while self.serving(service).await != serving {
            assert!(
                started.elapsed() < bound,
                "`{service}` not {} after {bound:?}",
                if serving { "SERVING" } else { "NOT_SERVING" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        started.elapsed()
    }

    /// Waits until the node's revision is at least `revision`.
    pub async fn wait_revision(&self, revision: u64) {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if status.revision >= revision {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "still at revision {} of {revision}: {status:?}",
                status.revision
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A check request waiting for `revision`, with a deadline.
pub fn check_at(
    ws: &str,
    user: &str,
    permission: &str,
    resource: Option<proto::ResourceRef>,
    revision: u64,
) -> tonic::Request<proto::CheckRequest> {
    let mut request = tonic::Request::new(proto::CheckRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        permission: permission.into(),
        resource,
        at_least_revision: revision,
    });
    request.set_timeout(Duration::from_secs(10));
    request
}

/// Every user of `ws` with their membership and grants, as the node answers at
/// `revision` or later.
pub async fn team(node: &Node, ws: &str, revision: u64) -> Vec<String> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    loop {
        let mut request = tonic::Request::new(proto::ListAccessRequest {
            workspace_id: ws.into(),
            page_size: 1000,
            page_token,
            at_least_revision: revision,
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(10));
        let page = node
            .access()
            .list_access(request)
            .await
            .unwrap()
            .into_inner();
        rows.extend(crate::harness::table(&page.entries));
        if page.next_page_token.is_empty() {
            return rows;
        }
        page_token = page.next_page_token;
    }
}

impl Node {
    /// A leader listening on `listen` (an address a test reserved), once it serves.
    pub async fn leader_at(data_dir: &Path, listen: &str) -> Self {
        Self::leader_at_args(data_dir, listen, &[]).await
    }

    /// A leader listening on `listen` with `args` besides, once it serves.
    pub async fn leader_at_args(data_dir: &Path, listen: &str, args: &[&str]) -> Self {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let node = Self::spawn_on(data_dir, listen, args).await;
        node.wait_health("", true, Duration::from_secs(60)).await;
        node
    }

    /// Sends SIGTERM, and waits for the process to exit; returns how long it took. The
    /// wait yields, so that this test's own connections to the server answer its
    /// shutdown meanwhile.
    pub async fn terminate(&mut self) -> Duration {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        while self.child.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }
}

/// An address on loopback that nothing listens on: bound to port 0, then released.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Creates workspace `ws`, owned by olivia, on `node`; returns the write's revision.
pub async fn create(node: &Node, ws: &str) -> u64 {
    node.admin()
        .create_workspace(proto::CreateWorkspaceRequest {
            workspace_id: ws.into(),
            owner_user_id: "olivia".into(),
            products: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .revision
}
