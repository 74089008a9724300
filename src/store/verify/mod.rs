//! Checking a data directory offline: every stored invariant, read from the raw records
//! and the change log's files, each violation reported with where it is. Reads only:
//! it never stamps, repairs or cuts anything, unlike [`super::Store::open`].

mod indexes;
mod log;
mod records;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CHANGE_LOG_DIR, StoreConfig, StoreError, load, open::open_db};
use crate::model::Catalog;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A stored invariant does not hold: the data is damaged or was not written by accessd.
    Violation,
    /// Worth knowing, and handled: records the catalog in force cannot represent, change
    /// log entries the next open redoes, what a crash leaves and the next open cuts.
    Note,
}

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Where it is: a key, a workspace, a change log file and line.
    pub place: String,
    /// What is wrong, or worth knowing.
    pub problem: String,
}

/// The change log's extent, as its files hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogExtent {
    /// Its segment files.
    pub segments: usize,
    /// The revision of its oldest entry, if it holds any.
    pub first_revision: Option<u64>,
    /// The revision of the last write group it holds whole, if any.
    pub last_revision: Option<u64>,
}

/// What a check of a data directory found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verified {
    /// The revision the state is at.
    pub revision: u64,
    /// The data's history id, if it has one.
    pub history_id: Option<String>,
    /// Workspace records.
    pub workspaces: usize,
    /// Member records.
    pub members: usize,
    /// Instance records.
    pub instances: usize,
    /// Grants held by member records.
    pub grants: usize,
    /// The change log.
    pub change_log: LogExtent,
    /// Every violation and note, in the order found.
    pub findings: Vec<Finding>,
}

impl Verified {
    /// How many violations were found.
    pub fn violations(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Violation)
            .count()
    }

    fn violation(&mut self, place: impl Into<String>, problem: impl Into<String>) {
        self.push(Severity::Violation, place, problem);
    }

    fn note(&mut self, place: impl Into<String>, problem: impl Into<String>) {
        self.push(Severity::Note, place, problem);
    }

    fn push(&mut self, severity: Severity, place: impl Into<String>, problem: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            place: place.into(),
            problem: problem.into(),
        });
    }
}

/// Why a data directory could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The directory holds no database.
    #[error("`{0}` holds no accessd database (no sled `db` file)")]
    NoDatabase(PathBuf),
    /// Another process holds the database's lock.
    #[error(
        "`{0}` is locked by another process: is a server running on it? Stop it, or check a \
         copy (`accessd backup`, then `accessd restore`)"
    )]
    Locked(PathBuf),
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the data directory `dir` against `catalog` (the one the server runs with, which
/// says which names are known; the invariants do not depend on it).
pub fn verify(dir: &Path, catalog: &Catalog) -> Result<Verified, VerifyError> {
    // sled would create a database in an empty directory: checking must not.
    if !dir.join("db").is_file() {
        return Err(VerifyError::NoDatabase(dir.to_owned()));
    }
    let db = match open_db(dir, &StoreConfig::default()) {
        Err(StoreError::Database(sled::Error::Io(e)))
            if e.to_string().contains("could not acquire lock") =>
        {
            return Err(VerifyError::Locked(dir.to_owned()));
        }
        opened => opened?,
    };
    let mut verified = Verified::default();
    let stored = records::check(&db, &mut verified)?;
    match stored.boundaries {
        Some(boundaries) => match load::load(&db, catalog, boundaries) {
            Ok(loaded) => indexes::check(catalog, &stored, &loaded, &mut verified),
            Err(e) => verified.violation("database", format!("start-up would refuse it: {e}")),
        },
        None if stored.workspaces.is_empty() => {}
        None => verified.violation(
            "database",
            "start-up would refuse it: it holds records but no chunk boundaries",
        ),
    }
    log::check(&dir.join(CHANGE_LOG_DIR), catalog, &mut verified)?;
    Ok(verified)
}
