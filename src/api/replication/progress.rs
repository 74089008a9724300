//! A follower's progress, as its replication loop records it and GetReplicationStatus
//! reports it.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
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
