//! The follower as a process: started on an empty data directory beside a running
//! leader, timed from the process's start to SERVING (bootstrapped and caught up), and
//! what its own log says the bootstrap took.

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use crate::process::ServerProcess;

/// The message the follower logs once its copy of the leader's snapshot is published.
const BOOTSTRAPPED: &str = "bootstrapped from the leader's snapshot";

/// Starts `accessd serve --follow` of the leader at `leader`, logging JSON lines to
/// `log`, and waits until it reports SERVING; returns it and how long that took from
/// just before the process was started.
pub async fn start(
    binary: &Path,
    leader: SocketAddr,
    data_dir: &Path,
    log: &Path,
    extra: &[String],
    timeout: Duration,
) -> Result<(ServerProcess, Duration), String> {
    let mut args = vec![
        "--follow".to_owned(),
        format!("http://{leader}"),
        "--log-format".to_owned(),
        "json".to_owned(),
    ];
    args.extend(extra.iter().cloned());
    let started = Instant::now();
    let mut follower = ServerProcess::start_accessd(binary, data_dir, None, log, &args)?;
    follower.wait_serving(timeout).await?;
    Ok((follower, started.elapsed()))
}

/// What the follower logged of its bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapLog {
    /// From asking the leader for the snapshot to publishing the copy, in seconds.
    pub seconds: f64,
    /// Records received.
    pub records: u64,
    /// The leader's revision the snapshot was read at.
    pub revision: u64,
}

/// The last bootstrap that `log` (the follower's JSON lines) reports, if any.
pub fn bootstrap_log(log: &str) -> Option<BootstrapLog> {
    log.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|event| {
            let fields = event.get("fields")?;
            if fields.get("message")?.as_str()? != BOOTSTRAPPED {
                return None;
            }
            Some(BootstrapLog {
                seconds: fields.get("seconds")?.as_f64()?,
                records: fields.get("records")?.as_u64()?,
                revision: fields.get("revision")?.as_u64()?,
            })
        })
}
