//! A user's membership of a workspace: the one word of the access vocabulary that the
//! catalog speaks too (a legacy role becomes a membership), so it depends on nothing.

/// A user's membership of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Membership {
    /// Allowed every permission of the enabled products.
    Owner,
    /// Allowed `workspace.read` and what their grants give.
    Member,
}
