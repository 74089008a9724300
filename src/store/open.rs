//! Opening the database: sled's directory lock, the format version, and the chunk
//! boundaries drawn when the database is created. A database of another format is
//! refused with what to do, never read by rules it was not written by.

use std::path::Path;

use tracing::info;

use super::{
    StoreConfig, StoreError,
    record::{self, FORMAT, chunks::Boundaries, keys},
};

/// How long [`open_db`] waits for the database's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled, waiting up to [`LOCK_WAIT`] for the directory's lock: sled's background
/// flusher releases it up to half a second after the previous owner in this process
/// (a restart, a test) dropped its handle. Another process holding it still fails.
pub fn open_db(dir: &Path, config: &StoreConfig) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_bytes)
            .open()
        {
            Err(sled::Error::Io(err))
                if err.kind() == std::io::ErrorKind::Other
                    && err.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            opened => return Ok(opened?),
        }
    }
}

/// Checks that `db` is of this build's format, stamping a new database (and one of this
/// format written before the version was stored) with it, and returns where its chunks
/// start, drawn and stored for a new database before any chunk is written.
pub fn prepare(db: &sled::Db) -> Result<Boundaries, StoreError> {
    match db.get(keys::FORMAT_VERSION)? {
        Some(stored) => {
            let version = record::decode_u64(&stored, "the format version")?;
            if version != FORMAT {
                return Err(StoreError::Unsupported(format!(
                    "format {version}, where this build reads format {FORMAT}; {}",
                    if version > FORMAT {
                        "start it with a newer accessd".to_owned()
                    } else {
                        EXPORT_AND_IMPORT.to_owned()
                    }
                )));
            }
        }
        None => {
            if let Some(key) = foreign_key(db)? {
                return Err(StoreError::Unsupported(format!(
                    "a layout of an earlier build (it holds the key `{}`); {EXPORT_AND_IMPORT}",
                    key.escape_ascii()
                )));
            }
            if !db.is_empty() {
                info!(format = FORMAT, "the database's format version stored");
            }
            db.insert(keys::FORMAT_VERSION, &record::encode_u64(FORMAT))?;
        }
    }
    let boundaries = match db.get(keys::CHUNK_BOUNDARIES)? {
        Some(stored) => Boundaries::decode(&stored)
            .ok_or_else(|| StoreError::Corrupt("bad chunk boundaries".into()))?,
        None => {
            if db.scan_prefix(keys::MEMBERS).next().is_some()
                || db.scan_prefix(keys::INSTANCES).next().is_some()
            {
                return Err(StoreError::Corrupt(
                    "the database has chunks but not their boundaries".into(),
                ));
            }
            let boundaries = Boundaries::drawn();
            db.insert(keys::CHUNK_BOUNDARIES, &boundaries.encode())?;
            boundaries
        }
    };
    db.flush()?;
    Ok(boundaries)
}

/// What to do with a data directory of another format.
const EXPORT_AND_IMPORT: &str = "export it with the build that wrote it (`accessd export`) \
     and import the export into an empty data directory with this one (`accessd import`)";

/// The first key of `db` that this format does not have, or a tree of sled's beside the
/// default one: a sign of another layout. Costs a seek per kind of key, not a scan.
fn foreign_key(db: &sled::Db) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(tree) = db
        .tree_names()
        .into_iter()
        .find(|name| name.as_ref() != DEFAULT_TREE)
    {
        return Ok(Some(tree.to_vec()));
    }
    let mut from: Vec<u8> = Vec::new();
    while let Some(item) = db.range(from.as_slice()..).next() {
        let (key, _) = item?;
        from = match keys::ALL.iter().find(|known| key.starts_with(known)) {
            // A single key: the next one may be of any kind.
            Some(known) if known.len() == 1 && key.len() == 1 => [&key[..], &[0]].concat(),
            // A prefix ending with the NUL separator: every key of the kind is skipped.
            Some(known) if known.len() > 1 => {
                let mut past = known.to_vec();
                if let Some(separator) = past.last_mut() {
                    *separator += 1;
                }
                past
            }
            _ => return Ok(Some(key.to_vec())),
        };
    }
    Ok(None)
}

