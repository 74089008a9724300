//! The single writer, in two threads. The planner takes queued commands in groups and
//! plans each against the state left by the ones before it, including groups not yet
//! durable; it turns a group into its change log lines and one atomic sled batch of the
//! chunks it touched. The committer makes each planned group durable (the log lines,
//! fdatasync, then the batch and a flush), and only then publishes its state and answers
//! its callers, in order. A bulk-import batch is planned while the group before it is
//! written; small writes wait for the group in flight instead, so that as many of them
//! as arrive meanwhile share the next flush (group commit). Checks never see a write
//! that is not yet durable. If the committer fails, it stops, and every group planned
//! after the failed one is refused. After each group the committer deletes the change
//! log's oldest files past its budget.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
    sync::{Arc, mpsc::RecvTimeoutError},
    time::{SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use super::{
    Snapshot, StoreError, WriteOutcome,
    blobs::{self, Blobs},
    change_log::{self, ChangeLog},
    chunks::{self, Boundaries},
    keys,
    load::{Retained, RetainedInstances, products_value},
};
use crate::{
    engine::{Command, WriteError, plan},
    model::{Catalog, Change, InstanceKey, ResourceId, UserId, Workspace, WorkspaceId},
};

/// The most commands persisted under one flush.
const MAX_GROUP: usize = 1024;

/// The size of a request (in commands) from which it is planned while the group before
/// it is still being committed: a bulk-import batch.
const AHEAD_FROM: usize = MAX_GROUP;

/// How the commands of one request are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revisions {
    /// Each command that changes something gets its own revision and change-log entry.
    EachCommand,
    /// The request gets one revision and one change-log entry for all its changes.
    OneForAll,
}

/// Queued commands and where their outcomes go.
pub struct Request {
    /// The commands, applied in order and atomically together.
    pub commands: Vec<Command>,
    /// How they are numbered.
    pub revisions: Revisions,
    /// Receives one outcome per command.
    pub reply: oneshot::Sender<Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>>,
}

/// The writer's state, owned by its thread.
pub struct Writer {
    /// The database.
    pub db: sled::Db,
    /// The change log, written with each group and trimmed after it.
    pub log: ChangeLog,
    /// The catalog commands are planned with.
    pub catalog: Arc<Catalog>,
    /// sled's blob files, synced around each flush and while idle.
    pub blobs: Blobs,
    /// Where new states are published for readers.
    pub published: Arc<ArcSwap<Snapshot>>,
    /// Member record lines of roles the catalog does not have, rewritten with the record.
    pub retained: Retained,
    /// Instance records with a parent of a type the catalog does not have, rewritten as
    /// they are.
    pub retained_instances: RetainedInstances,
    /// Where the database's chunks start.
    pub boundaries: Boundaries,
}

