//! The attacks of issue 14, each at the scale the issue measured, against a real
//! `accessd serve` process: the bound is hit with its clear refusal, the server's
//! resident memory stays within a stated growth during and after, and another client's
//! normal call is answered meanwhile.

mod batch_check;
mod connections;
mod exports;
mod frames;
mod resident;
mod streams;

use std::{process::Command, time::Duration};

use tempfile::TempDir;
use tonic::transport::Channel;

use crate::replication::process::Node;

/// One attack at a time: each wants both cores of a CI runner, and a connection flood
/// takes most of the test process's file descriptors. A tokio mutex: it is held across
/// awaits.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A guard against a step that hangs; not a wait.
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// A real server process on a fresh data directory, as an attacker finds it.
struct Target {
    node: Node,
    /// Removed after the process is killed (fields drop in order).
    _data: TempDir,
}

impl Target {
    /// `accessd serve` with `args` besides, once it serves.
    async fn start(args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let node = Node::leader(data.path(), args).await;
        Self { node, _data: data }
    }

    /// A client of its own, on a connection of its own.
    async fn another_client(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.node.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

/// This process's soft limit on open files.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(u64::MAX)
}

/// Raises this process's soft limit on open files to `need` if it is lower; a server
/// started afterwards inherits it. With `unsafe` forbidden, `prlimit(1)` does it.
fn allow_open_files(need: u64) {
    let soft = open_files_limit();
    if soft >= need {
        return;
    }
    let raised = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={need}:"))
        .status();
    assert!(
        raised.is_ok_and(|status| status.success()) && open_files_limit() >= need,
        "this test needs {need} open files and `ulimit -n` is {soft}: raise it \
         (`prlimit` could not)"
    );
}
