//! Durable storage in sled behind a narrow interface: `open`, `snapshot` to read, `write`
//! to change, `close`. Reads are served from an in-memory state published after every
//! durable write; writes go through one writer thread (see `writer`). The only module
//! that names sled.

mod blobs;
pub(crate) mod change_log;
mod disk_usage;
mod identity;
mod leftovers;
mod load;
mod observer;
mod open;
pub(crate) mod record;
mod startup;
pub mod verify;
mod waiters;
mod workspaces;
mod writer;
mod writes;

#[cfg(test)]
mod tests;

use std::{
    path::Path,
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

pub use load::LoadReport;

use crate::{
    engine::{Command, WriteError, migrate::MigrationReport},
    model::{Catalog, Workspace, WorkspaceId},
};

pub use change_log::{ChangeFeed, FeedError, LoggedEntry, LoggedGroup};
pub use disk_usage::DiskUsage;
pub use identity::{Following, Identity};
pub use observer::{Observer, WriteObserver};
pub use workspaces::Workspaces;
pub use writes::{Cause, Refusal, Until, WriteState};

#[cfg(test)]
use open::open_db;

/// A consistent view of every workspace at one revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The revision of the last write included.
    pub revision: u64,
    /// Every workspace, by id.
    pub workspaces: Workspaces,
}

impl Snapshot {
    /// The workspace `id`, if it exists at this revision.
    pub fn workspace(&self, id: &WorkspaceId) -> Option<&Workspace> {
        self.workspaces.get(id.as_str())
    }
}

/// What an accepted write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The revision it produced, or the current one if it changed nothing.
    pub revision: u64,
    /// Whether anything changed.
    pub changed: bool,
    /// For a legacy migration, the users it changed and the rows it could not migrate.
    pub migration: Option<Box<MigrationReport>>,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption it detected).
    #[error("database error: {0}")]
    Database(#[from] sled::Error),
    /// The change log's files could not be read or written.
    #[error("change log error: {0}")]
    ChangeLog(#[from] std::io::Error),
    /// sled's blob files could not be made durable.
    #[error("cannot sync the database's blob files: {0}")]
    Blobs(#[source] std::io::Error),
    /// A record could not be decoded.
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    /// The data directory is of a format this build does not read.
    #[error("the data directory is of {0}")]
    Unsupported(String),
    /// A thread of the store could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, #[source] std::io::Error),
    /// A replicated write does not follow the state held.
    #[error("replication: {0}")]
    Replication(String),
    /// Writes are refused until the data volume takes them again (see [`Refusal`]).
    #[error(transparent)]
    Refused(Refusal),
    /// The data directory cannot be opened as it is: what is wrong, and what to do.
    #[error("the data directory is damaged: {0}")]
    Damaged(String),
    /// The store is closed: the server is stopping.
    #[error("the store is closed: accessd is stopping")]
    Closed,
}

/// A write group of the leader's, for a follower to apply as the leader made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedGroup {
    /// The entries (of the workspaces held), in revision order, after the revision held.
    pub entries: Vec<LoggedEntry>,
    /// The revision the group ends at, which the state is at once it is applied.
    pub end_revision: u64,
}

/// A step of a follower's bootstrap: the state served is replaced only at the end, and
/// a crash before it leaves an empty database at the next open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapStep {
    /// Starts a new copy, forgetting the data held and its change log.
    Begin,
    /// Applies changes to the new copy.
    Changes(Vec<crate::model::Change>),
    /// Ends the copy at the leader's `revision`, and publishes it.
    End {
        /// The leader's revision the snapshot was read at.
        revision: u64,
        /// What the copy follows; `None` for a backup restored as a leader's data,
        /// which follows nothing and keeps the new history id of its data directory.
        following: Option<Following>,
    },
}

/// A page of the audit trail: entries of the change log, and where the log starts.
#[derive(Debug, Clone)]
pub struct LoggedPage {
    /// The entries, oldest first.
    pub entries: Vec<LoggedEntry>,
    /// The revision of the oldest entry the log retains (the next one, if it holds
    /// none): the trail starts there.
    pub oldest_revision: u64,
    /// When the oldest entry retained was made, in milliseconds since the Unix epoch;
    /// 0 if the log holds none.
    pub oldest_unix_millis: u64,
    /// Whether entries remain after those returned.
    pub more: bool,
}

/// Commands queued for the writer: what they did, once durable.
pub struct Queued {
    outcome: oneshot::Receiver<Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>>,
    /// Told if the writer refuses it.
    observer: Observer,
}

