//! Planning the migration of legacy role assignments: the membership and grants each
//! user of each workspace ends up with (the union of their legacy rows, mapped by the
//! catalog's `[legacy]` table) and the commands that bring them about. Pure: the caller
//! supplies the state and does the writing.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{self as write, Command, WriteError};
use crate::model::{
    Catalog, Grant, Membership, ResourceId, Scope, UserId, Workspace, WorkspaceId,
    catalog::{LegacyGrant, LegacyRole, ScopeKind},
};

/// One legacy assignment, its ids already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAssignment {
    /// Its position in the batch, which a rejection names.
    pub index: usize,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The user.
    pub user: UserId,
    /// The legacy role's name in the catalog's `[legacy]` table.
    pub legacy_role: String,
    /// The instance it names (a collaborator's source), if any.
    pub instance: Option<ResourceId>,
}

/// Why a legacy assignment cannot be migrated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The workspace does not exist.
    #[error("workspace `{0}` not found")]
    WorkspaceNotFound(WorkspaceId),
    /// The catalog's `[legacy]` table does not define the legacy role.
    #[error("unknown legacy role `{0}`")]
    UnknownLegacyRole(String),
    /// The legacy role is scoped to an instance and the assignment names none.
    #[error("legacy role `{legacy_role}` needs a {type_name} id")]
    MissingInstance {
        /// The legacy role.
        legacy_role: String,
        /// The type of the instance it needs.
        type_name: String,
    },
    /// The legacy role is not scoped to an instance and the assignment names one.
    #[error("legacy role `{legacy_role}` names no instance, got `{id}`")]
    UnexpectedInstance {
        /// The legacy role.
        legacy_role: String,
        /// The id given.
        id: ResourceId,
    },
    /// The named instance is not registered in the workspace.
    #[error("{type_name} `{id}` is not registered in workspace `{workspace}`")]
    InstanceNotRegistered {
        /// The instance's type.
        type_name: String,
        /// Its id.
        id: ResourceId,
        /// The workspace.
        workspace: WorkspaceId,
    },
    /// The workspace's migration was refused as a whole, so none of its rows migrate.
    #[error("workspace `{workspace}` cannot be migrated: {error}")]
    WorkspaceRefused {
        /// The workspace.
        workspace: WorkspaceId,
        /// The refusal.
        error: WriteError,
    },
}

/// A legacy assignment that cannot be migrated, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The assignment's position in the batch.
    pub index: usize,
    /// Why it cannot be migrated.
    pub reason: RejectReason,
}

/// The commands that migrate one workspace, to be written atomically together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMigration {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Memberships then grants, user by user; each one changes something.
    pub commands: Vec<Command>,
}

/// What migrating a batch would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The workspaces with something to change, in workspace id order.
    pub workspaces: Vec<WorkspaceMigration>,
    /// The assignments that cannot be migrated, in batch order.
    pub rejected: Vec<Rejection>,
}

/// What a migration changes for one user of one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The user.
    pub user: UserId,
    /// The membership they were given, if it changed.
    pub membership_set: Option<Membership>,
    /// The grants they were given that they did not hold.
    pub grants_added: Vec<Grant>,
}

/// What one user should hold: the union of their legacy assignments.
#[derive(Debug, Default)]
struct Target {
    owner: bool,
    grants: BTreeSet<Grant>,
    rows: Vec<usize>,
}

