//! What a check decides and why: every answer names the membership or grant that
//! allowed it, or the reason it was denied.

use super::workspace::{Grant, Membership};

/// Why a check was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// The user is neither owner nor member (or the workspace does not exist).
    NotAMember,
    /// No grant of the member covers the permission on the instance.
    NoCoveringGrant,
    /// The permission's product is not enabled in the workspace.
    ProductNotEnabled,
    /// The named instance is not registered in the workspace.
    ResourceNotRegistered,
}

/// What decided a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by membership: owners hold everything, members `every_member` permissions.
    AllowedByMembership(Membership),
    /// Allowed by this grant.
    AllowedByGrant(Grant),
    /// Denied.
    Denied(DenialReason),
}

impl Decision {
    /// Whether the permission is allowed.
    pub fn allowed(&self) -> bool {
        !matches!(self, Self::Denied(_))
    }
}
