//! The change log's files checked against one another and against the state: segments
//! named by their first revision, entries in sequence with no gap, write groups ended
//! where their entries end, and the log's last whole group beside the state's revision.
//! What a crash leaves at the very end is noted, as the next open cuts it.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
};

use serde::Deserialize;

use super::{LogExtent, Verified};
use crate::{
    model::Catalog,
    store::{
        CHANGE_LOG_DIR, StoreError,
        change_log::{
            SEGMENT_EXTENSION,
            format::{ReadError, read_line},
        },
    },
};

/// Where a line stands in the sequence of entries, read without the catalog.
#[derive(Debug, Clone, Copy, Deserialize)]
struct Position {
    revision: u64,
    part: u64,
    parts: u64,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    end: bool,
}

impl Position {
    /// The revision logged before this entry.
    fn after(&self) -> u64 {
        self.after.unwrap_or(self.revision.saturating_sub(1))
    }

    /// Whether this is its entry's last line.
    fn last_part(&self) -> bool {
        self.part + 1 == self.parts
    }
}

/// The log read so far.
#[derive(Default)]
struct Sequence {
    previous: Option<Position>,
    first_after: Option<u64>,
    extent: LogExtent,
    /// Where the lines after the last whole group start, if any follow it.
    unfinished: Option<(String, u64)>,
}

/// Checks the change log in `dir` against the state's revision, `verified.revision`.
pub fn check(dir: &Path, catalog: &Catalog, verified: &mut Verified) -> Result<(), StoreError> {
    if !dir.is_dir() {
        verified.note(
            CHANGE_LOG_DIR,
            "no change log directory: the log holds nothing",
        );
        return Ok(());
    }
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let first = name
            .to_str()
            .and_then(|name| name.strip_suffix(SEGMENT_EXTENSION))
            .and_then(|stem| stem.strip_suffix('.'))
            .and_then(|stem| stem.parse::<u64>().ok());
        match first {
            Some(first) => segments.push((first, name.to_string_lossy().into_owned())),
            None => verified.note(
                format!("{CHANGE_LOG_DIR}/{}", name.to_string_lossy()),
                "not a segment file: accessd ignores it",
            ),
        }
    }
    segments.sort();
    let mut sequence = Sequence::default();
    sequence.extent.segments = segments.len();
    let count = segments.len();
    for (index, (first, name)) in segments.into_iter().enumerate() {
        let mut reader = BufReader::new(fs::File::open(dir.join(&name))?);
        let mut line = Vec::new();
        let mut number = 0_u64;
        let mut first_line = true;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            number += 1;
            let place = format!("{CHANGE_LOG_DIR}/{name} line {number}");
            let at_end = index + 1 == count && reader.fill_buf()?.is_empty();
            sequence.line(&place, &line, at_end, catalog, verified);
            if first_line
                && let Ok(position) = serde_json::from_slice::<Position>(&line)
                && position.revision != first
            {
                verified.violation(
                    &place,
                    format!(
                        "the file is named for revision {first} but starts with revision {}",
                        position.revision
                    ),
                );
            }
            first_line = false;
        }
    }
    sequence.finish(verified);
    Ok(())
}

