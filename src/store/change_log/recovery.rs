//! Reading the change log back at open: the whole write groups past the state's
//! revision, which the store redoes before it serves, and where to cut what a crash
//! leaves after them. Damage that acknowledged writes follow stops the open instead.

use std::{fs, path::Path};

use tracing::{info, warn};

use super::{
    ChangeLog,
    format::{GROUP_END, ReadError, line_position, read_line},
};
use crate::{
    model::{Catalog, Change},
    store::StoreError,
};

/// Entries of the log the state lacks, by revision, in order: what to redo at open.
pub type Pending = Vec<(u64, Vec<Change>)>;

/// Where a line starts: the index of its segment, and its offset in the file.
type Position = (usize, u64);

impl ChangeLog {
    /// The write groups past `revision` (the state's) that the log holds whole, in
    /// order: what the state lacks, to be redone (a crash between a group's log and its
    /// state leaves one; a database that lost writes it had acknowledged, more). A group
    /// is whole when its last line, which says it ends (`"end":true`), is there with
    /// every entry before it: the commands of a request stay all or nothing.
    ///
    /// What follows the whole groups is cut off when it is what a crash leaves: a torn or
    /// garbled line, an entry or a group left unfinished, lines out of sequence, none of
    /// it ever acknowledged. A group that cannot be redone (a name the catalog lacks), a
    /// gap between the state and the log, or damage followed by whole groups stops the
    /// open: serving without writes that were made would serve stale access. The files
    /// holding what is to be redone are synced first, so that the state never gets ahead
    /// of its log.
    pub fn pending(&mut self, catalog: &Catalog, revision: u64) -> Result<Pending, StoreError> {
        let first = self
            .segments()
            .iter()
            .rposition(|s| s.first <= revision)
            .unwrap_or(0);
        let mut scan = Scan::new(catalog, revision);
        for (index, segment) in self.segments().iter().enumerate().skip(first) {
            let path = self.path(segment.first);
            let contents = fs::read(&path)?;
            let mut offset = 0;
            for line in contents.split_inclusive(|b| *b == b'\n') {
                scan.line((index, offset), line, &path)?;
                offset += line.len() as u64;
            }
        }
        let (pending, cut) = scan.finish();
        if let Some(((index, offset), why)) = cut {
            let files = self.cut(index, offset)?;
            warn!(
                files,
                revision = revision + pending.len() as u64,
                why,
                "change log lines past its whole write groups cut off"
            );
        }
        if let Some((last, _)) = pending.last() {
            // A kill may have left these lines written but not synced: they must be on
            // disk before the state that redoes them is.
            self.sync_from(first)?;
            info!(
                from = revision + 1,
                to = last,
                "change log entries the state lacks, to be redone"
            );
        }
        Ok(pending)
    }
}

/// An entry of the log read in part.
struct Partial {
    revision: u64,
    /// The part the next line must be.
    next: u64,
    changes: Vec<Change>,
}

/// The log's lines read in order, from the segment holding the state's revision.
struct Scan<'c> {
    catalog: &'c Catalog,
    /// The state's revision.
    revision: u64,
    /// The whole groups read so far.
    pending: Pending,
    /// The whole entries of the group being read, and where its first line starts.
    group: Pending,
    group_start: Option<Position>,
    partial: Option<Partial>,
    /// Where the log is cut, and why; and whether a group's end line came after it.
    cut: Option<(Position, String)>,
    ended_after_cut: bool,
    /// A line of no known shape among the state's lines: an older log kept it, unless
    /// no line of the state's follows it, and then it is damage where the redo starts.
    shapeless: Option<Position>,
}

impl<'c> Scan<'c> {
    fn new(catalog: &'c Catalog, revision: u64) -> Self {
        Self {
            catalog,
            revision,
            pending: Vec::new(),
            group: Vec::new(),
            group_start: None,
            partial: None,
            cut: None,
            ended_after_cut: false,
            shapeless: None,
        }
    }