impl Queued {
    /// Waits until the commands are durable (or refused): one outcome per command.
    pub async fn outcome(self) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        let outcome = self.outcome.await.map_err(|_| StoreError::Closed)?;
        if let Err(StoreError::Refused(refusal)) = &outcome {
            self.observer.refused(refusal);
        }
        outcome
    }
}

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled's page cache, in bytes. Checks are served from memory, so it serves only
    /// the writer; see [`StoreConfig::DEFAULT_CACHE_MB`].
    pub cache_bytes: u64,
    /// The most bytes of change log kept (the oldest entries are dropped first); 0 logs
    /// nothing. See [`StoreConfig::DEFAULT_CHANGE_LOG_MB`].
    pub change_log_bytes: u64,
    /// How long the change log's entries are kept past `change_log_bytes`, as the audit
    /// trail, up to `audit_max_bytes`; zero keeps none past it.
    pub audit_retention: Duration,
    /// The most bytes of change log kept however young its entries, when
    /// `audit_retention` is set; never less than `change_log_bytes`. See
    /// [`StoreConfig::DEFAULT_AUDIT_MAX_MB`].
    pub audit_max_bytes: u64,
    /// Told of each write group made durable and each write refused.
    pub observer: Observer,
}

impl StoreConfig {
    /// The default size of sled's page cache, in MiB. Measured with a million grants:
    /// resident memory after a restart is about 90 MiB lower than with 64 MiB (15 MiB
    /// higher than with 8); an import takes 17 s of server CPU instead of 16, and the
    /// Grant benchmark's CPU per grant is unchanged within noise; writes spread evenly
    /// over a large database pay most, about 19 µs of writer CPU each instead of 12:
    /// still some 50,000 writes per second, ten times the durable-write target.
    pub const DEFAULT_CACHE_MB: u64 = 16;
    /// The default budget of the change log, in MiB: about 300,000 single writes (hours
    /// to days of a control plane's writes) or 400,000 imported records, for a replica
    /// or an auditor to catch up with; small beside the state (about 200 MiB on disk for
    /// a million grants).
    pub const DEFAULT_CHANGE_LOG_MB: u64 = 64;
    /// The default cap on the change log kept for an audit retention, in MiB: 10 GiB,
    /// about 48 million single writes (90 days at 6 writes a second), so that a
    /// retention cannot fill a disk while it still holds months of a control plane's
    /// writes.
    pub const DEFAULT_AUDIT_MAX_MB: u64 = 10 << 10;

    /// What the change log keeps.
    fn retention(&self) -> change_log::Retention {
        change_log::Retention::budget(self.change_log_bytes)
            .with_audit(self.audit_retention, self.audit_max_bytes)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_bytes: Self::DEFAULT_CACHE_MB << 20,
            change_log_bytes: Self::DEFAULT_CHANGE_LOG_MB << 20,
            audit_retention: Duration::ZERO,
            audit_max_bytes: Self::DEFAULT_AUDIT_MAX_MB << 20,
            observer: Observer::default(),
        }
    }
}

/// The durable store of workspaces and the in-memory state checks read.
pub struct Store {
    catalog: Arc<Catalog>,
    published: Arc<ArcSwap<Snapshot>>,
    /// `None` once closed. A std mutex: it is held only to clone or take the sender.
    writer: std::sync::Mutex<Option<(mpsc::Sender<writer::Request>, JoinHandle<()>)>>,
    report: LoadReport,
    /// The revision of the published state, for change streams.
    revisions: watch::Sender<u64>,
    /// Reads waiting for a revision.
    waiters: Arc<waiters::Waiters>,
    /// The data's history, and what it follows, as read at open.
    identity: Identity,
    /// The change log's directory, read by change feeds.
    log_dir: std::path::PathBuf,
    /// Whether writes are logged (a change feed needs them to be).
    log_enabled: bool,
    /// Whether writes are taken, as the writer says.
    writes: watch::Sender<WriteState>,
    /// Told of writes refused up front.
    observer: Observer,
    /// The data directory.
    dir: std::path::PathBuf,
}

