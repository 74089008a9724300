//! Replication's messages: primitive changes as `Change` messages and back, and the
//! changes that rebuild a snapshot's records. Names cross the wire, not catalog indexes,
//! so a name a follower's catalog lacks is refused by name; nothing here plans a write.

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use tonic::Status;

use super::{
    convert::{self, path},
    status::invalid,
};
use crate::{
    model::{Catalog, Change, Grant, InstanceKey, Membership, ProductSet, UserId},
    proto::{self, change::Kind, record::Kind as RecordKind},
};

/// A change as a message.
pub fn change_message(catalog: &Catalog, change: &Change) -> proto::Change {
    let kind = match change {
        Change::CreateWorkspace { products, .. } => {
            Kind::CreateWorkspace(products_message(catalog, *products))
        }
        Change::SetProducts { products, .. } => {
            Kind::SetProducts(products_message(catalog, *products))
        }
        Change::DeleteWorkspace { .. } => Kind::DeleteWorkspace(proto::WorkspaceDeleted {}),
        Change::SetMembership {
            user, membership, ..
        } => Kind::SetMembership(proto::MembershipChange {
            user_id: user.to_string(),
            membership: convert::membership_message(*membership).into(),
        }),
        Change::RemoveMember { user, .. } => Kind::RemoveMember(proto::UserChange {
            user_id: user.to_string(),
        }),
        Change::AddGrant { user, grant, .. } => {
            Kind::AddGrant(convert::grant_message(catalog, user, grant))
        }
        Change::RemoveGrant { user, grant, .. } => {
            Kind::RemoveGrant(convert::grant_message(catalog, user, grant))
        }
        Change::RegisterResource {
            resource, parent, ..
        } => Kind::RegisterResource(proto::ResourceRegistered {
            resource: Some(resource_message(catalog, resource)),
            parent: parent.as_ref().map(|p| resource_message(catalog, p)),
        }),
        Change::DeleteResource { resource, .. } => {
            Kind::DeleteResource(resource_message(catalog, resource))
        }
    };
    proto::Change {
        workspace_id: change.workspace().to_string(),
        kind: Some(kind),
    }
}

fn products_message(catalog: &Catalog, products: ProductSet) -> proto::ProductsChange {
    proto::ProductsChange {
        products: products
            .iter()
            .map(|p| catalog.product_name(p).to_owned())
            .collect(),
    }
}

fn resource_message(catalog: &Catalog, (ty, id): &InstanceKey) -> proto::ResourceRef {
    convert::resource_message(catalog, *ty, id)
}

/// Parses a change message, `at` being its path in the response (`changes[3]`), which
/// every error names with the field it is about.
pub fn change_from_message(
    catalog: &Catalog,
    at: &str,
    message: &proto::Change,
) -> Result<Change, Status> {
    let field = |name: &str| path(at, name);
    let workspace = convert::workspace_id(&field("workspace_id"), &message.workspace_id)?;
    let Some(kind) = message.kind.as_ref() else {
        return Err(invalid(
            if at.is_empty() { "change" } else { at },
            "is empty: set one of create_workspace, set_products, delete_workspace, \
             set_membership, remove_member, add_grant, remove_grant, register_resource, \
             delete_resource",
        ));
    };
    Ok(match kind {
        Kind::CreateWorkspace(set) => Change::CreateWorkspace {
            workspace,
            products: convert::products(
                catalog,
                &field("create_workspace.products"),
                &set.products,
            )?,
        },
        Kind::SetProducts(set) => Change::SetProducts {
            workspace,
            products: convert::products(catalog, &field("set_products.products"), &set.products)?,
        },
        Kind::DeleteWorkspace(proto::WorkspaceDeleted {}) => Change::DeleteWorkspace { workspace },
        Kind::SetMembership(m) => Change::SetMembership {
            workspace,
            user: convert::user_id(&field("set_membership.user_id"), &m.user_id)?,
            membership: convert::membership(&field("set_membership.membership"), m.membership)?,
        },
        Kind::RemoveMember(u) => Change::RemoveMember {
            workspace,
            user: convert::user_id(&field("remove_member.user_id"), &u.user_id)?,
        },
        Kind::AddGrant(g) => {
            let (user, grant) = grant(catalog, &field("add_grant"), g)?;
            Change::AddGrant {
                workspace,
                user,
                grant,
            }
        }
        Kind::RemoveGrant(g) => {
            let (user, grant) = grant(catalog, &field("remove_grant"), g)?;
            Change::RemoveGrant {
                workspace,
                user,
                grant,
            }
        }
        Kind::RegisterResource(r) => Change::RegisterResource {
            workspace,
            resource: convert::resource(
                catalog,
                &field("register_resource.resource"),
                r.resource.as_ref(),
            )?,
            parent: r
                .parent
                .as_ref()
                .map(|p| convert::resource(catalog, &field("register_resource.parent"), Some(p)))
                .transpose()?,
        },
        Kind::DeleteResource(r) => Change::DeleteResource {
            workspace,
            resource: convert::resource(catalog, &field("delete_resource"), Some(r))?,
        },
    })
}

