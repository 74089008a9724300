//! Planning a write: validating a command against the current state and turning it into
//! the primitive changes (cascades included) that the store will persist atomically.

use std::collections::BTreeSet;

use super::{
    check::{Check, check},
    command::{Command, LegacyAssignment, WriteError},
    migrate::{self, MigrationReport, RejectReason, Rejection},
};
use crate::model::{
    Catalog, Change, Grant, InstanceKey, Membership, ProductId, ProductSet, ResourceId, Scope,
    UserId, Workspace, WorkspaceId, catalog::MAX_TYPE_DEPTH, catalog::ScopeKind,
};

/// Plans `command` against `current`, the state of its workspace (`None` if it does not
/// exist). An empty plan means the command is already in effect.
pub fn plan(
    catalog: &Catalog,
    current: Option<&Workspace>,
    command: &Command,
) -> Result<Vec<Change>, WriteError> {
    if let Command::CreateWorkspace {
        workspace,
        owner,
        products,
    } = command
    {
        if current.is_some() {
            return Err(WriteError::WorkspaceExists(workspace.clone()));
        }
        return Ok(vec![
            Change::CreateWorkspace {
                workspace: workspace.clone(),
                products: products.union(catalog.always_enabled()),
            },
            Change::SetMembership {
                workspace: workspace.clone(),
                user: owner.clone(),
                membership: Membership::Owner,
            },
        ]);
    }
    if let Command::UpsertWorkspace {
        workspace,
        products,
        owners,
    } = command
    {
        return plan_upsert(catalog, current, workspace, *products, owners);
    }
    if let Command::MigrateLegacyRoles {
        workspace,
        assignments,
    } = command
    {
        return Ok(plan_migration(catalog, current, workspace, assignments).changes);
    }
    let workspace_id = command.workspace();
    let Some(ws) = current else {
        return match command {
            Command::DeleteWorkspace { .. } => Ok(Vec::new()),
            _ => Err(WriteError::WorkspaceNotFound(workspace_id.clone())),
        };
    };
    let workspace = workspace_id.clone();
    match command {
        Command::CreateWorkspace { .. }
        | Command::UpsertWorkspace { .. }
        | Command::MigrateLegacyRoles { .. } => Ok(Vec::new()),
        Command::SetProducts { products, .. } => {
            let products = products.union(catalog.always_enabled());
            Ok(if products == ws.products() {
                Vec::new()
            } else {
                vec![Change::SetProducts {
                    workspace,
                    products,
                }]
            })
        }
        Command::DeleteWorkspace { .. } => Ok(vec![Change::DeleteWorkspace { workspace }]),
        Command::SetMembership {
            user,
            membership,
            actor,
            ..
        } => {
            authorize(catalog, ws, actor.as_ref())?;
            match ws.member(user) {
                Some(member) if member.membership == *membership => Ok(Vec::new()),
                Some(member) => {
                    if member.membership == Membership::Owner && ws.owner_count() == 1 {
                        return Err(WriteError::LastOwner(user.clone()));
                    }
                    Ok(vec![Change::SetMembership {
                        workspace,
                        user: user.clone(),
                        membership: *membership,
                    }])
                }
                None => Ok(vec![Change::SetMembership {
                    workspace,
                    user: user.clone(),
                    membership: *membership,
                }]),
            }
        }
        Command::RemoveMember { user, actor, .. } => {
            authorize(catalog, ws, actor.as_ref())?;
            let Some(member) = ws.member(user) else {
                return Ok(Vec::new());
            };
            if member.membership == Membership::Owner && ws.owner_count() == 1 {
                return Err(WriteError::LastOwner(user.clone()));
            }
            let mut changes: Vec<Change> = member
                .grants
                .iter()
                .map(|grant| Change::RemoveGrant {
                    workspace: workspace.clone(),
                    user: user.clone(),
                    grant: grant.clone(),
                })
                .collect();
            changes.push(Change::RemoveMember {
                workspace,
                user: user.clone(),
            });
            Ok(changes)
        }
        Command::RegisterResource {
            resource, parent, ..
        } => plan_register(catalog, ws, workspace, resource, parent.as_ref()),
        Command::DeleteResource { resource, .. } => {
            if ws.instance(resource).is_none() {
                return Ok(Vec::new());
            }
            let mut changes = Vec::new();
            plan_delete_resource(ws, &workspace, resource, &mut changes, 0);
            Ok(changes)
        }
        Command::Grant {
            user, grant, actor, ..
        } => {
            authorize(catalog, ws, actor.as_ref())?;
            plan_grant(catalog, ws, workspace, user, grant, true)
        }
        Command::RestoreGrant { user, grant, .. } => {
            plan_grant(catalog, ws, workspace, user, grant, false)
        }
        Command::Revoke {
            user, grant, actor, ..
        } => {
            authorize(catalog, ws, actor.as_ref())?;
            let held = ws
                .member(user)
                .is_some_and(|member| member.grants.binary_search(grant).is_ok());
            Ok(if held {
                vec![Change::RemoveGrant {
                    workspace,
                    user: user.clone(),
                    grant: grant.clone(),
                }]
            } else {
                Vec::new()
            })
        }
    }
}

