//! Where a write group's records go on disk: the chunks it touched, rewritten once
//! each from the group's final state, and every chunk of a deleted workspace removed.
//! Records the catalog in force cannot represent are kept as stored.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
    sync::Arc,
};

use crate::{
    model::{Catalog, InstanceKey, ResourceId, UserId, Workspace, WorkspaceId},
    store::{
        Snapshot,
        load::{Retained, RetainedInstances},
        record::{
            self,
            chunks::{self, Boundaries},
            keys,
        },
    },
};

/// How records are laid out in chunks, and the records kept as stored.
pub struct Layout {
    pub catalog: Arc<Catalog>,
    /// Where the database's chunks start.
    pub boundaries: Boundaries,
    /// Member record lines of roles the catalog does not have, rewritten with the record.
    pub retained: Retained,
    /// Instance records with a parent of a type the catalog does not have, rewritten as
    /// they are.
    pub retained_instances: RetainedInstances,
}

impl Layout {
    /// Forgets what was kept of workspace `id`'s records: it is deleted.
    pub fn forget_workspace(&mut self, id: &WorkspaceId) {
        self.retained.retain(|(ws, _), _| ws != id);
        self.retained_instances.retain(|(ws, _), _| ws != id);
    }

    /// Forgets what was kept of a member's record: the member is removed.
    pub fn forget_member(&mut self, ws: &WorkspaceId, user: &UserId) {
        self.retained.remove(&(ws.clone(), user.clone()));
    }

    /// Forgets what was kept of an instance's record: it is registered anew or deleted.
    pub fn forget_instance(&mut self, ws: &WorkspaceId, key: &InstanceKey) {
        self.retained_instances.remove(&(ws.clone(), key.clone()));
    }

    /// Removes every chunk of workspace `id`, whose state is `ws`.
    pub fn remove_chunks(&self, batch: &mut sled::Batch, id: &WorkspaceId, ws: &Workspace) {
        let starts = |id: &str| self.boundaries.starts(id.as_bytes());
        batch.remove(keys::member_chunk(id.as_str(), ""));
        for (user, _) in ws.members().filter(|(user, _)| starts(user.as_str())) {
            batch.remove(keys::member_chunk(id.as_str(), user.as_str()));
        }
        for ty in ws.instance_types() {
            let type_name = self.catalog.type_name(ty);
            batch.remove(keys::instance_chunk(id.as_str(), type_name, ""));
            for (rid, _) in ws
                .instances_of(ty, None)
                .filter(|(rid, _)| starts(rid.as_str()))
            {
                batch.remove(keys::instance_chunk(id.as_str(), type_name, rid.as_str()));
            }
        }
    }

    /// Rewrites the member chunks that hold the `dirty` members, before the group
    /// (`base`: what the database holds once the groups planned before it are
    /// committed) or after it (`overlay`).
    pub fn write_member_chunks(
        &self,
        batch: &mut sled::Batch,
        base: &Snapshot,
        overlay: &HashMap<WorkspaceId, Option<Workspace>>,
        dirty: &BTreeSet<(WorkspaceId, UserId)>,
    ) {
        let mut rest = dirty.iter().peekable();
        while let Some((workspace, _)) = rest.peek() {
            let workspace = workspace.clone();
            let users = std::iter::from_fn(|| {
                rest.next_if(|(ws, _)| *ws == workspace)
                    .map(|(_, user)| user)
            });
            let after = final_state(base, overlay, &workspace);
            let starts = touched(
                self.boundaries,
                users,
                [base.workspace(&workspace), after],
                |ws, user| {
                    ws.members_in((Bound::Unbounded, Bound::Included(user)))
                        .rev()
                        .map(|(id, _)| id)
                },
            );
            for start in starts {
                let first = start.as_ref().map_or("", UserId::as_str);
                let key = keys::member_chunk(workspace.as_str(), first);
                let mut value = Vec::new();
                let from = start
                    .as_ref()
                    .map_or(Bound::Unbounded, |s| Bound::Included(s.as_str()));
                let records = after
                    .filter(|ws| start.as_ref().is_none_or(|s| ws.member(s).is_some()))
                    .into_iter()
                    .flat_map(|ws| ws.members_in((from, Bound::Unbounded)));
                for (user, member) in self.boundaries.chunk(start.is_none(), records) {
                    // Nearly always empty: then not worth two reference counts and a hash.
                    let retained = if self.retained.is_empty() {
                        &[][..]
                    } else {
                        self.retained
                            .get(&(workspace.clone(), user.clone()))
                            .map_or(&[][..], Vec::as_slice)
                    };
                    let mut record = Vec::new();
                    record::encode_member(&mut record, &self.catalog, member, retained);
                    chunks::push(&mut value, user.as_str(), &record);
                }
                put_chunk(batch, key, value);
            }
        }
    }

