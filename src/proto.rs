//! The generated `accessd.v1` messages, clients and servers, and the descriptor set
//! reflection serves. Only the gRPC edge (`api`, `server`) and clients (`cli`, the load
//! generator) name these types: the engine, the model and the store never do.

#![expect(missing_docs, clippy::all, reason = "generated code")]

tonic::include_proto!("accessd.v1");

/// The encoded descriptor set of the accessd protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("accessd_descriptor");
