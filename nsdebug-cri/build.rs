//! Generates the CRI client (`vendor/proto/runtime/v1/api.proto`) and containerd's containers,
//! tasks and (read-only) snapshots clients (`vendor/proto/github.com/containerd/...`) with protox (a protobuf
//! compiler in Rust): building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=vendor/proto");
    // The CRI, and the two containerd services nsdebug asks (containers and tasks), with the
    // types they use (vendored from containerd's api, Apache-2.0).
    let descriptors = protox::compile(
        [
            "runtime/v1/api.proto",
            "github.com/containerd/containerd/api/services/containers/v1/containers.proto",
            "github.com/containerd/containerd/api/services/tasks/v1/tasks.proto",
            "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto",
        ],
        ["vendor/proto"],
    )?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
