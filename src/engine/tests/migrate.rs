//! Legacy migrations planned a workspace at a time, as the writer plans them.

use std::collections::BTreeMap;

use crate::{
    engine::{
        LegacyAssignment,
        migrate::{MigrationReport, RejectReason, Rejection, UserChange},
        plan_migration,
    },
    model::{
        Catalog, Change, Grant, Membership, ProductSet, ResourceId, Scope, UserId, Workspace,
        WorkspaceId,
    },
};

fn ws_id(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn source(id: &str) -> ResourceId {
    ResourceId::parse(id).unwrap()
}

/// A workspace with `products` (names), owner `olivia`, and sources `ios` and `web`.
fn workspace(catalog: &Catalog, name: &str, products: &[&str]) -> Workspace {
    let products = products
        .iter()
        .map(|p| catalog.product_id(p).unwrap())
        .fold(catalog.always_enabled(), ProductSet::with);
    let mut state = Some(Workspace::new(products));
    let source_type = catalog.type_id("source").unwrap();
    let mut changes = vec![Change::SetMembership {
        workspace: ws_id(name),
        user: user("olivia"),
        membership: Membership::Owner,
    }];
    for id in ["ios", "web"] {
        changes.push(Change::RegisterResource {
            workspace: ws_id(name),
            resource: (source_type, source(id)),
            parent: None,
        });
    }
    for change in &changes {
        Workspace::apply(&mut state, change);
    }
    state.unwrap()
}

fn row(index: usize, ws: &str, who: &str, legacy: &str, instance: &str) -> LegacyAssignment {
    LegacyAssignment {
        index,
        workspace: ws_id(ws),
        user: user(who),
        legacy_role: legacy.into(),
        instance: (!instance.is_empty()).then(|| source(instance)),
    }
}

fn all(catalog: &Catalog, role: &str) -> Grant {
    Grant {
        role: catalog.role_id(role).unwrap(),
        scope: Scope::All,
    }
}

fn on_source(catalog: &Catalog, role: &str, id: &str) -> Grant {
    Grant {
        role: catalog.role_id(role).unwrap(),
        scope: Scope::Instance(catalog.type_id("source").unwrap(), source(id)),
    }
}

/// A migration of `rows` planned as the writer plans it, a workspace at a time: the
/// workspaces it changes, with their changes, and its report.
#[derive(Debug, Default, PartialEq, Eq)]
struct MigrationPlan {
    workspaces: Vec<(WorkspaceId, Vec<Change>)>,
    report: MigrationReport,
}

fn migration_plan(
    catalog: &Catalog,
    workspaces: &BTreeMap<WorkspaceId, Workspace>,
    rows: &[LegacyAssignment],
) -> MigrationPlan {
    let mut by_workspace: BTreeMap<WorkspaceId, Vec<LegacyAssignment>> = BTreeMap::new();
    for row in rows {
        by_workspace
            .entry(row.workspace.clone())
            .or_default()
            .push(row.clone());
    }
    let mut planned = MigrationPlan::default();
    for (id, rows) in by_workspace {
        let migration = plan_migration(catalog, workspaces.get(&id), &id, &rows);
        if !migration.changes.is_empty() {
            planned.workspaces.push((id, migration.changes));
        }
        planned.report.migrated.extend(migration.report.migrated);
        planned.report.rejected.extend(migration.report.rejected);
    }
    planned.report.rejected.sort_by_key(|r| r.index);
    planned
}

fn changes_of(
    catalog: &Catalog,
    workspaces: &BTreeMap<WorkspaceId, Workspace>,
    rows: &[LegacyAssignment],
) -> (Vec<UserChange>, Vec<Rejection>) {
    let plan = migration_plan(catalog, workspaces, rows);
    (plan.report.migrated, plan.report.rejected)
}

/// Applies a plan's changes to the workspaces, as the store would.
fn apply(workspaces: &mut BTreeMap<WorkspaceId, Workspace>, plan: &MigrationPlan) {
    for (id, changes) in &plan.workspaces {
        let mut state = workspaces.remove(id);
        for change in changes {
            Workspace::apply(&mut state, change);
        }
        workspaces.insert(id.clone(), state.unwrap());
    }
}

#[test]
fn read_only_users_get_protocols_read_only_where_the_workspace_has_protocols() {
    let catalog = Catalog::built_in();
    let workspaces = BTreeMap::from([
        (ws_id("plain"), workspace(&catalog, "plain", &[])),
        (
            ws_id("tracked"),
            workspace(&catalog, "tracked", &["protocols"]),
        ),
    ]);
    let (changes, rejected) = changes_of(
        &catalog,
        &workspaces,
        &[
            row(0, "tracked", "rita", "workspace_read_only", ""),
            row(1, "plain", "rita", "workspace_read_only", ""),
        ],
    );
    assert!(rejected.is_empty());
    let read = [
        all(&catalog, "source_read"),
        all(&catalog, "warehouse_read"),
    ];
    assert_eq!(
        changes,
        [
            UserChange {
                workspace: ws_id("plain"),
                user: user("rita"),
                membership_set: Some(Membership::Member),
                grants_added: read.to_vec(),
            },
            UserChange {
                workspace: ws_id("tracked"),
                user: user("rita"),
                membership_set: Some(Membership::Member),
                grants_added: vec![
                    read[0].clone(),
                    read[1].clone(),
                    all(&catalog, "protocols_read")
                ],
            },
        ]
    );
}

#[test]
fn a_collaborator_on_two_sources_gets_source_admin_on_each_and_nothing_else() {
    let catalog = Catalog::built_in();
    let workspaces = BTreeMap::from([(ws_id("acme"), workspace(&catalog, "acme", &[]))]);
    let (changes, rejected) = changes_of(
        &catalog,
        &workspaces,
        &[
            row(0, "acme", "cole", "source_collaborator", "web"),
            row(1, "acme", "cole", "source_collaborator", "ios"),
        ],
    );
    assert!(rejected.is_empty());
    assert_eq!(
        changes,
        [UserChange {
            workspace: ws_id("acme"),
            user: user("cole"),
            membership_set: Some(Membership::Member),
            grants_added: vec![
                on_source(&catalog, "source_admin", "ios"),
                on_source(&catalog, "source_admin", "web"),
            ],
        }]
    );
}

#[test]
fn several_legacy_roles_give_the_union_and_an_owner_row_wins() {
    let catalog = Catalog::built_in();
    let workspaces = BTreeMap::from([(ws_id("acme"), workspace(&catalog, "acme", &[]))]);
    let (changes, _) = changes_of(
        &catalog,
        &workspaces,
        &[
            row(0, "acme", "mia", "workspace_read_only", ""),
            row(1, "acme", "mia", "source_collaborator", "ios"),
            row(2, "acme", "oscar", "source_collaborator", "ios"),
            row(3, "acme", "oscar", "workspace_owner", ""),
        ],
    );
    assert_eq!(
        changes,
        [
            UserChange {
                workspace: ws_id("acme"),
                user: user("mia"),
                membership_set: Some(Membership::Member),
                grants_added: vec![
                    on_source(&catalog, "source_admin", "ios"),
                    all(&catalog, "source_read"),
                    all(&catalog, "warehouse_read"),
                ],
            },
            UserChange {
                workspace: ws_id("acme"),
                user: user("oscar"),
                membership_set: Some(Membership::Owner),
                grants_added: vec![],
            },
        ]
    );
}

#[test]
fn existing_owners_are_never_demoted_and_existing_owners_change_nothing() {
    let catalog = Catalog::built_in();
    let workspaces = BTreeMap::from([(ws_id("acme"), workspace(&catalog, "acme", &[]))]);
    let plan = migration_plan(
        &catalog,
        &workspaces,
        &[
            row(0, "acme", "olivia", "workspace_read_only", ""),
            row(1, "acme", "olivia", "source_collaborator", "ios"),
            row(2, "acme", "olivia", "workspace_owner", ""),
        ],
    );
    assert_eq!(plan, MigrationPlan::default());
}

#[test]
fn a_member_with_a_legacy_owner_row_is_promoted() {
    let catalog = Catalog::built_in();
    let mut acme = Some(workspace(&catalog, "acme", &[]));
    Workspace::apply(
        &mut acme,
        &Change::SetMembership {
            workspace: ws_id("acme"),
            user: user("mia"),
            membership: Membership::Member,
        },
    );
    let workspaces = BTreeMap::from([(ws_id("acme"), acme.unwrap())]);
    let (changes, _) = changes_of(
        &catalog,
        &workspaces,
        &[row(0, "acme", "mia", "workspace_owner", "")],
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].membership_set, Some(Membership::Owner));
}

