//! Reading the change log as it grows, for a change stream: the whole write groups after
//! a revision, from the segment files the writer appends to, each group delivered once
//! it is published. A reader holds its file open, so trimming the log under it loses
//! nothing it has started; one that falls behind the oldest file kept is told so.

use std::{
    collections::VecDeque,
    fs::{self, File},
    io::Read as _,
    path::PathBuf,
    sync::Arc,
};

use super::{
    files::{SEGMENT_EXTENSION, segment_name},
    format::{GROUP_END, ReadError, read_line},
    times,
};
use crate::model::{Catalog, Change};

/// The changes one revision made, as the log records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEntry {
    /// The revision.
    pub revision: u64,
    /// When it was made, in milliseconds since the Unix epoch.
    pub unix_millis: u64,
    /// The command that made it.
    pub command: String,
    /// The caller that sent it, when callers are named.
    pub caller: Option<String>,
    /// The user it named as acting, if any.
    pub actor: Option<String>,
    /// Its changes, in order.
    pub changes: Vec<Change>,
}

/// A write group: entries made durable together, to be applied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedGroup {
    /// The entries after the revision the feed started from, in revision order.
    pub entries: Vec<LoggedEntry>,
}

impl LoggedGroup {
    /// The revision the group ends at.
    pub fn end_revision(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.revision)
    }
}

/// Where the log starts: its oldest entry retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStart {
    /// The entry's revision.
    pub revision: u64,
    /// When it was made, in milliseconds since the Unix epoch; 0 if its line does not
    /// say.
    pub unix_millis: u64,
}

/// Why the feed cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The revisions after the one asked for are no longer in the log.
    #[error(
        "revision {after} is older than the change log retains (it starts after revision {oldest})"
    )]
    Trimmed {
        /// The revision asked for.
        after: u64,
        /// The revision the oldest entry kept follows.
        oldest: u64,
    },
    /// The revision asked for is newer than the published state.
    #[error("revision {after} is newer than this server's revision {published}")]
    Ahead {
        /// The revision asked for.
        after: u64,
        /// The published revision.
        published: u64,
    },
    /// This server keeps no change log.
    #[error("this server keeps no change log (`--change-log-mb 0`)")]
    Disabled,
    /// The log's files could not be read.
    #[error("cannot read the change log: {0}")]
    Io(#[from] std::io::Error),
    /// A line could not be read back.
    #[error("the change log is damaged at revision {revision}: {why}")]
    Damaged {
        /// Where.
        revision: u64,
        /// What is wrong.
        why: String,
    },
}

/// The most bytes read from a file at once.
const READ_BYTES: usize = 1 << 20;
/// The most groups read ahead of delivery: a reader far behind holds a bounded part of
/// the log in memory, not all of it.
const MAX_READY: usize = 256;

/// A reader of the log's groups after a revision.
pub struct ChangeFeed {
    dir: PathBuf,
    catalog: Arc<Catalog>,
    /// Entries up to this revision are skipped: the reader holds them.
    from: u64,
    /// The last revision read (whole entries), or `from`.
    read: u64,
    /// The segment being read, and the first revision its name says.
    file: Option<(File, u64)>,
    /// Bytes of a line not yet whole.
    carry: Vec<u8>,
    /// The entries of the group being read, and the entry being read in parts.
    group: Vec<LoggedEntry>,
    partial: Option<(LoggedEntry, u64)>,
    /// Whole groups read, not yet delivered.
    ready: VecDeque<LoggedGroup>,
}

impl ChangeFeed {
    /// A feed of the groups after `after`, from the log in `dir`, where every group up to
    /// `published` is already written.
    pub fn open(
        dir: PathBuf,
        catalog: Arc<Catalog>,
        after: u64,
        published: u64,
    ) -> Result<Self, FeedError> {
        if after > published {
            return Err(FeedError::Ahead { after, published });
        }
        let mut feed = Self {
            dir,
            catalog,
            from: after,
            read: after,
            file: None,
            carry: Vec::new(),
            group: Vec::new(),
            partial: None,
            ready: VecDeque::new(),
        };
        let segments = feed.segments()?;
        // The last segment starting at or before the first revision wanted holds it.
        match segments.iter().rev().find(|first| **first <= after + 1) {
            Some(&first) => {
                feed.file = Some((File::open(feed.dir.join(segment_name(first)))?, first));
            }
            // Caught up: the next group starts a segment not written yet.
            None if after == published => {}
            None => {
                return Err(FeedError::Trimmed {
                    after,
                    oldest: segments.first().map_or(published, |first| first - 1),
                });
            }
        }
        Ok(feed)
    }

    /// The whole groups after those already returned that end at or before `published`
    /// (the groups after it may still be being written), at least one if there is one.
    pub fn next(&mut self, published: u64) -> Result<Vec<LoggedGroup>, FeedError> {
        while self.ready.len() < MAX_READY
            && self
                .ready
                .back()
                .is_none_or(|g| g.end_revision() < published)
        {
            if !self.read_more()? {
                break;
            }
        }
        let mut out = Vec::new();
        while self
            .ready
            .front()
            .is_some_and(|g| g.end_revision() <= published)
        {
            out.extend(self.ready.pop_front());
        }
        if out.is_empty() && self.read < published && self.ready.is_empty() {
            // Everything up to `published` is written before it is published: a log
            // that ends before it lacks revisions (a gap from a trim or a damaged log).
            return Err(FeedError::Trimmed {
                after: self.read,
                oldest: published,
            });
        }
        Ok(out)
    }

