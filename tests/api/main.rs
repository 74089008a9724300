//! Integration tests: the real server on an ephemeral port with a temporary data
//! directory, called with the generated tonic clients. One binary, many modules.

mod harness;

mod access;
mod durability;
