//! A group that cannot be made durable stops the writer until it heals; records sled
//! keeps in blob files are made durable through them.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{plan_all_then_commit_with, user};
use crate::{
    engine::Command,
    model::{Catalog, Grant, Membership, ProductSet, ResourceId, Scope, WorkspaceId},
    store::{
        Cause, Snapshot, Store, StoreConfig, StoreError, Until, WriteState,
        blobs::{self, Blobs},
        change_log::{ChangeLog, Retention},
        open_db,
        writer::{commit::Committer, plan::Planned},
    },
};

/// A group whose change log lines cannot be written is refused, with every write
/// after it, while reads go on; once the volume takes writes again the writer opens the
/// data directory anew, finds what was acknowledged and takes writes, without the
/// refused group.
#[tokio::test]
async fn a_group_that_cannot_be_logged_is_refused_until_the_writer_heals() {
    let dir = tempfile::tempdir().unwrap();
    // Change log files of 512 bytes: a few writes fill one, and the next starts another.
    let config = StoreConfig {
        change_log_bytes: 4096,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config).unwrap();
    let workspace = WorkspaceId::parse("acme").unwrap();
    let create = Command::CreateWorkspace {
        workspace: workspace.clone(),
        owner: user(0),
        products: ProductSet::default(),
    };
    store.write(create).await.unwrap().unwrap();
    let log = dir.path().join(crate::store::CHANGE_LOG_DIR);
    let newest_file = || {
        std::fs::read_dir(&log)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .max()
            .map_or(0, |path| std::fs::metadata(path).unwrap().len())
    };
    let join = |n| Command::SetMembership {
        workspace: workspace.clone(),
        user: user(n),
        membership: Membership::Member,
        actor: None,
    };
    let mut n = 1;
    while newest_file() < 512 {
        store.write(join(n)).await.unwrap().unwrap();
        n += 1;
    }
    let before = store.snapshot();
    let mut writes = store.writes();

    // The next group must start a file in a directory that is gone.
    std::fs::remove_dir_all(&log).unwrap();
    let refused = |answer: Result<_, StoreError>| match answer {
        Err(StoreError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let refusal = refused(store.write(join(n)).await);
    assert_eq!(refusal.cause, Cause::Io);
    assert_eq!(refusal.until, Until::Healed);
    assert!(
        refusal.to_string().contains("resume by themselves"),
        "{refusal}"
    );
    refused(store.write(join(n + 1)).await);
    assert!(matches!(&*writes.borrow(), WriteState::Refused(_)));
    let after = store.snapshot();
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.workspace(&workspace), before.workspace(&workspace));

    // Opening the directory anew makes the log's directory again.
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        writes.wait_for(|state| *state == WriteState::Taking),
    )
    .await
    .unwrap()
    .unwrap();
    let healed = store.snapshot();
    assert_eq!(healed.revision, before.revision);
    assert!(
        healed
            .workspace(&workspace)
            .unwrap()
            .member(&user(n))
            .is_none(),
        "the refused write did not happen"
    );
    let outcome = store.write(join(n)).await.unwrap().unwrap();
    assert_eq!(outcome.revision, before.revision + 1);
    store.close();

    let store = Store::open(dir.path(), Arc::new(Catalog::built_in()), &config).unwrap();
    let reopened = store.snapshot();
    assert_eq!(reopened.revision, before.revision + 1);
    assert!(
        reopened
            .workspace(&workspace)
            .unwrap()
            .member(&user(n))
            .is_some()
    );
    store.close();
}

