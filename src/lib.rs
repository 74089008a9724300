//! accessd: a gRPC authorization service for workspace access management.
//!
//! Codemap, in the direction of the dependencies:
//! - [`api`]: the gRPC edge. Validates requests, translates them, maps errors to statuses.
//! - [`server`]: wires services, health, reflection and shutdown.
//! - [`metrics`]: the Prometheus endpoint: calls, decisions, writes, the store, replication.
//! - [`engine`]: pure decisions (checks) and write planning over workspace state.
//! - [`store`]: sled persistence, the change log, and the published in-memory state.
//! - [`model`]: the access model's vocabulary: ids, catalog, workspace state, decisions.
//! - [`proto`]: the generated gRPC types, for the edge and for clients only.
//! - [`config`]: command-line flags and `ACCESSD_*` environment variables.
//! - [`connect`]: reaching a server as a client (TLS, token), for [`cli`] and [`follower`].
//! - [`cli`]: the operator's client subcommands, calling a running server.
//! - [`telemetry`]: log lines, and request spans exported over OTLP when asked for.
//!
//! See `ARCHITECTURE.md` for the data flow of a check and of a write.

pub mod api;
pub mod cli;
pub mod config;
pub mod connect;
pub mod engine;
pub mod follower;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod reload;
pub mod run;
pub mod server;
pub mod store;
pub mod telemetry;
