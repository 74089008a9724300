//! How much of the change log is kept: the newest bytes of a budget for replicas, and
//! past it, for the audit trail, the entries younger than a retention, up to a cap.
//! Decides which segment goes; deleting it is `files`'s.

use std::time::Duration;

/// What the change log keeps, whole segments at a time, oldest deleted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest bytes kept whatever their age, for replicas; 0 keeps no log.
    budget: u64,
    /// How long an entry is kept past the budget, in milliseconds; 0 keeps none past it.
    audit_millis: u64,
    /// The most bytes kept however young the entries; never below the budget.
    cap: u64,
}

impl Retention {
    /// The newest `budget` bytes of the log, and nothing older; 0 keeps no log.
    pub fn budget(budget: u64) -> Self {
        Self {
            budget,
            audit_millis: 0,
            cap: budget,
        }
    }

    /// As well, past the budget, the entries younger than `age` (none if it is zero),
    /// as long as the log holds at most `cap` bytes in all.
    pub fn with_audit(self, age: Duration, cap: u64) -> Self {
        Self {
            audit_millis: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            cap: cap.max(self.budget),
            ..self
        }
    }

    /// Whether writes are logged.
    pub fn logs(&self) -> bool {
        self.budget > 0
    }

    /// The size at which a segment is closed and the next one started: an eighth of the
    /// budget, so that deleting the oldest file keeps between seven eighths of the
    /// budget and all of it.
    pub fn segment_bytes(&self) -> u64 {
        (self.budget / 8).max(1)
    }

    /// Whether the oldest segment goes, while the log holds `held` bytes and the
    /// segment's newest entry was made at `newest_unix_millis`, at `now_unix_millis`.
    /// The cap always wins; past the budget, a segment goes once all of it is older
    /// than the retention. A segment whose time is unknown (0) is kept for the budget
    /// alone.
    pub fn drops_oldest(&self, held: u64, newest_unix_millis: u64, now_unix_millis: u64) -> bool {
        if held > self.cap {
            return true;
        }
        held > self.budget
            && (self.audit_millis == 0
                || newest_unix_millis.saturating_add(self.audit_millis) < now_unix_millis)
    }
}
