//! Which history the data belongs to, and what a follower follows. A leader's data is
//! stamped at creation with a random history id; a follower records its leader's id and
//! the workspaces it holds once its bootstrap is durable, so that after a restart it
//! resumes only where that is sound, and otherwise starts again from a snapshot. A
//! bootstrap interrupted by a crash leaves a marker, and its partial copy is discarded
//! at the next open.

use std::path::Path;

use tracing::{info, warn};

use super::{
    StoreError,
    record::{keys, text},
};
use crate::model::Selection;

/// What a follower's data is a copy of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Following {
    /// The leader's history id.
    pub history: String,
    /// The workspaces held.
    pub selection: Selection,
}

impl Following {
    /// The stored form: the history id, a newline, the selection.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.history, self.selection).into_bytes()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt(format!("the follower record: {why}"));
        let (history, selection) = text(bytes)?
            .split_once('\n')
            .ok_or_else(|| corrupt("no selection".into()))?;
        Ok(Self {
            history: history.to_owned(),
            selection: selection.parse().map_err(|e| corrupt(format!("{e}")))?,
        })
    }
}

/// The identity of the data read at open.
#[derive(Debug, Clone)]
pub struct Identity {
    /// This data's own history id.
    pub history: String,
    /// What it follows, for a follower's bootstrapped copy.
    pub following: Option<Following>,
}

/// Reads the data's identity, stamping a new history id on data without one, and
/// discards what an interrupted bootstrap wrote (every record, and the change log in
/// `change_log_dir`), leaving an empty database for a new bootstrap.
pub fn identify(db: &sled::Db, change_log_dir: &Path) -> Result<Identity, StoreError> {
    if db.contains_key(keys::BOOTSTRAPPING)? {
        discard_interrupted_bootstrap(db, change_log_dir)?;
    }
    let history = match db.get(keys::HISTORY)? {
        Some(stored) => text(&stored)?.to_owned(),
        None => {
            let history = new_history_id()?;
            db.insert(keys::HISTORY, history.as_bytes())?;
            db.flush()?;
            history
        }
    };
    let following = db
        .get(keys::FOLLOWING)?
        .map(|stored| Following::decode(&stored))
        .transpose()?;
    Ok(Identity { history, following })
}

/// A new random history id: 128 bits, in hex.
fn new_history_id() -> Result<String, StoreError> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Corrupt(format!("no randomness for a history id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The keys a bootstrap replaces: every record, the revision and the follower record.
pub fn replaced_by_bootstrap(
    db: &sled::Db,
) -> impl Iterator<Item = Result<sled::IVec, sled::Error>> {
    [keys::WORKSPACES, keys::MEMBERS, keys::INSTANCES]
        .into_iter()
        .flat_map(|prefix| db.scan_prefix(prefix).keys())
        .chain(
            [keys::REVISION, keys::FOLLOWING]
                .into_iter()
                .map(|key| Ok(sled::IVec::from(key))),
        )
}

fn discard_interrupted_bootstrap(db: &sled::Db, change_log_dir: &Path) -> Result<(), StoreError> {
    warn!("a bootstrap was interrupted: discarding its partial copy to bootstrap again");
    let mut batch = sled::Batch::default();
    for key in replaced_by_bootstrap(db) {
        batch.remove(key?);
    }
    batch.remove(keys::BOOTSTRAPPING);
    if change_log_dir.is_dir() {
        for entry in std::fs::read_dir(change_log_dir)? {
            std::fs::remove_file(entry?.path())?;
        }
    }
    db.apply_batch(batch)?;
    db.flush()?;
    info!("the partial copy is discarded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreConfig, open::open_db};

    #[test]
    fn a_history_id_is_stamped_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        let first = identify(&db, &dir.path().join("change_log")).unwrap();
        assert_eq!(first.history.len(), 32);
        assert_eq!(first.following, None);
        let again = identify(&db, &dir.path().join("change_log")).unwrap();
        assert_eq!(again.history, first.history);
        let other = tempfile::tempdir().unwrap();
        let other_db = open_db(other.path(), &StoreConfig::default()).unwrap();
        let other = identify(&other_db, &other.path().join("change_log")).unwrap();
        assert_ne!(other.history, first.history, "random per database");
    }

    #[test]
    fn the_follower_record_reads_back() {
        let following = Following {
            history: "0123abcd".into(),
            selection: "shard:1/4".parse().unwrap(),
        };
        assert_eq!(Following::decode(&following.encode()).unwrap(), following);
        assert!(Following::decode(b"no newline").is_err());
    }

    #[test]
    fn an_interrupted_bootstrap_leaves_an_empty_database_and_no_change_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("change_log");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(log.join("00000000000000000001.jsonl"), b"{}\n").unwrap();
        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        db.insert(keys::BOOTSTRAPPING, &b""[..]).unwrap();
        db.insert(
            keys::workspace(&crate::model::WorkspaceId::parse("acme").unwrap()),
            &b""[..],
        )
        .unwrap();
        db.insert(keys::REVISION, &7_u64.to_be_bytes()[..]).unwrap();
        let identity = identify(&db, &log).unwrap();
        assert_eq!(identity.following, None);
        assert!(!db.contains_key(keys::BOOTSTRAPPING).unwrap());
        assert!(db.scan_prefix(keys::WORKSPACES).next().is_none());
        assert!(!db.contains_key(keys::REVISION).unwrap());
        assert_eq!(std::fs::read_dir(&log).unwrap().count(), 0);
    }
}
