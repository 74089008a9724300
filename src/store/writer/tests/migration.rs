//! A legacy migration is planned by the writer against its latest state and written
//! atomically: one revision and one change-log entry per workspace.

use std::sync::Arc;

use crate::{
    engine::{Command, LegacyAssignment, migrate::RejectReason},
    model::{Catalog, Membership, ProductSet, ResourceId, UserId, WorkspaceId},
    store::{CHANGE_LOG_DIR, Store, StoreConfig},
};

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn row(
    index: usize,
    workspace: &str,
    who: &str,
    legacy_role: &str,
    source: &str,
) -> LegacyAssignment {
    LegacyAssignment {
        index,
        workspace: ws(workspace),
        user: user(who),
        legacy_role: legacy_role.into(),
        instance: (!source.is_empty()).then(|| ResourceId::parse(source).unwrap()),
    }
}

fn migration(workspace: &str, rows: Vec<LegacyAssignment>) -> Command {
    Command::MigrateLegacyRoles {
        workspace: ws(workspace),
        assignments: rows,
    }
}

/// A store with workspaces `a` and `b`, each owned by `olivia` with source `ios`.
async fn two_workspaces(dir: &std::path::Path) -> Store {
    let catalog = Arc::new(Catalog::built_in());
    let source = catalog.type_id("source").unwrap();
    let store = Store::open(dir, catalog, &StoreConfig::default()).unwrap();
    for name in ["a", "b"] {
        let commands = vec![
            Command::CreateWorkspace {
                workspace: ws(name),
                owner: user("olivia"),
                products: ProductSet::default(),
            },
            Command::RegisterResource {
                workspace: ws(name),
                resource: (source, ResourceId::parse("ios").unwrap()),
                parent: None,
            },
        ];
        for result in store.write_all(commands).await.unwrap() {
            result.unwrap();
        }
    }
    store
}

/// Every change-log line as (revision, part, command, number of changes).
fn logged(dir: &std::path::Path) -> Vec<(u64, u64, String, usize)> {
    let mut names: Vec<_> = std::fs::read_dir(dir.join(CHANGE_LOG_DIR))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    names.sort();
    let mut lines = Vec::new();
    for name in names {
        for line in std::fs::read_to_string(name).unwrap().lines() {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            lines.push((
                entry["revision"].as_u64().unwrap(),
                entry["part"].as_u64().unwrap(),
                entry["command"].as_str().unwrap().to_owned(),
                entry["changes"].as_array().unwrap().len(),
            ));
        }
    }
    lines
}

#[tokio::test]
async fn each_workspace_migrates_under_one_revision_and_one_change_log_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_workspaces(dir.path()).await;
    let before = store.snapshot().revision;
    let outcomes = store
        .write_all(vec![
            migration(
                "a",
                vec![
                    row(0, "a", "rita", "workspace_read_only", ""),
                    row(1, "a", "cole", "source_collaborator", "ios"),
                ],
            ),
            migration("b", vec![row(2, "b", "rita", "workspace_read_only", "")]),
        ])
        .await
        .unwrap();
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes
            .iter()
            .map(|o| (o.revision, o.changed))
            .collect::<Vec<_>>(),
        [(before + 1, true), (before + 2, true)]
    );
    let migrated: Vec<(String, String)> = outcomes
        .iter()
        .flat_map(|o| &o.migration.as_ref().unwrap().migrated)
        .map(|change| (change.workspace.to_string(), change.user.to_string()))
        .collect();
    assert_eq!(
        migrated,
        [
            ("a".into(), "cole".into()),
            ("a".into(), "rita".into()),
            ("b".into(), "rita".into())
        ]
    );
    assert_eq!(store.snapshot().revision, before + 2);
    store.close();

    // Workspace `a`: two memberships and three grants in one entry; `b`: one and two.
    let tail: Vec<_> = logged(dir.path())
        .into_iter()
        .filter(|(revision, ..)| *revision > before)
        .collect();
    assert_eq!(
        tail,
        [
            (before + 1, 0, "migrate_legacy_roles".to_owned(), 5),
            (before + 2, 0, "migrate_legacy_roles".to_owned(), 3),
        ]
    );
}

/// Writes queued ahead of a migration are what it is planned against: an owner made in
/// the same request is not demoted, and a workspace deleted before it is not found.
#[tokio::test]
async fn a_migration_is_planned_against_the_writes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_workspaces(dir.path()).await;
    let outcomes = store
        .write_all(vec![
            Command::SetMembership {
                workspace: ws("a"),
                user: user("mia"),
                membership: Membership::Owner,
                actor: None,
            },
            migration("a", vec![row(0, "a", "mia", "workspace_read_only", "")]),
            Command::DeleteWorkspace { workspace: ws("b") },
            migration("b", vec![row(1, "b", "rita", "workspace_read_only", "")]),
        ])
        .await
        .unwrap();
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    let report = outcomes[1].migration.as_ref().unwrap();
    assert!(!outcomes[1].changed);
    assert!(report.migrated.is_empty() && report.rejected.is_empty());
    let state = store.snapshot();
    let mia = state
        .workspace(&ws("a"))
        .unwrap()
        .member(&user("mia"))
        .unwrap();
    assert_eq!(mia.membership, Membership::Owner);
    assert!(mia.grants.is_empty());

    let report = outcomes[3].migration.as_ref().unwrap();
    assert!(!outcomes[3].changed);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        report.rejected[0].reason,
        RejectReason::WorkspaceNotFound(ws("b"))
    );
    store.close();
}
