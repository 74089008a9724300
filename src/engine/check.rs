//! Deciding one check: may this user hold this permission on this instance?

use crate::model::{
    Catalog, Decision, DenialReason, InstanceKey, Membership, PermissionId, ResourceId, Scope,
    UserId, Workspace,
    catalog::{MAX_TYPE_DEPTH, Target},
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
    let target = match (permission.target, &check.resource) {
        (Target::Workspace, None) => None,
        (Target::Instance(ty), Some(id)) => {
            let key = (ty, id.clone());
            match workspace.instance(&key) {
                Some(instance) => Some((key, instance)),
                None => return Decision::Denied(DenialReason::ResourceNotRegistered),
            }
        }
        _ => return Decision::Denied(DenialReason::ResourceNotRegistered),
    };
    if member.membership == Membership::Owner {
        return Decision::AllowedByMembership(Membership::Owner);
    }
    if permission.every_member {
        return Decision::AllowedByMembership(Membership::Member);
    }
    // The target and its ancestors (a destination's source), looked up once: every
    // instance-scoped grant is then compared against this short chain.
    let mut chain: [Option<&InstanceKey>; MAX_TYPE_DEPTH] = [None; MAX_TYPE_DEPTH];
    if let Some((key, instance)) = &target {
        let parents = instance.parent.iter().flat_map(|p| workspace.lineage(p));
        for (link, key) in chain.iter_mut().zip(std::iter::once(key).chain(parents)) {
            *link = Some(key);
        }
    }
    let covered = |scope: &Scope| match scope {
        Scope::All => true,
        Scope::Instance(ty, id) => chain
            .iter()
            .map_while(|link| *link)
            .any(|key| key.0 == *ty && &key.1 == id),
    };
    let products = workspace.products();
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
    match scope {
        Scope::All => true,
        Scope::Instance(ty, id) => target.is_some_and(|target| {
            workspace
                .lineage(target)
                .any(|key| key.0 == *ty && &key.1 == id)
        }),
    }
}
