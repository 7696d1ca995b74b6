//! Compiles LND's API definitions (`proto/lnd/`, LND v0.20.3-beta, unmodified) into the Rust
//! types and gRPC services of `invoiced lnd-api` (tonic and prost), and their JSON as LND's
//! REST gateway writes it (pbjson: field names as in the definitions, 64-bit integers as
//! strings, bytes in base64, enums by name, fields at their defaults included). protox compiles
//! the definitions, so no `protoc` is needed.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/lnd/lightning.proto",
        "proto/lnd/invoices.proto",
        "proto/lnd/router.proto",
    ];
    let descriptors = protox::compile(protos, ["proto/lnd"])?;
    let encoded = descriptors.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".lnrpc", ".invoicesrpc", ".routerrpc"])?;
    println!("cargo:rerun-if-changed=proto/lnd");
    Ok(())
}