    /// Rewrites the instance chunks that hold the `dirty` instances, before the group
    /// (`base`: what the database holds once the groups planned before it are
    /// committed) or after it (`overlay`).
    pub fn write_instance_chunks(
        &self,
        batch: &mut sled::Batch,
        base: &Snapshot,
        overlay: &HashMap<WorkspaceId, Option<Workspace>>,
        dirty: &BTreeSet<(WorkspaceId, InstanceKey)>,
    ) {
        let mut rest = dirty.iter().peekable();
        while let Some((workspace, (ty, _))) = rest.peek() {
            let (workspace, ty) = (workspace.clone(), *ty);
            let ids = std::iter::from_fn(|| {
                rest.next_if(|(ws, (t, _))| *ws == workspace && *t == ty)
                    .map(|(_, (_, id))| id)
            });
            let after = final_state(base, overlay, &workspace);
            let starts = touched(
                self.boundaries,
                ids,
                [base.workspace(&workspace), after],
                |ws, id| {
                    ws.instances_in(ty, (Bound::Unbounded, Bound::Included(id)))
                        .rev()
                        .map(|(id, _)| id)
                },
            );
            let type_name = self.catalog.type_name(ty);
            for start in starts {
                let first = start.as_ref().map_or("", ResourceId::as_str);
                let key = keys::instance_chunk(workspace.as_str(), type_name, first);
                let mut value = Vec::new();
                let from = start
                    .as_ref()
                    .map_or(Bound::Unbounded, |s| Bound::Included(s.as_str()));
                let records = after
                    .filter(|ws| {
                        start
                            .as_ref()
                            .is_none_or(|s| ws.instance_named(ty, s.as_str()).is_some())
                    })
                    .into_iter()
                    .flat_map(|ws| ws.instances_in(ty, (from, Bound::Unbounded)));
                for (id, instance) in self.boundaries.chunk(start.is_none(), records) {
                    let retained = if self.retained_instances.is_empty() {
                        None
                    } else {
                        self.retained_instances
                            .get(&(workspace.clone(), (ty, id.clone())))
                    };
                    let mut record = Vec::new();
                    match retained {
                        Some(stored) => record.extend_from_slice(stored),
                        None => record::encode_instance(
                            &mut record,
                            &self.catalog,
                            instance.parent.as_ref(),
                        ),
                    }
                    chunks::push(&mut value, id.as_str(), &record);
                }
                put_chunk(batch, key, value);
            }
        }
    }
}

/// Writes a chunk, or removes its key if it has no records left.
fn put_chunk(batch: &mut sled::Batch, key: Vec<u8>, value: Vec<u8>) {
    if value.is_empty() {
        batch.remove(key);
    } else {
        batch.insert(key, value);
    }
}

/// The state of `workspace` at the end of a group: as the group left it, or as it was.
fn final_state<'a>(
    base: &'a Snapshot,
    overlay: &'a HashMap<WorkspaceId, Option<Workspace>>,
    workspace: &WorkspaceId,
) -> Option<&'a Workspace> {
    match overlay.get(workspace) {
        Some(state) => state.as_ref(),
        None => base.workspace(workspace),
    }
}

/// The chunks of one run of records (a workspace's members, or its instances of one
/// type) that changes to the records `changed` touch: by their starts, `None` for the
/// head chunk. `states` are the workspace before the group (what the database holds once
/// the groups planned before it are committed) and after it; `down(ws, id)` lists the run's ids in `ws` up to `id`, nearest first.
///
/// A chunk's contents change only if a record in it changed, or if its range did, which
/// takes a record that starts a chunk to come or go. So the chunks that hold a changed
/// record before or after the group are all there is to rewrite: a record that starts
/// a chunk is in its own, and the chunk before it held its place in the state that
/// lacks it.
fn touched<'a, K: AsRef<str> + Clone + Ord + 'a, D: Iterator<Item = &'a K>>(
    boundaries: Boundaries,
    changed: impl Iterator<Item = &'a K>,
    states: [Option<&'a Workspace>; 2],
    down: impl Fn(&'a Workspace, &'a str) -> D,
) -> BTreeSet<Option<K>> {
    let mut starts = BTreeSet::new();
    for id in changed {
        for ws in states.into_iter().flatten() {
            starts.insert(boundaries.start_among(down(ws, id.as_ref())).cloned());
        }
    }
    starts
}
