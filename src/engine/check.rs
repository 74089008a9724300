//! Deciding one check: may this user hold this permission on this instance?

use crate::model::{
    Catalog, Decision, DenialReason, InstanceKey, Membership, PermissionId, ResourceId, Scope,
    TypeId, UserId, Workspace, catalog::Target,
};

/// One check, already validated: the resource is present exactly when the permission
/// names an instance, and is of the permission's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The user asking.
    pub user: UserId,
    /// The permission.
    pub permission: PermissionId,
    /// The instance the permission names, if it names one.
    pub resource: Option<ResourceId>,
}

/// Decides `check` against `workspace` (`None` if it does not exist).
///
/// The order of the reasons is the model's: non-members learn nothing else; a disabled
/// product or an unregistered instance denies owners too; then ownership, membership
/// and the member's grants.
pub fn check(catalog: &Catalog, workspace: Option<&Workspace>, check: &Check) -> Decision {
    let Some(workspace) = workspace else {
        return Decision::Denied(DenialReason::NotAMember);
    };
    let Some(member) = workspace.member(&check.user) else {
        return Decision::Denied(DenialReason::NotAMember);
    };
    // An id the catalog does not know cannot come from a validated request; deny.
    let Some(permission) = catalog.permission(check.permission) else {
        return Decision::Denied(DenialReason::NoCoveringGrant);
    };
    if !workspace.products().contains(permission.product) {
        return Decision::Denied(DenialReason::ProductNotEnabled);
    }
    // The target and its ancestors (a destination's source), looked up once: every
    // instance-scoped grant is then compared against this short chain.
    let mut chain: [Option<(TypeId, &ResourceId)>; MAX_DEPTH] = [None; MAX_DEPTH];
    match (permission.target, &check.resource) {
        (Target::Workspace, None) => {}
        (Target::Instance(ty), Some(id)) => {
            let Some(instance) = workspace.instance(&(ty, id.clone())) else {
                return Decision::Denied(DenialReason::ResourceNotRegistered);
            };
            let mut links = chain.iter_mut();
            if let Some(link) = links.next() {
                *link = Some((ty, id));
            }
            let mut parent = instance.parent.as_ref();
            for link in links {
                let Some(key) = parent else { break };
                *link = Some((key.0, &key.1));
                parent = workspace.instance(key).and_then(|i| i.parent.as_ref());
            }
        }
        _ => return Decision::Denied(DenialReason::ResourceNotRegistered),
    }
    if member.membership == Membership::Owner {
        return Decision::AllowedByMembership(Membership::Owner);
    }
    if permission.every_member {
        return Decision::AllowedByMembership(Membership::Member);
    }
    let products = workspace.products();
    let covered = |scope: &Scope| match scope {
        Scope::All => true,
        Scope::Instance(ty, id) => chain
            .iter()
            .map_while(|link| *link)
            .any(|(link_type, link_id)| link_type == *ty && link_id == id),
    };
    member
        .grants
        .iter()
        .find(|grant| {
            catalog.role(grant.role).is_some_and(|role| {
                products.contains(role.product)
                    && role.allows(check.permission)
                    && covered(&grant.scope)
            })
        })
        .map_or(Decision::Denied(DenialReason::NoCoveringGrant), |grant| {
            Decision::AllowedByGrant(grant.clone())
        })
}

/// Whether a grant's scope covers the target: all-scope grants cover everything, an
/// instance grant covers that instance and its descendants (a source's destinations),
/// and nothing but an all-scope grant covers a permission that names the workspace.
pub fn covers(workspace: &Workspace, scope: &Scope, target: Option<&InstanceKey>) -> bool {
    let (scope_type, scope_id) = match scope {
        Scope::All => return true,
        Scope::Instance(ty, id) => (*ty, id),
    };
    let mut current = target;
    // Parents form a tree the catalog checked to be acyclic; the bound is a second guard.
    for _ in 0..MAX_DEPTH {
        let Some(key) = current else {
            return false;
        };
        if key.0 == scope_type && &key.1 == scope_id {
            return true;
        }
        current = workspace
            .instance(key)
            .and_then(|instance| instance.parent.as_ref());
    }
    false
}

const MAX_DEPTH: usize = 16;
