//! The change log: what each revision changed and when, for replicas and auditors, and
//! the redo log of the state. JSON lines in segment files of the data directory's
//! `change_log/` (`format`, `files`), kept as `retention` says, read back at open to
//! redo what the state lacks (`recovery`).

mod feed;
mod files;
pub(crate) mod format;
mod recovery;
mod retention;
mod times;

#[cfg(test)]
mod tests;

pub use feed::{ChangeFeed, FeedError, LoggedEntry, LoggedGroup};
pub use files::{AppendMark, ChangeLog, SEGMENT_EXTENSION};
pub use format::{Author, GroupLines};
pub use recovery::Pending;
pub use retention::Retention;
