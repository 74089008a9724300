//! What a check decides and why: every answer names the membership or grant that
//! allowed it, or the reason it was denied.

use super::{access::Grant, membership::Membership};

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

    /// The same decision, borrowing its grant.
    pub fn as_ref(&self) -> DecisionRef<'_> {
        match self {
            Self::AllowedByMembership(membership) => DecisionRef::AllowedByMembership(*membership),
            Self::AllowedByGrant(grant) => DecisionRef::AllowedByGrant(grant),
            Self::Denied(reason) => DecisionRef::Denied(*reason),
        }
    }
}

/// A [`Decision`] that borrows its grant from the workspace it was decided against, so
/// that deciding copies nothing: what the check path renders straight into an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRef<'a> {
    /// Allowed by membership: owners hold everything, members `every_member` permissions.
    AllowedByMembership(Membership),
    /// Allowed by this grant.
    AllowedByGrant(&'a Grant),
    /// Denied.
    Denied(DenialReason),
}

impl DecisionRef<'_> {
    /// Whether the permission is allowed.
    pub fn allowed(self) -> bool {
        !matches!(self, Self::Denied(_))
    }

    /// The decision as an owned value (its grant cloned).
    pub fn to_decision(self) -> Decision {
        match self {
            Self::AllowedByMembership(membership) => Decision::AllowedByMembership(membership),
            Self::AllowedByGrant(grant) => Decision::AllowedByGrant(grant.clone()),
            Self::Denied(reason) => Decision::Denied(reason),
        }
    }
}