    /// Reads the next bytes of the log; false when there are none yet.
    fn read_more(&mut self) -> Result<bool, FeedError> {
        let Some((file, _)) = &mut self.file else {
            return self.next_segment();
        };
        let mut buffer = vec![0; READ_BYTES];
        let got = file.read(&mut buffer)?;
        if got == 0 {
            return self.next_segment();
        }
        buffer.truncate(got);
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(&buffer);
        let mut rest: &[u8] = &bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (line, after) = rest.split_at(end + 1);
            self.line(line)?;
            rest = after;
        }
        self.carry = rest.to_vec();
        Ok(true)
    }

    /// Moves to the segment after the one read, once it exists (the writer starts one
    /// only after the last is complete); false if there is none yet.
    fn next_segment(&mut self) -> Result<bool, FeedError> {
        let current = self.file.as_ref().map(|(_, first)| *first);
        let segments = self.segments()?;
        let Some(next) = segments
            .into_iter()
            .find(|first| current.is_none_or(|current| *first > current))
        else {
            return Ok(false);
        };
        let expected = self
            .partial
            .as_ref()
            .map_or(self.read, |(e, _)| e.revision - 1)
            + 1;
        if !self.carry.is_empty() || self.partial.is_some() || !self.group.is_empty() {
            return Err(FeedError::Damaged {
                revision: expected,
                why: "a segment ends inside a write group".into(),
            });
        }
        if next > expected {
            return Err(FeedError::Trimmed {
                after: self.read,
                oldest: next - 1,
            });
        }
        match File::open(self.dir.join(segment_name(next))) {
            Ok(file) => self.file = Some((file, next)),
            // Trimmed between the listing and the opening.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(FeedError::Trimmed {
                    after: self.read,
                    oldest: next,
                });
            }
            Err(err) => return Err(err.into()),
        }
        Ok(true)
    }

    /// Takes in one whole line.
    fn line(&mut self, line: &[u8]) -> Result<(), FeedError> {
        let damaged = |revision: u64, why: String| FeedError::Damaged { revision, why };
        let read = read_line(&self.catalog, line).map_err(|e| match e {
            ReadError::Malformed(why) | ReadError::Unknown(why) => damaged(self.read + 1, why),
        })?;
        let ends = line.ends_with(GROUP_END);
        if read.revision > self.from {
            match &mut self.partial {
                Some((entry, next)) if entry.revision == read.revision && *next == read.part => {
                    entry.changes.extend(read.changes);
                    *next += 1;
                }
                None if read.part == 0 => {
                    if read.after != self.read {
                        return Err(if self.read == self.from && read.after > self.from {
                            FeedError::Trimmed {
                                after: self.from,
                                oldest: read.after,
                            }
                        } else {
                            damaged(
                                read.revision,
                                format!("it follows {} where {} was read", read.after, self.read),
                            )
                        });
                    }
                    self.partial = Some((
                        LoggedEntry {
                            revision: read.revision,
                            unix_millis: read.unix_millis,
                            command: read.command,
                            caller: read.caller,
                            actor: read.actor,
                            changes: read.changes,
                        },
                        1,
                    ));
                }
                _ => {
                    return Err(damaged(read.revision, "a line out of sequence".into()));
                }
            }
            if let Some((entry, _)) = self.partial.take_if(|(_, next)| *next >= read.parts) {
                self.read = entry.revision;
                self.group.push(entry);
            }
        }
        if ends {
            if self.partial.is_some() {
                return Err(damaged(
                    read.revision,
                    "a group ends inside an entry".into(),
                ));
            }
            if !self.group.is_empty() {
                self.ready.push_back(LoggedGroup {
                    entries: std::mem::take(&mut self.group),
                });
            }
        }
        Ok(())
    }

    /// The oldest entry the log retains, if it holds any.
    pub fn oldest_retained(&self) -> Result<Option<LogStart>, FeedError> {
        loop {
            let Some(&revision) = self.segments()?.first() else {
                return Ok(None);
            };
            match times::oldest_unix_millis(&self.dir.join(segment_name(revision))) {
                Ok(unix_millis) => {
                    return Ok(Some(LogStart {
                        revision,
                        unix_millis,
                    }));
                }
                // Trimmed since it was listed: the next oldest is the start.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The first revision of each segment file, in order.
    fn segments(&self) -> Result<Vec<u64>, FeedError> {
        let mut firsts = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let first = name
                .to_str()
                .and_then(|name| name.strip_suffix(SEGMENT_EXTENSION))
                .and_then(|stem| stem.strip_suffix('.'))
                .and_then(|stem| stem.parse::<u64>().ok());
            firsts.extend(first);
        }
        firsts.sort_unstable();
        Ok(firsts)
    }
}
