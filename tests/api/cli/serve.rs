//! `accessd serve` as a child process, stopped with SIGTERM as an operator stops it, and
//! what it logs when a call outlives its drain deadline.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

use super::{quote, words};

/// A `serve` child process, with its log lines as they come.
pub(super) struct ServeProcess {
    child: std::process::Child,
    /// Its log lines not yet read.
    logs: mpsc::Receiver<Value>,
}

impl ServeProcess {
    /// Starts `accessd serve --listen 127.0.0.1:0 --log-format json FLAGS`, and waits for
    /// the line saying it serves; returns it with the address and the lines logged before.
    pub(super) fn start(flags: impl AsRef<str>) -> (Self, String, Vec<Value>) {
        let (sender, logs) = mpsc::channel();
        // Owned by `Self` at once, so that a failure below still stops it (see `Drop`).
        let mut process = Self {
            logs,
            child: Command::new(env!("CARGO_BIN_EXE_accessd"))
                .args(words("serve --listen 127.0.0.1:0 --log-format json"))
                .args(words(flags.as_ref()))
                .env("ACCESSD_LOG", "info")
                .env_remove("ACCESSD_ADMIN_TOKEN")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        };
        let stderr = process.child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                // Keep draining after the test stops listening, so the server never
                // blocks on a full pipe.
                let _ = sender.send(value);
            }
        });
        let mut before = Vec::new();
        loop {
            let line = process.logs.recv_timeout(Duration::from_secs(60)).unwrap();
            if line["fields"]["message"] == "serving" {
                let addr = line["fields"]["address"].as_str().unwrap().to_owned();
                return (process, format!("http://{addr}"), before);
            }
            before.push(line);
        }
    }

    /// Stops it with SIGTERM, as an operator would, and expects a clean exit.
    pub(super) fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
    }

    /// Stops it as `stop` does, and returns the lines it logged since it started serving.
    fn stop_with_logs(mut self) -> Vec<Value> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut lines = Vec::new();
        // The lines end when the process exits and closes its standard error.
        loop {
            match self.logs.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the server did not stop"),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {lines:?}");
        lines
    }
}

impl Drop for ServeProcess {
    /// A failing test must not leave the server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn serve_stops_at_its_drain_deadline_with_a_call_still_open_and_says_so() {
    use tokio_stream::wrappers::ReceiverStream;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };

    let dir = tempfile::tempdir().unwrap();
    let (serve, addr, _) = ServeProcess::start(format!(
        "--data-dir {} --drain-timeout 1",
        quote(dir.path().display())
    ));
    // A reflection stream whose client never ends its requests stays open.
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let channel = tonic::transport::Channel::from_shared(addr)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());

    let logs = tokio::task::spawn_blocking(move || serve.stop_with_logs())
        .await
        .unwrap();
    let warnings: Vec<&Value> = logs.iter().filter(|line| line["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "{logs:?}");
    let waited = warnings[0]["fields"]["waited_seconds"].as_f64().unwrap();
    assert!((1.0..15.0).contains(&waited), "{waited}");
    assert!(
        warnings[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("drain deadline passed after 1.0 s: "),
        "{logs:?}"
    );
    assert!(answers.message().await.is_err());
    drop(requests);
}
