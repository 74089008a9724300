//! Planning a follower's writes: the leader's write groups applied as the leader made
//! them (no engine: the leader planned them), at the leader's revisions, and the steps of
//! a bootstrap, which builds a new state beside the one served and publishes it whole.

use std::{collections::HashMap, sync::Arc};

use tokio::sync::oneshot;

use super::{
    Answer,
    plan::{Dirty, Planned, Planner},
};
use crate::{
    model::{Change, Workspace, WorkspaceId},
    store::{
        BootstrapStep, ReplicatedGroup, Snapshot, StoreError,
        change_log::{Author, GroupLines},
        identity,
        record::{self, keys},
    },
};

/// The command a follower logs for the leader's revisions that changed none of the
/// workspaces it holds, so that its log still reaches the revision it holds.
pub const OTHER_WORKSPACES: &str = "other_workspaces";

/// The state a group's changes are applied to, by workspace: taken out of the base
/// while a change works on it.
type Overlay = HashMap<WorkspaceId, Option<Workspace>>;

impl Planner {
    /// Plans a replicated group after `revision` (the revision planned so far), which
    /// it advances to the group's end. A group that does not follow `revision` is
    /// refused whole: the follower resumes from what it holds.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of the group being planned, as `plan` holds them"
    )]
    pub(super) fn plan_replicated(
        &mut self,
        group: &ReplicatedGroup,
        now: u128,
        base: &Snapshot,
        overlay: &mut Overlay,
        batch: &mut sled::Batch,
        dirty: &mut Dirty,
        log: &mut GroupLines,
        revision: &mut u64,
    ) -> Result<Answer, StoreError> {
        if let Err(why) = follows(group, *revision) {
            return Ok(Err(StoreError::Replication(why)));
        }
        let mut after = *revision;
        for entry in &group.entries {
            self.apply(base, overlay, batch, dirty, &entry.changes)?;
            if self.log_enabled {
                log.push_after(
                    &self.layout.catalog,
                    after,
                    entry.revision,
                    u128::from(entry.unix_millis),
                    &entry.command,
                    Author {
                        caller: entry.caller.as_deref(),
                        actor: entry.actor.as_deref(),
                    },
                    &entry.changes,
                );
            }
            after = entry.revision;
        }
        if group.end_revision > after && self.log_enabled {
            log.push_after(
                &self.layout.catalog,
                after,
                group.end_revision,
                now,
                OTHER_WORKSPACES,
                Author::default(),
                &[],
            );
        }
        *revision = group.end_revision;
        Ok(Ok(Vec::new()))
    }

    /// Plans one step of a bootstrap, in a group of its own.
    pub(super) fn plan_bootstrap(
        &mut self,
        step: BootstrapStep,
        reply: oneshot::Sender<Answer>,
    ) -> Result<Planned, StoreError> {
        let mut batch = sled::Batch::default();
        let (publish, reset_log) = match step {
            BootstrapStep::Begin => {
                // The marker goes with the removal: a crash before the end leaves it,
                // and the next open discards the partial copy.
                batch.insert(keys::BOOTSTRAPPING, &[][..]);
                for key in identity::replaced_by_bootstrap(&self.db) {
                    batch.remove(key?);
                }
                self.layout.retained.clear();
                self.layout.retained_instances.clear();
                self.latest = Arc::new(Snapshot::default());
                (false, true)
            }
            BootstrapStep::Changes(changes) => {
                let base = Arc::clone(&self.latest);
                let mut overlay = Overlay::new();
                let mut dirty = Dirty::default();
                self.apply(&base, &mut overlay, &mut batch, &mut dirty, &changes)?;
                self.seal(&mut batch, &base, overlay, &dirty, base.revision);
                (false, false)
            }
            BootstrapStep::End {
                revision,
                following,
            } => {
                batch.insert(keys::REVISION, &record::encode_u64(revision));
                match following {
                    Some(following) => batch.insert(keys::FOLLOWING, following.encode()),
                    None => batch.remove(keys::FOLLOWING),
                }
                batch.remove(keys::BOOTSTRAPPING);
                self.latest = Arc::new(Snapshot {
                    revision,
                    workspaces: self.latest.workspaces.clone(),
                });
                (true, false)
            }
        };
        Ok(Planned {
            revision: self.latest.revision,
            changed: true,
            log: None,
            batch,
            snapshot: Arc::clone(&self.latest),
            publish,
            reset_log,
            replies: vec![(reply, Ok(Vec::new()))],
            queued: Vec::new(),
            size: 0,
        })
    }

    /// Persists and applies changes as they are.
    fn apply(
        &mut self,
        base: &Snapshot,
        overlay: &mut Overlay,
        batch: &mut sled::Batch,
        dirty: &mut Dirty,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        for change in changes {
            let id = change.workspace();
            let mut state = match overlay.remove(id) {
                Some(state) => state,
                None => base.workspaces.get(id.as_str()).cloned(),
            };
            self.persist(batch, dirty, state.as_ref(), change)?;
            Workspace::apply(&mut state, change);
            overlay.insert(id.clone(), state);
        }
        Ok(())
    }
}

/// Whether `group` follows `revision`: entries in increasing revision order after it,
/// ending at or before the group's end, which is past it.
fn follows(group: &ReplicatedGroup, revision: u64) -> Result<(), String> {
    let mut last = revision;
    for entry in &group.entries {
        if entry.revision <= last {
            return Err(format!(
                "an entry of revision {} after revision {last}: the group does not follow \
                 revision {revision}, which this server holds",
                entry.revision
            ));
        }
        last = entry.revision;
    }
    if group.end_revision <= revision || group.end_revision < last {
        return Err(format!(
            "a group ending at revision {} does not follow revision {revision}, which this \
             server holds",
            group.end_revision
        ));
    }
    Ok(())
}
