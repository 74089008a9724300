//! The writes the control plane asks for, and why one may be refused: the vocabulary
//! of planning, shared by `plan` and `migrate`.

use crate::model::{Grant, InstanceKey, Membership, ProductSet, ResourceId, UserId, WorkspaceId};

/// A write the control plane asks for, with its ids and names already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create a workspace with its first owner.
    CreateWorkspace {
        /// The new workspace.
        workspace: WorkspaceId,
        /// Its first owner.
        owner: UserId,
        /// Its add-on products (always-enabled ones are added).
        products: ProductSet,
    },
    /// Create a workspace, or bring an existing one to these products with (at least)
    /// these owners: what a bulk import's workspace record asks.
    UpsertWorkspace {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its products (always-enabled ones are added), or `None` if the record listed
        /// none: a new workspace then gets the always-enabled ones, and an existing one
        /// with add-ons is refused rather than stripped of them unasked.
        products: Option<ProductSet>,
        /// Owners to add; refused if empty, so no workspace is ever without an owner.
        owners: Vec<UserId>,
    },
    /// Replace a workspace's enabled products.
    SetProducts {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its add-on products (always-enabled ones are added).
        products: ProductSet,
    },
    /// Delete a workspace and everything in it.
    DeleteWorkspace {
        /// The workspace.
        workspace: WorkspaceId,
    },
    /// Add a user, or change their membership.
    SetMembership {
        /// The workspace.
        workspace: WorkspaceId,
        /// The user.
        user: UserId,
        /// The membership.
        membership: Membership,
        /// The user making the change, who must be allowed to manage access.
        actor: Option<UserId>,
    },
    /// Remove a user and their grants.
    RemoveMember {
        /// The workspace.
        workspace: WorkspaceId,
        /// The user.
        user: UserId,
        /// The user making the change, who must be allowed to manage access.
        actor: Option<UserId>,
    },
    /// Register a resource instance.
    RegisterResource {
        /// The workspace.
        workspace: WorkspaceId,
        /// The instance.
        resource: InstanceKey,
        /// The id of its parent, for types that have one.
        parent: Option<ResourceId>,
    },
    /// Delete a resource instance, its children and the grants scoped to them.
    DeleteResource {
        /// The workspace.
        workspace: WorkspaceId,
        /// The instance.
        resource: InstanceKey,
    },
    /// Grant a role to a member.
    Grant {
        /// The workspace.
        workspace: WorkspaceId,
        /// The member.
        user: UserId,
        /// The role and scope.
        grant: Grant,
        /// The user making the change, who must be allowed to manage access.
        actor: Option<UserId>,
    },
    /// Restore a grant as it was stored (bulk import): validated as `Grant`, except that
    /// its role's product may be disabled, since disabling a product keeps its grants.
    RestoreGrant {
        /// The workspace.
        workspace: WorkspaceId,
        /// The member.
        user: UserId,
        /// The role and scope.
        grant: Grant,
    },
    /// Revoke a grant.
    Revoke {
        /// The workspace.
        workspace: WorkspaceId,
        /// The member.
        user: UserId,
        /// The role and scope.
        grant: Grant,
        /// The user making the change, who must be allowed to manage access.
        actor: Option<UserId>,
    },
    /// Migrate legacy role assignments of one workspace: each user named ends with the
    /// union of their rows (`migrate`), atomically, under one revision.
    MigrateLegacyRoles {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its rows, each naming this workspace.
        assignments: Vec<LegacyAssignment>,
    },
}

impl Command {
    /// The user it names as acting, if any.
    pub fn actor(&self) -> Option<&UserId> {
        match self {
            Self::SetMembership { actor, .. }
            | Self::RemoveMember { actor, .. }
            | Self::Grant { actor, .. }
            | Self::Revoke { actor, .. } => actor.as_ref(),
            _ => None,
        }
    }

