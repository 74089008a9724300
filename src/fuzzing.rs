//! The internal parsers that the fuzz targets in `fuzz/` drive, re-exported under the
//! `fuzzing` feature only: not part of the API, and absent from every other build.

/// The change log's line format.
pub mod change_log {
    pub use crate::store::change_log::format::{
        Author, GROUP_END, GroupLines, ReadError, ReadLine, line_position, read_line,
    };
}

/// The stored record format: keys, values and chunks.
pub mod record {
    pub use crate::store::record::{
        ScopeRecord, chunks, decode_grant, decode_instance, decode_member, decode_products,
        decode_u64, encode_instance, encode_member, encode_products, encode_u64, keys,
    };
}

/// Page tokens of the list RPCs.
pub mod page_token {
    pub use crate::api::page_token::{decode, encode};
}

/// The Import RPC's records.
pub mod transfer {
    pub use crate::api::transfer::command;
}