/// Plans the migration of `assignments` against the current state (`workspace` looks one
/// up). Each user ends with the union of their legacy rows: owner if any row makes them
/// one or they already are (the migration never demotes), otherwise member with the
/// grants of their rows that they do not hold yet; owners get no grants, they need none.
/// Every workspace's commands are checked in order with the write planner, so a
/// workspace that would be refused part-way is rejected whole instead.
pub fn plan<'a>(
    catalog: &Catalog,
    workspace: impl Fn(&WorkspaceId) -> Option<&'a Workspace>,
    assignments: &[LegacyAssignment],
) -> MigrationPlan {
    let mut rejected = Vec::new();
    let mut targets: BTreeMap<&WorkspaceId, (&Workspace, BTreeMap<&UserId, Target>)> =
        BTreeMap::new();
    for assignment in assignments {
        let (ws, legacy) = match resolve(catalog, &workspace, assignment) {
            Ok(found) => found,
            Err(reason) => {
                rejected.push(Rejection {
                    index: assignment.index,
                    reason,
                });
                continue;
            }
        };
        let (_, users) = targets
            .entry(&assignment.workspace)
            .or_insert_with(|| (ws, BTreeMap::new()));
        let target = users.entry(&assignment.user).or_default();
        target.rows.push(assignment.index);
        target.owner |= legacy.membership == Membership::Owner;
        target.grants.extend(
            legacy
                .grants
                .iter()
                .filter_map(|g| grant(catalog, ws, legacy, g, assignment.instance.as_ref())),
        );
    }

    let mut workspaces = Vec::new();
    for (id, (ws, users)) in targets {
        match commands(catalog, id, ws, &users) {
            Ok(commands) if commands.is_empty() => {}
            Ok(commands) => workspaces.push(WorkspaceMigration {
                workspace: id.clone(),
                commands,
            }),
            Err(error) => {
                rejected.extend(
                    users
                        .values()
                        .flat_map(|t| &t.rows)
                        .map(|&index| Rejection {
                            index,
                            reason: RejectReason::WorkspaceRefused {
                                workspace: id.clone(),
                                error: error.clone(),
                            },
                        }),
                )
            }
        }
    }
    rejected.sort_by_key(|r| r.index);
    MigrationPlan {
        workspaces,
        rejected,
    }
}

/// The workspace and the legacy role of an assignment that can be migrated.
fn resolve<'a, 'c>(
    catalog: &'c Catalog,
    workspace: &impl Fn(&WorkspaceId) -> Option<&'a Workspace>,
    assignment: &LegacyAssignment,
) -> Result<(&'a Workspace, &'c LegacyRole), RejectReason> {
    let ws = workspace(&assignment.workspace)
        .ok_or_else(|| RejectReason::WorkspaceNotFound(assignment.workspace.clone()))?;
    let legacy = catalog
        .legacy()
        .get(&assignment.legacy_role)
        .ok_or_else(|| RejectReason::UnknownLegacyRole(assignment.legacy_role.clone()))?;
    match (legacy.instance_type, &assignment.instance) {
        (None, None) => {}
        (None, Some(id)) => {
            return Err(RejectReason::UnexpectedInstance {
                legacy_role: assignment.legacy_role.clone(),
                id: id.clone(),
            });
        }
        (Some(ty), None) => {
            return Err(RejectReason::MissingInstance {
                legacy_role: assignment.legacy_role.clone(),
                type_name: catalog.type_name(ty).to_owned(),
            });
        }
        (Some(ty), Some(id)) => {
            if ws.instance(&(ty, id.clone())).is_none() {
                return Err(RejectReason::InstanceNotRegistered {
                    type_name: catalog.type_name(ty).to_owned(),
                    id: id.clone(),
                    workspace: assignment.workspace.clone(),
                });
            }
        }
    }
    Ok((ws, legacy))
}

/// The grant a legacy grant becomes in `ws`, or `None` where the workspace lacks the
/// role's product (read-only users get `protocols_read` only with Protocols).
fn grant(
    catalog: &Catalog,
    ws: &Workspace,
    legacy: &LegacyRole,
    legacy_grant: &LegacyGrant,
    instance: Option<&ResourceId>,
) -> Option<Grant> {
    let role = catalog.role(legacy_grant.role)?;
    if !ws.products().contains(role.product) {
        return None;
    }
    let scope = match legacy_grant.scope {
        ScopeKind::All => Scope::All,
        ScopeKind::Instance => Scope::Instance(legacy.instance_type?, instance?.clone()),
    };
    Some(Grant {
        role: legacy_grant.role,
        scope,
    })
}