impl Store {
    /// Opens (or creates) the database in `dir` and loads its state.
    pub fn open(
        dir: &Path,
        catalog: Arc<Catalog>,
        config: &StoreConfig,
    ) -> Result<Self, StoreError> {
        let startup::Opened {
            parts,
            snapshot,
            report,
            identity,
        } = startup::open(dir, &catalog, config)?;
        info!(
            revision = snapshot.revision,
            workspaces = snapshot.workspaces.len(),
            "store loaded"
        );
        let revisions = watch::Sender::new(snapshot.revision);
        let waiters = Arc::new(waiters::Waiters::default());
        let published = Arc::new(ArcSwap::from_pointee(snapshot));
        let writes = watch::Sender::new(WriteState::Taking);
        let (sender, receiver) = mpsc::channel(4096);
        let writer = writer::Writer {
            shared: writer::Shared {
                dir: dir.to_owned(),
                config: config.clone(),
                catalog: Arc::clone(&catalog),
                published: Arc::clone(&published),
                revisions: revisions.clone(),
                waiters: Arc::clone(&waiters),
                state: writes.clone(),
                wake: sender.downgrade(),
                reopen: |dir, catalog, config| {
                    startup::open(dir, catalog, config)
                        .map(|opened| (opened.parts, opened.snapshot))
                },
            },
            parts,
        };
        let handle = std::thread::Builder::new()
            .name("accessd-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Spawn("writer", e))?;
        Ok(Self {
            catalog,
            published,
            writer: std::sync::Mutex::new(Some((sender, handle))),
            report,
            revisions,
            waiters,
            identity,
            log_dir: dir.join(CHANGE_LOG_DIR),
            log_enabled: config.change_log_bytes > 0,
            writes,
            observer: config.observer.clone(),
            dir: dir.to_owned(),
        })
    }

    /// What its data directory takes on disk now. Walks the directory: for a scrape,
    /// not for every call.
    pub fn disk_usage(&self) -> DiskUsage {
        disk_usage::measure(&self.dir)
    }

    /// Whether writes are taken now.
    pub fn write_state(&self) -> WriteState {
        self.writes.borrow().clone()
    }

    /// The catalog in force.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// What loading found that the catalog cannot represent.
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// The latest durable state, to keep as long as needed; it never changes under its
    /// holder.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.load_full()
    }

    /// The latest durable state, for a short read such as one check. Cheaper than
    /// [`Store::snapshot`]: it does not touch the shared reference count, which would
    /// bounce a cache line between cores on every check.
    pub fn current(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.published.load()
    }

    /// The revision of the published state, as it changes: for callers that wait for
    /// one (a read carrying `at_least_revision`, a change stream).
    pub fn revisions(&self) -> watch::Receiver<u64> {
        self.revisions.subscribe()
    }

