//! Upgrading a database written with one key per record (`m 0 {ws} 0 {user}`,
//! `i 0 {ws} 0 {type} 0 {id}`) to chunks of records (see `chunks`), at open. Records are
//! copied byte for byte, never decoded, so records the catalog in force does not know
//! are kept as they were.
//!
//! The upgrade runs in atomic batches of about [`BATCH_BYTES`], each writing whole
//! chunks and removing the keys they replace; a batch ends only where a chunk does. So
//! an upgrade interrupted by a crash leaves every record either in its chunk or under
//! its old key, never both, and the next open carries on from the first old key left.

use tracing::info;

use super::{
    StoreError,
    blobs::Blobs,
    chunks::{self, Boundaries},
    keys,
};

/// About the most bytes one batch of the upgrade writes.
const BATCH_BYTES: usize = 16 << 20;

/// Moves every record kept under a key of its own into its chunk.
pub fn upgrade(db: &sled::Db, blobs: &mut Blobs, boundaries: Boundaries) -> Result<(), StoreError> {
    upgrade_in_batches(db, blobs, boundaries, BATCH_BYTES, usize::MAX)
}

/// The upgrade, in batches of about `batch_bytes`, stopping after `batches` of them (as
/// a crash would, for tests).
fn upgrade_in_batches(
    db: &sled::Db,
    blobs: &mut Blobs,
    boundaries: Boundaries,
    batch_bytes: usize,
    mut batches: usize,
) -> Result<(), StoreError> {
    let mut moved = 0_usize;
    for (legacy, prefix) in [
        (keys::LEGACY_MEMBERS, keys::MEMBERS),
        (keys::LEGACY_INSTANCES, keys::INSTANCES),
    ] {
        let mut batch = Batch::default();
        let mut chunk: Option<Chunk> = None;
        for item in db.scan_prefix(legacy) {
            let (key, record) = item?;
            // The record's run (workspace, or workspace and type) is its key up to the
            // last separator; its id, what follows.
            let at = key
                .iter()
                .rposition(|b| *b == 0)
                .filter(|at| *at >= legacy.len())
                .ok_or_else(|| StoreError::Corrupt("bad record key".into()))?;
            let run = key.get(legacy.len()..at).unwrap_or_default();
            let id = std::str::from_utf8(key.get(at + 1..).unwrap_or_default())
                .map_err(|_| StoreError::Corrupt("non-UTF-8 key part".into()))?;
            let continues = chunk
                .as_ref()
                .is_some_and(|chunk| chunk.run == run && !boundaries.starts(id.as_bytes()));
            if !continues {
                if let Some(done) = chunk.take() {
                    batch.add(done, prefix);
                    if batch.bytes >= batch_bytes {
                        if batches == 0 {
                            return Ok(());
                        }
                        batches -= 1;
                        moved += std::mem::take(&mut batch).apply(db)?;
                    }
                }
                let first = if boundaries.starts(id.as_bytes()) {
                    id
                } else {
                    ""
                };
                chunk = Some(Chunk {
                    run: run.to_vec(),
                    first: first.to_owned(),
                    value: Vec::new(),
                    replaced: Vec::new(),
                });
            }
            if let Some(chunk) = chunk.as_mut() {
                chunks::push(&mut chunk.value, id, &record);
                chunk.replaced.push(key);
            }
        }
        if let Some(done) = chunk.take() {
            batch.add(done, prefix);
        }
        if batches == 0 {
            return Ok(());
        }
        batches -= 1;
        moved += batch.apply(db)?;
    }
    if moved > 0 {
        blobs.flush(db)?;
        info!(records = moved, "records moved into chunks");
    }
    Ok(())
}

/// A chunk being assembled from records under keys of their own.
struct Chunk {
    /// Its run, as the old keys name it: `{ws}` or `{ws} 0 {type}`.
    run: Vec<u8>,
    /// The id of its first record, or empty for a head chunk.
    first: String,
    value: Vec<u8>,
    /// The keys its records are moved from.
    replaced: Vec<sled::IVec>,
}

/// Whole chunks, with the removal of the keys they replace.
#[derive(Default)]
struct Batch {
    batch: sled::Batch,
    bytes: usize,
    records: usize,
}

