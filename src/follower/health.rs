//! A follower's health: checks are answered (`""` and `accessd.v1.AccessService`
//! SERVING) once the copy has caught up with the leader after start-up, and for as
//! long as the leader has been heard from within `stale_after` (or always, with
//! `serve_stale`); AdminService, which is forwarded, only while the leader is heard from.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};
use tracing::{info, warn};

use super::FollowOptions;
use crate::api::replication::{FollowerState, Progress, stopped};

/// How often the health is reassessed: a fraction of a second against a staleness bound
/// of seconds.
const EVERY: Duration = Duration::from_millis(200);

/// What health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Whether checks are answered.
    pub access: bool,
    /// Whether forwarded writes can reach the leader.
    pub admin: bool,
}

impl Health {
    /// The health of a follower that `has_copy` (bootstrapped, now or in an earlier run),
    /// has `caught_up` since start-up, and last heard from the leader `silence` ago.
    pub fn assess(
        options: &FollowOptions,
        has_copy: bool,
        caught_up: bool,
        silence: Option<Duration>,
    ) -> Self {
        let fresh = silence.is_some_and(|silence| silence <= options.stale_after);
        Self {
            access: if options.serve_stale {
                has_copy
            } else {
                caught_up && fresh
            },
            admin: fresh,
        }
    }
}

/// Keeps the health statuses up to date until `stopping` is set.
pub async fn report(
    has_copy_at_start: bool,
    options: FollowOptions,
    progress: Arc<Progress>,
    reporter: HealthReporter,
    mut stopping: watch::Receiver<bool>,
) {
    let mut caught_up = false;
    let mut reported: Option<Health> = None;
    let mut ticks = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stopped(&mut stopping) => return,
        }
        caught_up |= progress.state() == FollowerState::Following;
        let has_copy = has_copy_at_start || caught_up;
        let health = Health::assess(&options, has_copy, caught_up, progress.silence());
        if reported == Some(health) {
            continue;
        }
        if reported.is_some_and(|before| before.access && !health.access) {
            warn!(
                stale_after_seconds = options.stale_after.as_secs_f64(),
                "the leader has not been heard from: checks are refused (NOT_SERVING) until it is"
            );
        } else if health.access {
            info!("checks are answered (SERVING)");
        }
        let status = |serving| {
            if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        reporter.set_service_status("", status(health.access)).await;
        reporter
            .set_service_status("accessd.v1.AccessService", status(health.access))
            .await;
        // The audit trail is read from the copy's own change log, as checks are from it.
        for service in ["accessd.v1.ReplicationService", "accessd.v1.AuditService"] {
            reporter
                .set_service_status(service, status(health.access))
                .await;
        }
        reporter
            .set_service_status("accessd.v1.AdminService", status(health.admin))
            .await;
        progress.set_serving(health.access);
        reported = Some(health);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(serve_stale: bool) -> FollowOptions {
        FollowOptions {
            leader: "http://leader".into(),
            selection: crate::model::Selection::All,
            leader_token: None,
            leader_tls: crate::connect::ClientTls::default(),
            stale_after: Duration::from_secs(30),
            serve_stale,
        }
    }

    #[test]
    fn checks_are_answered_only_once_caught_up_and_while_the_leader_is_heard() {
        let heard = Some(Duration::from_secs(1));
        let silent = Some(Duration::from_secs(31));
        let strict = options(false);
        assert!(
            !Health::assess(&strict, true, false, heard).access,
            "not caught up"
        );
        assert!(Health::assess(&strict, true, true, heard).access);
        assert!(!Health::assess(&strict, true, true, silent).access, "stale");
        assert!(
            !Health::assess(&strict, true, true, None).access,
            "never heard"
        );
        assert!(!Health::assess(&strict, true, true, silent).admin);
        assert!(Health::assess(&strict, false, false, heard).admin);
    }

    #[test]
    fn serving_stale_answers_from_any_copy_held() {
        let lenient = options(true);
        let silent = Some(Duration::from_secs(3600));
        assert!(Health::assess(&lenient, true, false, silent).access);
        assert!(Health::assess(&lenient, true, false, None).access);
        assert!(
            !Health::assess(&lenient, false, false, None).access,
            "no copy yet"
        );
    }
}
