//! Making sled's blob files durable, which sled 0.34 does not do itself.
//!
//! sled writes a log message larger than a quarter of a segment (128 KiB with the default
//! segment of 512 KiB) to a file of its own under `blobs/`, and puts only a pointer to it
//! in the log. Such a message is a large value, or a whole leaf: a leaf holds up to 17
//! values and is split by count, not by size, so 17 chunks of 8 KiB make one. sled's
//! `flush` fsyncs the log, and with it the pointer, but never the blob file
//! (`write_blob` in sled's `pagecache/blob_io.rs`). After a power loss the pointer could
//! lead to an empty or torn file, and sled refuses to open a log whose blob fails its
//! checksum.
//!
//! [`Blobs::flush`] therefore fsyncs every blob file written since its last call, and
//! then the directory, before it has sled make the log durable. A blob is written while
//! its message is logged (in the `apply_batch` or `insert` that logs it), so by the time
//! of the flush that acknowledges a write, every blob that write produced is on disk.
//!
//! What is left: sled's own flusher (every 500 ms; it also collects old segments, so it
//! stays on) may make a pointer durable in the moments between the `apply_batch` that
//! wrote its blob and this flush. A power loss in those moments can leave a pointer to a
//! torn file for a write nobody was told of.

use std::{
    collections::HashSet,
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
};

use tracing::debug;

use super::StoreError;

/// sled's directory of blob files, in the data directory.
const BLOBS_DIR: &str = "blobs";

/// The blob files of one database, and which of them are known to be durable.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    /// Names of the files fsynced so far that still exist. Empty at first, so that the
    /// first flush also syncs whatever an earlier process left unsynced.
    synced: HashSet<OsString>,
}

impl Blobs {
    /// The blob files of the sled database in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(BLOBS_DIR),
            synced: HashSet::new(),
        }
    }

    /// Makes everything written to `db` so far durable: the blob files first, then
    /// sled's log, which points at them.
    pub fn flush(&mut self, db: &sled::Db) -> Result<(), StoreError> {
        self.sync_new().map_err(StoreError::Blobs)?;
        db.flush()?;
        Ok(())
    }

    /// Fsyncs the blob files not synced before, then the directory if there were any;
    /// returns how many. One directory listing when there are none.
    fn sync_new(&mut self) -> io::Result<usize> {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut present = HashSet::with_capacity(self.synced.len());
        let mut synced = 0;
        for entry in listing {
            let name = entry?.file_name();
            if !self.synced.contains(&name) {
                match File::open(self.dir.join(&name)) {
                    Ok(file) => file.sync_all()?,
                    // sled removed it since the listing: a blob it no longer needs.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                }
                synced += 1;
            }
            present.insert(name);
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

    /// A database without a blob directory yet has nothing to sync.
    #[test]
    fn no_directory_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Blobs::new(dir.path()).sync_new().unwrap(), 0);
    }
}