/// The commands that give every user of one workspace their target, each checked
/// against the state the ones before it leave.
fn commands(
    catalog: &Catalog,
    id: &WorkspaceId,
    ws: &Workspace,
    users: &BTreeMap<&UserId, Target>,
) -> Result<Vec<Command>, WriteError> {
    let mut state = Some(ws.clone());
    let mut commands = Vec::new();
    for (&user, target) in users {
        let current = ws.member(user);
        let held = current.map(|m| m.membership);
        let membership = if target.owner || held == Some(Membership::Owner) {
            Membership::Owner
        } else {
            Membership::Member
        };
        let mut wanted = Vec::new();
        if held != Some(membership) {
            wanted.push(Command::SetMembership {
                workspace: id.clone(),
                user: user.clone(),
                membership,
                actor: None,
            });
        }
        if membership == Membership::Member {
            wanted.extend(
                target
                    .grants
                    .iter()
                    .filter(|g| current.is_none_or(|m| m.grants.binary_search(g).is_err()))
                    .map(|g| Command::Grant {
                        workspace: id.clone(),
                        user: user.clone(),
                        grant: g.clone(),
                        actor: None,
                    }),
            );
        }
        for command in wanted {
            let changes = write::plan(catalog, state.as_ref(), &command)?;
            if changes.is_empty() {
                continue;
            }
            for change in &changes {
                Workspace::apply(&mut state, change);
            }
            commands.push(command);
        }
    }
    Ok(commands)
}

/// What `commands` (memberships and grants a migration planned or wrote) change for
/// each user, in workspace then user order. Other commands are ignored.
pub fn user_changes<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Vec<UserChange> {
    let mut changes = BTreeMap::new();
    for command in commands {
        match command {
            Command::SetMembership {
                workspace,
                user,
                membership,
                ..
            } => change_of(&mut changes, workspace, user).membership_set = Some(*membership),
            Command::Grant {
                workspace,
                user,
                grant,
                ..
            } => change_of(&mut changes, workspace, user)
                .grants_added
                .push(grant.clone()),
            _ => {}
        }
    }
    changes.into_values().collect()
}

/// The change of one user, keyed so that changes sort by workspace then user.
fn change_of<'m>(
    changes: &'m mut BTreeMap<(WorkspaceId, UserId), UserChange>,
    workspace: &WorkspaceId,
    user: &UserId,
) -> &'m mut UserChange {
    changes
        .entry((workspace.clone(), user.clone()))
        .or_insert_with(|| UserChange {
            workspace: workspace.clone(),
            user: user.clone(),
            membership_set: None,
            grants_added: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, ProductSet};

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

    fn changes_of(
        catalog: &Catalog,
        workspaces: &BTreeMap<WorkspaceId, Workspace>,
        rows: &[LegacyAssignment],
    ) -> (Vec<UserChange>, Vec<Rejection>) {
        let plan = plan(catalog, |id| workspaces.get(id), rows);
        (
            user_changes(plan.workspaces.iter().flat_map(|w| &w.commands)),
            plan.rejected,
        )
    }

    /// Applies a plan's commands to the workspaces, as the store would.
    fn apply(
        catalog: &Catalog,
        workspaces: &mut BTreeMap<WorkspaceId, Workspace>,
        plan: &MigrationPlan,
    ) {
        for migration in &plan.workspaces {
            let mut state = workspaces.remove(&migration.workspace);
            for command in &migration.commands {
                for change in write::plan(catalog, state.as_ref(), command).unwrap() {
                    Workspace::apply(&mut state, &change);
                }
            }
            workspaces.insert(migration.workspace.clone(), state.unwrap());
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
        let plan = plan(
            &catalog,
            |id| workspaces.get(id),
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
        let first = plan(&catalog, |id| workspaces.get(id), &rows);
        assert_eq!(
            first
                .workspaces
                .iter()
                .map(|w| w.workspace.as_str())
                .collect::<Vec<_>>(),
            ["acme", "zeta"]
        );
        apply(&catalog, &mut workspaces, &first);
        let second = plan(&catalog, |id| workspaces.get(id), &rows);
        assert_eq!(second, MigrationPlan::default());
        let cole = workspaces[&ws_id("acme")].member(&user("cole")).unwrap();
        assert_eq!(cole.membership, Membership::Member);
        assert_eq!(cole.grants.len(), 4);
    }
}
