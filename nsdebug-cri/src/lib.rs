#![doc = include_str!("../README.md")]
//! A client of the Kubernetes Container Runtime Interface (`runtime.v1`), the API that
//! kubelet, `crictl` and nsdebug use to talk to containerd, CRI-O and the runtimes of k3s
//! and RKE2.
//!
//! The bindings are generated at build time from the vendored `api.proto` of
//! `k8s.io/cri-api` (Apache-2.0) with protox, so no `protoc` is needed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use nsdebug_cri::v1::ListPodSandboxRequest;
//! let channel = nsdebug_cri::connect("/run/containerd/containerd.sock").await?;
//! let mut runtime = nsdebug_cri::RuntimeClient::new(channel);
//! let pods = runtime.list_pod_sandbox(ListPodSandboxRequest::default()).await?.into_inner();
//! for pod in pods.items {
//!     println!("{:?}", pod.metadata.map(|m| format!("{}/{}", m.namespace, m.name)));
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::Path;

/// The generated `runtime.v1` messages and clients.
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}

/// containerd's own API (containers, tasks and snapshot mounts), for containers that are not
/// Kubernetes pods (Docker's in namespace `moby`, `ctr`'s). Modules follow the protobuf
/// packages, as the generated code refers to its types by relative paths.
#[allow(missing_docs, clippy::all, rustdoc::all)]
pub mod containerd {
    pub mod types {
        tonic::include_proto!("containerd.types");
    }
    pub mod v1 {
        pub mod types {
            tonic::include_proto!("containerd.v1.types");
        }
    }
    pub mod services {
        pub mod containers {
            pub mod v1 {
                tonic::include_proto!("containerd.services.containers.v1");
            }
        }
        pub mod tasks {
            pub mod v1 {
                tonic::include_proto!("containerd.services.tasks.v1");
            }
        }
        /// Only `Mounts` (where a container's snapshot is): trimmed so that nothing can be
        /// prepared, committed or removed through it.
        pub mod snapshots {
            pub mod v1 {
                tonic::include_proto!("containerd.services.snapshots.v1");
            }
        }
    }
}

/// The header that names the containerd namespace a request is for.
pub const CONTAINERD_NAMESPACE_HEADER: &str = "containerd-namespace";

/// The CRI runtime service client (pods, containers, status).
pub type RuntimeClient =
    v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;
/// The CRI image service client.
pub type ImageClient = v1::image_service_client::ImageServiceClient<tonic::transport::Channel>;

/// Connects to a CRI endpoint: a unix socket path, with or without `unix://`.
///
/// The connection is made now: a missing socket or a refused connection is an error here,
/// not at the first call.
pub async fn connect(
    endpoint: impl AsRef<Path>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let path = endpoint.as_ref();
    let path = path
        .to_str()
        .and_then(|s| s.strip_prefix("unix://"))
        .map_or_else(|| path.to_path_buf(), Into::into);
    // The URI is required by the API and unused: the connector dials the socket.
    tonic::transport::Endpoint::from_static("http://[::]:0")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}
