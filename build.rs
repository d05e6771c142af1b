//! Compiles `proto/` with protox, a protobuf compiler written in Rust, so a fresh machine needs
//! only cargo (no system `protoc`). The same descriptor set feeds tonic's code generator and the
//! reflection service, so what grpcurl sees is exactly what the server implements.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/prove/gateway/v1/types.proto",
    "proto/prove/gateway/v1/errors.proto",
    "proto/prove/gateway/v1/unify_service.proto",
    "proto/prove/gateway/v1/verify_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::Compiler::new(["proto"])?
        // Imports (google/protobuf/struct.proto) must be in the set reflection serves, or
        // clients cannot resolve the `evaluation` field's type.
        .include_imports(true)
        // Source info carries the proto comments into the generated Rust docs.
        .include_source_info(true)
        .open_files(PROTOS)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("prove_gateway_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
