//! The redo at open: the change log's entries that the state sled holds lacks, applied
//! as the planner would and made durable before the writer starts.

use std::{collections::HashMap, sync::Arc};

use super::{
    layout::Layout,
    plan::{Dirty, Planner},
};
use crate::{
    model::{Catalog, Workspace, WorkspaceId},
    store::{
        Snapshot, StoreError,
        blobs::Blobs,
        change_log::Pending,
        load::{Retained, RetainedInstances},
        record::chunks::Boundaries,
    },
};

/// What the state is once the change log's entries it lacks are redone.
pub struct Redone {
    /// The state, at the revision of the last entry redone.
    pub snapshot: Snapshot,
    /// Member record lines of roles the catalog does not have.
    pub retained: Retained,
    /// Instance records with a parent of a type the catalog does not have.
    pub retained_instances: RetainedInstances,
}

/// Applies `pending`, the change log's entries that `base` (the state sled holds) lacks,
/// and makes the result durable, before the writer starts: the state as it was when
/// those entries were logged. sled holds fewer revisions than the log after a crash
/// between a group's log and its state, or if it lost writes (see `store::blobs`).
/// With nothing pending it returns `base` as it is, writing nothing.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of the writer the redo borrows, once, at open"
)]
pub fn redo(
    db: &sled::Db,
    blobs: &mut Blobs,
    catalog: &Arc<Catalog>,
    boundaries: Boundaries,
    retained: Retained,
    retained_instances: RetainedInstances,
    base: Snapshot,
    pending: Pending,
) -> Result<Redone, StoreError> {
    if pending.is_empty() {
        return Ok(Redone {
            snapshot: base,
            retained,
            retained_instances,
        });
    }
    let base = Arc::new(base);
    let layout = Layout {
        catalog: Arc::clone(catalog),
        boundaries,
        retained,
        retained_instances,
    };
    let mut planner = Planner::new(db.clone(), false, Arc::clone(&base), layout);
    let mut overlay: HashMap<WorkspaceId, Option<Workspace>> = HashMap::new();
    let mut batch = sled::Batch::default();
    let mut dirty = Dirty::default();
    let mut revision = base.revision;
    for (logged, changes) in pending {
        for change in &changes {
            let id = change.workspace();
            let mut state = match overlay.remove(id) {
                Some(state) => state,
                None => base.workspaces.get(id.as_str()).cloned(),
            };
            planner.persist(&mut batch, &mut dirty, state.as_ref(), change)?;
            Workspace::apply(&mut state, change);
            overlay.insert(id.clone(), state);
        }
        revision = logged;
    }
    planner.seal(&mut batch, &base, overlay, &dirty, revision);
    db.apply_batch(batch)?;
    blobs.flush(db)?;
    let (latest, layout) = planner.into_parts();
    Ok(Redone {
        snapshot: Arc::unwrap_or_clone(latest),
        retained: layout.retained,
        retained_instances: layout.retained_instances,
    })
}
