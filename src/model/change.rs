//! The primitive changes a write is made of. The engine plans them, the workspace state
//! applies them in memory, and the store persists them and records them in the change log.

use super::{
    access::{Grant, InstanceKey},
    catalog::ProductSet,
    ids::{UserId, WorkspaceId},
    membership::Membership,
};

/// One primitive change to one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new workspace with these products.
    CreateWorkspace {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its enabled products.
        products: ProductSet,
    },
    /// New enabled products.
    SetProducts {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its enabled products from now on.
        products: ProductSet,
    },
    /// The workspace and everything in it are gone.
    DeleteWorkspace {
        /// The workspace.
        workspace: WorkspaceId,
    },
    /// A user joins, or changes membership.
    SetMembership {
        /// The workspace.
        workspace: WorkspaceId,
        /// The user.
        user: UserId,
        /// Their new membership.
        membership: Membership,
    },
    /// A user leaves (their grants were removed by earlier changes of the same write).
    RemoveMember {
        /// The workspace.
        workspace: WorkspaceId,
        /// The user.
        user: UserId,
    },
    /// A member receives a grant.
    AddGrant {
        /// The workspace.
        workspace: WorkspaceId,
        /// The member.
        user: UserId,
        /// The grant.
        grant: Grant,
    },
    /// A member loses a grant.
    RemoveGrant {
        /// The workspace.
        workspace: WorkspaceId,
        /// The member.
        user: UserId,
        /// The grant.
        grant: Grant,
    },
    /// A resource instance is registered.
    RegisterResource {
        /// The workspace.
        workspace: WorkspaceId,
        /// The instance.
        resource: InstanceKey,
        /// Its parent instance, for types that have one.
        parent: Option<InstanceKey>,
    },
    /// A resource instance is deleted (grants on it and its children were removed by
    /// earlier changes of the same write).
    DeleteResource {
        /// The workspace.
        workspace: WorkspaceId,
        /// The instance.
        resource: InstanceKey,
    },
}

impl Change {
    /// The workspace the change applies to.
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Self::CreateWorkspace { workspace, .. }
            | Self::SetProducts { workspace, .. }
            | Self::DeleteWorkspace { workspace }
            | Self::SetMembership { workspace, .. }
            | Self::RemoveMember { workspace, .. }
            | Self::AddGrant { workspace, .. }
            | Self::RemoveGrant { workspace, .. }
            | Self::RegisterResource { workspace, .. }
            | Self::DeleteResource { workspace, .. } => workspace,
        }
    }
}
