//! Deciding one check: may this user hold this permission on this instance?

use crate::model::{
    Catalog, Decision, DenialReason, InstanceKey, Membership, PermissionId, ResourceId, Scope,
    TypeId, UserId, Workspace,
    catalog::{MAX_TYPE_DEPTH, Target},
    decision::DecisionRef,
    workspace::Member,
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

impl Check {
    /// The same check, borrowing its ids.
    pub fn borrowed(&self) -> CheckRef<'_> {
        CheckRef {
            user: self.user.as_str(),
            permission: self.permission,
            resource: self.resource.as_ref().map(ResourceId::as_str),
        }
    }
}

/// A [`Check`] whose ids are borrowed, typically from the request they were validated
/// in, so that deciding it allocates nothing. The same rules hold: the ids are valid
/// ids, and the resource is present exactly when the permission names an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRef<'a> {
    /// The user asking.
    pub user: &'a str,
    /// The permission.
    pub permission: PermissionId,
    /// The id of the instance the permission names, if it names one (its type is the
    /// permission's).
    pub resource: Option<&'a str>,
}

/// Decides `check` against `workspace` (`None` if it does not exist).
///
/// The order of the reasons is the model's: non-members learn nothing else; a disabled
/// product or an unregistered instance denies owners too; then ownership, membership
/// and the member's grants.
pub fn check(catalog: &Catalog, workspace: Option<&Workspace>, check: &Check) -> Decision {
    decide(catalog, workspace, check.borrowed()).to_decision()
}

/// Decides a borrowed check as [`check`] does, borrowing the grant that allows it from
/// `workspace` rather than copying it.
pub fn decide<'w>(
    catalog: &Catalog,
    workspace: Option<&'w Workspace>,
    check: CheckRef<'_>,
) -> DecisionRef<'w> {
    UserInWorkspace::new(workspace, check.user).decide(catalog, check.permission, check.resource)
}

/// A user looked up in a workspace once, to decide any number of their checks there:
/// the items of a BatchCheck often share their user.
#[derive(Debug, Clone, Copy)]
pub struct UserInWorkspace<'w, 'u> {
    workspace: Option<&'w Workspace>,
    user: &'u str,
    member: Option<&'w Member>,
}

impl<'w, 'u> UserInWorkspace<'w, 'u> {
    /// Looks `user` up in `workspace` (`None` if it does not exist).
    pub fn new(workspace: Option<&'w Workspace>, user: &'u str) -> Self {
        Self {
            workspace,
            user,
            member: workspace.and_then(|workspace| workspace.member(user)),
        }
    }

    /// Whether this is `user` in `workspace`: the same workspace, not an equal one.
    pub fn is(&self, workspace: Option<&Workspace>, user: &str) -> bool {
        let same_workspace = match (self.workspace, workspace) {
            (Some(mine), Some(theirs)) => std::ptr::eq(mine, theirs),
            (None, None) => true,
            _ => false,
        };
        same_workspace && self.user == user
    }

    /// Decides whether this user holds `permission_id` on `resource` (the id of an
    /// instance of the permission's type, present exactly when the permission names one),
    /// in the order of [`check`].
    pub fn decide(
        &self,
        catalog: &Catalog,
        permission_id: PermissionId,
        resource: Option<&str>,
    ) -> DecisionRef<'w> {
        let (Some(workspace), Some(member)) = (self.workspace, self.member) else {
            return DecisionRef::Denied(DenialReason::NotAMember);
        };
        // An id the catalog does not know cannot come from a validated request; deny.
        let Some(permission) = catalog.permission(permission_id) else {
            return DecisionRef::Denied(DenialReason::NoCoveringGrant);
        };
        if !workspace.products().contains(permission.product) {
            return DecisionRef::Denied(DenialReason::ProductNotEnabled);
        }
        let target = match (permission.target, resource) {
            (Target::Workspace, None) => None,
            (Target::Instance(ty), Some(id)) => match workspace.instance_named(ty, id) {
                Some(found) => Some((ty, found)),
                None => return DecisionRef::Denied(DenialReason::ResourceNotRegistered),
            },
            _ => return DecisionRef::Denied(DenialReason::ResourceNotRegistered),
        };
        if member.membership == Membership::Owner {
            return DecisionRef::AllowedByMembership(Membership::Owner);
        }
        if permission.every_member {
            return DecisionRef::AllowedByMembership(Membership::Member);
        }
        // The target and its ancestors (a destination's source), looked up once: every
        // instance-scoped grant is then compared against this short chain.
        let mut chain: [Option<(TypeId, &ResourceId)>; MAX_TYPE_DEPTH] = [None; MAX_TYPE_DEPTH];
        if let Some((ty, (id, instance))) = target {
            let parents = instance
                .parent
                .iter()
                .flat_map(|p| workspace.lineage(p))
                .map(|(ty, id)| (*ty, id));
            for (link, key) in chain
                .iter_mut()
                .zip(std::iter::once((ty, id)).chain(parents))
            {
                *link = Some(key);
            }
        }
        let covered = |scope: &Scope| match scope {
            Scope::All => true,
            Scope::Instance(ty, id) => chain
                .iter()
                .map_while(|link| *link)
                .any(|key| key.0 == *ty && key.1 == id),
        };
        let products = workspace.products();
        member
            .grants
            .iter()
            .find(|grant| {
                catalog.role(grant.role).is_some_and(|role| {
                    products.contains(role.product)
                        && role.allows(permission_id)
                        && covered(&grant.scope)
                })
            })
            .map_or(
                DecisionRef::Denied(DenialReason::NoCoveringGrant),
                DecisionRef::AllowedByGrant,
            )
    }
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
