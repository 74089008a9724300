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
//! skipped instead). accessd would come back at an older revision, had its change log
//! not redone what sled dropped (`ChangeLog::pending`).
//!
//! [`Blobs::flush`] therefore fsyncs every blob file created or written since it last
//! looked, then the directory, then has sled flush, then looks once more. The blobs
//! that a write makes are written while its message is logged, in the `apply_batch`
//! that logs it, so they are on disk before the flush that acknowledges the write. The
//! second look catches blobs that another thread was writing during the first: the
//! flush waits for every message it makes durable to be fully logged, blob included.
//! The committer also looks every [`IDLE_SYNC`] while no write comes.
//!
//! A look costs one `read` when nothing was written: an inotify watch on `blobs/` names
//! the files created or written since the last look, however many the directory holds
//! (a database of large workspaces keeps thousands). The directory is listed whole only
//! at the first look, after the kernel dropped events, or where it refuses a watch.
//!
//! What is left, because sled gives no hook to close it, is below. What it could cost is
//! bounded by the change log, which redoes at open every entry the state lacks
//! (`ChangeLog::pending`, `writer::redo`): a write sled drops comes back as long as the log
//! still holds it (the newest `--change-log-mb`, 64 MiB by default; a gap stops the open;
//! with 0 there is no log).
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
    collections::{HashMap, HashSet},
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use inotify::{EventMask, Inotify, WatchMask};
use tracing::{debug, warn};

use super::StoreError;

/// sled's directory of blob files, in the data directory.
const BLOBS_DIR: &str = "blobs";

/// How often the committer syncs new blob files while no write comes: well within the
/// 500 ms after which sled's flusher makes durable what it logged meanwhile.
pub const IDLE_SYNC: Duration = Duration::from_millis(100);

/// The events that mean a file has bytes that may not be on disk yet.
const WRITTEN: WatchMask = WatchMask::CREATE
    .union(WatchMask::MODIFY)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::MOVED_TO);

/// How the next look finds the files to sync.
#[derive(Debug)]
enum Watch {
    /// Not set up yet: the first look sets the watch up, then lists the directory.
    Unset,
    /// The kernel names what was written.
    Events(Inotify),
    /// The kernel refused a watch: every look lists the directory.
    Listing,
}

/// The blob files of one database, and which of them are known to be durable.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    watch: Watch,
    /// Whether the next look lists the directory although the watch is up: the kernel
    /// dropped events.
    overflowed: bool,
    /// Without a watch: the files synced so far, with the length each had then, so that
    /// a file still being written is synced again once it has grown.
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
            watch: Watch::Unset,
            overflowed: false,
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

    /// Fsyncs the blob files created or written since the last look, then the
    /// directory if there were any; returns how many.
    pub fn sync_new(&mut self) -> io::Result<usize> {
        #[cfg(test)]
        if self.fail {
            return Err(io::Error::other("failing as the test asked"));
        }
        if matches!(self.watch, Watch::Unset) {
            if !self.dir.is_dir() {
                // sled makes the directory at open; nothing to sync until it has.
                return Ok(0);
            }
            self.watch = match Inotify::init().and_then(|inotify| {
                inotify.watches().add(&self.dir, WRITTEN)?;
                Ok(inotify)
            }) {
                Ok(inotify) => Watch::Events(inotify),
                Err(err) => {
                    warn!(%err, "no inotify watch on sled's blob files; listing them instead");
                    Watch::Listing
                }
            };
            // Whatever was written before the watch: an earlier process's files.
            self.overflowed = true;
        }
        let names = match &mut self.watch {
            Watch::Events(inotify) => {
                let mut names = HashSet::new();
                let mut buffer = [0; 4096];
                loop {
                    match inotify.read_events(&mut buffer) {
                        Ok(events) => {
                            for event in events {
                                if event.mask.contains(EventMask::Q_OVERFLOW) {
                                    self.overflowed = true;
                                }
                                if let Some(name) = event.name {
                                    names.insert(name.to_owned());
                                }
                            }
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err),
                    }
                }
                if std::mem::take(&mut self.overflowed) {
                    self.list()?.into_keys().collect()
                } else {
                    names
                }
            }
            Watch::Listing => {
                let listed = self.list()?;
                let grown = listed
                    .iter()
                    .filter(|(name, len)| self.synced.get(*name) != Some(len))
                    .map(|(name, _)| name.clone())
                    .collect();
                self.synced = listed;
                grown
            }
            Watch::Unset => HashSet::new(),
        };
        let mut synced = 0;
        for name in names {
            match File::open(self.dir.join(&name)) {
                Ok(file) => file.sync_all()?,
                // sled removed it since: a blob it no longer needs.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            }
            synced += 1;
        }
        if synced > 0 {
            File::open(&self.dir)?.sync_all()?;
            debug!(files = synced, "blob files synced");
        }
        Ok(synced)
    }

    /// Every file of the directory, with its length.
    fn list(&self) -> io::Result<HashMap<OsString, u64>> {
        let mut listed = HashMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            match entry.metadata() {
                Ok(metadata) => {
                    listed.insert(entry.file_name(), metadata.len());
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(listed)
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
    /// has grown; a file that went is not synced. `listing` runs the same without a
    /// watch, as where the kernel refuses one.
    fn a_file_that_grew_since_its_sync_is_synced_again(listing: bool) {
        use std::io::Write;

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BLOBS_DIR)).unwrap();
        let path = dir.path().join(BLOBS_DIR).join("42");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"crc").unwrap();
        let mut blobs = Blobs::new(dir.path());
        if listing {
            blobs.watch = Watch::Listing;
        }
        assert_eq!(blobs.sync_new().unwrap(), 1, "there before the first look");
        assert_eq!(blobs.sync_new().unwrap(), 0);
        file.write_all(b"the rest").unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 1, "grown since");
        assert_eq!(blobs.sync_new().unwrap(), 0);
        std::fs::write(dir.path().join(BLOBS_DIR).join("43"), b"whole").unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 1, "a new one");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(blobs.sync_new().unwrap(), 0, "gone");
        assert_eq!(
            matches!(blobs.watch, Watch::Events(_)),
            !listing,
            "the kernel gave a watch"
        );
    }

    #[test]
    fn a_file_that_grew_is_synced_again_as_the_watch_tells() {
        a_file_that_grew_since_its_sync_is_synced_again(false);
    }

    #[test]
    fn a_file_that_grew_is_synced_again_as_listing_tells() {
        a_file_that_grew_since_its_sync_is_synced_again(true);
    }

    /// A database without a blob directory yet has nothing to sync.
    #[test]
    fn no_directory_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Blobs::new(dir.path()).sync_new().unwrap(), 0);
    }
}
