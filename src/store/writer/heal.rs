//! Taking writes again after the data volume failed one, without a restart.
//!
//! Once a write fails, sled answers every later call with that error, so the writer
//! lets go of the database and its files and refuses writes meanwhile (the store
//! refuses them before they are queued; this loop answers those already queued). Every
//! [`PROBE_EVERY`] it writes and syncs a probe file of [`PROBE_BYTES`]; once that
//! succeeds it opens the data directory as a start-up does (`Shared::reopen`: leftovers
//! removed, the change log read back, the state loaded and redone), and takes writes
//! again only if the state it reads is the state last published, which is what was
//! acknowledged. A group whose change log lines became durable was acknowledged (the
//! redo brings it back); one whose lines did not was refused, and its lines are cut
//! off the log before anything reads it. A state that differs cannot be explained
//! without guessing: the writer says so and refuses writes until a restart.

use std::{
    fs::{self, File},
    io::Write as _,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::mpsc::{self, error::TryRecvError};
use tracing::{error, info, warn};

use super::{Failure, Parts, Request, Shared, Writer};
use crate::store::{
    CHANGE_LOG_DIR, Snapshot, StoreError,
    change_log::ChangeLog,
    leftovers::SPACE_PROBE,
    writes::{Refusal, Until, WriteState},
};

/// How often the writer looks whether the data volume takes writes again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The size of the probe file: room for a group's log lines and sled's flush of it.
const PROBE_BYTES: usize = 1 << 20;

/// The longest wait between two attempts to open the data directory again, which reads
/// all of it: attempts that fail back off up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often queued requests are answered while writes are refused.
const ANSWER_EVERY: Duration = Duration::from_millis(50);

/// Refuses writes until the data directory is open again and holds what was
/// acknowledged; then returns the writer to serve with. `None` once every sender is
/// dropped (the store closes).
pub fn heal(
    shared: Shared,
    failure: Failure,
    requests: &mut mpsc::Receiver<Request>,
) -> Option<Writer> {
    let mut refusal = Refusal::of(&failure.error);
    shared
        .state
        .send_replace(WriteState::Refused(refusal.clone()));
    let mut uncut = failure.uncut;
    let mut backoff = PROBE_EVERY;
    let mut next = Instant::now() + PROBE_EVERY;
    loop {
        loop {
            match requests.try_recv() {
                Ok(request) => {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Refused(refusal.clone())));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return None,
            }
        }
        if refusal.until == Until::Healed && Instant::now() >= next {
            next = Instant::now() + PROBE_EVERY;
            if probe(&shared.dir).is_ok() {
                match reopen(&shared, &mut uncut) {
                    Ok(parts) => {
                        info!(
                            revision = shared.published.load().revision,
                            "the data volume takes writes again, and the data directory \
                             holds what was acknowledged: writes resumed"
                        );
                        shared.state.send_replace(WriteState::Taking);
                        return Some(Writer { shared, parts });
                    }
                    Err(Reopen::NotYet(err)) => {
                        warn!(%err, "the data directory cannot be opened again yet");
                        refusal = Refusal {
                            until: Until::Healed,
                            ..Refusal::of(&err)
                        };
                        shared
                            .state
                            .send_replace(WriteState::Refused(refusal.clone()));
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        next = Instant::now() + backoff;
                    }
                    Err(Reopen::Differs(detail)) => {
                        refusal = Refusal {
                            detail,
                            until: Until::Restart,
                            ..refusal
                        };
                        error!(%refusal, "writes are refused until accessd is restarted");
                        shared
                            .state
                            .send_replace(WriteState::Refused(refusal.clone()));
                    }
                }
            }
        }
        std::thread::sleep(ANSWER_EVERY);
    }
}

/// Why the data directory was not taken back.
enum Reopen {
    /// It could not be opened: try again later.
    NotYet(StoreError),
    /// It holds something other than what was acknowledged.
    Differs(String),
}

/// Writes, syncs and removes a probe file in `dir`: whether the volume takes writes.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(SPACE_PROBE);
    let written = File::create(&path).and_then(|mut file| {
        file.write_all(&[0; PROBE_BYTES])?;
        file.sync_all()
    });
    let removed = fs::remove_file(&path);
    written.and(removed)
}

/// Cuts off the change log what a refused group left there, opens the data directory
/// again and checks that it holds the state last published.
fn reopen(shared: &Shared, uncut: &mut Option<super::AppendMark>) -> Result<Parts, Reopen> {
    if let Some(mark) = *uncut {
        let log_dir = shared.dir.join(CHANGE_LOG_DIR);
        ChangeLog::open(&log_dir, shared.config.retention())
            .and_then(|mut log| log.cut_back(mark).map_err(StoreError::from))
            .map_err(Reopen::NotYet)?;
        *uncut = None;
    }
    let (parts, snapshot) =
        (shared.reopen)(&shared.dir, &shared.catalog, &shared.config).map_err(Reopen::NotYet)?;
    let published = shared.published.load_full();
    match differences(&published, &snapshot) {
        None => Ok(parts),
        Some(detail) => Err(Reopen::Differs(detail)),
    }
}

/// How the state read back differs from the state published, if it does.
fn differences(published: &Arc<Snapshot>, read: &Snapshot) -> Option<String> {
    if read.revision != published.revision {
        return Some(format!(
            "the data directory is at revision {}, the last acknowledged is {}",
            read.revision, published.revision
        ));
    }
    let differing = published
        .workspaces
        .iter()
        .filter(|(id, ws)| read.workspaces.get(id) != Some(*ws))
        .count()
        + read
            .workspaces
            .iter()
            .filter(|(id, _)| published.workspaces.get(id).is_none())
            .count();
    (differing > 0).then(|| {
        format!(
            "at revision {}, {differing} workspaces differ from what was acknowledged",
            read.revision
        )
    })
}
