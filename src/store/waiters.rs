//! Reads waiting for a revision (`at_least_revision`), kept by the revision they wait
//! for and woken once when it is published: a follower behind its leader may hold
//! thousands of them, and waking all of them at every revision costs more than applying
//! the revisions.

use std::{collections::BTreeMap, sync::Mutex};

use tokio::sync::oneshot;

/// The waiting reads, by the revision each waits for.
#[derive(Debug, Default)]
pub struct Waiters(Mutex<BTreeMap<u64, Vec<oneshot::Sender<()>>>>);

impl Waiters {
    /// A receiver told once `revision` is published, or `None` if `published` (read
    /// under the same lock as [`Waiters::wake`] takes after publishing) is already there.
    pub fn wait(
        &self,
        revision: u64,
        published: impl FnOnce() -> u64,
    ) -> Option<oneshot::Receiver<()>> {
        let mut waiting = self.0.lock().ok()?;
        if published() >= revision {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        waiting.entry(revision).or_default().push(sender);
        Some(receiver)
    }

    /// Wakes every read waiting for `revision` or an earlier one: call it once the state
    /// at `revision` is published.
    pub fn wake(&self, revision: u64) {
        let reached = match self.0.lock() {
            Ok(mut waiting) => {
                let later = waiting.split_off(&(revision.saturating_add(1)));
                std::mem::replace(&mut *waiting, later)
            }
            Err(_) => return,
        };
        for sender in reached.into_values().flatten() {
            let _ = sender.send(());
        }
    }

    /// Drops the waits for `revision` that gave up (their deadline passed).
    pub fn forget(&self, revision: u64) {
        if let Ok(mut waiting) = self.0.lock() {
            if let Some(senders) = waiting.get_mut(&revision) {
                senders.retain(|sender| !sender.is_closed());
                if senders.is_empty() {
                    waiting.remove(&revision);
                }
            }
        }
    }

    /// How many reads wait.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |w| w.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_woken_once_its_revision_is_published_and_not_before() {
        let waiters = Waiters::default();
        assert!(waiters.wait(3, || 3).is_none(), "already there");
        let mut five = waiters.wait(5, || 3).unwrap();
        let mut seven = waiters.wait(7, || 3).unwrap();
        waiters.wake(4);
        assert!(five.try_recv().is_err() && seven.try_recv().is_err());
        waiters.wake(6);
        assert!(five.try_recv().is_ok());
        assert!(seven.try_recv().is_err());
        assert_eq!(waiters.len(), 1);
        waiters.wake(9);
        assert!(seven.try_recv().is_ok());
        assert_eq!(waiters.len(), 0);
    }

    #[test]
    fn waits_that_gave_up_are_forgotten() {
        let waiters = Waiters::default();
        let kept = waiters.wait(5, || 0).unwrap();
        drop(waiters.wait(5, || 0).unwrap());
        drop(waiters.wait(6, || 0).unwrap());
        waiters.forget(5);
        waiters.forget(6);
        assert_eq!(waiters.len(), 1);
        drop(kept);
    }
}