impl Writer {
    /// Serves requests until every sender is dropped, then flushes a last time. Plans on
    /// this thread and commits on another, so that a group is planned while the one
    /// before it is being made durable.
    pub fn run(self, mut requests: mpsc::Receiver<Request>) {
        let Writer {
            db,
            blobs,
            log,
            catalog,
            published,
            retained,
            retained_instances,
            boundaries,
        } = self;
        let mut planner = Planner {
            db: db.clone(),
            log_enabled: log.enabled(),
            catalog,
            latest: published.load_full(),
            retained,
            retained_instances,
            boundaries,
        };
        let (committed, acks) = std::sync::mpsc::channel();
        let committer = Committer {
            db,
            blobs,
            log,
            published,
            committed,
        };
        // At most one group waits while another commits.
        let (to_commit, planned) = std::sync::mpsc::sync_channel(1);
        let committing = std::thread::Builder::new()
            .name("accessd-commit".into())
            .spawn(move || committer.run(planned));
        let committing = match committing {
            Ok(handle) => handle,
            Err(err) => {
                let err = StoreError::Corrupt(format!("cannot start the commit thread: {err}"));
                return refuse_all(requests, &err);
            }
        };
        let mut in_flight = 0_usize;
        while let Some(first) = requests.blocking_recv() {
            in_flight -= acks.try_iter().count().min(in_flight);
            // Small writes wait for the group in flight, gathering more of them into the
            // next group meanwhile: planning ahead of the disk would only split them into
            // more groups, each with its own flush. Bulk batches are planned ahead.
            if in_flight > 0 && first.commands.len() < AHEAD_FROM {
                in_flight = match acks.recv() {
                    Ok(()) => in_flight - 1,
                    Err(_) => 0,
                };
            }
            let mut group = vec![first];
            let mut queued = group.iter().map(|r| r.commands.len()).sum::<usize>();
            while queued < MAX_GROUP {
                match requests.try_recv() {
                    Ok(request) => {
                        queued += request.commands.len();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            let planned = match planner.plan(group) {
                Ok(planned) => planned,
                Err(err) => {
                    drop(to_commit);
                    let _ = committing.join();
                    return refuse_all(requests, &err);
                }
            };
            // Refused once the committer has stopped after a failure: the group's callers
            // hear `Closed` as its replies are dropped.
            if to_commit.send(planned).is_err() {
                let _ = committing.join();
                return refuse_all(requests, &StoreError::Closed);
            }
            in_flight += 1;
        }
        drop(to_commit);
        let _ = committing.join();
    }
}

/// A group planned and ready to commit.
struct Planned {
    /// The revision of its last change; the previous one if it changed nothing.
    revision: u64,
    /// Whether it changed anything (and so has a batch to write and a state to publish).
    changed: bool,
    /// Its change log lines, and the revision of the first.
    log: Option<(u64, Vec<u8>)>,
    /// Its state's key operations, the revision included.
    batch: sled::Batch,
    /// The state once it is durable.
    snapshot: Arc<Snapshot>,
    /// Each request's reply, with its outcomes.
    replies: Vec<(Reply, Vec<Result<WriteOutcome, WriteError>>)>,
}

/// Where a request's outcomes go.
type Reply = oneshot::Sender<Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>>;

/// The commit thread: makes each planned group durable (its change log lines, then its
/// state), then publishes it and answers its callers, in the order planned.
struct Committer {
    db: sled::Db,
    blobs: Blobs,
    log: ChangeLog,
    published: Arc<ArcSwap<Snapshot>>,
    /// Told once each group is answered.
    committed: std::sync::mpsc::Sender<()>,
}

impl Committer {
    /// Commits groups until the planner stops, then flushes a last time. After a
    /// failure it stops at once: groups planned on top of the failed one are refused.
    fn run(mut self, planned: std::sync::mpsc::Receiver<Planned>) {
        loop {
            let group = match planned.recv_timeout(blobs::IDLE_SYNC) {
                Ok(group) => group,
                Err(RecvTimeoutError::Disconnected) => break,
                // sled writes blob files from its own threads too (`store::blobs`).
                Err(RecvTimeoutError::Timeout) => match self.blobs.sync_new() {
                    Ok(_) => continue,
                    Err(err) => {
                        error!(%err, "cannot sync blob files; refusing further writes");
                        return;
                    }
                },
            };
            if group.changed {
                // The log is durable first, so a crash before the state's flush leaves
                // log lines the state never reached (redone at open), never state without
                // its log. The state's batch is atomic in sled, and the flush makes it
                // durable before anyone hears of it.
                let durable = match &group.log {
                    Some((first, lines)) => self.log.write(*first, lines),
                    None => Ok(()),
                }
                .and_then(|()| Ok(self.db.apply_batch(group.batch)?))
                .and_then(|()| self.blobs.flush(&self.db));
                if let Err(err) = durable {
                    error!(%err, "write failed; refusing further writes");
                    for (reply, _) in group.replies {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                    return;
                }
                self.published.store(group.snapshot);
                debug!(revision = group.revision, "group committed");
            }
            for (reply, results) in group.replies {
                let _ = reply.send(Ok(results));
            }
            self.log.trim();
            let _ = self.committed.send(());
        }
        if let Err(err) = self.blobs.flush(&self.db) {
            error!(%err, "final flush failed");
        }
    }
}

/// What the state is once the change log's entries it lacks are redone.
pub struct Redone {
    pub snapshot: Snapshot,
    pub retained: Retained,
    pub retained_instances: RetainedInstances,
}

/// Applies `pending`, the change log's entries that `base` (the state sled holds) lacks,
/// and makes the result durable, before the writer starts: the state as it was when
/// those entries were logged. sled holds fewer revisions than the log after a crash
/// between a group's log and its state, or if it lost writes (see `store::blobs`).
/// With nothing pending it returns `base` as it is, writing nothing.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of the writer the redo borrows, once, at open"
)]
pub fn redo(
    db: &sled::Db,
    blobs: &mut Blobs,
    catalog: &Arc<Catalog>,
    boundaries: Boundaries,
    retained: Retained,
    retained_instances: RetainedInstances,
    base: Snapshot,
    pending: change_log::Pending,
) -> Result<Redone, StoreError> {
    if pending.is_empty() {
        return Ok(Redone {
            snapshot: base,
            retained,
            retained_instances,
        });
    }
    let base = Arc::new(base);
    let mut planner = Planner {
        db: db.clone(),
        log_enabled: false,
        catalog: Arc::clone(catalog),
        latest: Arc::clone(&base),
        retained,
        retained_instances,
        boundaries,
    };
    let mut overlay: HashMap<WorkspaceId, Option<Workspace>> = HashMap::new();
    let mut batch = sled::Batch::default();
    let mut dirty = Dirty::default();
    let mut revision = base.revision;
    for (logged, changes) in pending {
        for change in &changes {
            let id = change.workspace();
            let mut state = match overlay.remove(id) {
                Some(state) => state,
                None => base.workspaces.get(id.as_str()).cloned(),
            };
            planner.persist(&mut batch, &mut dirty, state.as_ref(), change)?;
            Workspace::apply(&mut state, change);
            overlay.insert(id.clone(), state);
        }
        revision = logged;
    }
    planner.seal(&mut batch, &base, overlay, &dirty, revision);
    db.apply_batch(batch)?;
    blobs.flush(db)?;
    let Planner {
        latest,
        retained,
        retained_instances,
        ..
    } = planner;
    Ok(Redone {
        snapshot: Arc::unwrap_or_clone(latest),
        retained,
        retained_instances,
    })
}

/// The planning side of the writer: plans each group against the state the groups
/// before it leave, which may not be durable yet.
struct Planner {
    db: sled::Db,
    log_enabled: bool,
    catalog: Arc<Catalog>,
    /// The state after the last group planned.
    latest: Arc<Snapshot>,
    retained: Retained,
    retained_instances: RetainedInstances,
    boundaries: Boundaries,
}

impl Planner {
    fn plan(&mut self, group: Vec<Request>) -> Result<Planned, StoreError> {
        let base = Arc::clone(&self.latest);
        let mut revision = base.revision;
        // Each touched workspace is taken out of the overlay while a command works on
        // it, so the persistent maps are uniquely owned and update in place.
        let mut overlay: HashMap<WorkspaceId, Option<Workspace>> = HashMap::new();
        let mut batch = sled::Batch::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut outcomes = Vec::with_capacity(group.len());
        let mut log: Option<(u64, Vec<u8>)> = None;
        let mut append = |revision: u64, lines: Vec<Vec<u8>>| {
            let (_, bytes) = log.get_or_insert_with(|| (revision, Vec::new()));
            for line in lines {
                bytes.extend_from_slice(&line);
            }
        };
        // The records whose chunks must be rewritten from their final state in this
        // group: once, however many changes they saw.
        let mut dirty = Dirty::default();

        for request in &group {
            let mut results = Vec::with_capacity(request.commands.len());
            let mut shared_changes = Vec::new();
            let shared_revision = revision + 1;
            for command in &request.commands {
                let id = command.workspace();
                let mut state = match overlay.remove(id) {
                    Some(state) => state,
                    None => base.workspaces.get(id.as_str()).cloned(),
                };
                let planned = plan(&self.catalog, state.as_ref(), command);
                let result = match planned {
                    Err(refused) => Err(refused),
                    Ok(changes) if changes.is_empty() => Ok(WriteOutcome {
                        revision: match request.revisions {
                            Revisions::OneForAll if !shared_changes.is_empty() => shared_revision,
                            _ => revision,
                        },
                        changed: false,
                    }),
                    Ok(changes) => {
                        for change in &changes {
                            self.persist(&mut batch, &mut dirty, state.as_ref(), change)?;
                            Workspace::apply(&mut state, change);
                        }
                        match request.revisions {
                            Revisions::EachCommand => {
                                revision += 1;
                                if self.log_enabled {
                                    append(
                                        revision,
                                        change_log::lines(
                                            &self.catalog,
                                            revision,
                                            now,
                                            command.name(),
                                            &changes,
                                        ),
                                    );
                                }
                            }
                            Revisions::OneForAll => shared_changes.extend(changes),
                        }
                        Ok(WriteOutcome {
                            revision: match request.revisions {
                                Revisions::EachCommand => revision,
                                Revisions::OneForAll => shared_revision,
                            },
                            changed: true,
                        })
                    }
                };
                overlay.insert(id.clone(), state);
                results.push(result);
            }
            if !shared_changes.is_empty() {
                revision = shared_revision;
                if self.log_enabled {
                    append(
                        revision,
                        change_log::lines(&self.catalog, revision, now, "batch", &shared_changes),
                    );
                }
                // Writes that changed nothing earlier in the batch report the batch's revision too.
                for result in results.iter_mut().flatten() {
                    result.revision = revision;
                }
            }
            outcomes.push(results);
        }

        // The group is redone at open whole or not at all: its last line says it ends.
        if let Some((_, bytes)) = log.as_mut() {
            change_log::mark_group_end(bytes);
        }
        let changed = revision > base.revision;
        if changed {
            self.seal(&mut batch, &base, overlay, &dirty, revision);
        }
        Ok(Planned {
            revision,
            changed,
            log,
            batch,
            snapshot: Arc::clone(&self.latest),
            replies: group
                .into_iter()
                .map(|request| request.reply)
                .zip(outcomes)
                .collect(),
        })
    }

    /// Ends a group that changed the state from `base` to `overlay` at `revision`: the
    /// chunks of its `dirty` records and the revision go to `batch`, and the new state
    /// becomes the latest planned.
    fn seal(
        &mut self,
        batch: &mut sled::Batch,
        base: &Snapshot,
        overlay: HashMap<WorkspaceId, Option<Workspace>>,
        dirty: &Dirty,
        revision: u64,
    ) {
        self.write_member_chunks(batch, base, &overlay, &dirty.members);
        self.write_instance_chunks(batch, base, &overlay, &dirty.instances);
        batch.insert(keys::REVISION, &revision.to_be_bytes());
        let mut workspaces = base.workspaces.clone();
        for (id, state) in overlay {
            match state {
                Some(ws) => workspaces.insert(&id, ws),
                None => workspaces.remove(id.as_str()),
            }
        }
        self.latest = Arc::new(Snapshot {
            revision,
            workspaces,
        });
    }

    /// Adds the key operations of one change to the batch, or marks the record it
    /// changes, whose chunk is rewritten at the end of the group.
    fn persist(
        &mut self,
        batch: &mut sled::Batch,
        dirty: &mut Dirty,
        state: Option<&Workspace>,
        change: &Change,
    ) -> Result<(), StoreError> {
        match change {
            Change::CreateWorkspace {
                workspace,
                products,
            }
            | Change::SetProducts {
                workspace,
                products,
            } => batch.insert(
                keys::workspace(workspace),
                products_value(&self.catalog, *products),
            ),
            Change::DeleteWorkspace { workspace } => {
                batch.remove(keys::workspace(workspace));
                // Every chunk of the workspace as planned so far: groups planned before
                // this one may not have reached the database yet.
                if let Some(ws) = state {
                    self.remove_chunks(batch, workspace, ws);
                }
                // Every chunk the database holds, of types the catalog knows or not.
                // Records changed earlier in the group are still marked: their chunks are
                // written from the final state, in which the workspace is gone (or new).
                for kind in [keys::MEMBERS, keys::INSTANCES] {
                    for key in self
                        .db
                        .scan_prefix(keys::in_workspace(kind, workspace))
                        .keys()
                    {
                        batch.remove(key?);
                    }
                }
                self.retained.retain(|(ws, _), _| ws != workspace);
                self.retained_instances.retain(|(ws, _), _| ws != workspace);
            }
            Change::RemoveMember { workspace, user } => {
                self.retained.remove(&(workspace.clone(), user.clone()));
                dirty.members.insert((workspace.clone(), user.clone()));
            }
            Change::SetMembership {
                workspace, user, ..
            }
            | Change::AddGrant {
                workspace, user, ..
            }
            | Change::RemoveGrant {
                workspace, user, ..
            } => {
                dirty.members.insert((workspace.clone(), user.clone()));
            }
            Change::RegisterResource {
                workspace,
                resource,
                ..
            }
            | Change::DeleteResource {
                workspace,
                resource,
            } => {
                let key = (workspace.clone(), resource.clone());
                self.retained_instances.remove(&key);
                dirty.instances.insert(key);
            }
        }
        Ok(())
    }

    /// Removes every chunk of workspace `id`, whose state is `ws`.
    fn remove_chunks(&self, batch: &mut sled::Batch, id: &WorkspaceId, ws: &Workspace) {
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
    fn write_member_chunks(
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
                    keys::push_member(&mut record, &self.catalog, member, retained);
                    chunks::push(&mut value, user.as_str(), &record);
                }
                put_chunk(batch, key, value);
            }
        }
    }

