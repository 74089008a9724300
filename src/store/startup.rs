//! Bringing a data directory to the state it acknowledged: leftovers of a crash
//! removed, sled opened, the change log read back, the state loaded and what the log
//! holds past it redone. What `Store::open` does, and what the writer does again when
//! it heals after the data volume failed a write.

use std::{path::Path, sync::Arc};

use tracing::info;

use super::{
    CHANGE_LOG_DIR, Snapshot, StoreConfig, StoreError,
    blobs::Blobs,
    change_log::ChangeLog,
    identity::{self, Identity},
    leftovers,
    load::{self, LoadReport},
    open::{self, open_db},
    writer,
};
use crate::model::Catalog;

/// A data directory opened and brought to what it acknowledged.
pub struct Opened {
    /// What the writer writes to.
    pub parts: writer::Parts,
    /// The state, redone up to the log's last whole group.
    pub snapshot: Snapshot,
    /// What loading found that the catalog cannot represent.
    pub report: LoadReport,
    /// The data's history, and what it follows.
    pub identity: Identity,
}

/// Opens the data directory `dir` (creating it if new) and brings it to the state it
/// acknowledged. Refuses a directory whose database is gone while its change log is
/// not, rather than start empty over it.
pub fn open(
    dir: &Path,
    catalog: &Arc<Catalog>,
    config: &StoreConfig,
) -> Result<Opened, StoreError> {
    leftovers::clean(dir)?;
    let log_dir = dir.join(CHANGE_LOG_DIR);
    let db = open_db(dir, config).map_err(|err| damaged_if_corrupt(err, dir))?;
    let mut log = ChangeLog::open(&log_dir, config.retention())?;
    if db.is_empty() && log.holds_entries() {
        return Err(StoreError::Damaged(format!(
            "its database (sled's files in {}) is missing or empty, while its change log \
             holds entries; nothing was changed. Restore the latest backup into an empty \
             directory (`accessd restore`), or move this directory aside to start empty",
            dir.display()
        )));
    }
    let boundaries = open::prepare(&db)?;
    let identity = identity::identify(&db, &log_dir)?;
    let mut blobs = Blobs::new(dir);
    let pending = log.pending(catalog, load::read_revision(&db)?)?;
    let load::Loaded {
        revision,
        workspaces,
        report,
        retained,
        retained_instances,
    } = load::load(&db, catalog, boundaries)?;
    let loaded = Snapshot {
        revision,
        workspaces: workspaces.into_iter().collect(),
    };
    let redone = pending.len();
    let writer::Redone {
        snapshot,
        retained,
        retained_instances,
    } = writer::redo(
        &db,
        &mut blobs,
        catalog,
        boundaries,
        retained,
        retained_instances,
        loaded,
        pending,
    )?;
    if redone > 0 {
        info!(
            revisions = redone,
            revision = snapshot.revision,
            "redid the change log's entries the database lacked"
        );
    }
    // Entries to redo stay until the state has them.
    log.settle();
    Ok(Opened {
        parts: writer::Parts {
            db,
            log,
            blobs,
            boundaries,
            retained,
            retained_instances,
        },
        snapshot,
        report,
        identity,
    })
}

/// sled's "corrupted data" as what it means for an operator.
fn damaged_if_corrupt(err: StoreError, dir: &Path) -> StoreError {
    match err {
        StoreError::Database(sled::Error::Corruption { .. }) => StoreError::Damaged(format!(
            "sled finds its files in {} corrupt ({err}); nothing was changed. Restore the \
             latest backup into an empty directory (`accessd restore`) and start on it; \
             keep this directory for a look at what went wrong",
            dir.display()
        )),
        err => err,
    }
}