#[test]
fn rows_that_cannot_be_migrated_are_rejected_and_the_rest_still_migrates() {
    let catalog = Catalog::built_in();
    let workspaces = BTreeMap::from([(ws_id("acme"), workspace(&catalog, "acme", &[]))]);
    let (changes, rejected) = changes_of(
        &catalog,
        &workspaces,
        &[
            row(0, "ghost", "rita", "workspace_read_only", ""),
            row(1, "acme", "rita", "workspace_admin", ""),
            row(2, "acme", "cole", "source_collaborator", ""),
            row(3, "acme", "cole", "source_collaborator", "android"),
            row(4, "acme", "rita", "workspace_owner", "ios"),
            row(5, "acme", "cole", "source_collaborator", "ios"),
        ],
    );
    let reasons: Vec<(usize, String)> = rejected
        .iter()
        .map(|r| (r.index, r.reason.to_string()))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, "workspace `ghost` not found".to_owned()),
            (1, "unknown legacy role `workspace_admin`".to_owned()),
            (
                2,
                "legacy role `source_collaborator` needs a source id".to_owned()
            ),
            (
                3,
                "source `android` is not registered in workspace `acme`".to_owned()
            ),
            (
                4,
                "legacy role `workspace_owner` names no instance, got `ios`".to_owned()
            ),
        ]
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].user, user("cole"));
    assert_eq!(
        changes[0].grants_added,
        [on_source(&catalog, "source_admin", "ios")]
    );
}