/// A member with thousands of grants has a record over the 128 KiB past which sled
/// keeps a message in a blob file of its own (see `store::blobs`): the write is made
/// durable through it, and a restart reads every grant back.
#[tokio::test]
async fn a_record_sled_keeps_in_a_blob_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::built_in());
    let source = catalog.type_id("source").unwrap();
    let admin = catalog.role_id("source_admin").unwrap();
    let acme = WorkspaceId::parse("acme").unwrap();
    let sources: Vec<ResourceId> = (0..4000)
        .map(|n| ResourceId::parse(&format!("src_{n:022}")).unwrap())
        .collect();
    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    let mut commands = vec![
        Command::CreateWorkspace {
            workspace: acme.clone(),
            owner: user(0),
            products: ProductSet::default(),
        },
        Command::SetMembership {
            workspace: acme.clone(),
            user: user(1),
            membership: Membership::Member,
            actor: None,
        },
    ];
    for id in &sources {
        commands.push(Command::RegisterResource {
            workspace: acme.clone(),
            resource: (source, id.clone()),
            parent: None,
        });
    }
    store.write_batch(commands).await.unwrap();
    let grants = sources.iter().map(|id| Command::Grant {
        workspace: acme.clone(),
        user: user(1),
        grant: Grant {
            role: admin,
            scope: Scope::Instance(source, id.clone()),
        },
        actor: None,
    });
    for outcome in store.write_batch(grants.collect()).await.unwrap() {
        outcome.unwrap();
    }
    let blob_files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert!(blob_files > 0, "the record went to a blob file");
    let before = store.snapshot();
    store.close();

    let store = Store::open(dir.path(), catalog, &StoreConfig::default()).unwrap();
    let after = store.snapshot();
    assert_eq!(after.revision, before.revision);
    let member = after.workspace(&acme).unwrap().member(&user(1)).unwrap();
    assert_eq!(member.grants.len(), sources.len());
    assert_eq!(after.workspace(&acme), before.workspace(&acme));
    store.close();
}

/// While no write comes, the committer still syncs the blob files sled's own
/// threads write: when it cannot, it stops, and the next group finds it gone.
#[test]
fn an_idle_committer_syncs_blob_files_and_stops_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path(), &StoreConfig::default()).unwrap();
    let mut blobs = Blobs::new(dir.path());
    let log = ChangeLog::open(
        &dir.path().join(crate::store::CHANGE_LOG_DIR),
        Retention::budget(1 << 20),
    )
    .unwrap();
    blobs.fail = true;
    let (to_commit, planned) = std::sync::mpsc::sync_channel::<Planned>(1);
    let (committed, _) = std::sync::mpsc::channel();
    let committer = Committer {
        db,
        blobs,
        log,
        published: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
        revisions: tokio::sync::watch::Sender::new(0),
        waiters: Arc::default(),
        state: tokio::sync::watch::Sender::new(WriteState::Taking),
        wake: tokio::sync::mpsc::channel(1).0.downgrade(),
        committed,
        observer: crate::store::Observer::default(),
    };
    let running = std::thread::spawn(move || committer.run(planned));
    // No group is ever sent: only the idle sync can end the committer. The bound is
    // for a loaded machine, not the expected wait (one idle period).
    let started = std::time::Instant::now();
    while !running.is_finished() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(blobs::IDLE_SYNC);
    }
    assert!(
        running.is_finished(),
        "the failed idle sync stopped the committer"
    );
    running.join().unwrap();
    drop(to_commit);
}

/// The committer's flush goes through the blob files. When they cannot be synced
/// after the group's change log lines are durable, the group is acknowledged (every
/// open redoes it from the log) and the committer stops: the group after it is refused.
#[test]
fn a_logged_group_whose_state_cannot_be_flushed_is_acknowledged_and_the_next_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::built_in());
    let create = |ws: &str| Command::CreateWorkspace {
        workspace: WorkspaceId::parse(ws).unwrap(),
        owner: user(0),
        products: ProductSet::default(),
    };
    let (published, answer) = plan_all_then_commit_with(
        dir.path(),
        &catalog,
        vec![vec![create("a")], vec![create("b")]],
        true,
    );
    assert!(matches!(answer, Some(Ok(_))));
    assert_eq!(published.revision, 1);
    assert_eq!(published.workspaces.len(), 1);

    let store = Store::open(dir.path(), catalog, &StoreConfig::default()).unwrap();
    assert_eq!(store.snapshot().revision, 1, "redone from the change log");
    assert_eq!(store.snapshot().workspaces.len(), 1);
    store.close();
}