    /// The workspace the command writes to.
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Self::CreateWorkspace { workspace, .. }
            | Self::UpsertWorkspace { workspace, .. }
            | Self::SetProducts { workspace, .. }
            | Self::DeleteWorkspace { workspace }
            | Self::SetMembership { workspace, .. }
            | Self::RemoveMember { workspace, .. }
            | Self::RegisterResource { workspace, .. }
            | Self::DeleteResource { workspace, .. }
            | Self::Grant { workspace, .. }
            | Self::RestoreGrant { workspace, .. }
            | Self::Revoke { workspace, .. }
            | Self::MigrateLegacyRoles { workspace, .. } => workspace,
        }
    }

    /// The command's name, for logs and the change log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateWorkspace { .. } => "create_workspace",
            Self::UpsertWorkspace { .. } => "upsert_workspace",
            Self::SetProducts { .. } => "set_products",
            Self::DeleteWorkspace { .. } => "delete_workspace",
            Self::SetMembership { .. } => "set_membership",
            Self::RemoveMember { .. } => "remove_member",
            Self::RegisterResource { .. } => "register_resource",
            Self::DeleteResource { .. } => "delete_resource",
            Self::Grant { .. } => "grant",
            Self::RestoreGrant { .. } => "restore_grant",
            Self::Revoke { .. } => "revoke",
            Self::MigrateLegacyRoles { .. } => "migrate_legacy_roles",
        }
    }
}

/// Why a write was refused. Each variant knows which kind of caller mistake it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The workspace does not exist.
    #[error("workspace `{0}` not found")]
    WorkspaceNotFound(WorkspaceId),
    /// A workspace was given no owner.
    #[error("workspace `{0}` needs at least one owner")]
    NoOwner(WorkspaceId),
    /// No product was listed for an existing workspace that has add-ons, which would
    /// disable them all unasked.
    #[error(
        "lists no product, and workspace `{workspace}` has add-ons enabled ({add_ons}): \
         list every product it should have ({explicit})"
    )]
    ProductsUnlisted {
        /// The workspace.
        workspace: WorkspaceId,
        /// Its enabled add-ons, named in backticks.
        add_ons: String,
        /// How to disable every add-on on purpose.
        explicit: String,
    },
    /// The workspace already exists.
    #[error("workspace `{0}` already exists")]
    WorkspaceExists(WorkspaceId),
    /// The actor may not manage access in the workspace.
    #[error("actor `{0}` may not manage access in this workspace (owners only)")]
    ActorNotAllowed(UserId),
    /// The user is not a member of the workspace.
    #[error("user `{0}` is not a member of the workspace")]
    NotAMember(UserId),
    /// The change would leave the workspace without an owner.
    #[error("user `{0}` is the workspace's last owner; a workspace always has an owner")]
    LastOwner(UserId),
    /// The role's product is not enabled in the workspace.
    #[error("role `{role}` belongs to product `{product}`, which the workspace does not have")]
    ProductNotEnabled {
        /// The role.
        role: String,
        /// Its product.
        product: String,
    },
    /// The role does not accept the scope.
    #[error("role `{role}` {problem}")]
    ScopeNotAccepted {
        /// The role.
        role: String,
        /// What is wrong with the scope.
        problem: String,
    },
    /// A named resource instance is not registered.
    #[error("{type_name} `{id}` is not registered in the workspace")]
    ResourceNotFound {
        /// Its type.
        type_name: String,
        /// Its id.
        id: ResourceId,
    },
    /// A parent was needed and missing, or given and not allowed.
    #[error("{0}")]
    BadParent(String),
    /// The instance is already registered, under another parent.
    #[error("{type_name} `{id}` is already registered under another parent")]
    ResourceExists {
        /// Its type.
        type_name: String,
        /// Its id.
        id: ResourceId,
    },
}

/// One legacy assignment, its ids already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAssignment {
    /// Its position in the batch, which a rejection names.
    pub index: usize,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The user.
    pub user: UserId,
    /// The legacy role's name in the catalog's `[legacy]` table.
    pub legacy_role: String,
    /// The instance it names (a collaborator's source), if any.
    pub instance: Option<ResourceId>,
}
