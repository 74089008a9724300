//! A follower's progress, as its replication loop records it and GetReplicationStatus
//! reports it.

use std::{
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{model::Selection, proto};

/// What a follower is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerState {
    /// Copying the leader's snapshot; it has not answered yet, or answers from its
    /// previous copy.
    Bootstrapping,
    /// Applying the leader's changes, behind the revision the leader had when it
    /// connected.
    CatchingUp,
    /// Applying the leader's changes as they come.
    Following,
    /// Not connected to the leader; it answers from what it holds.
    Disconnected,
}

impl FollowerState {
    /// The name the status reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bootstrapping => "bootstrapping",
            Self::CatchingUp => "catching_up",
            Self::Following => "following",
            Self::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug)]
struct Now {
    state: FollowerState,
    history: String,
    leader_revision: u64,
    last_heard: Option<Instant>,
    serving: bool,
    /// When the leader made the newest group applied here, in milliseconds since the
    /// Unix epoch; 0 before the first.
    applied_unix_millis: u64,
    /// How many times the follower connected to the leader again after losing it.
    reconnects: u64,
}

/// How far a follower is behind its leader, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// The leader's newest revision the follower has heard of.
    pub leader_revision: u64,
    /// Revisions the copy is behind `leader_revision`.
    pub revisions: u64,
    /// How old, by the leader's clock and this one, the newest change the copy holds is
    /// while it is behind; 0 once caught up; `None` while behind with nothing applied
    /// since the server started.
    pub millis: Option<u64>,
    /// Reconnections to the leader since the server started.
    pub reconnects: u64,
    /// How long since the leader was last heard from; `None` if never.
    pub silence: Option<Duration>,
}

/// A follower's progress, shared by its replication loop and the status call.
#[derive(Debug)]
pub struct Progress {
    leader: String,
    selection: Selection,
    now: Mutex<Now>,
}

impl Progress {
    /// The progress of a follower of `leader` holding `selection`, not yet connected.
    pub fn new(leader: String, selection: Selection) -> Self {
        Self {
            leader,
            selection,
            now: Mutex::new(Now {
                state: FollowerState::Disconnected,
                history: String::new(),
                leader_revision: 0,
                last_heard: None,
                serving: false,
                applied_unix_millis: 0,
                reconnects: 0,
            }),
        }
    }

    /// The leader's address.
    pub fn leader(&self) -> &str {
        &self.leader
    }

    fn update(&self, change: impl FnOnce(&mut Now)) {
        if let Ok(mut now) = self.now.lock() {
            change(&mut now);
        }
    }

    /// The leader was heard from, at `leader_revision`.
    pub fn heard(&self, leader_revision: u64) {
        self.update(|now| {
            now.leader_revision = now.leader_revision.max(leader_revision);
            now.last_heard = Some(Instant::now());
        });
    }

    /// A group the leader made at `unix_millis` is applied.
    pub fn applied(&self, unix_millis: u64) {
        self.update(|now| now.applied_unix_millis = now.applied_unix_millis.max(unix_millis));
    }

    /// The follower connects to the leader again after losing it.
    pub fn reconnecting(&self) {
        self.update(|now| now.reconnects += 1);
    }

    /// How far a copy at `revision` is behind the leader.
    pub fn lag(&self, revision: u64) -> Lag {
        let Ok(now) = self.now.lock() else {
            return Lag {
                leader_revision: 0,
                revisions: 0,
                millis: None,
                reconnects: 0,
                silence: None,
            };
        };
        let revisions = now.leader_revision.saturating_sub(revision);
        let millis = if revisions == 0 {
            Some(0)
        } else if now.applied_unix_millis == 0 {
            None
        } else {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            Some(wall.saturating_sub(now.applied_unix_millis))
        };
        Lag {
            leader_revision: now.leader_revision,
            revisions,
            millis,
            reconnects: now.reconnects,
            silence: now.last_heard.map(|at| at.elapsed()),
        }
    }

    /// The follower is now doing `state`.
    pub fn set_state(&self, state: FollowerState) {
        self.update(|now| now.state = state);
    }

    /// The leader's history the data follows.
    pub fn set_history(&self, history: &str) {
        self.update(|now| history.clone_into(&mut now.history));
    }

    /// Whether checks are answered (the AccessService's health).
    pub fn set_serving(&self, serving: bool) {
        self.update(|now| now.serving = serving);
    }

    /// What the follower is doing.
    pub fn state(&self) -> FollowerState {
        self.now
            .lock()
            .map_or(FollowerState::Disconnected, |now| now.state)
    }

    /// How long since the leader was last heard from; `None` if never.
    pub fn silence(&self) -> Option<Duration> {
        self.now
            .lock()
            .ok()
            .and_then(|now| now.last_heard)
            .map(|at| at.elapsed())
    }

    /// The status, for a follower at `revision`.
    pub fn status(&self, revision: u64) -> proto::ReplicationStatus {
        let Ok(now) = self.now.lock() else {
            return proto::ReplicationStatus::default();
        };
        proto::ReplicationStatus {
            role: "follower".into(),
            revision,
            history_id: now.history.clone(),
            leader: self.leader.clone(),
            state: now.state.name().into(),
            leader_revision: now.leader_revision,
            lag_revisions: now.leader_revision.saturating_sub(revision),
            millis_since_leader_heard: now.last_heard.map_or(u64::MAX, |at| {
                u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
            }),
            selection: self.selection.to_string(),
            serving: now.serving,
        }
    }
}
