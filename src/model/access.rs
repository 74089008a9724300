//! Who holds what in a workspace: members with their grants, the scope of each grant,
//! and the resource instances a scope names. Values only; the workspace keeps them.

use super::{
    catalog::{RoleId, TypeId},
    ids::ResourceId,
    membership::Membership,
};

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// All current and future instances of the role's types.
    All,
    /// One instance of the role's scope type (and the instances whose parent it is).
    Instance(TypeId, ResourceId),
}

/// A role held by a member with its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    /// The role.
    pub role: RoleId,
    /// What it covers.
    pub scope: Scope,
}

/// A user of a workspace: membership and grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Owner or member.
    pub membership: Membership,
    /// Their grants, sorted and without duplicates. A boxed slice, not a `Vec`: the
    /// capacity it does not keep is 8 bytes of every one of millions of members.
    pub grants: Box<[Grant]>,
}

/// A registered resource instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Its parent instance (a destination's source).
    pub parent: Option<InstanceKey>,
}

/// A resource instance's key within a workspace.
pub type InstanceKey = (TypeId, ResourceId);