#[test]
fn a_catalog_without_legacy_roles_rejects_every_row() {
    let end = crate::model::catalog::BUILT_IN.find("[legacy.").unwrap();
    let catalog = Catalog::parse(&crate::model::catalog::BUILT_IN[..end]).unwrap();
    let workspaces = BTreeMap::from([(ws_id("acme"), workspace(&catalog, "acme", &[]))]);
    let (changes, rejected) = changes_of(
        &catalog,
        &workspaces,
        &[row(0, "acme", "rita", "workspace_read_only", "")],
    );
    assert!(changes.is_empty());
    assert_eq!(
        rejected[0].reason,
        RejectReason::UnknownLegacyRole("workspace_read_only".into())
    );
}

#[test]
fn planning_again_after_applying_the_plan_changes_nothing() {
    let catalog = Catalog::built_in();
    let mut workspaces = BTreeMap::from([
        (ws_id("acme"), workspace(&catalog, "acme", &["protocols"])),
        (ws_id("zeta"), workspace(&catalog, "zeta", &[])),
    ]);
    let rows = [
        row(0, "zeta", "rita", "workspace_read_only", ""),
        row(1, "acme", "cole", "source_collaborator", "ios"),
        row(2, "acme", "rita", "workspace_read_only", ""),
        row(3, "acme", "cole", "workspace_read_only", ""),
        row(4, "acme", "olivia", "workspace_owner", ""),
    ];
    let first = migration_plan(&catalog, &workspaces, &rows);
    assert_eq!(
        first
            .workspaces
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["acme", "zeta"]
    );
    apply(&mut workspaces, &first);
    let second = migration_plan(&catalog, &workspaces, &rows);
    assert_eq!(second, MigrationPlan::default());
    let cole = workspaces[&ws_id("acme")].member(&user("cole")).unwrap();
    assert_eq!(cole.membership, Membership::Member);
    assert_eq!(cole.grants.len(), 4);
}
