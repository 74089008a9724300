//! The single writer, in two threads: the planner (`plan`, with the chunk rewrites of
//! `layout`) turns queued commands into write groups, and the committer (`commit`)
//! makes each durable, publishes it and answers its callers, in order. `redo` applies
//! at open what the change log holds and the state lacks, as the planner would.

mod commit;
mod heal;
mod layout;
mod plan;
mod redo;
mod replica;

#[cfg(test)]
mod tests;

use std::{path::PathBuf, sync::Arc, sync::mpsc::SendError, time::Instant};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

pub use redo::{Redone, redo};

use self::{
    commit::Committer,
    layout::Layout,
    plan::{Planned, Planner},
};
use super::{
    BootstrapStep, ReplicatedGroup, Snapshot, StoreConfig, StoreError, WriteOutcome,
    blobs::Blobs,
    change_log::{AppendMark, ChangeLog},
    load::{Retained, RetainedInstances},
    record::chunks::Boundaries,
    writes::{Refusal, WriteState},
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
    /// When it was queued, for the time it waits to be durable.
    pub queued: Instant,
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
    /// Nothing to write: the committer's nudge after a failure, so that a writer
    /// waiting for requests stops and heals rather than wait for the next write.
    Wake,
}

impl Work {
    /// How many commands or changes it holds, to bound a group.
    fn size(&self) -> usize {
        match self {
            Self::Commands { commands, .. } => commands.len(),
            Self::Replicate(group) => group.entries.iter().map(|e| e.changes.len()).sum(),
            Self::Bootstrap(BootstrapStep::Changes(changes)) => changes.len(),
            Self::Bootstrap(_) | Self::Wake => 0,
        }
    }
}

/// What the writer keeps while it heals: where the data is, and whom it tells.
#[derive(Clone)]
pub struct Shared {
    /// The data directory.
    pub dir: PathBuf,
    /// The store's settings.
    pub config: StoreConfig,
    /// The catalog commands are planned with.
    pub catalog: Arc<Catalog>,
    /// Where new states are published for readers.
    pub published: Arc<ArcSwap<Snapshot>>,
    /// Told the revision of each state published.
    pub revisions: tokio::sync::watch::Sender<u64>,
    /// Reads waiting for a revision, woken once it is published.
    pub waiters: Arc<super::waiters::Waiters>,
    /// Told whether writes are taken.
    pub state: tokio::sync::watch::Sender<WriteState>,
    /// The writer's own queue, for the committer to wake it after a failure. Weak, so
    /// that the queue still closes once the store drops its sender.
    pub wake: mpsc::WeakSender<Request>,
    /// Opens the data directory as a start-up does, for the writer to heal with. Handed
    /// in by the store, which owns start-up: start-up redoes with the writer's planner.
    pub reopen: Reopener,
}

/// Opens a data directory and brings it to the state it acknowledged: what it writes
/// to, and that state.
pub type Reopener =
    fn(&std::path::Path, &Arc<Catalog>, &StoreConfig) -> Result<(Parts, Snapshot), StoreError>;

/// What the writer writes to, as a data directory was opened.
pub struct Parts {
    /// The database.
    pub db: sled::Db,
    /// The change log, written with each group and trimmed after it.
    pub log: ChangeLog,
    /// sled's blob files, synced around each flush and while idle.
    pub blobs: Blobs,
    /// Where the database's chunks start.
    pub boundaries: Boundaries,
    /// Member record lines of roles the catalog does not have, rewritten with the record.
    pub retained: Retained,
    /// Instance records with a parent of a type the catalog does not have, rewritten as
    /// they are.
    pub retained_instances: RetainedInstances,
}

/// The writer's state, handed to its thread.
pub struct Writer {
    /// What it keeps while it heals.
    pub shared: Shared,
    /// What it writes to.
    pub parts: Parts,
}

/// Why the writer stopped taking writes: the data volume failed it.
pub struct Failure {
    /// The failure.
    pub error: StoreError,
    /// Where the change log must be cut back to before the data directory is read
    /// again, if a failed group could not be cut off it at once.
    pub uncut: Option<AppendMark>,
}

impl Writer {
    /// Serves requests until every sender is dropped, then flushes a last time. After
    /// the data volume fails a write, refuses writes until it heals (`heal`), then
    /// serves again.
    pub fn run(self, mut requests: mpsc::Receiver<Request>) {
        let mut writer = self;
        loop {
            let shared = writer.shared.clone();
            let Some(failure) = writer.serve(&mut requests) else {
                return;
            };
            match heal::heal(shared, failure, &mut requests) {
                Some(healed) => writer = healed,
                None => return,
            }
        }
    }

