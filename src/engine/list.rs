//! The team table: every user of a workspace with their membership and grants, filtered
//! by user, role or resource instance, one page at a time in user id order.

use super::check::covers;
use crate::model::{
    Catalog, Grant, InstanceKey, Membership, RoleId, TypeId, UserId, Workspace, catalog::Target,
};

/// Which rows and grants of the team table to keep.
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    /// Only this user.
    pub user: Option<UserId>,
    /// Only holders of this role, and only their grants of it.
    pub role: Option<RoleId>,
    /// Only users with access to this instance, and only the grants that cover it.
    pub resource: Option<InstanceKey>,
}

/// One row of the team table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry<'a> {
    /// The user.
    pub user: &'a UserId,
    /// Their membership.
    pub membership: Membership,
    /// Their grants that pass the filter, in role then scope order.
    pub grants: Vec<&'a Grant>,
}

/// A page of the team table: up to `limit` rows after user `after`, and whether more follow.
pub fn list_access<'a>(
    catalog: &Catalog,
    workspace: &'a Workspace,
    filter: &AccessFilter,
    after: Option<&'a UserId>,
    limit: usize,
) -> (Vec<AccessEntry<'a>>, bool) {
    let mut rows = Vec::with_capacity(limit.min(64));
    let candidates: Box<dyn Iterator<Item = (&'a UserId, &'a crate::model::access::Member)>> =
        match &filter.user {
            Some(user) => Box::new(
                workspace
                    .members_after(None)
                    .skip_while(move |(u, _)| *u < user)
                    .take_while(move |(u, _)| *u == user)
                    .filter(move |(u, _)| after.is_none_or(|a| *u > a)),
            ),
            None => Box::new(workspace.members_after(after)),
        };
    for (user, member) in candidates {
        let grants: Vec<&Grant> = member
            .grants
            .iter()
            .filter(|g| filter.role.is_none_or(|role| g.role == role))
            .filter(|g| {
                filter.resource.as_ref().is_none_or(|resource| {
                    role_applies_to(catalog, g.role, resource.0)
                        && covers(workspace, &g.scope, Some(resource))
                })
            })
            .collect();
        let owner_kept = member.membership == Membership::Owner && filter.role.is_none();
        let keep = !grants.is_empty()
            || owner_kept
            || (filter.role.is_none() && filter.resource.is_none());
        if !keep {
            continue;
        }
        if rows.len() == limit {
            return (rows, true);
        }
        rows.push(AccessEntry {
            user,
            membership: member.membership,
            grants,
        });
    }
    (rows, false)
}

/// Whether any permission of `role` applies to instances of `ty` (or of its children).
pub fn role_applies_to(catalog: &Catalog, role: RoleId, ty: TypeId) -> bool {
    let Some(role) = catalog.role(role) else {
        return false;
    };
    catalog.permissions().any(|(id, permission)| {
        role.allows(id)
            && match permission.target {
                Target::Instance(target) => target == ty || catalog.parent_type(target) == Some(ty),
                Target::Workspace => false,
            }
    })
}
