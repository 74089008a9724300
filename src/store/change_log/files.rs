//! The change log's segment files: appended to and made durable, started anew once the
//! current one holds an eighth of the budget, deleted oldest first as the retention
//! says, and cut where recovery says. Knows bytes, lines and when they were written, not
//! what they mean.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::warn;

use super::{format::GroupLines, retention::Retention, times};
use crate::store::StoreError;

/// The extension of segment files.
pub const SEGMENT_EXTENSION: &str = "jsonl";

/// One segment file: the first revision it holds (its name), its size, and when its
/// newest entry was made.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// The revision of its first line.
    pub first: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// When its newest entry was made, in milliseconds since the Unix epoch; 0 if
    /// unknown.
    pub newest_unix_millis: u64,
}

/// The change log's files and how much they hold; owned by the writer.
pub struct ChangeLog {
    dir: PathBuf,
    /// What is kept.
    retention: Retention,
    /// Oldest first; the last one is appended to.
    segments: Vec<Segment>,
    /// The last segment, open for appending, once written to since open.
    current: Option<File>,
    /// Where to cut back to after a failed append that could not be cut off yet.
    uncut: Option<AppendMark>,
}

/// Where the log stood before an append: the segment appended to and its size then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendMark {
    /// The first revision of the segment appended to (the group's, if it started one).
    first: u64,
    /// The segment's size before the append.
    bytes: u64,
}

