//! Compiles the protos with protox (pure Rust, no system `protoc`) and keeps the
//! descriptor set in `OUT_DIR` so that server reflection serves the same descriptors.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/accessd/v1/access.proto",
        "proto/accessd/v1/admin.proto",
        "proto/accessd/v1/replication.proto",
        "proto/accessd/v1/audit.proto",
    ];
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("accessd_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