    /// Waits until the published state is at `revision` or later, or `deadline` passes;
    /// then returns the revision it had reached.
    pub async fn reached(&self, revision: u64, deadline: tokio::time::Instant) -> Result<(), u64> {
        let Some(reached) = self.waiters.wait(revision, || self.current().revision) else {
            return Ok(());
        };
        match tokio::time::timeout_at(deadline, reached).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.waiters.forget(revision);
                Err(self.current().revision)
            }
        }
    }

    /// Whether writes are taken, as it changes: refused while the data volume fails
    /// them, until the store heals.
    pub fn writes(&self) -> watch::Receiver<WriteState> {
        self.writes.subscribe()
    }

    /// The data's history and, for a follower's copy, what it follows, as read at open
    /// (a bootstrap since then has replaced the latter).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A reader of the write groups after revision `after`, as they are published.
    pub fn changes_after(&self, after: u64) -> Result<ChangeFeed, FeedError> {
        if !self.log_enabled {
            return Err(FeedError::Disabled);
        }
        ChangeFeed::open(
            self.log_dir.clone(),
            Arc::clone(&self.catalog),
            after,
            self.current().revision,
        )
    }

    /// Up to about `max_entries` of the change log's entries after `after` (from the
    /// oldest retained if that is later), oldest first: the audit trail.
    pub fn logged_after(&self, after: u64, max_entries: usize) -> Result<LoggedPage, FeedError> {
        let published = self.current().revision;
        let mut feed = match self.changes_after(after) {
            Err(FeedError::Trimmed { oldest, .. }) => self.changes_after(oldest)?,
            opened => opened?,
        };
        let start = feed.oldest_retained()?;
        let mut page = LoggedPage {
            entries: Vec::new(),
            oldest_revision: start.map_or(published + 1, |start| start.revision),
            oldest_unix_millis: start.map_or(0, |start| start.unix_millis),
            more: false,
        };
        while page.entries.len() < max_entries {
            let groups = feed.next(published)?;
            if groups.is_empty() {
                return Ok(page);
            }
            page.entries
                .extend(groups.into_iter().flat_map(|group| group.entries));
        }
        page.more = page.entries.last().map_or(after, |e| e.revision) < published;
        Ok(page)
    }

    /// Applies a write group of the leader's as it is, at its revisions; returns once it
    /// is durable and published. Refused with [`StoreError::Replication`] if it does
    /// not follow the revision held.
    pub async fn replicate(&self, group: ReplicatedGroup) -> Result<(), StoreError> {
        self.queue_replicate(group).await?.outcome().await.map(drop)
    }

    /// Queues a replicated group, and returns once it is queued with what resolves once
    /// it is durable and published. Groups queued together are made durable under one
    /// flush, as the leader's writes are.
    pub async fn queue_replicate(&self, group: ReplicatedGroup) -> Result<Queued, StoreError> {
        self.queue(writer::Work::Replicate(group)).await
    }

    /// Takes one step of a bootstrap; returns once it is durable (and, for the last,
    /// published).
    pub async fn bootstrap(&self, step: BootstrapStep) -> Result<(), StoreError> {
        self.queue_bootstrap(step).await?.outcome().await.map(drop)
    }

    /// Queues one step of a bootstrap, and returns once it is queued with what resolves
    /// once it is durable: steps apply in the order queued, so the next may be prepared
    /// while one is written.
    pub async fn queue_bootstrap(&self, step: BootstrapStep) -> Result<Queued, StoreError> {
        self.queue(writer::Work::Bootstrap(step)).await
    }

    /// As [`Store::write`], recording `caller` (a caller's name) with the change.
    pub async fn write_as(
        &self,
        caller: Option<Arc<str>>,
        command: Command,
    ) -> Result<Result<WriteOutcome, WriteError>, StoreError> {
        let work = writer::Work::Commands {
            commands: vec![command],
            revisions: writer::Revisions::EachCommand,
        };
        let mut results = self.queue_as(caller, work).await?.outcome().await?;
        results.pop().ok_or(StoreError::Closed)
    }

    /// As [`Store::write_all`], recording `caller` with the changes.
    pub async fn write_all_as(
        &self,
        caller: Option<Arc<str>>,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        let work = writer::Work::Commands {
            commands,
            revisions: writer::Revisions::EachCommand,
        };
        self.queue_as(caller, work).await?.outcome().await
    }

    /// As [`Store::queue_batch`], recording `caller` with the batch.
    pub async fn queue_batch_as(
        &self,
        caller: Option<Arc<str>>,
        commands: Vec<Command>,
    ) -> Result<Queued, StoreError> {
        let work = writer::Work::Commands {
            commands,
            revisions: writer::Revisions::OneForAll,
        };
        self.queue_as(caller, work).await
    }

    /// Plans and persists one command; returns once it is durable.
    pub async fn write(
        &self,
        command: Command,
    ) -> Result<Result<WriteOutcome, WriteError>, StoreError> {
        let mut results = self.write_all(vec![command]).await?;
        results.pop().ok_or(StoreError::Closed)
    }

    /// Plans and persists commands in order, atomically together, each with its own
    /// revision; returns once they are durable.
    pub async fn write_all(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        self.send(commands, writer::Revisions::EachCommand).await
    }

    /// Plans and persists commands in order, atomically together, under one revision
    /// and one change-log entry (bulk import); refused commands are skipped and reported.
    pub async fn write_batch(
        &self,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        self.send(commands, writer::Revisions::OneForAll).await
    }

    /// Queues commands as [`Store::write_batch`] does, and returns once they are queued
    /// with what resolves once they are durable. Batches queued one after another are
    /// applied in that order, so a caller may queue the next before the last is durable.
    pub async fn queue_batch(&self, commands: Vec<Command>) -> Result<Queued, StoreError> {
        self.queue(writer::Work::Commands {
            commands,
            revisions: writer::Revisions::OneForAll,
        })
        .await
    }

    async fn send(
        &self,
        commands: Vec<Command>,
        revisions: writer::Revisions,
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        self.queue(writer::Work::Commands {
            commands,
            revisions,
        })
        .await?
        .outcome()
        .await
    }

    async fn queue(&self, work: writer::Work) -> Result<Queued, StoreError> {
        self.queue_as(None, work).await
    }

    async fn queue_as(
        &self,
        caller: Option<Arc<str>>,
        work: writer::Work,
    ) -> Result<Queued, StoreError> {
        // Refused before it is queued: the writer answers the queue only now and then
        // while it heals.
        if let WriteState::Refused(refusal) = &*self.writes.borrow() {
            self.observer.refused(refusal);
            return Err(StoreError::Refused(refusal.clone()));
        }
        let sender = self
            .writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .as_ref()
            .map(|(sender, _)| sender.clone())
            .ok_or(StoreError::Closed)?;
        let (reply, outcome) = oneshot::channel();
        sender
            .send(writer::Request {
                work,
                caller,
                reply,
                queued: Instant::now(),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(Queued {
            outcome,
            observer: self.observer.clone(),
        })
    }

    /// Stops taking writes, waits for queued ones and flushes. Blocks: call it from a
    /// blocking context.
    pub fn close(&self) {
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some((sender, handle)) = writer {
            drop(sender);
            let _ = handle.join();
        }
    }
}

/// The change log's directory, in the data directory.
pub const CHANGE_LOG_DIR: &str = "change_log";

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}
