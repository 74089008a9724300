//! How many checks were decided, by what decided them: counted as each is answered and
//! read by the metrics when scraped. Plain atomics, so that the read side names no
//! metrics crate and a check pays one relaxed increment.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{DenialReason, Membership, decision::DecisionRef};

/// What decided a check: the bounded set a metric's label takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Allowed: the user owns the workspace.
    Owner,
    /// Allowed: a permission every member holds.
    Member,
    /// Allowed by a grant.
    Grant,
    /// Denied: neither owner nor member (or no such workspace).
    NotAMember,
    /// Denied: no grant covers the permission on the instance.
    NoCoveringGrant,
    /// Denied: the permission's product is not enabled.
    ProductNotEnabled,
    /// Denied: the instance is not registered.
    ResourceNotRegistered,
}

impl Basis {
    /// Every basis, in the order counted.
    pub const ALL: [Self; 7] = [
        Self::Owner,
        Self::Member,
        Self::Grant,
        Self::NotAMember,
        Self::NoCoveringGrant,
        Self::ProductNotEnabled,
        Self::ResourceNotRegistered,
    ];

    /// What decided `decision`.
    pub fn of(decision: DecisionRef<'_>) -> Self {
        match decision {
            DecisionRef::AllowedByMembership(Membership::Owner) => Self::Owner,
            DecisionRef::AllowedByMembership(Membership::Member) => Self::Member,
            DecisionRef::AllowedByGrant(_) => Self::Grant,
            DecisionRef::Denied(DenialReason::NotAMember) => Self::NotAMember,
            DecisionRef::Denied(DenialReason::NoCoveringGrant) => Self::NoCoveringGrant,
            DecisionRef::Denied(DenialReason::ProductNotEnabled) => Self::ProductNotEnabled,
            DecisionRef::Denied(DenialReason::ResourceNotRegistered) => Self::ResourceNotRegistered,
        }
    }

    /// Its name, as a label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
            Self::Grant => "grant",
            Self::NotAMember => "not_a_member",
            Self::NoCoveringGrant => "no_covering_grant",
            Self::ProductNotEnabled => "product_not_enabled",
            Self::ResourceNotRegistered => "resource_not_registered",
        }
    }

    /// Whether it allows.
    pub fn allowed(self) -> bool {
        matches!(self, Self::Owner | Self::Member | Self::Grant)
    }
}

/// Checks answered, by basis, since the server started.
#[derive(Debug, Default)]
pub struct DecisionCounts([AtomicU64; Basis::ALL.len()]);

impl DecisionCounts {
    /// Counts `n` decisions made on `basis`.
    pub fn add(&self, basis: Basis, n: u64) {
        if let Some(count) = self.0.get(basis as usize) {
            count.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// How many decisions each basis made.
    pub fn counts(&self) -> impl Iterator<Item = (Basis, u64)> + '_ {
        Basis::ALL
            .into_iter()
            .zip(&self.0)
            .map(|(basis, count)| (basis, count.load(Ordering::Relaxed)))
    }
}

/// The decisions of one batch, tallied before they are added to the shared counts: one
/// increment per basis seen rather than one per item.
#[derive(Debug, Default)]
pub struct Tally([u64; Basis::ALL.len()]);

impl Tally {
    /// Counts one decision.
    pub fn count(&mut self, decision: DecisionRef<'_>) {
        if let Some(count) = self.0.get_mut(Basis::of(decision) as usize) {
            *count += 1;
        }
    }

    /// Adds the tally to `counts`.
    pub fn add_to(&self, counts: &DecisionCounts) {
        for (basis, n) in Basis::ALL.into_iter().zip(self.0) {
            if n > 0 {
                counts.add(basis, n);
            }
        }
    }
}