    /// Serves requests until every sender is dropped (then flushes a last time and
    /// returns `None`) or a write fails. Plans on this thread and commits on another,
    /// so that a group is planned while the one before it is being made durable.
    fn serve(self, requests: &mut mpsc::Receiver<Request>) -> Option<Failure> {
        let Writer {
            shared,
            parts:
                Parts {
                    db,
                    log,
                    blobs,
                    boundaries,
                    retained,
                    retained_instances,
                },
        } = self;
        let layout = Layout {
            catalog: Arc::clone(&shared.catalog),
            boundaries,
            retained,
            retained_instances,
        };
        let mut planner = Planner::new(
            db.clone(),
            log.enabled(),
            shared.published.load_full(),
            layout,
        );
        let (committed, acks) = std::sync::mpsc::channel();
        let committer = Committer {
            db,
            blobs,
            log,
            published: Arc::clone(&shared.published),
            revisions: shared.revisions.clone(),
            waiters: Arc::clone(&shared.waiters),
            state: shared.state.clone(),
            wake: shared.wake.clone(),
            committed,
            observer: shared.config.observer.clone(),
        };
        // At most one group waits while another commits.
        let (to_commit, planned) = std::sync::mpsc::sync_channel(1);
        let committing = std::thread::Builder::new()
            .name("accessd-commit".into())
            .spawn(move || committer.run(planned));
        let committing = match committing {
            Ok(handle) => handle,
            Err(err) => {
                return Some(Failure {
                    error: StoreError::Spawn("commit", err),
                    uncut: None,
                });
            }
        };
        let mut in_flight = 0_usize;
        // A request taken while gathering that must be planned in a group of its own.
        let mut held: Option<Request> = None;
        // The committer, failing a group, says writes are refused before it answers
        // anyone, then wakes this loop (`Work::Wake`), which may gather the nudge into a
        // group: the state is looked at before each wait and before each plan.
        let refused = || matches!(*shared.state.borrow(), WriteState::Refused(_));
        loop {
            if refused() {
                drop(to_commit);
                return stop_committing(committing, held.into_iter().collect());
            }
            let Some(first) = held.take().or_else(|| requests.blocking_recv()) else {
                break;
            };
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
            if refused() {
                drop(to_commit);
                group.extend(held);
                return stop_committing(committing, group);
            }
            let planned = match planner.plan(group) {
                Ok(planned) => planned,
                Err(error) => {
                    drop(to_commit);
                    let stopped = stop_committing(committing, held.into_iter().collect());
                    return Some(stopped.unwrap_or(Failure { error, uncut: None }));
                }
            };
            // Refused once the committer has stopped after a failure: the group was
            // planned on top of the one that failed.
            if let Err(SendError(planned)) = to_commit.send(planned) {
                let failure = stop_committing(committing, held.into_iter().collect());
                refuse_planned(planned, refusal(failure.as_ref()).as_ref());
                return failure;
            }
            in_flight += 1;
        }
        drop(to_commit);
        drop(stop_committing(committing, Vec::new()));
        None
    }
}

/// Waits for the committer to stop, and refuses what it left: the groups planned on
/// top of the one that failed, and the requests taken but not planned. Returns its
/// failure, if any.
fn stop_committing(
    committing: std::thread::JoinHandle<commit::Stopped>,
    unplanned: Vec<Request>,
) -> Option<Failure> {
    let commit::Stopped { failure, planned } = match committing.join() {
        Ok(stopped) => stopped,
        Err(_) => {
            return Some(Failure {
                error: StoreError::Corrupt("the commit thread panicked".into()),
                uncut: None,
            });
        }
    };
    let refused = refusal(failure.as_ref());
    for group in planned.try_iter() {
        refuse_planned(group, refused.as_ref());
    }
    for request in unplanned {
        let _ = request.reply.send(Err(refused_error(refused.as_ref())));
    }
    failure
}

/// What the callers of writes that came after a failure are told.
fn refusal(failure: Option<&Failure>) -> Option<Refusal> {
    failure.map(|failure| Refusal::of(&failure.error))
}

/// The error of a write refused for `refusal`, or because the store is closing.
fn refused_error(refusal: Option<&Refusal>) -> StoreError {
    refusal.map_or(StoreError::Closed, |r| StoreError::Refused(r.clone()))
}

/// Answers every caller of a group planned but never committed.
fn refuse_planned(group: Planned, refusal: Option<&Refusal>) {
    for (reply, _) in group.replies {
        let _ = reply.send(Err(refused_error(refusal)));
    }
}
