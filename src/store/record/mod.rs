//! The stored record format: every key and value of the database, each encoder beside
//! its decoder, with a round-trip property test over every kind. sled's default tree
//! holds it all, and start-up reads it whole:
//! ```text
//! v                               -> u64 BE: the format version (FORMAT)
//! r                               -> u64 BE: the last revision written
//! c                               -> u64 BE seed, u64 BE period: where chunks start
//! w 0 {ws}                        -> product names joined by ','
//! M 0 {ws} 0 {first user}         -> a chunk of member records (see `chunks`), each
//!                                    "{user} 0 owner" | "{user} 0 member", then one line
//!                                    per grant, "\n{role} 0 a" (all instances) or
//!                                    "\n{role} 0 i{type} 0 {id}" (one instance)
//! I 0 {ws} 0 {type} 0 {first id}  -> a chunk of instance records of one type, each
//!                                    "{id} 0 " or "{id} 0 {parent type} 0 {parent id}"
//! ```
//! `0` is a NUL byte. Names of products, roles and types are stored rather than catalog
//! indexes, so that a reordered or edited catalog reads the same data.

pub mod chunks;
pub mod keys;
mod values;

#[cfg(test)]
mod tests;

pub use values::{
    ScopeRecord, decode_grant, decode_instance, decode_member, decode_products, decode_u64,
    encode_instance, encode_member, encode_products, encode_u64, text,
};

/// The version of this format, stored under [`keys::FORMAT_VERSION`]. A database of
/// another version is refused at open rather than read by rules it was not written by.
pub const FORMAT: u64 = 1;
