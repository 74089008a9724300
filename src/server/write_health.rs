//! AdminService's health follows whether the store takes writes: NOT_SERVING while the
//! data volume refuses them, SERVING again once the store heals. Checks keep their own
//! status: they are answered from memory throughout.

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};
use tracing::{info, warn};

use crate::store::WriteState;

/// The service whose health says whether writes are taken.
const WRITES: &str = "accessd.v1.AdminService";

/// Reports AdminService's health as `writes` changes, until `stopping` (the drain
/// reports NOT_SERVING for every service itself).
pub async fn report(
    reporter: HealthReporter,
    mut writes: watch::Receiver<WriteState>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let status = match &*writes.borrow_and_update() {
            WriteState::Taking => ServingStatus::Serving,
            WriteState::Refused(_) => ServingStatus::NotServing,
        };
        if *stopping.borrow() {
            return;
        }
        match status {
            ServingStatus::Serving => info!(service = WRITES, "health: SERVING, writes are taken"),
            _ => warn!(
                service = WRITES,
                "health: NOT_SERVING while writes are refused"
            ),
        }
        reporter.set_service_status(WRITES, status).await;
        tokio::select! {
            changed = writes.changed() => if changed.is_err() { return },
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}
