//! The gRPC edge: request validation and translation into model types, and the mapping
//! of engine and store errors to statuses.

mod access;
mod admin;
pub mod audit;
pub mod auth;
pub mod callers;
pub mod changes;
pub mod convert;
mod deadline;
pub mod decisions;
pub mod forward;
mod legacy;
pub(crate) mod page_token;
pub mod peer;
pub mod replication;
mod revision;
mod status;
pub mod trace_context;
pub(crate) mod transfer;

pub use access::AccessApi;
pub use admin::AdminApi;
pub use transfer::Exports;

/// Where the services find the store: empty while the server is still loading it at
/// start-up (calls then fail with UNAVAILABLE and health says NOT_SERVING).
pub type StoreSlot = std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::store::Store>>>;

/// The store of `slot`, or UNAVAILABLE while it is still loading.
fn loaded(slot: &StoreSlot) -> Result<&std::sync::Arc<crate::store::Store>, tonic::Status> {
    slot.get()
        .ok_or_else(|| tonic::Status::unavailable("starting: the database is still loading"))
}

/// The most checks one BatchCheck may carry.
pub const MAX_BATCH_CHECKS: usize = 1000;
/// The page size used when a request asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page size a request may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;
/// The longest a read waits for its `at_least_revision` when the call has no deadline:
/// a call without one must still not hold a task forever, and a server this far behind
/// is better reported than waited for.
pub const MAX_REVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
