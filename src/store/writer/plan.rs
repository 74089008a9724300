//! Planning a write group: each command planned by the engine against the state the
//! commands before it leave (groups not yet durable included), numbered, logged, and
//! turned into one atomic sled batch of the chunks it touched.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::oneshot;

use super::{Answer, Request, Revisions, Work, layout::Layout};
use crate::{
    engine::{Command, WriteError, migrate::MigrationReport, plan, plan_migration},
    model::{Catalog, Change, InstanceKey, UserId, Workspace, WorkspaceId},
    store::{
        Snapshot, StoreError, WriteOutcome,
        change_log::{Author, GroupLines},
        record::{self, keys},
    },
};

/// A group planned and ready to commit.
pub struct Planned {
    /// The revision of its last change; the previous one if it changed nothing.
    pub revision: u64,
    /// Whether it changed anything (and so has a batch to write and a state to publish).
    pub changed: bool,
    /// Its change log lines.
    pub log: Option<GroupLines>,
    /// Its state's key operations, the revision included.
    pub batch: sled::Batch,
    /// The state once it is durable.
    pub snapshot: Arc<Snapshot>,
    /// Whether readers get the state once it is durable: not while a bootstrap builds it.
    pub publish: bool,
    /// Whether the change log is deleted before the batch is written: a bootstrap's
    /// first step, as the log is of the data it replaces.
    pub reset_log: bool,
    /// Each request's reply, with its answer.
    pub replies: Vec<(oneshot::Sender<Answer>, Answer)>,
    /// When each of its requests was queued (none for a bootstrap step: not a write).
    pub queued: Vec<Instant>,
    /// How many commands (a follower's: changes) it holds.
    pub size: usize,
}

/// Plans one command against `state`; a legacy migration also reports what it did.
fn plan_command(
    catalog: &Catalog,
    state: Option<&Workspace>,
    command: &Command,
) -> (
    Result<Vec<Change>, WriteError>,
    Option<Box<MigrationReport>>,
) {
    match command {
        Command::MigrateLegacyRoles {
            workspace,
            assignments,
        } => {
            let migration = plan_migration(catalog, state, workspace, assignments);
            (Ok(migration.changes), Some(Box::new(migration.report)))
        }
        _ => (plan(catalog, state, command), None),
    }
}

/// The planning side of the writer: plans each group against the state the groups
/// before it leave, which may not be durable yet.
pub struct Planner {
    pub(super) db: sled::Db,
    pub(super) log_enabled: bool,
    /// The state after the last group planned.
    pub(super) latest: Arc<Snapshot>,
    pub(super) layout: Layout,
}

impl Planner {
    /// A planner of groups on top of `latest`, logging them if `log_enabled`.
    pub fn new(db: sled::Db, log_enabled: bool, latest: Arc<Snapshot>, layout: Layout) -> Self {
        Self {
            db,
            log_enabled,
            latest,
            layout,
        }
    }

    /// The state after the last group planned, and the layout: what a redo leaves.
    pub fn into_parts(self) -> (Arc<Snapshot>, Layout) {
        (self.latest, self.layout)
    }

