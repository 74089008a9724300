//! Writes the database lost come back from the change log at open.

use std::sync::Arc;

use super::user;
use crate::{
    engine::Command,
    model::{Catalog, Grant, InstanceKey, Membership, ProductSet, ResourceId, Scope, WorkspaceId},
    store::{Snapshot, Store, StoreConfig},
};

/// Copies the data directory `from` into `to`, but for the change log: sled's files
/// as they were at that moment.
fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == crate::store::CHANGE_LOG_DIR {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_database(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A database that lost writes it had acknowledged (sled's files as they were some
/// groups earlier, as a torn blob file would leave them) gets them back from the
/// change log at open: every kind of change, redone once.
#[tokio::test]
async fn writes_the_database_lost_are_redone_from_the_change_log() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::built_in());
    let source = catalog.type_id("source").unwrap();
    let destination = catalog.type_id("destination").unwrap();
    let admin = catalog.role_id("source_admin").unwrap();
    let personas = catalog.product_id("personas").unwrap();
    let ws = |name: &str| WorkspaceId::parse(name).unwrap();
    let res = |name: &str| ResourceId::parse(name).unwrap();
    let grant = |scope| Grant { role: admin, scope };
    let create = |name: &str| Command::CreateWorkspace {
        workspace: ws(name),
        owner: user(0),
        products: ProductSet::default(),
    };
    let join = |name: &str, n| Command::SetMembership {
        workspace: ws(name),
        user: user(n),
        membership: Membership::Member,
        actor: None,
    };
    let register = |name: &str, key: InstanceKey, parent: Option<&str>| Command::RegisterResource {
        workspace: ws(name),
        resource: key,
        parent: parent.map(res),
    };
    let give = |name: &str, n, scope| Command::Grant {
        workspace: ws(name),
        user: user(n),
        grant: grant(scope),
        actor: None,
    };

    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    for command in [
        create("a"),
        create("b"),
        join("a", 1),
        join("a", 2),
        join("b", 1),
        register("a", (source, res("s1")), None),
        register("a", (source, res("s2")), None),
        register("b", (source, res("s1")), None),
    ] {
        store.write(command).await.unwrap().unwrap();
    }
    let earlier_revision = store.snapshot().revision;
    store.close();
    copy_database(dir.path(), earlier.path());

    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    // One batch (one revision) of hundreds of changes: an entry of several lines.
    let mut batch: Vec<Command> = (0..200)
        .map(|n| register("a", (source, res(&format!("bulk-{n:04}"))), None))
        .collect();
    batch.extend((0..200).map(|n| {
        give(
            "a",
            1,
            Scope::Instance(source, res(&format!("bulk-{n:04}"))),
        )
    }));
    for outcome in store.write_batch(batch).await.unwrap() {
        outcome.unwrap();
    }
    for command in [
        register("a", (destination, res("d1")), Some("s1")),
        register("a", (destination, res("d2")), Some("s2")),
        give("a", 1, Scope::Instance(source, res("s1"))),
        give("a", 2, Scope::All),
        give("a", 2, Scope::Instance(source, res("s2"))),
        Command::Revoke {
            workspace: ws("a"),
            user: user(2),
            grant: grant(Scope::All),
            actor: None,
        },
        Command::SetProducts {
            workspace: ws("a"),
            products: ProductSet::default().with(personas),
        },
        Command::DeleteResource {
            workspace: ws("a"),
            resource: (source, res("s2")),
        },
        Command::RemoveMember {
            workspace: ws("a"),
            user: user(1),
            actor: None,
        },
        Command::DeleteWorkspace { workspace: ws("b") },
        create("c"),
        join("c", 3),
        Command::DeleteWorkspace { workspace: ws("c") },
        create("c"),
        join("c", 2),
    ] {
        store.write(command).await.unwrap().unwrap();
    }
    let acknowledged = store.snapshot();
    assert!(acknowledged.revision > earlier_revision + 5);
    store.close();

    // sled's files go back to the earlier ones; the change log stays.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == crate::store::CHANGE_LOG_DIR {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(entry.path()).unwrap();
        } else {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    copy_database(earlier.path(), dir.path());

    let same = |reopened: &Snapshot, expected: &Snapshot| {
        assert_eq!(reopened.revision, expected.revision);
        assert_eq!(reopened.workspaces.len(), expected.workspaces.len());
        for (id, workspace) in expected.workspaces.iter() {
            assert_eq!(reopened.workspaces.get(id), Some(workspace), "{id}");
        }
    };
    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    same(&store.snapshot(), &acknowledged);
    // The next write follows on.
    store.write(join("c", 4)).await.unwrap().unwrap();
    let latest = store.snapshot();
    assert_eq!(latest.revision, acknowledged.revision + 1);
    store.close();
    // What was redone is durable, chunks included: nothing is redone twice.
    let store = Store::open(dir.path(), Arc::clone(&catalog), &StoreConfig::default()).unwrap();
    same(&store.snapshot(), &latest);
    store.close();
}
