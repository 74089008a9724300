//! Making sled's blob files durable, which sled 0.34 does not do itself.
//!
//! sled writes a log message of over about 128 KiB (a quarter of its default 512 KiB
//! segment) to a file of its own under `blobs/`, and logs only a pointer to it. Such a
//! message is a large value, or a whole leaf: sled splits leaves by count (past 16
//! keys), not by size, so 17 chunks of 8 KiB make one. sled's `flush` fsyncs the log,
//! and with it the pointer, but never the blob file (`write_blob` in sled's
//! `pagecache/blob_io.rs`). After a power loss the pointer could lead to an empty or
//! torn file. sled does not refuse to open then: its recovery takes the log to end at
//! that message, and every write logged after it is silently gone (a missing file is
//! skipped instead). accessd would come back at an older revision, its change log cut
//! to match.
//!
//! [`Blobs::flush`] therefore fsyncs every blob file written or grown since it last
//! looked, then the directory, then has sled flush, then looks once more. The blobs
//! that a write makes are written while its message is logged, in the `apply_batch`
//! that logs it, so they are on disk before the flush that acknowledges the write. The
//! second look catches blobs that another thread was writing during the first: the
//! flush waits for every message it makes durable to be fully logged, blob included.
//! The committer also looks every [`IDLE_SYNC`] while no write comes.
//!
//! What is left, because sled gives no hook to close it:
//! - sled's flusher (every 500 ms; it also collects old segments, so it stays on) may
//!   make a pointer durable in the moments between the `apply_batch` that wrote its blob
//!   and the first look: a power loss then can cost only writes nobody was told of.
//! - sled writes blobs from other threads too: its flusher, when it moves a leaf of
//!   over 128 KiB out of an old segment, and the planner, when a scan splits or merges
//!   such a leaf. Their pointers become durable at the flusher's next pass, about 500 ms
//!   later, or at the next group's flush, which syncs them first. The idle look, every
//!   [`IDLE_SYNC`], nearly always comes before the flusher's pass, but nothing orders
//!   the two.

use std::{
    collections::HashMap,
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use tracing::debug;

use super::StoreError;

/// sled's directory of blob files, in the data directory.
const BLOBS_DIR: &str = "blobs";

/// How often the committer syncs new blob files while no write comes: well within the
/// 500 ms after which sled's flusher makes durable what it logged meanwhile.
pub const IDLE_SYNC: Duration = Duration::from_millis(100);

/// The blob files of one database, and which of them are known to be durable.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    /// The files fsynced so far that still exist, with the length each had when synced:
    /// a file another thread was still writing is synced again once it has grown. Empty
    /// at first, so that the first look also syncs what an earlier process left.
    synced: HashMap<OsString, u64>,
    /// Fail every sync, to test that a failure refuses the write.
    #[cfg(test)]
    pub fail: bool,
}

impl Blobs {
    /// The blob files of the sled database in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(BLOBS_DIR),
            synced: HashMap::new(),
            #[cfg(test)]
            fail: false,
        }
    }

    /// Makes everything written to `db` so far durable: the blob files first, then
    /// sled's log, which points at them, then the blobs other threads finished meanwhile.
    pub fn flush(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        self.sync_new().map_err(StoreError::Blobs)?;
        db.flush()?;
        self.sync_new().map_err(StoreError::Blobs)?;
        Ok(())
    }

    /// Fsyncs the blob files not synced before or grown since, then the directory if
    /// there were any; returns how many. One directory listing when there are none.
    pub fn sync_new(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if self.fail {
            return Err(io::Error::other("failing as the test asked"));
        }
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut present = HashMap::with_capacity(self.synced.len());
        let mut synced = 0;
        for entry in listing {
            let entry = entry?;
            let name = entry.file_name();
            let known = self.synced.get(&name).copied();
            let len = match File::open(self.dir.join(&name)) {
                Ok(file) => {
                    let len = file.metadata()?.len();
                    if known != Some(len) {
                        file.sync_all()?;
                        synced += 1;
                    }
                    len
                }
                // sled removed it since the listing: a blob it no longer needs.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            present.insert(name, len);
        }
        self.synced = present;
        if synced > 0 {
            File::open(&self.dir)?.sync_all()?;
            debug!(files = synced, "blob files synced");
        }
        Ok(synced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sled puts a value over 128 KiB in a blob file, and `sync_new` syncs each such
    /// file once, including files it finds at its first call.
    #[test]
    fn syncs_each_new_blob_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let mut blobs = Blobs::new(dir.path());
        db.insert("small", vec![1; 1024]).unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 0, "a small value makes no blob");

        db.insert("before", vec![2; 200 * 1024]).unwrap();
        let mut fresh = Blobs::new(dir.path());
        assert_eq!(fresh.sync_new().unwrap(), 1, "found at the first call");

        assert_eq!(blobs.sync_new().unwrap(), 1, "a large value makes a blob");
        assert_eq!(blobs.sync_new().unwrap(), 0, "synced once");
        db.insert("after", vec![3; 200 * 1024]).unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 1);
        blobs.flush(&db).unwrap();

        drop(db);
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        assert_eq!(db.get("after").unwrap().unwrap().len(), 200 * 1024);
    }

    /// A file synced while another thread was still writing it is synced again once it
    /// has grown.
    #[test]
    fn a_file_that_grew_since_its_sync_is_synced_again() {
        use std::io::Write;

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BLOBS_DIR)).unwrap();
        let path = dir.path().join(BLOBS_DIR).join("42");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"crc").unwrap();
        let mut blobs = Blobs::new(dir.path());
        assert_eq!(blobs.sync_new().unwrap(), 1);
        assert_eq!(blobs.sync_new().unwrap(), 0);
        file.write_all(b"the rest").unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 1, "grown since");
        assert_eq!(blobs.sync_new().unwrap(), 0);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 0, "gone");
        assert!(blobs.synced.is_empty());
    }

    /// A database without a blob directory yet has nothing to sync.
    #[test]
    fn no_directory_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Blobs::new(dir.path()).sync_new().unwrap(), 0);
    }
}
