//! The decision engine: pure functions over the catalog and a workspace's state. It
//! checks permissions and plans writes; it does no I/O, holds no locks and knows
//! nothing of gRPC or sled.

pub mod check;
pub mod command;
pub mod list;
pub mod lookup;
pub mod migrate;
pub mod plan;

pub use check::{Check, check};
pub use command::{Command, LegacyAssignment, WriteError};
pub use plan::{Migration, plan, plan_migration};

#[cfg(test)]
mod tests;
