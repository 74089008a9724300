//! Integration tests: the real server on an ephemeral port with a temporary data
//! directory, called with the generated tonic clients. One binary, many modules.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests and their helpers stop at the first failing line"
)]

mod harness;
mod layering;
mod pki;

mod access;
mod admin;
mod cli;
mod concurrency;
mod durability;
mod forward;
mod import_progress;
mod lookup;
mod migrate;
mod ops;
pub(crate) mod replication;
mod transfer;