/// Parses a grant message at `field`: its user and the grant.
fn grant(catalog: &Catalog, field: &str, raw: &proto::Grant) -> Result<(UserId, Grant), Status> {
    Ok((
        convert::user_id(&path(field, "user_id"), &raw.user_id)?,
        Grant {
            role: convert::role(catalog, &path(field, "role"), &raw.role)?,
            scope: convert::scope(catalog, &path(field, "scope"), raw.scope.as_ref())?,
        },
    ))
}

/// The changes that build, on an empty state, what `records` (in the order of an Export)
/// describe: a follower's bootstrap. Each record becomes its changes as they are, without
/// the checks a write's planning makes, since the leader made them; errors name the
/// record as `records[INDEX]`.
pub fn snapshot_changes(
    catalog: &Catalog,
    records: &[proto::Record],
) -> Result<Vec<Change>, Status> {
    let mut changes = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        // Field paths are built only for the message of a record that fails: a bootstrap
        // reads millions of records and almost never fails.
        if record_changes(catalog, "", record, &mut changes).is_err() {
            let mut discarded = Vec::new();
            let at = format!("records[{index}]");
            record_changes(catalog, &at, record, &mut discarded)?;
        }
    }
    Ok(changes)
}

/// Appends the changes of one record, `at` being its path.
fn record_changes(
    catalog: &Catalog,
    at: &str,
    record: &proto::Record,
    changes: &mut Vec<Change>,
) -> Result<(), Status> {
    let field = |name: &'static str| -> Cow<'static, str> {
        if at.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(path(at, name))
        }
    };
    match record.kind.as_ref() {
        None => {
            return Err(invalid(
                at,
                "is empty: set one of workspace, member, resource, grant",
            ));
        }
        Some(RecordKind::Workspace(w)) => {
            let workspace =
                convert::workspace_id(&field("workspace.workspace_id"), &w.workspace_id)?;
            // An export lists the always-enabled products, an import may not: either way
            // the workspace has them, as the engine's planning would give it.
            let products = convert::products(catalog, &field("workspace.products"), &w.products)?
                .union(catalog.always_enabled());
            changes.push(Change::CreateWorkspace {
                workspace: workspace.clone(),
                products,
            });
            for (i, owner) in w.owner_user_ids.iter().enumerate() {
                changes.push(Change::SetMembership {
                    workspace: workspace.clone(),
                    user: convert::user_id(
                        &path(at, &format!("workspace.owner_user_ids[{i}]")),
                        owner,
                    )?,
                    membership: Membership::Owner,
                });
            }
        }
        Some(RecordKind::Member(m)) => changes.push(Change::SetMembership {
            workspace: convert::workspace_id(&field("member.workspace_id"), &m.workspace_id)?,
            user: convert::user_id(&field("member.user_id"), &m.user_id)?,
            membership: convert::membership(&field("member.membership"), m.membership)?,
        }),
        Some(RecordKind::Resource(r)) => {
            let workspace =
                convert::workspace_id(&field("resource.workspace_id"), &r.workspace_id)?;
            let resource =
                convert::resource(catalog, &field("resource.resource"), r.resource.as_ref())?;
            // No parent id is taken as it is even for a type with a parent: a leader keeps
            // an instance whose parent's type its catalog no longer has, without it.
            let parent = match r.parent_id.as_str() {
                "" => None,
                raw => {
                    let parent_field = field("resource.parent_id");
                    let id = convert::resource_id(&parent_field, raw)?;
                    let ty = catalog.parent_type(resource.0).ok_or_else(|| {
                        invalid(
                            &parent_field,
                            format_args!("a `{}` has no parent", catalog.type_name(resource.0)),
                        )
                    })?;
                    Some((ty, id))
                }
            };
            changes.push(Change::RegisterResource {
                workspace,
                resource,
                parent,
            });
        }
        Some(RecordKind::Grant(g)) => changes.push(Change::AddGrant {
            workspace: convert::workspace_id(&field("grant.workspace_id"), &g.workspace_id)?,
            user: convert::user_id(&field("grant.user_id"), &g.user_id)?,
            grant: Grant {
                role: convert::role(catalog, &field("grant.role"), &g.role)?,
                scope: convert::scope(catalog, &field("grant.scope"), g.scope.as_ref())?,
            },
        }),
    }
    Ok(())
}