    /// Rewrites the instance chunks that hold the `dirty` instances, before the group
    /// (`base`: what the database holds once the groups planned before it are
    /// committed) or after it (`overlay`).
    fn write_instance_chunks(
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
                        None => keys::push_instance(
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

/// The records a group changed, by kind.
#[derive(Default)]
struct Dirty {
    members: BTreeSet<(WorkspaceId, UserId)>,
    instances: BTreeSet<(WorkspaceId, InstanceKey)>,
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

/// After a failure of the database: refuses every queued and further request.
fn refuse_all(mut requests: mpsc::Receiver<Request>, err: &StoreError) {
    error!(%err, "write failed; refusing further writes");
    requests.close();
    while let Some(request) = requests.blocking_recv() {
        let _ = request.reply.send(Err(StoreError::Closed));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{
        model::{Grant, Membership, ProductSet, Scope},
        store::{Store, StoreConfig, open_db},
    };

    /// Few ids, so that commands meet the same records and their chunks again and again;
    /// enough that some of them start chunks.
    fn user(n: u8) -> UserId {
        UserId::parse(&format!("u{n:02}")).unwrap()
    }

    fn resource(n: u8) -> ResourceId {
        ResourceId::parse(&format!("r{n:02}")).unwrap()
    }

    fn command(catalog: &Catalog) -> impl Strategy<Value = Command> + use<> {
        let source = catalog.type_id("source").unwrap();
        let destination = catalog.type_id("destination").unwrap();
        let admin = catalog.role_id("source_admin").unwrap();
        let workspace =
            prop_oneof![Just("a"), Just("b")].prop_map(|ws| WorkspaceId::parse(ws).unwrap());
        // All instances, or source `r`.
        let admin_grant = move |all: bool, r: u8| Grant {
            role: admin,
            scope: if all {
                Scope::All
            } else {
                Scope::Instance(source, resource(r))
            },
        };
        (workspace, 0..9_u8, 0..80_u8, 0..40_u8, any::<bool>()).prop_map(
            move |(workspace, op, u, r, flag)| match op {
                0 => Command::CreateWorkspace {
                    workspace,
                    owner: user(u),
                    products: ProductSet::default(),
                },
                1 if u < 2 => Command::DeleteWorkspace { workspace },
                1 | 2 => Command::SetMembership {
                    workspace,
                    user: user(u),
                    membership: if flag {
                        Membership::Owner
                    } else {
                        Membership::Member
                    },
                    actor: None,
                },
                3 => Command::RemoveMember {
                    workspace,
                    user: user(u),
                    actor: None,
                },
                4 => Command::RegisterResource {
                    workspace,
                    resource: if flag {
                        (source, resource(r))
                    } else {
                        (destination, resource(r))
                    },
                    parent: (!flag).then(|| resource(r / 2)),
                },
                5 => Command::DeleteResource {
                    workspace,
                    resource: (if flag { source } else { destination }, resource(r)),
                },
                6 | 7 => Command::Grant {
                    workspace,
                    user: user(u),
                    grant: admin_grant(flag, r),
                    actor: None,
                },
                _ => Command::Revoke {
                    workspace,
                    user: user(u),
                    grant: admin_grant(flag, r),
                    actor: None,
                },
            },
        )
    }

    /// Records of one run, as (id, record).
    type Records = Vec<(String, Vec<u8>)>;

    /// The chunks a workspace's records make, laid out from scratch: what the writer's
    /// incremental rewrites must always leave in the database.
    fn layout(
        catalog: &Catalog,
        boundaries: Boundaries,
        id: &WorkspaceId,
        ws: &Workspace,
        into: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) {
        let mut runs: Vec<(Vec<u8>, Records)> = Vec::new();
        let members = ws
            .members()
            .map(|(user, member)| {
                let mut record = Vec::new();
                keys::push_member(&mut record, catalog, member, &[]);
                (user.to_string(), record)
            })
            .collect();
        runs.push((keys::member_chunk(id.as_str(), ""), members));
        for ty in ws.instance_types() {
            let instances = ws
                .instances_of(ty, None)
                .map(|(rid, instance)| {
                    let mut record = Vec::new();
                    keys::push_instance(&mut record, catalog, instance.parent.as_ref());
                    (rid.to_string(), record)
                })
                .collect();
            runs.push((
                keys::instance_chunk(id.as_str(), catalog.type_name(ty), ""),
                instances,
            ));
        }
        for (head, records) in runs {
            let mut key = head.clone();
            let mut value = Vec::new();
            for (rid, record) in records {
                if boundaries.starts(rid.as_bytes()) {
                    if !value.is_empty() {
                        into.insert(key, std::mem::take(&mut value));
                    }
                    key = [&head[..], rid.as_bytes()].concat();
                }
                chunks::push(&mut value, &rid, &record);
            }
            if !value.is_empty() {
                into.insert(key, value);
            }
        }
    }

    #[tokio::test]
    async fn once_a_group_cannot_be_made_durable_it_and_every_later_write_are_refused_and_reads_go_on()
     {
        let dir = tempfile::tempdir().unwrap();
        // Change log files of 512 bytes: a few writes fill one, and the next starts another.
        let config = StoreConfig {
            change_log_bytes: 4096,
            ..StoreConfig::default()
        };
        let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config).unwrap();
        let workspace = WorkspaceId::parse("acme").unwrap();
        let create = Command::CreateWorkspace {
            workspace: workspace.clone(),
            owner: user(0),
            products: ProductSet::default(),
        };
        store.write(create).await.unwrap().unwrap();
        let log = dir.path().join(crate::store::CHANGE_LOG_DIR);
        let newest_file = || {
            std::fs::read_dir(&log)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .max()
                .map_or(0, |path| std::fs::metadata(path).unwrap().len())
        };
        let join = |n| Command::SetMembership {
            workspace: workspace.clone(),
            user: user(n),
            membership: Membership::Member,
            actor: None,
        };
        let mut n = 1;
        while newest_file() < 512 {
            store.write(join(n)).await.unwrap().unwrap();
            n += 1;
        }
        let before = store.snapshot();

        // The next group must start a file in a directory that is gone.
        std::fs::remove_dir_all(&log).unwrap();
        assert!(matches!(
            store.write(join(n)).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(
            store.write(join(n + 1)).await,
            Err(StoreError::Closed)
        ));
        let after = store.snapshot();
        assert_eq!(after.revision, before.revision);
        assert_eq!(after.workspace(&workspace), before.workspace(&workspace));
        assert!(
            after
                .workspace(&workspace)
                .unwrap()
                .member(&user(n))
                .is_none()
        );
        store.close();
    }

    /// A member with thousands of grants has a record over the 128 KiB past which sled
    /// keeps a message in a blob file of its own (see `store::blobs`): the write is made
    /// durable through it, and a restart reads every grant back.
    #[tokio::test]
    async fn a_record_sled_keeps_in_a_blob_file_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        let source = catalog.type_id("source").unwrap();
        let admin = catalog.role_id("source_admin").unwrap();
        let acme = WorkspaceId::parse("acme").unwrap();
        let sources: Vec<ResourceId> = (0..4000)
            .map(|n| ResourceId::parse(&format!("src_{n:022}")).unwrap())
            .collect();
        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        let mut commands = vec![
            Command::CreateWorkspace {
                workspace: acme.clone(),
                owner: user(0),
                products: ProductSet::default(),
            },
            Command::SetMembership {
                workspace: acme.clone(),
                user: user(1),
                membership: Membership::Member,
                actor: None,
            },
        ];
        for id in &sources {
            commands.push(Command::RegisterResource {
                workspace: acme.clone(),
                resource: (source, id.clone()),
                parent: None,
            });
        }
        store.write_batch(commands).await.unwrap();
        let grants = sources.iter().map(|id| Command::Grant {
            workspace: acme.clone(),
            user: user(1),
            grant: Grant {
                role: admin,
                scope: Scope::Instance(source, id.clone()),
            },
            actor: None,
        });
        for outcome in store.write_batch(grants.collect()).await.unwrap() {
            outcome.unwrap();
        }
        let blob_files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blob_files > 0, "the record went to a blob file");
        let before = store.snapshot();
        store.close();

        let store = Store::open(dir.path(), catalog, &StoreConfig::default()).unwrap();
        let after = store.snapshot();
        assert_eq!(after.revision, before.revision);
        let member = after.workspace(&acme).unwrap().member(&user(1)).unwrap();
        assert_eq!(member.grants.len(), sources.len());
        assert_eq!(after.workspace(&acme), before.workspace(&acme));
        store.close();
    }

    #[tokio::test]
    async fn an_instance_whose_parent_type_the_catalog_lacks_keeps_its_record_through_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        {
            let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
            let boundaries = crate::store::chunk_boundaries(&db).unwrap();
            db.insert(
                keys::workspace(&WorkspaceId::parse("acme").unwrap()),
                &b""[..],
            )
            .unwrap();
            // Destinations d00..d39, d07's parent of a type the catalog does not have.
            let head = keys::instance_chunk("acme", "destination", "");
            let (mut key, mut value) = (head.clone(), Vec::new());
            for n in 0..40 {
                let id = format!("d{n:02}");
                if boundaries.starts(id.as_bytes()) && !value.is_empty() {
                    db.insert(&key, std::mem::take(&mut value)).unwrap();
                }
                if boundaries.starts(id.as_bytes()) {
                    key = [&head[..], id.as_bytes()].concat();
                }
                let record: &[u8] = if n == 7 { b"gone_type\0p1" } else { b"" };
                chunks::push(&mut value, &id, record);
            }
            db.insert(&key, value).unwrap();
            db.flush().unwrap();
        }
        let stored = |dir: &std::path::Path| {
            let db = open_db(dir, &StoreConfig::default()).unwrap();
            db.scan_prefix(keys::INSTANCES)
                .values()
                .map(|value| value.unwrap().to_vec())
                .collect::<Vec<_>>()
                .concat()
        };
        let destination = catalog.type_id("destination").unwrap();
        let acme = WorkspaceId::parse("acme").unwrap();
        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        assert!(
            store
                .load_report()
                .skipped
                .iter()
                .any(|note| note.contains("`d07`") && note.contains("gone_type"))
        );
        let (_, d07) = store
            .snapshot()
            .workspace(&acme)
            .unwrap()
            .instance_named(destination, "d07")
            .map(|(id, instance)| (id.clone(), instance.clone()))
            .unwrap();
        assert_eq!(d07.parent, None);
        // Every chunk of destinations rewritten: one registration next to each record.
        let source = catalog.type_id("source").unwrap();
        let mut commands = vec![Command::RegisterResource {
            workspace: acme.clone(),
            resource: (source, ResourceId::parse("s1").unwrap()),
            parent: None,
        }];
        commands.extend((0..40).map(|n| Command::RegisterResource {
            workspace: acme.clone(),
            resource: (
                destination,
                ResourceId::parse(&format!("d{n:02}x")).unwrap(),
            ),
            parent: Some(ResourceId::parse("s1").unwrap()),
        }));
        for result in store.write_all(commands).await.unwrap() {
            result.unwrap();
        }
        let state = store.snapshot();
        store.close();
        drop(store);
        let records = stored(dir.path());
        assert_eq!(
            records
                .windows(12)
                .filter(|w| *w == b"gone_type\0p1")
                .count(),
            1,
            "kept once"
        );
        let again = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        assert_eq!(again.snapshot().workspace(&acme), state.workspace(&acme));
        assert_eq!(
            again
                .snapshot()
                .workspace(&acme)
                .unwrap()
                .instances_of(destination, None)
                .count(),
            80
        );
    }

    /// Plans every group, each on the state the ones before leave, and only then
    /// commits them all, in order; returns the state published last.
    fn plan_all_then_commit(
        dir: &std::path::Path,
        catalog: &Arc<Catalog>,
        groups: Vec<Vec<Command>>,
    ) -> Arc<Snapshot> {
        plan_all_then_commit_with(dir, catalog, groups, false).0
    }

    /// What the callers of one request are answered.
    type Answer = Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>;

    /// As `plan_all_then_commit`, with every sync of blob files failing if
    /// `fail_blob_sync`; also returns what the first group's callers were answered.
    fn plan_all_then_commit_with(
        dir: &std::path::Path,
        catalog: &Arc<Catalog>,
        groups: Vec<Vec<Command>>,
        fail_blob_sync: bool,
    ) -> (Arc<Snapshot>, Option<Answer>) {
        let db = open_db(dir, &StoreConfig::default()).unwrap();
        let boundaries = crate::store::chunk_boundaries(&db).unwrap();
        let mut blobs = Blobs::new(dir);
        let (log, _) = ChangeLog::open(
            &db,
            &mut blobs,
            catalog,
            &dir.join(crate::store::CHANGE_LOG_DIR),
            1 << 20,
        )
        .unwrap();
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let mut planner = Planner {
            db: db.clone(),
            log_enabled: true,
            catalog: Arc::clone(catalog),
            latest: published.load_full(),
            retained: Retained::new(),
            retained_instances: RetainedInstances::new(),
            boundaries,
        };
        blobs.fail = fail_blob_sync;
        let (to_commit, planned) = std::sync::mpsc::sync_channel(groups.len());
        let mut first_answer = None;
        for commands in groups {
            let (reply, answer) = oneshot::channel();
            first_answer.get_or_insert(answer);
            let request = Request {
                commands,
                revisions: Revisions::EachCommand,
                reply,
            };
            to_commit
                .send(planner.plan(vec![request]).unwrap())
                .unwrap();
        }
        drop(to_commit);
        let (committed, _) = std::sync::mpsc::channel();
        Committer {
            db,
            blobs,
            log,
            published: Arc::clone(&published),
            committed,
        }
        .run(planned);
        let answer = first_answer.and_then(|mut answer| answer.try_recv().ok());
        (published.load_full(), answer)
    }

    /// Copies the data directory `from` into `to`, but for the change log: sled's files
    /// as they were at that moment.
    fn copy_database(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == crate::store::CHANGE_LOG_DIR {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                copy_database(&entry.path(), &to.join(&name));
            } else {
                std::fs::copy(entry.path(), to.join(&name)).unwrap();
            }
        }
    }

    /// A database that lost writes it had acknowledged (sled's files as they were some
    /// groups earlier, as a torn blob file would leave them) gets them back from the
    /// change log at open: every kind of change, redone once.
    #[tokio::test]
    async fn writes_the_database_lost_are_redone_from_the_change_log() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        let source = catalog.type_id("source").unwrap();
        let destination = catalog.type_id("destination").unwrap();
        let admin = catalog.role_id("source_admin").unwrap();
        let personas = catalog.product_id("personas").unwrap();
        let ws = |name: &str| WorkspaceId::parse(name).unwrap();
        let res = |name: &str| ResourceId::parse(name).unwrap();
        let grant = |scope| Grant { role: admin, scope };
        let create = |name: &str| Command::CreateWorkspace {
            workspace: ws(name),
            owner: user(0),
            products: ProductSet::default(),
        };
        let join = |name: &str, n| Command::SetMembership {
            workspace: ws(name),
            user: user(n),
            membership: Membership::Member,
            actor: None,
        };
        let register =
            |name: &str, key: InstanceKey, parent: Option<&str>| Command::RegisterResource {
                workspace: ws(name),
                resource: key,
                parent: parent.map(res),
            };
        let give = |name: &str, n, scope| Command::Grant {
            workspace: ws(name),
            user: user(n),
            grant: grant(scope),
            actor: None,
        };

        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        for command in [
            create("a"),
            create("b"),
            join("a", 1),
            join("a", 2),
            join("b", 1),
            register("a", (source, res("s1")), None),
            register("a", (source, res("s2")), None),
            register("b", (source, res("s1")), None),
        ] {
            store.write(command).await.unwrap().unwrap();
        }
        let earlier_revision = store.snapshot().revision;
        store.close();
        copy_database(dir.path(), earlier.path());

        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        // One batch (one revision) of hundreds of changes: an entry of several lines.
        let mut batch: Vec<Command> = (0..200)
            .map(|n| register("a", (source, res(&format!("bulk-{n:04}"))), None))
            .collect();
        batch.extend((0..200).map(|n| {
            give(
                "a",
                1,
                Scope::Instance(source, res(&format!("bulk-{n:04}"))),
            )
        }));
        for outcome in store.write_batch(batch).await.unwrap() {
            outcome.unwrap();
        }
        for command in [
            register("a", (destination, res("d1")), Some("s1")),
            register("a", (destination, res("d2")), Some("s2")),
            give("a", 1, Scope::Instance(source, res("s1"))),
            give("a", 2, Scope::All),
            give("a", 2, Scope::Instance(source, res("s2"))),
            Command::Revoke {
                workspace: ws("a"),
                user: user(2),
                grant: grant(Scope::All),
                actor: None,
            },
            Command::SetProducts {
                workspace: ws("a"),
                products: ProductSet::default().with(personas),
            },
            Command::DeleteResource {
                workspace: ws("a"),
                resource: (source, res("s2")),
            },
            Command::RemoveMember {
                workspace: ws("a"),
                user: user(1),
                actor: None,
            },
            Command::DeleteWorkspace { workspace: ws("b") },
            create("c"),
            join("c", 3),
            Command::DeleteWorkspace { workspace: ws("c") },
            create("c"),
            join("c", 2),
        ] {
            store.write(command).await.unwrap().unwrap();
        }
        let acknowledged = store.snapshot();
        assert!(acknowledged.revision > earlier_revision + 5);
        store.close();

        // sled's files go back to the earlier ones; the change log stays.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == crate::store::CHANGE_LOG_DIR {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                std::fs::remove_dir_all(entry.path()).unwrap();
            } else {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
        copy_database(earlier.path(), dir.path());

        let same = |reopened: &Snapshot, expected: &Snapshot| {
            assert_eq!(reopened.revision, expected.revision);
            assert_eq!(reopened.workspaces.len(), expected.workspaces.len());
            for (id, workspace) in expected.workspaces.iter() {
                assert_eq!(reopened.workspaces.get(id), Some(workspace), "{id}");
            }
        };
        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        same(&store.snapshot(), &acknowledged);
        // The next write follows on.
        store.write(join("c", 4)).await.unwrap().unwrap();
        let latest = store.snapshot();
        assert_eq!(latest.revision, acknowledged.revision + 1);
        store.close();
        // What was redone is durable, chunks included: nothing is redone twice.
        let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
        same(&store.snapshot(), &latest);
        store.close();
    }