    /// Plans a group of requests, in order, each command against the state the ones
    /// before it leave. A bootstrap step comes in a group of its own.
    pub fn plan(&mut self, mut group: Vec<Request>) -> Result<Planned, StoreError> {
        if let [
            Request {
                work: Work::Bootstrap(_),
                ..
            },
        ] = group.as_slice()
        {
            if let Some(Request {
                work: Work::Bootstrap(step),
                reply,
                ..
            }) = group.pop()
            {
                return self.plan_bootstrap(step, reply);
            }
        }
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
        let mut log = GroupLines::default();
        // The records whose chunks must be rewritten from their final state in this
        // group: once, however many changes they saw.
        let mut dirty = Dirty::default();

        for request in &group {
            let (commands, revisions) = match &request.work {
                Work::Commands {
                    commands,
                    revisions,
                } => (commands, *revisions),
                Work::Replicate(replicated) => {
                    let answer = self.plan_replicated(
                        replicated,
                        now,
                        &base,
                        &mut overlay,
                        &mut batch,
                        &mut dirty,
                        &mut log,
                        &mut revision,
                    )?;
                    outcomes.push(answer);
                    continue;
                }
                Work::Wake => {
                    outcomes.push(Ok(Vec::new()));
                    continue;
                }
                Work::Bootstrap(_) => {
                    outcomes.push(Err(StoreError::Replication(
                        "a bootstrap step planned among other writes".into(),
                    )));
                    continue;
                }
            };
            let mut results = Vec::with_capacity(commands.len());
            let mut shared_changes = Vec::new();
            let shared_revision = revision + 1;
            for command in commands {
                let id = command.workspace();
                let mut state = match overlay.remove(id) {
                    Some(state) => state,
                    None => base.workspaces.get(id.as_str()).cloned(),
                };
                let (planned, migration) =
                    plan_command(&self.layout.catalog, state.as_ref(), command);
                let result = match planned {
                    Err(refused) => Err(refused),
                    Ok(changes) if changes.is_empty() => Ok(WriteOutcome {
                        revision: match revisions {
                            Revisions::OneForAll if !shared_changes.is_empty() => shared_revision,
                            _ => revision,
                        },
                        changed: false,
                        migration,
                    }),
                    Ok(changes) => {
                        for change in &changes {
                            self.persist(&mut batch, &mut dirty, state.as_ref(), change)?;
                            Workspace::apply(&mut state, change);
                        }
                        match revisions {
                            Revisions::EachCommand => {
                                revision += 1;
                                if self.log_enabled {
                                    let actor = command.actor().map(UserId::as_str);
                                    log.push_after(
                                        &self.layout.catalog,
                                        revision - 1,
                                        revision,
                                        now,
                                        command.name(),
                                        Author {
                                            caller: request.caller.as_deref(),
                                            actor,
                                        },
                                        &changes,
                                    );
                                }
                            }
                            Revisions::OneForAll => shared_changes.extend(changes),
                        }
                        Ok(WriteOutcome {
                            revision: match revisions {
                                Revisions::EachCommand => revision,
                                Revisions::OneForAll => shared_revision,
                            },
                            changed: true,
                            migration,
                        })
                    }
                };
                overlay.insert(id.clone(), state);
                results.push(result);
            }
            if !shared_changes.is_empty() {
                revision = shared_revision;
                if self.log_enabled {
                    log.push_after(
                        &self.layout.catalog,
                        revision - 1,
                        revision,
                        now,
                        "batch",
                        Author {
                            caller: request.caller.as_deref(),
                            actor: None,
                        },
                        &shared_changes,
                    );
                }
                // Writes that changed nothing earlier in the batch report the batch's revision too.
                for result in results.iter_mut().flatten() {
                    result.revision = revision;
                }
            }
            outcomes.push(Ok(results));
        }

        // The group is redone at open whole or not at all: its last line says it ends.
        log.end();
        let changed = revision > base.revision;
        if changed {
            self.seal(&mut batch, &base, overlay, &dirty, revision);
        }
        Ok(Planned {
            revision,
            changed,
            log: (!log.is_empty()).then_some(log),
            batch,
            snapshot: Arc::clone(&self.latest),
            publish: true,
            reset_log: false,
            queued: group.iter().map(|request| request.queued).collect(),
            size: group.iter().map(|request| request.work.size()).sum(),
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
    pub fn seal(
        &mut self,
        batch: &mut sled::Batch,
        base: &Snapshot,
        overlay: HashMap<WorkspaceId, Option<Workspace>>,
        dirty: &Dirty,
        revision: u64,
    ) {
        self.layout
            .write_member_chunks(batch, base, &overlay, &dirty.members);
        self.layout
            .write_instance_chunks(batch, base, &overlay, &dirty.instances);
        batch.insert(keys::REVISION, &record::encode_u64(revision));
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
    pub fn persist(
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
                record::encode_products(&self.layout.catalog, *products),
            ),
            Change::DeleteWorkspace { workspace } => {
                batch.remove(keys::workspace(workspace));
                // Every chunk of the workspace as planned so far: groups planned before
                // this one may not have reached the database yet.
                if let Some(ws) = state {
                    self.layout.remove_chunks(batch, workspace, ws);
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
                self.layout.forget_workspace(workspace);
            }
            Change::RemoveMember { workspace, user } => {
                self.layout.forget_member(workspace, user);
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
                self.layout.forget_instance(workspace, resource);
                dirty
                    .instances
                    .insert((workspace.clone(), resource.clone()));
            }
        }
        Ok(())
    }
}

/// The records a group changed, by kind.
#[derive(Default)]
pub struct Dirty {
    pub members: BTreeSet<(WorkspaceId, UserId)>,
    pub instances: BTreeSet<(WorkspaceId, InstanceKey)>,
}
