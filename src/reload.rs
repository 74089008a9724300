//! Reading files again without a restart: the callers file, and the TLS certificates,
//! keys and CAs, when they change and on SIGHUP.

use std::{path::PathBuf, time::Duration, time::SystemTime};

use tracing::{info, warn};

/// How often the files are looked at for a change. A Kubernetes Secret mounted as files
/// changes by a swap of symlinks, which a look at the modification times sees.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Calls `reload` when the modification time of any of `paths` changes, and on SIGHUP.
/// `reload` keeps what it read before when it fails; a failure is logged once and
/// retried at each look until it succeeds (a certificate and its key are seldom
/// replaced at the same instant). `what` names the files in the logs.
pub fn on_change<F>(what: &'static str, paths: Vec<PathBuf>, mut reload: F) -> Result<(), String>
where
    F: FnMut() -> Result<String, String> + Send + 'static,
{
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot install the SIGHUP handler: {e}"))?;
    let modified = move || -> Vec<Option<SystemTime>> {
        paths
            .iter()
            .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
            .collect()
    };
    let mut seen = modified();
    let mut failing = false;
    tokio::spawn(async move {
        loop {
            #[cfg(unix)]
            let asked = tokio::select! {
                _ = hangup.recv() => true,
                () = tokio::time::sleep(LOOK_EVERY) => false,
            };
            #[cfg(not(unix))]
            let asked = {
                tokio::time::sleep(LOOK_EVERY).await;
                false
            };
            let now = modified();
            if !asked && !failing && now == seen {
                continue;
            }
            seen = now;
            match reload() {
                Ok(read) => {
                    info!(files = what, "{what} read again: {read}");
                    failing = false;
                }
                Err(err) => {
                    if !failing {
                        warn!(files = what, %err, "the {what} were not read again; what was read before stays in force");
                    }
                    failing = true;
                }
            }
        }
    });
    Ok(())
}