impl ChangeLog {
    /// Opens the change log in `dir` (created if missing), keeping what `retention`
    /// says. What it holds past the state is read back with [`ChangeLog::pending`].
    pub fn open(dir: &Path, retention: Retention) -> Result<Self, StoreError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            // The new directory's name must survive a crash, as its files' names do.
            if let Some(parent) = dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        let mut log = Self {
            dir: dir.to_owned(),
            retention,
            segments: Vec::new(),
            current: None,
            uncut: None,
        };
        log.segments = log.list()?;
        Ok(log)
    }

    /// Whether any segment holds a byte: a log of writes, which a new database lacks.
    pub fn holds_entries(&self) -> bool {
        self.segments.iter().any(|segment| segment.bytes > 0)
    }

    /// Whether writes are logged (a budget of 0 logs nothing).
    pub fn enabled(&self) -> bool {
        self.retention.logs()
    }

    /// Appends a write group's lines to the current segment (starting a new one if it
    /// is full) and makes them durable. When that fails, the lines are cut off again,
    /// since the group's callers hear that it failed and it must not be redone at the
    /// next open; where even the cut fails, [`ChangeLog::uncut`] says where to cut.
    pub fn append(&mut self, group: &GroupLines) -> Result<(), StoreError> {
        if group.is_empty() || !self.enabled() {
            return Ok(());
        }
        let full = self
            .segments
            .last()
            .is_none_or(|last| last.bytes >= self.retention.segment_bytes());
        let mark = match self.segments.last() {
            Some(last) if !full => AppendMark {
                first: last.first,
                bytes: last.bytes,
            },
            _ => AppendMark {
                first: group.first_revision(),
                bytes: 0,
            },
        };
        let appended = self.try_append(group, full);
        if appended.is_err() {
            self.uncut = Some(mark);
            match self.cut_back(mark) {
                Ok(()) => self.uncut = None,
                Err(err) => warn!(%err, "cannot cut a failed write group off the change log yet"),
            }
        }
        appended
    }

    /// Where the log must be cut back to, after an append that failed and could not be
    /// undone at once.
    pub fn uncut(&self) -> Option<AppendMark> {
        self.uncut
    }

    /// Cuts the log back to where it stood before a failed append: the file it was
    /// appended to is truncated there (removed, if the append started it), and any
    /// later file removed.
    pub fn cut_back(&mut self, mark: AppendMark) -> io::Result<()> {
        self.current = None;
        match self.segments.iter().position(|s| s.first == mark.first) {
            Some(index) => self.cut(index, mark.bytes).map(drop),
            None => {
                remove_if_present(&self.path(mark.first))?;
                File::open(&self.dir)?.sync_all()
            }
        }
    }

    fn try_append(&mut self, group: &GroupLines, full: bool) -> Result<(), StoreError> {
        let first = group.first_revision();
        if full {
            self.segments.push(Segment {
                first,
                bytes: 0,
                newest_unix_millis: 0,
            });
            self.current = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(first))?,
            );
            // The new file's name must survive a crash as well as its contents.
            File::open(&self.dir)?.sync_all()?;
        }
        let file = match &mut self.current {
            Some(file) => file,
            None => {
                let last = self.segments.last().map_or(first, |last| last.first);
                let path = self.path(last);
                self.current
                    .insert(OpenOptions::new().append(true).open(path)?)
            }
        };
        file.write_all(group.bytes())?;
        file.sync_data()?;
        if let Some(last) = self.segments.last_mut() {
            last.bytes += group.bytes().len() as u64;
            last.newest_unix_millis = last.newest_unix_millis.max(group.newest_unix_millis());
        }
        Ok(())
    }

    /// Deletes the oldest segments while the retention says they go; never the one
    /// being appended to. A file that cannot be deleted is left, and reported. The log
    /// grows only by writes, so trimming after each and at open bounds it with no
    /// timer; entries that expire while no write comes stay until the next.
    pub fn trim(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut held: u64 = self.segments.iter().map(|s| s.bytes).sum();
        while self.segments.len() > 1
            && self.segments.first().is_some_and(|oldest| {
                self.retention
                    .drops_oldest(held, oldest.newest_unix_millis, now)
            })
        {
            let oldest = self.segments.remove(0);
            held -= oldest.bytes;
            if let Err(err) = fs::remove_file(self.path(oldest.first)) {
                warn!(%err, first = oldest.first, "cannot delete a change log file");
            }
        }
    }

    /// Deletes every segment, durably: the log of data that is being replaced.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.current = None;
        for segment in std::mem::take(&mut self.segments) {
            fs::remove_file(self.path(segment.first))?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Keeps what the retention says, deleting all of the log with a budget of 0: at
    /// open once nothing is left to redo, or once the store has redone it.
    pub fn settle(&mut self) {
        if self.enabled() {
            self.trim();
            return;
        }
        for segment in std::mem::take(&mut self.segments) {
            if let Err(err) = fs::remove_file(self.path(segment.first)) {
                warn!(%err, first = segment.first, "cannot delete a change log file");
            }
        }
    }

    /// The segment files, oldest first.
    pub(super) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path of the segment whose first revision is `first`.
    pub(super) fn path(&self, first: u64) -> PathBuf {
        self.dir.join(segment_name(first))
    }

    /// Cuts the log at byte `offset` of segment `index`: that file is truncated there
    /// (removed whole at offset 0: its name says it starts with a revision it no longer
    /// holds), and every later file removed. Returns how many files were removed.
    pub(super) fn cut(&mut self, index: usize, offset: u64) -> io::Result<usize> {
        let keep = if offset == 0 { index } else { index + 1 };
        let removed = self.segments.split_off(keep.min(self.segments.len()));
        for segment in &removed {
            remove_if_present(&self.path(segment.first))?;
        }
        if let Some(segment) = self.segments.last_mut().filter(|_| offset > 0) {
            let path = self.dir.join(segment_name(segment.first));
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(offset)?;
            file.sync_all()?;
            segment.bytes = offset;
            // The lines cut off may have been its newest.
            segment.newest_unix_millis = times::newest_unix_millis(&path)?;
        }
        File::open(&self.dir)?.sync_all()?;
        Ok(removed.len())
    }

    /// Makes the segments from `index` on durable, and the directory: lines a kill may
    /// have left written but not synced.
    pub(super) fn sync_from(&self, index: usize) -> io::Result<()> {
        for segment in self.segments.iter().skip(index) {
            File::open(self.path(segment.first))?.sync_all()?;
        }
        File::open(&self.dir)?.sync_all()
    }

    /// The segment files in the directory, oldest first, each with the time of its
    /// last whole line.
    fn list(&self) -> Result<Vec<Segment>, StoreError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let first = name
                .to_str()
                .and_then(|name| name.strip_suffix(SEGMENT_EXTENSION))
                .and_then(|stem| stem.strip_suffix('.'))
                .and_then(|stem| stem.parse::<u64>().ok());
            if let Some(first) = first {
                segments.push(Segment {
                    first,
                    bytes: entry.metadata()?.len(),
                    newest_unix_millis: times::newest_unix_millis(&entry.path())?,
                });
            }
        }
        segments.sort_by_key(|segment| segment.first);
        Ok(segments)
    }
}

/// Removes a file, which an append that failed may not have created.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        removed => removed,
    }
}

/// The name of the segment file whose first revision is `first`: zero-padded, so that
/// names sort as revisions.
pub fn segment_name(first: u64) -> String {
    format!("{first:020}.{SEGMENT_EXTENSION}")
}
