//! The vocabulary of the access model: ids, the role catalog, who holds what, workspace
//! state, changes and decisions. Pure data and its invariants; no I/O and no gRPC types.

pub mod access;
pub mod by_type;
pub mod catalog;
pub mod catalog_text;
pub mod change;
pub mod decision;
pub mod id_table;
pub mod ids;
pub mod membership;
pub mod selection;
pub mod table;
pub mod workspace;

pub use access::{Grant, InstanceKey, Scope};
pub use catalog::{Catalog, PermissionId, ProductId, ProductSet, RoleId, TypeId};
pub use change::Change;
pub use decision::{Decision, DenialReason};
pub use ids::{ResourceId, UserId, WorkspaceId};
pub use membership::Membership;
pub use selection::Selection;
pub use workspace::Workspace;
