//! Legacy role assignments resolved into what each user of a workspace should hold
//! (the union of their rows, mapped by the catalog's `[legacy]` table) and the commands
//! that bring it about; `plan` plans those commands as one write.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{Command, LegacyAssignment, WriteError};
use crate::model::{
    Catalog, Grant, Membership, ResourceId, Scope, UserId, Workspace, WorkspaceId,
    catalog::{LegacyGrant, LegacyRole, ScopeKind},
};

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

/// What a legacy migration did, or would do: the users it changed and the rows it
/// could not migrate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// What changed for each user, in workspace then user order.
    pub migrated: Vec<UserChange>,
    /// The rows that cannot be migrated, in batch order.
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
}

/// The commands that give each user named in `assignments` (rows of workspace `id`,
/// whose current state is `ws`) the union of their rows, and the rows that cannot be migrated.
/// Each user ends owner if any row makes them one or they already are (a migration
/// never demotes), otherwise member with the grants of their rows that they do not hold
/// yet; owners get no grants, they need none. The commands are not planned here: the
/// caller plans them in order and refuses the workspace whole if one is refused.
pub fn wanted(
    catalog: &Catalog,
    id: &WorkspaceId,
    ws: &Workspace,
    assignments: &[LegacyAssignment],
) -> (Vec<Command>, Vec<Rejection>) {
    let mut rejected = Vec::new();
    let mut targets: BTreeMap<&UserId, Target> = BTreeMap::new();
    for assignment in assignments {
        let legacy = match resolve(catalog, ws, assignment) {
            Ok(legacy) => legacy,
            Err(reason) => {
                rejected.push(Rejection {
                    index: assignment.index,
                    reason,
                });
                continue;
            }
        };
        let target = targets.entry(&assignment.user).or_default();
        target.owner |= legacy.membership == Membership::Owner;
        target.grants.extend(
            legacy
                .grants
                .iter()
                .filter_map(|g| grant(catalog, ws, legacy, g, assignment.instance.as_ref())),
        );
    }
    let mut commands = Vec::new();
    for (&user, target) in &targets {
        commands_for(id, ws, user, target, &mut commands);
    }
    (commands, rejected)
}

/// The workspace and the legacy role of an assignment that can be migrated.
fn resolve<'c>(
    catalog: &'c Catalog,
    ws: &Workspace,
    assignment: &LegacyAssignment,
) -> Result<&'c LegacyRole, RejectReason> {
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
    Ok(legacy)
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

/// The commands that give `user` their target, if they do not hold it yet.
fn commands_for(
    workspace: &WorkspaceId,
    ws: &Workspace,
    user: &UserId,
    target: &Target,
    commands: &mut Vec<Command>,
) {
    let current = ws.member(user);
    let held = current.map(|m| m.membership);
    let membership = if target.owner || held == Some(Membership::Owner) {
        Membership::Owner
    } else {
        Membership::Member
    };
    if held != Some(membership) {
        commands.push(Command::SetMembership {
            workspace: workspace.clone(),
            user: user.clone(),
            membership,
            actor: None,
        });
    }
    if membership == Membership::Member {
        commands.extend(
            target
                .grants
                .iter()
                .filter(|g| current.is_none_or(|m| m.grants.binary_search(g).is_err()))
                .map(|g| Command::Grant {
                    workspace: workspace.clone(),
                    user: user.clone(),
                    grant: g.clone(),
                    actor: None,
                }),
        );
    }
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
