//! Deciding one check: may this user hold this permission on this instance?

use crate::model::{
    Catalog, Decision, DenialReason, InstanceKey, Membership, PermissionId, ResourceId, Scope,
    TypeId, UserId, Workspace,
    access::{Instance, Member},
    catalog::{MAX_TYPE_DEPTH, Permission, Target},
    decision::DecisionRef,
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
    let Some(workspace) = workspace else {
        return DecisionRef::Denied(DenialReason::NotAMember);
    };
    let target = catalog
        .permission(check.permission)
        .and_then(|permission| named_instance(permission, check.resource));
    // Both looked up together, as neither depends on the other: at scale, where each
    // is a few reads from memory, that saves the time of one of them.
    let (member, instance) = workspace.member_and_instance(check.user, target);
    let Some(member) = member else {
        return DecisionRef::Denied(DenialReason::NotAMember);
    };
    decide_member(
        catalog,
        workspace,
        member,
        check.permission,
        check.resource,
        instance,
    )
}

/// The instance a check of `permission` on `resource` is about, as a type and an id to
/// look up: `None` when the permission names the workspace, or names an instance and
/// the check gives none (which `decide_member` denies).
fn named_instance<'r>(
    permission: &Permission,
    resource: Option<&'r str>,
) -> Option<(TypeId, &'r str)> {
    match (permission.target, resource) {
        (Target::Instance(ty), Some(id)) => Some((ty, id)),
        _ => None,
    }
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
        let instance = catalog
            .permission(permission_id)
            .and_then(|permission| named_instance(permission, resource))
            .and_then(|(ty, id)| workspace.instance_named(ty, id));
        decide_member(
            catalog,
            workspace,
            member,
            permission_id,
            resource,
            instance,
        )
    }
}

/// Decides whether `member` of `workspace` holds `permission_id` on `resource`, in the
/// order of [`check`], given the registered instance that `named_instance` names, if
/// it is registered.
fn decide_member<'w>(
    catalog: &Catalog,
    workspace: &'w Workspace,
    member: &'w Member,
    permission_id: PermissionId,
    resource: Option<&str>,
    instance: Option<(&'w ResourceId, &'w Instance)>,
) -> DecisionRef<'w> {
    // An id the catalog does not know cannot come from a validated request; deny.
    let Some(permission) = catalog.permission(permission_id) else {
        return DecisionRef::Denied(DenialReason::NoCoveringGrant);
    };
    if !workspace.products().contains(permission.product) {
        return DecisionRef::Denied(DenialReason::ProductNotEnabled);
    }
    let target = match (permission.target, resource) {
        (Target::Workspace, None) => None,
        (Target::Instance(ty), Some(_)) => match instance {
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
    // The target and its ancestors (a destination's source), looked up once and only
    // as far as an instance-scoped grant needs them: owners, all-scope grants and
    // grants on the target itself never look up the instance above it.
    let mut lineage = Lineage::new(workspace, target);
    let mut covered = |scope: &Scope| match scope {
        Scope::All => true,
        Scope::Instance(ty, id) => lineage.contains(*ty, id),
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

/// The target of a check and the instances above it, found as far as they are asked for.
/// Within [`MAX_TYPE_DEPTH`] links, as `Workspace::lineage` bounds them.
struct Lineage<'w> {
    workspace: &'w Workspace,
    /// The keys found so far, the target first; the first `len` are `Some`.
    found: [Option<(TypeId, &'w ResourceId)>; MAX_TYPE_DEPTH],
    len: usize,
    /// Where the next key comes from.
    next: Next<'w>,
}

/// The link a [`Lineage`] finds next.
enum Next<'w> {
    /// This key: the target's parent, known from the target's instance.
    Key(&'w InstanceKey),
    /// The parent of this key, which needs the key's instance looked up.
    ParentOf(&'w InstanceKey),
    /// None: the last key found has no parent.
    End,
}

impl<'w> Lineage<'w> {
    fn new(
        workspace: &'w Workspace,
        target: Option<(TypeId, (&'w ResourceId, &'w Instance))>,
    ) -> Self {
        let mut found = [None; MAX_TYPE_DEPTH];
        let (len, next) = match target {
            Some((ty, (id, instance))) => {
                if let Some(first) = found.first_mut() {
                    *first = Some((ty, id));
                }
                (1, instance.parent.as_ref().map_or(Next::End, Next::Key))
            }
            None => (0, Next::End),
        };
        Self {
            workspace,
            found,
            len,
            next,
        }
    }

    /// Whether instance (`ty`, `id`) is the target or one of the instances above it.
    fn contains(&mut self, ty: TypeId, id: &ResourceId) -> bool {
        let mut at = 0;
        loop {
            if at == self.len && !self.extend() {
                return false;
            }
            match self.found.get(at).copied().flatten() {
                Some((t, i)) if t == ty && i == id => return true,
                Some(_) => at += 1,
                None => return false,
            }
        }
    }

    /// Finds one more link; false if there is none.
    fn extend(&mut self) -> bool {
        if self.len >= MAX_TYPE_DEPTH {
            return false;
        }
        let key = match std::mem::replace(&mut self.next, Next::End) {
            Next::Key(key) => key,
            Next::ParentOf(child) => match self
                .workspace
                .instance(child)
                .and_then(|instance| instance.parent.as_ref())
            {
                Some(key) => key,
                None => return false,
            },
            Next::End => return false,
        };
        let Some(slot) = self.found.get_mut(self.len) else {
            return false;
        };
        *slot = Some((key.0, &key.1));
        self.len += 1;
        self.next = Next::ParentOf(key);
        true
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
