//! The snapshot a read answers from: at the revision its request names (its
//! `at_least_revision`) or later, waiting for it until a little before the deadline.
//! Never an older one.

use std::sync::Arc;

use arc_swap::Guard;
use tonic::{Status, metadata::MetadataMap};

use super::{MAX_REVISION_WAIT, deadline};
use crate::store::{Snapshot, Store};

/// The current snapshot if it is at `wanted` or later (0 always is), or else the first
/// one that is, once the store has reached it; DEADLINE_EXCEEDED if it does not before
/// the call's deadline (see [`deadline::revision_wait`]).
pub async fn at_least(
    store: &Store,
    wanted: u64,
    metadata: &MetadataMap,
) -> Result<Guard<Arc<Snapshot>>, Status> {
    {
        // In a block of its own: a guard must not be held across the wait below.
        let snapshot = store.current();
        if snapshot.revision >= wanted {
            return Ok(snapshot);
        }
    }
    // Boxed so that a read that need not wait carries none of the wait's state.
    Box::pin(reach(store, wanted, metadata)).await?;
    Ok(store.current())
}

/// Waits until `store` has reached `wanted`, or fails with what it reached instead.
async fn reach(store: &Store, wanted: u64, metadata: &MetadataMap) -> Result<(), Status> {
    let now = tokio::time::Instant::now();
    // A deadline too far away for the clock to represent is as good as none.
    let deadline = now
        .checked_add(deadline::revision_wait(metadata))
        .unwrap_or(now + MAX_REVISION_WAIT);
    store.reached(wanted, deadline).await.map_err(|reached| {
        Status::deadline_exceeded(format!(
            "`at_least_revision`: revision {wanted} not reached within the deadline: this \
             server has applied revision {reached} (a follower may still be catching up with its \
             leader)"
        ))
    })
}