/// The name sled gives its default tree.
const DEFAULT_TREE: &[u8] = b"__sled__default";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        engine::Command,
        model::{Catalog, ProductSet, UserId, WorkspaceId},
        store::Store,
    };

    /// A data directory holding one workspace, written by this build.
    async fn written(dir: &Path) {
        let store =
            Store::open(dir, Arc::new(Catalog::built_in()), &StoreConfig::default()).unwrap();
        let create = Command::CreateWorkspace {
            workspace: WorkspaceId::parse("acme").unwrap(),
            owner: UserId::parse("olivia").unwrap(),
            products: ProductSet::default(),
        };
        store.write(create).await.unwrap().unwrap();
        store.close();
    }

    fn opened(dir: &Path) -> Result<Store, StoreError> {
        Store::open(dir, Arc::new(Catalog::built_in()), &StoreConfig::default())
    }

    fn stored_format(dir: &Path) -> Option<u64> {
        let db = open_db(dir, &StoreConfig::default()).unwrap();
        db.get(keys::FORMAT_VERSION)
            .unwrap()
            .map(|bytes| record::decode_u64(&bytes, "format").unwrap())
    }

    #[tokio::test]
    async fn a_new_database_is_stamped_with_the_format_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path()).await;
        assert_eq!(stored_format(dir.path()), Some(FORMAT));
        let store = opened(dir.path()).unwrap();
        assert_eq!(store.snapshot().workspaces.len(), 1);
        store.close();
    }

    /// Data directories of this layout written before the version was stored open,
    /// with all they hold, and are stamped.
    #[tokio::test]
    async fn a_database_of_this_layout_without_a_version_opens_and_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        written(dir.path()).await;
        {
            let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
            db.remove(keys::FORMAT_VERSION).unwrap();
            db.flush().unwrap();
        }
        assert_eq!(stored_format(dir.path()), None);
        let store = opened(dir.path()).unwrap();
        assert_eq!(store.snapshot().revision, 1);
        assert_eq!(store.snapshot().workspaces.len(), 1);
        store.close();
        drop(store);
        assert_eq!(stored_format(dir.path()), Some(FORMAT));
    }

    /// Older layouts (a key per record, the change log in sled) and other versions are
    /// refused with what to do, and left as they were.
    #[tokio::test]
    async fn a_database_of_another_format_is_refused_with_what_to_do() {
        type Alter = fn(&sled::Db);
        let cases: [(&str, Alter, &str); 5] = [
            (
                "a member record under a key of its own",
                |db| {
                    db.insert(b"m\0acme\0sam", &b"member"[..]).unwrap();
                },
                "export it with the build that wrote it",
            ),
            (
                "a change log entry in the default tree",
                |db| {
                    db.insert([&b"l"[..], &7_u64.to_be_bytes()].concat(), &b"{}"[..])
                        .unwrap();
                },
                "`accessd import`",
            ),
            (
                "the change log in a tree of its own",
                |db| {
                    db.open_tree(b"change_log")
                        .unwrap()
                        .insert(b"", &b""[..])
                        .unwrap();
                },
                "`change_log`",
            ),
            (
                "a later version",
                |db| {
                    db.insert(keys::FORMAT_VERSION, &record::encode_u64(FORMAT + 1))
                        .unwrap();
                },
                "start it with a newer accessd",
            ),
            (
                "an earlier version",
                |db| {
                    db.insert(keys::FORMAT_VERSION, &record::encode_u64(0))
                        .unwrap();
                },
                "import the export into an empty data directory",
            ),
        ];
        for (what, alter, says) in cases {
            let dir = tempfile::tempdir().unwrap();
            written(dir.path()).await;
            {
                let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
                if what.contains("version") {
                    alter(&db);
                } else {
                    db.remove(keys::FORMAT_VERSION).unwrap();
                    alter(&db);
                }
                db.flush().unwrap();
            }
            let before = stored_format(dir.path());
            match opened(dir.path()) {
                Err(StoreError::Unsupported(message)) => {
                    assert!(message.contains(says), "{what}: {message}");
                }
                Err(other) => panic!("{what}: {other}"),
                Ok(_) => panic!("{what}: opened"),
            }
            assert_eq!(stored_format(dir.path()), before, "{what}: left as it was");
        }
    }

    #[test]
    fn an_empty_directory_is_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
        assert_eq!(foreign_key(&db).unwrap(), None);
        let boundaries = prepare(&db).unwrap();
        assert_eq!(prepare(&db).unwrap(), boundaries, "drawn once");
        assert_eq!(foreign_key(&db).unwrap(), None);
    }
}
