//! A real `accessd serve` process on `127.0.0.1:0`, found by the address it logs once
//! its database is loaded, and stopped by a real signal. Shared by the test binaries
//! that kill the server (`tests/api/durability.rs`, `tests/faults/`).

#![allow(
    dead_code,
    reason = "two test binaries include this file, each using part of it"
)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use accessd::proto::{
    access_service_client::AccessServiceClient, admin_service_client::AdminServiceClient,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long a start may take before a test gives up on it: a safety net, not a timing.
pub const START_BOUND: Duration = Duration::from_secs(120);

/// A server process, serving, and the address it reported.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub address: String,
    /// A connection to it.
    pub channel: Channel,
    /// The data directory it was started on.
    pub data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

/// A start that did not reach `serving`: the process exited (`status`), or was killed
/// after [`START_BOUND`] (`status` is `None`).
#[derive(Debug)]
pub struct StartFailure {
    /// How the process exited on its own, if it did.
    pub status: Option<ExitStatus>,
    /// Every line it wrote to stderr.
    pub logs: Vec<String>,
}

impl Drop for Server {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server on `data_dir` with `args` besides, once its database is loaded; panics,
    /// with what it logged, if it does not get there.
    pub async fn start(data_dir: &Path, args: &[&str]) -> Self {
        match Self::try_start(data_dir, args, START_BOUND).await {
            Ok(server) => server,
            Err(failure) => panic!(
                "accessd serve on {} did not start ({:?}):\n{}",
                data_dir.display(),
                failure.status,
                failure.logs.join("\n")
            ),
        }
    }

    /// A server on `data_dir` with `args` besides, once its database is loaded, or how it
    /// failed: exited, or still not serving after `bound` (then killed).
    pub async fn try_start(
        data_dir: &Path,
        args: &[&str],
        bound: Duration,
    ) -> Result<Self, StartFailure> {
        let level = std::env::var("TEST_ACCESSD_LOG").unwrap_or_else(|_| "info".into());
        let mut child = Command::new(env!("CARGO_BIN_EXE_accessd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("ACCESSD_LOG", level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (sender, serving) = mpsc::channel();
        let logged = Arc::clone(&logs);
        let echo = std::env::var_os("TEST_LOG").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["fields"]["message"] == "serving" {
                        if let Some(address) = event["fields"]["address"].as_str() {
                            let _ = sender.send(address.to_owned());
                        }
                    }
                }
                logged.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let address = loop {
            if let Ok(address) = serving.try_recv() {
                break address;
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Err(StartFailure {
                    status: Some(status),
                    logs: finished_logs(&logs, &serving),
                });
            }
            if started.elapsed() > bound {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure {
                    status: None,
                    logs: finished_logs(&logs, &serving),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Ok(Self {
            child,
            address,
            channel,
            data_dir: data_dir.to_owned(),
            logs,
        })
    }

    /// Kills the process with SIGKILL (no drain, no flush) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit, at most `bound` (then kills it);
    /// how it exited, or `None` if it had to be killed. The wait yields, so that this
    /// test's own connections answer the server's shutdown meanwhile.
    pub async fn terminate(&mut self, bound: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        while started.elapsed() < bound {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill();
        None
    }

    /// Every line the server has written to stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// A client of its AccessService.
    pub fn access(&self) -> AccessServiceClient<Channel> {
        AccessServiceClient::new(self.channel.clone())
    }

    /// A client of its AdminService.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Whether health reports `service` SERVING (`""`: the server as a whole).
    pub async fn serving(&self, service: &str) -> bool {
        let answer = HealthClient::new(self.channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await;
        answer.is_ok_and(|a| a.into_inner().status == 1)
    }
}

/// The lines of a process that has exited or been killed: its stderr reaches its end
/// soon after, so this waits a little for the reader to see the last of them.
fn finished_logs(logs: &Arc<Mutex<Vec<String>>>, serving: &mpsc::Receiver<String>) -> Vec<String> {
    // The reader thread drops its sender once stderr is closed.
    let _ = serving.recv_timeout(Duration::from_secs(5));
    logs.lock().unwrap().clone()
}
