//! The writer's tests: chunk layouts kept equal to the state, failures that stop it,
//! and the redo at open.

mod durability;
mod layout;
mod migration;
mod redo;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::oneshot;

use super::{Answer, Request, Revisions, Work, commit::Committer, layout::Layout, plan::Planner};
use crate::{
    engine::Command,
    model::{Catalog, ResourceId, UserId},
    store::{
        Snapshot, StoreConfig,
        blobs::Blobs,
        change_log::{ChangeLog, Retention},
        load::{Retained, RetainedInstances},
        open_db,
    },
};

/// Few ids, so that commands meet the same records and their chunks again and again;
/// enough that some of them start chunks.
pub fn user(n: u8) -> UserId {
    UserId::parse(&format!("u{n:02}")).unwrap()
}

pub fn resource(n: u8) -> ResourceId {
    ResourceId::parse(&format!("r{n:02}")).unwrap()
}

/// Plans every group, each on the state the ones before leave, and only then
/// commits them all, in order; returns the state published last.
pub fn plan_all_then_commit(
    dir: &std::path::Path,
    catalog: &Arc<Catalog>,
    groups: Vec<Vec<Command>>,
) -> Arc<Snapshot> {
    plan_all_then_commit_with(dir, catalog, groups, false).0
}

/// As `plan_all_then_commit`, with every sync of blob files failing if
/// `fail_blob_sync`; also returns what the first group's callers were answered.
pub fn plan_all_then_commit_with(
    dir: &std::path::Path,
    catalog: &Arc<Catalog>,
    groups: Vec<Vec<Command>>,
    fail_blob_sync: bool,
) -> (Arc<Snapshot>, Option<Answer>) {
    let db = open_db(dir, &StoreConfig::default()).unwrap();
    let boundaries = crate::store::open::prepare(&db).unwrap();
    let mut blobs = Blobs::new(dir);
    let log = ChangeLog::open(
        &dir.join(crate::store::CHANGE_LOG_DIR),
        Retention::budget(1 << 20),
    )
    .unwrap();
    let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let layout = Layout {
        catalog: Arc::clone(catalog),
        boundaries,
        retained: Retained::new(),
        retained_instances: RetainedInstances::new(),
    };
    let mut planner = Planner::new(db.clone(), true, published.load_full(), layout);
    blobs.fail = fail_blob_sync;
    let (to_commit, planned) = std::sync::mpsc::sync_channel(groups.len());
    let mut first_answer = None;
    for commands in groups {
        let (reply, answer) = oneshot::channel();
        first_answer.get_or_insert(answer);
        let request = Request {
            work: Work::Commands {
                commands,
                revisions: Revisions::EachCommand,
            },
            caller: None,
            reply,
            queued: std::time::Instant::now(),
        };
        to_commit
            .send(planner.plan(vec![request]).unwrap())
            .unwrap();
    }
    drop(to_commit);
    let (committed, _) = std::sync::mpsc::channel();
    Committer {
        db,
        blobs,
        log,
        published: Arc::clone(&published),
        revisions: tokio::sync::watch::Sender::new(0),
        waiters: Arc::default(),
        state: tokio::sync::watch::Sender::new(crate::store::WriteState::Taking),
        wake: tokio::sync::mpsc::channel(1).0.downgrade(),
        committed,
        observer: crate::store::Observer::default(),
    }
    .run(planned);
    let answer = first_answer.and_then(|mut answer| answer.try_recv().ok());
    (published.load_full(), answer)
}