/// A legacy migration of one workspace, planned: its changes, and its report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migration {
    /// The changes, to be written atomically under one revision.
    pub changes: Vec<Change>,
    /// The users it changes and the rows it cannot migrate.
    pub report: MigrationReport,
}

/// Plans the migration of `assignments`, the legacy rows of workspace `workspace`,
/// against `current`, its state. The commands `migrate::wanted` gives are planned in
/// order, each against the state the ones before leave; if one is refused, the
/// workspace is refused whole (every row rejected with the reason) rather than
/// migrated in part. Planning again after the changes are applied changes nothing.
pub fn plan_migration(
    catalog: &Catalog,
    current: Option<&Workspace>,
    workspace: &WorkspaceId,
    assignments: &[LegacyAssignment],
) -> Migration {
    let reject_all = |reason: &dyn Fn() -> RejectReason| Migration {
        changes: Vec::new(),
        report: MigrationReport {
            migrated: Vec::new(),
            rejected: assignments
                .iter()
                .map(|row| Rejection {
                    index: row.index,
                    reason: reason(),
                })
                .collect(),
        },
    };
    let Some(ws) = current else {
        return reject_all(&|| RejectReason::WorkspaceNotFound(workspace.clone()));
    };
    let (wanted, mut rejected) = migrate::wanted(catalog, workspace, ws, assignments);
    let mut state = Some(ws.clone());
    let mut changes = Vec::new();
    let mut done = Vec::new();
    for command in wanted {
        match plan(catalog, state.as_ref(), &command) {
            Ok(planned) if planned.is_empty() => {}
            Ok(planned) => {
                for change in &planned {
                    Workspace::apply(&mut state, change);
                }
                changes.extend(planned);
                done.push(command);
            }
            Err(error) => {
                let refused: BTreeSet<usize> = rejected.iter().map(|r| r.index).collect();
                rejected.extend(
                    assignments
                        .iter()
                        .filter(|row| !refused.contains(&row.index))
                        .map(|row| Rejection {
                            index: row.index,
                            reason: RejectReason::WorkspaceRefused {
                                workspace: workspace.clone(),
                                error: error.clone(),
                            },
                        }),
                );
                rejected.sort_by_key(|r| r.index);
                return Migration {
                    changes: Vec::new(),
                    report: MigrationReport {
                        migrated: Vec::new(),
                        rejected,
                    },
                };
            }
        }
    }
    Migration {
        changes,
        report: MigrationReport {
            migrated: migrate::user_changes(&done),
            rejected,
        },
    }
}

