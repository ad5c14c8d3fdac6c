//! Generates the gRPC server code from our protocol definitions. `protox`,
//! a protobuf compiler written in Rust, parses them, so building needs no
//! `protoc` on the machine (nor a compiler binary downloaded at build time);
//! the generated code stays out of the repository, so it can never be stale.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/tfplugin6.proto",
        "proto/plugin.proto",
        "proto/health.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
