//! The single writer: a thread that takes queued commands in groups, plans each against
//! the state left by the ones before it, persists the whole group in one atomic sled
//! batch (after one of its change log entries), flushes once, and only then publishes
//! the new state and acknowledges. Many concurrent writes so share one flush (group
//! commit), and checks never see a write that is not yet durable. After a group, and
//! whenever it has nothing queued, it trims the change log to its budget, a bounded
//! step at a time.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use tokio::sync::{
    mpsc::{self, error::TryRecvError},
    oneshot,
};
use tracing::{debug, error};

use super::{
    Snapshot, StoreError, WriteOutcome,
    change_log::{self, ChangeLog},
    keys,
    load::{Retained, products_value},
};
use crate::{
    engine::{Command, WriteError, plan},
    model::{Catalog, Change, UserId, Workspace, WorkspaceId},
};

/// The most commands persisted under one flush.
const MAX_GROUP: usize = 1024;

/// The most change log values one trimming step removes while the writer is idle (and
/// after a group, beyond twice what the group appended): at most 1.5 MiB to read, so
/// that a write arriving meanwhile waits a few milliseconds at most.
const TRIM_STEP: usize = 256;

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
    /// Where new states are published for readers.
    pub published: Arc<ArcSwap<Snapshot>>,
    /// Member record lines of roles the catalog does not have, rewritten with the record.
    pub retained: Retained,
}

impl Writer {
    /// Serves requests until every sender is dropped, then flushes a last time.
    pub fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        loop {
            let first = if self.log.over_budget() {
                // Trim a step at a time while nothing is queued.
                match requests.try_recv() {
                    Ok(request) => request,
                    Err(TryRecvError::Empty) => {
                        if let Err(err) = self.log.trim(TRIM_STEP) {
                            return refuse_all(requests, &err);
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match requests.blocking_recv() {
                    Some(request) => request,
                    None => break,
                }
            };
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
            if let Err(err) = self.commit(group) {
                return refuse_all(requests, &err);
            }
        }
        if let Err(err) = self.db.flush() {
            error!(%err, "final flush failed");
        }
    }

    fn commit(&mut self, group: Vec<Request>) -> Result<(), StoreError> {
        let base = self.published.load_full();
        let mut revision = base.revision;
        // Each touched workspace is taken out of the overlay while a command works on
        // it, so the persistent maps are uniquely owned and update in place.
        let mut overlay: HashMap<WorkspaceId, Option<Workspace>> = HashMap::new();
        let mut batch = sled::Batch::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut outcomes = Vec::with_capacity(group.len());
        let mut logged = 0;
        // Members whose record must be rewritten from their final state in this group:
        // once, however many of their grants changed.
        let mut dirty: BTreeSet<(WorkspaceId, UserId)> = BTreeSet::new();

        for request in &group {
            let mut results = Vec::with_capacity(request.commands.len());
            let mut shared_changes = Vec::new();
            let shared_revision = revision + 1;
            for command in &request.commands {
                let id = command.workspace();
                let mut state = match overlay.remove(id) {
                    Some(state) => state,
                    None => base.workspaces.get(id).map(|ws| Workspace::clone(ws)),
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
                                if self.log.enabled() {
                                    let lines = change_log::lines(
                                        &self.catalog,
                                        revision,
                                        now,
                                        command.name(),
                                        &changes,
                                    );
                                    self.log.append(revision, lines);
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
                if self.log.enabled() {
                    let lines =
                        change_log::lines(&self.catalog, revision, now, "batch", &shared_changes);
                    self.log.append(revision, lines);
                }
                // Writes that changed nothing earlier in the batch report the batch's revision too.
                for result in results.iter_mut().flatten() {
                    result.revision = revision;
                }
            }
            outcomes.push(results);
        }

        if revision > base.revision {
            for (workspace, user) in dirty {
                let key = keys::member(&workspace, &user);
                let member = overlay
                    .get(&workspace)
                    .and_then(Option::as_ref)
                    .and_then(|ws| ws.member(&user));
                match member {
                    Some(member) => {
                        let retained = self
                            .retained
                            .get(&(workspace.clone(), user.clone()))
                            .map_or(&[][..], Vec::as_slice);
                        batch.insert(key, keys::member_value(&self.catalog, member, retained));
                    }
                    None => batch.remove(key),
                }
            }
            batch.insert(keys::REVISION, &revision.to_be_bytes());
            // Each batch is atomic in sled. The log's goes first: sled recovers a prefix of
            // its writes, so a crash in between leaves log values the state never reached
            // (removed at open), never state without its log. The flush makes both
            // durable before anyone hears of them.
            let (log_batch, values) = self.log.seal();
            logged = values;
            let durable = self
                .log
                .apply(log_batch)
                .and_then(|()| Ok(self.db.apply_batch(batch)?))
                .and_then(|()| Ok(self.db.flush().map(|_| ())?));
            if let Err(err) = durable {
                for request in group {
                    let _ = request.reply.send(Err(StoreError::Closed));
                }
                return Err(err);
            }
            let mut workspaces = base.workspaces.clone();
            for (id, state) in overlay {
                match state {
                    Some(ws) => workspaces.insert(id, Arc::new(ws)),
                    None => workspaces.remove(&id),
                };
            }
            self.published.store(Arc::new(Snapshot {
                revision,
                workspaces,
            }));
            debug!(revision, requests = outcomes.len(), "group committed");
        }
        for (request, results) in group.into_iter().zip(outcomes) {
            let _ = request.reply.send(Ok(results));
        }
        // Removing up to twice what was appended keeps the log within its budget
        // however busy the writer is.
        self.log.trim(2 * logged + TRIM_STEP)
    }

    /// Adds the key operations of one change to the batch, or marks the member whose
    /// record it changes. `state` is the workspace before the change.
    fn persist(
        &mut self,
        batch: &mut sled::Batch,
        dirty: &mut BTreeSet<(WorkspaceId, UserId)>,
        state: Option<&Workspace>,
        change: &Change,
    ) -> Result<(), StoreError> {
        let catalog = &self.catalog;
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
                products_value(catalog, *products),
            ),
            Change::DeleteWorkspace { workspace } => {
                batch.remove(keys::workspace(workspace));
                // Keys from the in-memory state cover writes earlier in this batch; the
                // scan covers what is on disk.
                if let Some(ws) = state {
                    for (user, _) in ws.members() {
                        dirty.insert((workspace.clone(), user.clone()));
                    }
                    for (ty, _) in catalog.resource_types() {
                        for (id, _) in ws.instances_of(ty, None) {
                            batch.remove(keys::instance(catalog, workspace, &(ty, id.clone())));
                        }
                    }
                }
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
            }
            Change::RemoveMember { workspace, user } => {
                self.retained.remove(&(workspace.clone(), user.clone()));
                dirty.insert((workspace.clone(), user.clone()));
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
                dirty.insert((workspace.clone(), user.clone()));
            }
            Change::RegisterResource {
                workspace,
                resource,
                parent,
            } => batch.insert(
                keys::instance(catalog, workspace, resource),
                keys::instance_value(catalog, parent.as_ref()),
            ),
            Change::DeleteResource {
                workspace,
                resource,
            } => batch.remove(keys::instance(catalog, workspace, resource)),
        }
        Ok(())
    }
}

/// After a failure of the database: refuses every queued and further request.
fn refuse_all(mut requests: mpsc::Receiver<Request>, err: &StoreError) {
    error!(%err, "write failed; refusing further writes");
    requests.close();
    while let Some(request) = requests.blocking_recv() {
        let _ = request.reply.send(Err(StoreError::Closed));
    }
}