/// Refuses the write unless the actor (when named) may manage access.
fn authorize(catalog: &Catalog, ws: &Workspace, actor: Option<&UserId>) -> Result<(), WriteError> {
    let Some(actor) = actor else {
        return Ok(());
    };
    let allowed = catalog
        .permission_id(MANAGE_ACCESS)
        .is_some_and(|permission| {
            check(
                catalog,
                Some(ws),
                &Check {
                    user: actor.clone(),
                    permission,
                    resource: None,
                },
            )
            .allowed()
        });
    if allowed {
        Ok(())
    } else {
        Err(WriteError::ActorNotAllowed(actor.clone()))
    }
}

/// The permission that writes naming an actor require.
pub const MANAGE_ACCESS: &str = "workspace.manage_access";

/// Checks that a grant may exist in this workspace: its role's product is enabled (when
/// `new`: a stored grant of a disabled product stays), the role accepts the scope, and a
/// scoped instance is registered.
pub fn validate_grant(
    catalog: &Catalog,
    ws: &Workspace,
    grant: &Grant,
    new: bool,
) -> Result<(), WriteError> {
    let role = catalog
        .role(grant.role)
        .ok_or_else(|| WriteError::ScopeNotAccepted {
            role: "?".into(),
            problem: "is not in the catalog".into(),
        })?;
    if new && !ws.products().contains(role.product) {
        return Err(WriteError::ProductNotEnabled {
            role: role.name.clone(),
            product: catalog.product_name(role.product).to_owned(),
        });
    }
    match &grant.scope {
        Scope::All if role.accepts(ScopeKind::All) => Ok(()),
        Scope::All => Err(WriteError::ScopeNotAccepted {
            role: role.name.clone(),
            problem: "does not accept the all-instances scope".into(),
        }),
        Scope::Instance(ty, id) => match role.scope_type {
            Some(scope_type) if scope_type == *ty => {
                if ws.instance(&(*ty, id.clone())).is_some() {
                    Ok(())
                } else {
                    Err(WriteError::ResourceNotFound {
                        type_name: catalog.type_name(*ty).to_owned(),
                        id: id.clone(),
                    })
                }
            }
            Some(scope_type) => Err(WriteError::ScopeNotAccepted {
                role: role.name.clone(),
                problem: format!(
                    "is scoped to `{}` instances, not `{}`",
                    catalog.type_name(scope_type),
                    catalog.type_name(*ty)
                ),
            }),
            None => Err(WriteError::ScopeNotAccepted {
                role: role.name.clone(),
                problem: "accepts only the all-instances scope".into(),
            }),
        },
    }
}

fn plan_grant(
    catalog: &Catalog,
    ws: &Workspace,
    workspace: WorkspaceId,
    user: &UserId,
    grant: &Grant,
    new: bool,
) -> Result<Vec<Change>, WriteError> {
    validate_grant(catalog, ws, grant, new)?;
    let member = ws
        .member(user)
        .ok_or_else(|| WriteError::NotAMember(user.clone()))?;
    if member.grants.binary_search(grant).is_ok() {
        return Ok(Vec::new());
    }
    Ok(vec![Change::AddGrant {
        workspace,
        user: user.clone(),
        grant: grant.clone(),
    }])
}