    /// Reads the line at `at` of the file `path`.
    fn line(&mut self, at: Position, line: &[u8], path: &Path) -> Result<(), StoreError> {
        if let Some((_, why)) = &self.cut {
            // Only the last group can be unsynced, so damage is what a crash leaves
            // only if nothing follows the end of the group it is in.
            if self.ended_after_cut && !line.iter().all(u8::is_ascii_whitespace) {
                return Err(StoreError::Corrupt(format!(
                    "the change log is damaged past the state's revision {} ({why}) and \
                     whole write groups follow: `{}`",
                    self.revision,
                    path.display()
                )));
            }
            self.ended_after_cut |= line.ends_with(GROUP_END);
            return Ok(());
        }
        let torn = line.last() != Some(&b'\n');
        let position = line_position(line);
        let started = !self.pending.is_empty() || self.group_start.is_some();
        if !started && !torn {
            match position {
                Some((r, _)) if r <= self.revision => {
                    self.shapeless = None;
                    return Ok(());
                }
                None => {
                    self.shapeless.get_or_insert(at);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        if let Some(shapeless) = self.shapeless.take() {
            self.cut_at(shapeless, "a garbled line".into(), line);
            return Ok(());
        }
        let start = self.group_start.unwrap_or(at);
        if torn || position.is_none_or(|(r, _)| r <= self.revision) {
            let what = if torn { "torn" } else { "misplaced" };
            self.cut_at(start, format!("a {what} line"), line);
            return Ok(());
        }
        let read = match read_line(self.catalog, line) {
            Ok(read) => read,
            Err(ReadError::Malformed(why)) => {
                self.cut_at(start, format!("a garbled line: {why}"), line);
                return Ok(());
            }
            Err(ReadError::Unknown(why)) => {
                let why = format!(
                    "the entry of revision {} cannot be redone: {why}; start with the role \
                     catalog it was written with",
                    position.map_or(0, |(r, _)| r),
                );
                // Only a whole group must be redone; an unfinished one is cut.
                if line.ends_with(GROUP_END) {
                    return Err(StoreError::Corrupt(format!(
                        "the change log holds a write group past the state's revision {} \
                         that {why} (`{}`)",
                        self.revision,
                        path.display()
                    )));
                }
                self.cut_at(start, why, line);
                return Ok(());
            }
        };
        // The revision the next entry must follow: the last whole entry read, or the
        // state's.
        let last = self
            .group
            .last()
            .or(self.pending.last())
            .map_or(self.revision, |(revision, _)| *revision);
        if !started && read.after > last {
            return Err(StoreError::Corrupt(format!(
                "the state is at revision {} but the change log resumes after {}: \
                 revisions in between are in neither",
                self.revision, read.after
            )));
        }
        match &mut self.partial {
            None if read.after == last && read.part == 0 => {
                self.partial = Some(Partial {
                    revision: read.revision,
                    next: 1,
                    changes: read.changes,
                });
            }
            Some(p) if read.revision == p.revision && read.part == p.next => {
                p.next += 1;
                p.changes.extend(read.changes);
            }
            _ => {
                let why = format!("revision {} out of sequence", read.revision);
                self.cut_at(start, why, line);
                return Ok(());
            }
        }
        self.group_start.get_or_insert(at);
        if let Some(p) = self.partial.take_if(|p| p.next >= read.parts) {
            self.group.push((p.revision, p.changes));
            if read.end {
                self.pending.append(&mut self.group);
                self.group_start = None;
            }
        }
        Ok(())
    }

    /// Cuts the log at `at` for `why`, at `line`, which may itself end a group.
    fn cut_at(&mut self, at: Position, why: String, line: &[u8]) {
        self.cut = Some((at, why));
        self.ended_after_cut = line.ends_with(GROUP_END);
    }

    /// The whole groups read, and where to cut the log, if anywhere.
    fn finish(mut self) -> (Pending, Option<(Position, String)>) {
        if self.cut.is_none() {
            if let Some(start) = self.group_start {
                self.cut = Some((start, "a write group left unfinished".into()));
            } else if let Some(at) = self.shapeless {
                self.cut = Some((at, "a garbled last line".into()));
            }
        }
        (self.pending, self.cut)
    }
}