    /// While no write comes, the committer still syncs the blob files sled's own
    /// threads write: when it cannot, it stops, and the next group finds it gone.
    #[test]
    fn an_idle_committer_syncs_blob_files_and_stops_when_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        let mut blobs = Blobs::new(dir.path());
        let (log, _) = ChangeLog::open(
            &db,
            &mut blobs,
            &Catalog::built_in(),
            &dir.path().join(crate::store::CHANGE_LOG_DIR),
            1 << 20,
        )
        .unwrap();
        blobs.fail = true;
        let (to_commit, planned) = std::sync::mpsc::sync_channel::<Planned>(1);
        let (committed, _) = std::sync::mpsc::channel();
        let committer = Committer {
            db,
            blobs,
            log,
            published: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            committed,
        };
        let running = std::thread::spawn(move || committer.run(planned));
        // No group is ever sent: only the idle sync can end the committer. The bound is
        // for a loaded machine, not the expected wait (one idle period).
        let started = std::time::Instant::now();
        while !running.is_finished() && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(blobs::IDLE_SYNC);
        }
        assert!(
            running.is_finished(),
            "the failed idle sync stopped the committer"
        );
        running.join().unwrap();
        drop(to_commit);
    }

    /// The committer's flush goes through the blob files: when they cannot be synced,
    /// the group is refused and not published, and the groups after it too.
    #[test]
    fn a_group_whose_blob_files_cannot_be_synced_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::built_in());
        let create = |ws: &str| Command::CreateWorkspace {
            workspace: WorkspaceId::parse(ws).unwrap(),
            owner: user(0),
            products: ProductSet::default(),
        };
        let (published, answer) = plan_all_then_commit_with(
            dir.path(),
            &catalog,
            vec![vec![create("a")], vec![create("b")]],
            true,
        );
        assert!(matches!(answer, Some(Err(StoreError::Closed))));
        assert_eq!(published.revision, 0);
        assert_eq!(published.workspaces.len(), 0);

        let dir = tempfile::tempdir().unwrap();
        let (published, answer) =
            plan_all_then_commit_with(dir.path(), &catalog, vec![vec![create("a")]], false);
        assert!(matches!(answer, Some(Ok(_))));
        assert_eq!(published.revision, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// After any sequence of writes, in groups of any size, the database holds
        /// exactly the chunks of the published state, and reopening it gives that state:
        /// whether each group is durable before the next is planned (through the store)
        /// or every group is planned before any is committed (as the planner runs ahead
        /// of the committer, to the extreme).
        #[test]
        fn chunks_rewritten_change_by_change_equal_the_state_laid_out_afresh(
            groups in proptest::collection::vec(
                proptest::collection::vec(command(&Catalog::built_in()), 1..40),
                1..6,
            ),
            ahead in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Arc::new(Catalog::built_in());
            let state = if ahead {
                plan_all_then_commit(dir.path(), &catalog, groups)
            } else {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let store =
                    Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
                for group in groups {
                    runtime.block_on(store.write_all(group)).unwrap();
                }
                let state = store.snapshot();
                store.close();
                state
            };

            let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
            let boundaries = crate::store::chunk_boundaries(&db).unwrap();
            let mut expected = BTreeMap::new();
            for (id, ws) in state.workspaces.iter() {
                layout(&catalog, boundaries, &WorkspaceId::parse(id).unwrap(), ws, &mut expected);
            }
            let mut stored = BTreeMap::new();
            for prefix in [keys::MEMBERS, keys::INSTANCES] {
                for item in db.scan_prefix(prefix) {
                    let (key, value) = item.unwrap();
                    stored.insert(key.to_vec(), value.to_vec());
                }
            }
            prop_assert_eq!(stored, expected);
            drop(db);

            let again = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
            let reloaded = again.snapshot();
            prop_assert_eq!(reloaded.workspaces.len(), state.workspaces.len());
            for (id, ws) in state.workspaces.iter() {
                prop_assert_eq!(reloaded.workspaces.get(id), Some(ws));
            }
        }
    }
}