impl Batch {
    fn add(&mut self, chunk: Chunk, prefix: &[u8]) {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&chunk.run);
        key.push(0);
        key.extend_from_slice(chunk.first.as_bytes());
        self.bytes += key.len() + chunk.value.len();
        self.records += chunk.replaced.len();
        self.batch.insert(key, chunk.value);
        for old in chunk.replaced {
            self.batch.remove(old);
        }
    }

    /// Applies the batch atomically; returns how many records it moved.
    fn apply(self, db: &sled::Db) -> Result<usize, StoreError> {
        if self.records > 0 {
            db.apply_batch(self.batch)?;
        }
        Ok(self.records)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        model::{Catalog, Grant, Membership, Scope},
        store::{Store, StoreConfig, chunk_boundaries, open_db},
    };

    /// A database in the layout of one key per record: two workspaces of 150 members
    /// (many chunks each), sources and destinations with parents, grants of both
    /// scopes, and one grant of a role the catalog does not have.
    fn legacy_database(dir: &std::path::Path) {
        let db = open_db(dir, &StoreConfig::default()).unwrap();
        let catalog = Catalog::built_in();
        db.insert(keys::REVISION, &7_u64.to_be_bytes()).unwrap();
        for ws in ["acme", "acme2"] {
            db.insert([keys::WORKSPACES, ws.as_bytes()].concat(), &b""[..])
                .unwrap();
            for n in 0..40 {
                let source = format!("src{n:03}");
                let key = format!("i\0{ws}\0source\0{source}");
                db.insert(key.as_bytes(), &b""[..]).unwrap();
                let key = format!("i\0{ws}\0destination\0dst{n:03}");
                db.insert(key.as_bytes(), format!("source\0{source}").as_bytes())
                    .unwrap();
            }
            for n in 0..150 {
                let mut record = if n == 0 {
                    b"owner".to_vec()
                } else {
                    b"member".to_vec()
                };
                record.extend_from_slice(
                    format!("\nsource_admin\0isource\0src{:03}", n % 40).as_bytes(),
                );
                if n % 3 == 0 {
                    record.extend_from_slice(b"\nwarehouse_read\0a");
                }
                if n == 7 {
                    record.extend_from_slice(b"\nretired_role\0a");
                }
                let key = format!("m\0{ws}\0user{n:03}");
                db.insert(key.as_bytes(), record).unwrap();
            }
        }
        assert!(catalog.role_id("warehouse_read").is_some());
        db.flush().unwrap();
    }

    fn open(dir: &std::path::Path) -> Store {
        Store::open(dir, Arc::new(Catalog::built_in()), &StoreConfig::default()).unwrap()
    }

    #[test]
    fn a_database_of_one_key_per_record_opens_with_every_record_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        legacy_database(dir.path());
        let store = open(dir.path());
        let catalog = Catalog::built_in();
        let state = store.snapshot();
        assert_eq!(state.revision, 7);
        let ws = state
            .workspace(&crate::model::WorkspaceId::parse("acme").unwrap())
            .unwrap();
        assert_eq!(ws.members().count(), 150);
        assert_eq!(ws.owner_count(), 1);
        let source = catalog.type_id("source").unwrap();
        let destination = catalog.type_id("destination").unwrap();
        assert_eq!(ws.instances_of(source, None).count(), 40);
        let (_, dst) = ws.instance_named(destination, "dst005").unwrap();
        assert_eq!(
            dst.parent.as_ref().map(|(_, id)| id.as_str()),
            Some("src005")
        );
        let member = ws.member("user009").unwrap();
        assert_eq!(member.membership, Membership::Member);
        assert!(member.grants.contains(&Grant {
            role: catalog.role_id("warehouse_read").unwrap(),
            scope: Scope::All,
        }));
        assert_eq!(
            store.load_report().unknown_roles.get("retired_role"),
            Some(&2)
        );
        store.close();
        drop(store);

        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(db.scan_prefix(keys::LEGACY_MEMBERS).count(), 0);
        assert_eq!(db.scan_prefix(keys::LEGACY_INSTANCES).count(), 0);
        let chunks = db.scan_prefix(keys::MEMBERS).count();
        assert!(
            (4..100).contains(&chunks),
            "{chunks} member chunks for 300 members"
        );
        let retired = db
            .scan_prefix(keys::MEMBERS)
            .values()
            .filter(|value| {
                value
                    .as_ref()
                    .unwrap()
                    .windows(12)
                    .any(|w| w == b"retired_role")
            })
            .count();
        assert_eq!(retired, 2, "the unknown role's grants are kept");
    }

    #[test]
    fn an_upgrade_interrupted_after_any_batch_carries_on_to_the_same_state() {
        let whole = tempfile::tempdir().unwrap();
        legacy_database(whole.path());
        let expected = open(whole.path()).snapshot();
        let mut batches = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            legacy_database(dir.path());
            let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
            let boundaries = chunk_boundaries(&db).unwrap();
            // Each chunk a batch of its own.
            upgrade_in_batches(&db, &mut Blobs::new(dir.path()), boundaries, 1, batches).unwrap();
            let left = db.scan_prefix(keys::LEGACY_MEMBERS).count()
                + db.scan_prefix(keys::LEGACY_INSTANCES).count();
            db.flush().unwrap();
            drop(db);
            let state = open(dir.path()).snapshot();
            assert_eq!(state.workspaces.len(), expected.workspaces.len());
            for (id, ws) in expected.workspaces.iter() {
                assert_eq!(
                    state.workspaces.get(id),
                    Some(ws),
                    "after {batches} batches"
                );
            }
            if left == 0 {
                break;
            }
            batches += 7;
        }
        assert!(batches > 20, "the upgrade took {batches} batches");
    }
}
