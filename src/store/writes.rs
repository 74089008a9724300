//! Whether the store takes writes, and why not. A write the data volume fails stops the
//! writer; it takes writes again on its own once the cause is gone and what the data
//! directory holds has been matched with what was acknowledged (`writer::heal`).

use std::io;

use super::StoreError;

/// Whether writes are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteState {
    /// Writes are taken.
    Taking,
    /// Writes are refused, for the reason given; checks are still answered.
    Refused(Refusal),
}

/// Why writes are refused, and until when.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Refusal {
    /// What failed.
    pub cause: Cause,
    /// The error the data volume gave, or what did not match.
    pub detail: String,
    /// What ends the refusal.
    pub until: Until,
}

/// What made the data volume fail a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The volume is full, or the user's quota on it is spent.
    NoSpace,
    /// Any other failure to write or sync.
    Io,
}

/// What ends a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The store retries by itself and takes writes again once it succeeds.
    Healed,
    /// What the data directory holds could not be matched with what was acknowledged:
    /// only a restart, which reads the directory afresh, takes writes again.
    Restart,
}

impl Refusal {
    /// The refusal a failed write leads to: healed on its own, so far.
    pub fn of(err: &StoreError) -> Self {
        Self {
            cause: if is_no_space(err) {
                Cause::NoSpace
            } else {
                Cause::Io
            },
            detail: err.to_string(),
            until: Until::Healed,
        }
    }

    /// What a refused caller is told.
    fn message(&self) -> String {
        let what = match self.cause {
            Cause::NoSpace => "no space left on the data volume".to_owned(),
            Cause::Io => format!("the data volume failed a write ({})", self.detail),
        };
        match self.until {
            Until::Healed => format!(
                "{what}: writes are refused, and resume by themselves once {} \
                 (checks are still answered)",
                match self.cause {
                    Cause::NoSpace => "space is freed",
                    Cause::Io => "the volume takes writes again",
                }
            ),
            Until::Restart => format!(
                "{what}; since then, what the data directory holds did not match what was \
                 acknowledged ({}): writes are refused until accessd is restarted",
                self.detail
            ),
        }
    }
}

/// Whether `err` comes from a full volume (ENOSPC) or a spent quota (EDQUOT).
pub fn is_no_space(err: &StoreError) -> bool {
    let io = match err {
        StoreError::Database(sled::Error::Io(io))
        | StoreError::ChangeLog(io)
        | StoreError::Blobs(io) => io,
        StoreError::Refused(refusal) => return refusal.cause == Cause::NoSpace,
        _ => return false,
    };
    io_is_no_space(io)
}

/// Whether an I/O error says the volume is full or the quota spent.
pub fn io_is_no_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || err.to_string().contains("No space left on device")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_volume_is_told_apart_from_other_failures() {
        let full = StoreError::ChangeLog(io::Error::from_raw_os_error(28));
        let refusal = Refusal::of(&full);
        assert_eq!(refusal.cause, Cause::NoSpace);
        assert!(
            refusal
                .to_string()
                .starts_with("no space left on the data volume: writes are refused"),
            "{refusal}"
        );
        // sled keeps its first I/O error and answers every later call with a copy of
        // it, made from its kind and text.
        let copied = io::Error::new(io::ErrorKind::StorageFull, "copied");
        assert!(is_no_space(&StoreError::Database(sled::Error::Io(copied))));
        let quota = StoreError::Blobs(io::Error::from_raw_os_error(122));
        assert_eq!(Refusal::of(&quota).cause, Cause::NoSpace);
        let other = StoreError::ChangeLog(io::Error::from_raw_os_error(5));
        let refusal = Refusal::of(&other);
        assert_eq!(refusal.cause, Cause::Io);
        assert!(
            refusal.to_string().contains("Input/output error"),
            "{refusal}"
        );
    }

    #[test]
    fn a_refusal_that_needs_a_restart_says_so() {
        let refusal = Refusal {
            cause: Cause::NoSpace,
            detail: "revision 7 on disk, 6 acknowledged".into(),
            until: Until::Restart,
        };
        let told = refusal.to_string();
        assert!(
            told.contains("revision 7 on disk, 6 acknowledged"),
            "{told}"
        );
        assert!(told.ends_with("until accessd is restarted"), "{told}");
    }
}