impl Sequence {
    /// Reads one line; `at_end` if it is the log's last.
    fn line(
        &mut self,
        place: &str,
        line: &[u8],
        at_end: bool,
        catalog: &Catalog,
        verified: &mut Verified,
    ) {
        let damaged = |verified: &mut Verified, what: &str| {
            if at_end {
                verified.note(
                    place,
                    format!(
                        "{what} at the end of the log (a crash's leftover): the next open cuts it"
                    ),
                );
            } else {
                verified.violation(place, format!("{what}, and lines follow it"));
            }
        };
        if line.last() != Some(&b'\n') {
            damaged(verified, "a line without its newline");
            return;
        }
        let position = match serde_json::from_slice::<Position>(line) {
            Ok(position) => position,
            Err(e) => {
                damaged(verified, &format!("a garbled line ({e})"));
                return;
            }
        };
        match read_line(catalog, line) {
            Ok(_) => {}
            Err(ReadError::Malformed(why)) => {
                damaged(verified, &format!("a garbled line ({why})"));
                return;
            }
            Err(ReadError::Unknown(why)) if position.revision > verified.revision => {
                verified.violation(
                    place,
                    format!(
                        "revision {} is past the state's and cannot be redone: {why}; open it \
                         with the role catalog it was written with",
                        position.revision
                    ),
                );
            }
            Err(ReadError::Unknown(why)) => verified.note(
                place,
                format!(
                    "revision {}: {why} (the catalog does not have it)",
                    position.revision
                ),
            ),
        }
        if position.part >= position.parts {
            verified.violation(
                place,
                format!(
                    "part {} of an entry of {} parts",
                    position.part, position.parts
                ),
            );
            return;
        }
        if position.end && !position.last_part() {
            verified.violation(
                place,
                format!(
                    "revision {} ends its write group at part {} of {}",
                    position.revision, position.part, position.parts
                ),
            );
        }
        match self.previous {
            None if position.part == 0 => {
                self.first_after = Some(position.after());
                self.extent.first_revision = Some(position.revision);
            }
            None => verified.violation(
                place,
                format!(
                    "the log starts with part {} of revision {}",
                    position.part, position.revision
                ),
            ),
            Some(previous) if !previous.last_part() => {
                if position.revision != previous.revision || position.part != previous.part + 1 {
                    verified.violation(
                        place,
                        format!(
                            "revision {} stops after part {} of {}: revision {} part {} follows",
                            previous.revision,
                            previous.part,
                            previous.parts,
                            position.revision,
                            position.part
                        ),
                    );
                }
            }
            Some(previous) => {
                if position.part != 0
                    || position.after() != previous.revision
                    || position.revision <= previous.revision
                {
                    verified.violation(
                        place,
                        format!(
                            "revision {} (part {}, following revision {}) comes after revision \
                             {}: a gap, an overlap or lines out of order",
                            position.revision,
                            position.part,
                            position.after(),
                            previous.revision
                        ),
                    );
                }
            }
        }
        if position.end && position.last_part() {
            self.extent.last_revision = Some(position.revision);
            self.unfinished = None;
        } else if self.unfinished.is_none() {
            self.unfinished = Some((place.to_owned(), position.revision));
        }
        self.previous = Some(position);
    }

    /// Checks the end of the log against the state's revision.
    fn finish(self, verified: &mut Verified) {
        let state = verified.revision;
        if let Some((place, revision)) = &self.unfinished {
            if *revision > state {
                verified.note(
                    place,
                    "a write group left unfinished at the end of the log (a crash's leftover, \
                     never acknowledged): the next open cuts it",
                );
            } else {
                verified.violation(
                    place,
                    format!(
                        "a write group left unfinished at revision {revision}, which the state \
                         (at {state}) holds"
                    ),
                );
            }
        }
        match (self.first_after, self.extent.last_revision) {
            (Some(first_after), Some(_)) if first_after > state => verified.violation(
                CHANGE_LOG_DIR,
                format!(
                    "the state is at revision {state} but the log resumes after revision \
                     {first_after}: the revisions in between are in neither"
                ),
            ),
            (_, Some(last)) if last > state => verified.note(
                CHANGE_LOG_DIR,
                format!(
                    "revisions {} to {last} are in the log but not yet in the state: the next \
                     open redoes them",
                    state + 1
                ),
            ),
            (_, Some(last)) if last < state => verified.violation(
                CHANGE_LOG_DIR,
                format!(
                    "the state is at revision {state}, ahead of the log's last write group \
                     (revision {last}): the log lost writes the state holds"
                ),
            ),
            _ => {}
        }
        verified.change_log = self.extent;
    }
}
