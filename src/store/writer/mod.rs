//! The single writer, in two threads: the planner (`plan`, with the chunk rewrites of
//! `layout`) turns queued commands into write groups, and the committer (`commit`)
//! makes each durable, publishes it and answers its callers, in order. `redo` applies
//! at open what the change log holds and the state lacks, as the planner would.

mod commit;
mod layout;
mod plan;
mod redo;
mod replica;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

pub use redo::{Redone, redo};

use self::{commit::Committer, layout::Layout, plan::Planner};
use super::{
    BootstrapStep, ReplicatedGroup, Snapshot, StoreError, WriteOutcome,
    blobs::Blobs,
    change_log::ChangeLog,
    load::{Retained, RetainedInstances},
    record::chunks::Boundaries,
};
use crate::{
    engine::{Command, WriteError},
    model::Catalog,
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

/// What the callers of one request are answered: one outcome per command.
pub type Answer = Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>;

/// Queued work and where its outcome goes.
pub struct Request {
    /// What to write.
    pub work: Work,
    /// The caller that sent it, recorded with its change-log entries.
    pub caller: Option<Arc<str>>,
    /// Receives one outcome per command (none for a replica's work).
    pub reply: oneshot::Sender<Answer>,
}

/// What a request writes.
pub enum Work {
    /// Commands, planned by the engine, applied in order and atomically together.
    Commands {
        /// The commands.
        commands: Vec<Command>,
        /// How they are numbered.
        revisions: Revisions,
    },
    /// A write group of the leader's, as it made it: a follower's.
    Replicate(ReplicatedGroup),
    /// A step of a follower's bootstrap, planned in a group of its own.
    Bootstrap(BootstrapStep),
}

impl Work {
    /// How many commands or changes it holds, to bound a group.
    fn size(&self) -> usize {
        match self {
            Self::Commands { commands, .. } => commands.len(),
            Self::Replicate(group) => group.entries.iter().map(|e| e.changes.len()).sum(),
            Self::Bootstrap(BootstrapStep::Changes(changes)) => changes.len(),
            Self::Bootstrap(_) => 0,
        }
    }
}

/// The writer's state, handed to its thread.
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
    /// Told the revision of each state published.
    pub revisions: tokio::sync::watch::Sender<u64>,
    /// Reads waiting for a revision, woken once it is published.
    pub waiters: Arc<super::waiters::Waiters>,
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
            revisions,
            waiters,
            retained,
            retained_instances,
            boundaries,
        } = self;
        let layout = Layout {
            catalog: Arc::clone(&catalog),
            boundaries,
            retained,
            retained_instances,
        };
        let mut planner = Planner::new(db.clone(), log.enabled(), published.load_full(), layout);
        let (committed, acks) = std::sync::mpsc::channel();
        let committer = Committer {
            db,
            blobs,
            log,
            published,
            revisions,
            waiters,
            committed,
        };
        // At most one group waits while another commits.
        let (to_commit, planned) = std::sync::mpsc::sync_channel(1);
        let committing = std::thread::Builder::new()
            .name("accessd-commit".into())
            .spawn(move || committer.run(planned));
        let committing = match committing {
            Ok(handle) => handle,
            Err(err) => return refuse_all(requests, &StoreError::Spawn("commit", err)),
        };
        let mut in_flight = 0_usize;
        // A request taken while gathering that must be planned in a group of its own.
        let mut held: Option<Request> = None;
        while let Some(first) = held.take().or_else(|| requests.blocking_recv()) {
            in_flight -= acks.try_iter().count().min(in_flight);
            let alone = matches!(first.work, Work::Bootstrap(_));
            // Small writes wait for the group in flight, gathering more of them into the
            // next group meanwhile: planning ahead of the disk would only split them into
            // more groups, each with its own flush. Bulk batches, and a bootstrap's
            // changes, are planned ahead. A bootstrap's first step waits for every group
            // in flight: it reads the database.
            let wait_for = if matches!(first.work, Work::Bootstrap(BootstrapStep::Begin)) {
                in_flight
            } else if alone || first.work.size() >= AHEAD_FROM {
                0
            } else {
                in_flight.min(1)
            };
            for _ in 0..wait_for {
                in_flight = match acks.recv() {
                    Ok(()) => in_flight - 1,
                    Err(_) => 0,
                };
            }
            let mut queued = first.work.size();
            let mut group = vec![first];
            while queued < MAX_GROUP && !alone {
                match requests.try_recv() {
                    Ok(request) if matches!(request.work, Work::Bootstrap(_)) => {
                        held = Some(request);
                        break;
                    }
                    Ok(request) => {
                        queued += request.work.size();
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

/// After a failure of the database: refuses every queued and further request.
fn refuse_all(mut requests: mpsc::Receiver<Request>, err: &StoreError) {
    error!(%err, "write failed; refusing further writes");
    requests.close();
    while let Some(request) = requests.blocking_recv() {
        let _ = request.reply.send(Err(StoreError::Closed));
    }
}
