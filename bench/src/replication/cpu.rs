//! How busy the load generator, the leader and the follower were between two instants,
//! from their CPU time in `/proc`: on two shared cores, what each run was up against.

use std::time::Instant;

use crate::process::cpu_seconds;

/// CPU time of the three processes at one instant, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    bench: Option<f64>,
    leader: Option<f64>,
    follower: Option<f64>,
}

/// Cores used by each process over an interval (1.0 = one core busy throughout).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cores {
    /// This process, the load generator.
    pub bench: Option<f64>,
    /// The leader.
    pub leader: Option<f64>,
    /// The follower.
    pub follower: Option<f64>,
}

impl CpuSample {
    /// The CPU time so far of this process and of the two servers.
    pub fn take(leader_pid: u32, follower_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            bench: cpu_seconds(None),
            leader: cpu_seconds(Some(leader_pid)),
            follower: cpu_seconds(Some(follower_pid)),
        }
    }

    /// Cores used by each process between `self` and `later`.
    pub fn cores_until(&self, later: &Self) -> Cores {
        let wall = later.at.saturating_duration_since(self.at).as_secs_f64();
        let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
            _ => None,
        };
        Cores {
            bench: cores(self.bench, later.bench),
            leader: cores(self.leader, later.leader),
            follower: cores(self.follower, later.follower),
        }
    }
}