fn plan_upsert(
    catalog: &Catalog,
    current: Option<&Workspace>,
    workspace: &WorkspaceId,
    products: Option<ProductSet>,
    owners: &[UserId],
) -> Result<Vec<Change>, WriteError> {
    if owners.is_empty() {
        return Err(WriteError::NoOwner(workspace.clone()));
    }
    let always = catalog.always_enabled();
    let mut changes = Vec::new();
    match (current, products) {
        (None, products) => changes.push(Change::CreateWorkspace {
            workspace: workspace.clone(),
            products: products.unwrap_or_default().union(always),
        }),
        (Some(ws), None) if ws.products().union(always) != always => {
            return Err(unlisted_products(catalog, workspace, ws.products()));
        }
        (Some(ws), Some(products)) if ws.products() != products.union(always) => {
            changes.push(Change::SetProducts {
                workspace: workspace.clone(),
                products: products.union(always),
            });
        }
        (Some(_), _) => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for owner in owners {
        let already = current
            .and_then(|ws| ws.member(owner))
            .is_some_and(|m| m.membership == Membership::Owner);
        if !already && seen.insert(owner) {
            changes.push(Change::SetMembership {
                workspace: workspace.clone(),
                user: owner.clone(),
                membership: Membership::Owner,
            });
        }
    }
    Ok(changes)
}

/// The refusal of an upsert that lists no product for a workspace with add-ons `enabled`.
fn unlisted_products(
    catalog: &Catalog,
    workspace: &WorkspaceId,
    enabled: ProductSet,
) -> WriteError {
    let always = catalog.always_enabled();
    let names = |set: ProductSet, keep: &dyn Fn(ProductId) -> bool| {
        set.iter()
            .filter(|p| keep(*p))
            .map(|p| format!("`{}`", catalog.product_name(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let add_ons = names(enabled, &|p| !always.contains(p));
    let always_names = names(always, &|_| true);
    let explicit = if always_names.is_empty() {
        "SetProducts disables every add-on".to_owned()
    } else {
        format!("{always_names} alone disables every add-on")
    };
    WriteError::ProductsUnlisted {
        workspace: workspace.clone(),
        add_ons,
        explicit,
    }
}

fn plan_register(
    catalog: &Catalog,
    ws: &Workspace,
    workspace: WorkspaceId,
    resource: &InstanceKey,
    parent: Option<&ResourceId>,
) -> Result<Vec<Change>, WriteError> {
    let (ty, id) = resource;
    let parent = match (catalog.parent_type(*ty), parent) {
        (Some(parent_type), Some(parent_id)) => {
            let key = (parent_type, parent_id.clone());
            if ws.instance(&key).is_none() {
                return Err(WriteError::ResourceNotFound {
                    type_name: catalog.type_name(parent_type).to_owned(),
                    id: parent_id.clone(),
                });
            }
            Some(key)
        }
        (Some(parent_type), None) => {
            return Err(WriteError::BadParent(format!(
                "a {} needs the id of its parent {}",
                catalog.type_name(*ty),
                catalog.type_name(parent_type)
            )));
        }
        (None, Some(_)) => {
            return Err(WriteError::BadParent(format!(
                "a {} has no parent",
                catalog.type_name(*ty)
            )));
        }
        (None, None) => None,
    };
    match ws.instance(resource) {
        Some(existing) if existing.parent == parent => Ok(Vec::new()),
        Some(_) => Err(WriteError::ResourceExists {
            type_name: catalog.type_name(*ty).to_owned(),
            id: id.clone(),
        }),
        None => Ok(vec![Change::RegisterResource {
            workspace,
            resource: resource.clone(),
            parent,
        }]),
    }
}

/// Children first, so that every change leaves a consistent state behind it.
fn plan_delete_resource(
    ws: &Workspace,
    workspace: &WorkspaceId,
    resource: &InstanceKey,
    changes: &mut Vec<Change>,
    depth: usize,
) {
    if depth < MAX_TYPE_DEPTH {
        for child in ws.children(resource) {
            plan_delete_resource(ws, workspace, child, changes, depth + 1);
        }
    }
    for (user, role) in ws.grants_on(resource) {
        changes.push(Change::RemoveGrant {
            workspace: workspace.clone(),
            user: user.clone(),
            grant: Grant {
                role,
                scope: Scope::Instance(resource.0, resource.1.clone()),
            },
        });
    }
    changes.push(Change::DeleteResource {
        workspace: workspace.clone(),
        resource: resource.clone(),
    });
}
