//! containerd through its own gRPC API: containers by ID in the usual namespaces (`ctr`'s,
//! Docker's, and Kubernetes' `k8s.io`). Pods are found through the CRI ([`super::cri`]).

use std::collections::HashMap;

use nsdebug_cri::containerd::services::containers::v1::containers_client::ContainersClient;
use nsdebug_cri::containerd::services::containers::v1::ListContainersRequest;
use nsdebug_cri::containerd::services::tasks::v1::tasks_client::TasksClient;
use nsdebug_cri::containerd::services::tasks::v1::GetRequest;
use tonic::transport::Channel;
use tonic::Request;

/// A request for containerd namespace `namespace` (its `containerd-namespace` header).
fn with_namespace<T>(message: T, namespace: &str) -> Request<T> {
    let mut request = Request::new(message);
    // A namespace name that is no valid header value cannot name anything: leave it out.
    if let Ok(value) = namespace.parse() {
        request
            .metadata_mut()
            .insert(nsdebug_cri::CONTAINERD_NAMESPACE_HEADER, value);
    }
    request
}

use super::{ContainerInfo, Error, Kubernetes, Lookup, Result, API_TIMEOUT};

/// The namespaces searched for a container ID: Docker's, Kubernetes' (CRI), `ctr`'s default.
pub const NAMESPACES: [&str; 3] = ["moby", "k8s.io", "default"];

const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// The socket: `CONTAINERD_ADDRESS`, the system containerd's, or the one Docker starts itself.
fn socket() -> std::result::Result<String, String> {
    if let Ok(address) = std::env::var("CONTAINERD_ADDRESS") {
        // Named explicitly: that one or none.
        let path = address.trim_start_matches("unix://").to_owned();
        return match std::path::Path::new(&path).exists() {
            true => Ok(path),
            false => Err(format!(
                "containerd: no socket at {path} (CONTAINERD_ADDRESS)"
            )),
        };
    }
    let mut candidates = Vec::new();
    candidates.push("/run/containerd/containerd.sock".to_owned());
    candidates.push("/var/run/docker/containerd/containerd.sock".to_owned());
    // Found by looking, not named: only root's or the user's (see verify).
    candidates
        .iter()
        .find(|path| {
            let path = std::path::Path::new(path);
            path.exists() && super::verify::found_socket_trusted(path).is_ok()
        })
        .cloned()
        .ok_or_else(|| format!("containerd: no socket at {}", candidates.join(" or ")))
}

/// Whether a containerd socket exists.
pub fn is_present() -> bool {
    socket().is_ok()
}

async fn connect() -> std::result::Result<(Channel, String), String> {
    let path = socket()?;
    let channel = tokio::time::timeout(API_TIMEOUT, nsdebug_cri::connect(&path))
        .await
        .map_err(|_| format!("containerd ({path}): no answer within {API_TIMEOUT:?}"))?
        .map_err(|e| format!("containerd ({path}): {e}"))?;
    Ok((channel, path))
}

/// A container of one namespace with its labels.
struct Listed {
    id: String,
    namespace: &'static str,
    labels: HashMap<String, String>,
}

async fn containers(
    channel: &Channel,
    namespace: &'static str,
    filters: Vec<String>,
) -> std::result::Result<Vec<Listed>, String> {
    let mut client = ContainersClient::new(channel.clone());
    let request = with_namespace(ListContainersRequest { filters }, namespace);
    let response = tokio::time::timeout(API_TIMEOUT, client.list(request))
        .await
        .map_err(|_| format!("no answer within {API_TIMEOUT:?}"))?
        .map_err(|status| status.message().to_owned())?;
    Ok(response
        .into_inner()
        .containers
        .into_iter()
        .map(|c| Listed {
            id: c.id,
            namespace,
            labels: c.labels,
        })
        .collect())
}

/// The task (running process) of a container: its pid and status.
async fn task(channel: &Channel, listed: &Listed, name: String) -> ContainerInfo {
    let mut client = TasksClient::new(channel.clone());
    let request = with_namespace(
        GetRequest {
            container_id: listed.id.clone(),
            exec_id: String::new(),
        },
        listed.namespace,
    );
    let process = tokio::time::timeout(API_TIMEOUT, client.get(request))
        .await
        .ok()
        .and_then(std::result::Result::ok)
        .and_then(|response| response.into_inner().process);
    let (pid, status) = match process {
        // Status 2 is RUNNING in containerd's task API.
        Some(p) if p.status == 2 => (i32::try_from(p.pid).ok(), "running".to_owned()),
        Some(p) => (None, status_name(p.status).to_owned()),
        None => (None, "created (no task)".to_owned()),
    };
    ContainerInfo {
        runtime: "containerd",
        id: listed.id.clone(),
        name,
        namespace: Some(listed.namespace.to_owned()),
        pid,
        status,
        network_mode: None,
        kubernetes: kubernetes(listed),
        cri: None,
        details: Default::default(),
    }
}

fn status_name(status: i32) -> &'static str {
    match status {
        1 => "created",
        2 => "running",
        3 => "stopped",
        4 => "paused",
        5 => "pausing",
        _ => "unknown",
    }
}

/// The Kubernetes names a kubelet put in the container's labels, if it is a pod's.
fn kubernetes(listed: &Listed) -> Option<Box<Kubernetes>> {
    Some(Box::new(Kubernetes {
        namespace: listed.labels.get(POD_NAMESPACE)?.clone(),
        pod: listed.labels.get(POD_NAME)?.clone(),
        container: listed.labels.get(CONTAINER_NAME).cloned(),
    }))
}

fn display_name(listed: &Listed) -> String {
    match (
        listed.labels.get(POD_NAMESPACE),
        listed.labels.get(POD_NAME),
        listed.labels.get(CONTAINER_NAME),
    ) {
        (Some(ns), Some(pod), Some(container)) => format!("{ns}/{pod}/{container}"),
        (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
        _ => listed.id.clone(),
    }
}

/// A containerd filter for the IDs that begin with `spec`: `id~="^PREFIX"`, a regular
/// expression in which `.` is written `[.]`. `None` when `spec` holds a character no
/// containerd ID has (letters, digits, `.`, `_`, `-`), so no ID can begin with it.
fn id_prefix_filter(spec: &str) -> Option<String> {
    if spec.is_empty()
        || !spec
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return None;
    }
    Some(format!("id~=\"^{}\"", spec.replace('.', "[.]")))
}

/// Looks a container ID (or unique prefix) up in [`NAMESPACES`].
pub async fn lookup(spec: &str) -> Result<Lookup> {
    let (channel, path) = match connect().await {
        Ok(connected) => connected,
        Err(why) => return Ok(Lookup::Unreachable(why)),
    };
    let mut matches = Vec::new();
    // containerd answers with whole runtime specs: ask it for the IDs that begin with `spec`
    // only (on a node with many containers that is most of the cost), in every namespace at
    // once on the one connection. The prefix test below stays the rule.
    if let Some(filter) = id_prefix_filter(spec) {
        let ask = |namespace| containers(&channel, namespace, vec![filter.clone()]);
        let (moby, k8s, default) =
            tokio::join!(ask(NAMESPACES[0]), ask(NAMESPACES[1]), ask(NAMESPACES[2]));
        for answer in [moby, k8s, default] {
            match answer {
                Ok(list) => matches.extend(list.into_iter().filter(|c| c.id.starts_with(spec))),
                Err(e) => return Ok(Lookup::Unreachable(format!("containerd ({path}): {e}"))),
            }
        }
    }
    // An exact ID wins over prefixes of longer ones.
    if let Some(exact) = matches.iter().position(|c| c.id == spec) {
        let listed = matches.swap_remove(exact);
        let name = display_name(&listed);
        return Ok(Lookup::Found(task(&channel, &listed, name).await));
    }
    match matches.len() {
        0 => Ok(Lookup::NotFound(format!(
            "containerd ({path}): no container ID starting with {spec} in namespaces {}",
            NAMESPACES.join(", ")
        ))),
        1 => {
            let listed = matches.remove(0);
            let name = display_name(&listed);
            Ok(Lookup::Found(task(&channel, &listed, name).await))
        }
        _ => {
            let ids: Vec<String> = matches
                .iter()
                .map(|c| format!("{}/{}", c.namespace, c.id))
                .collect();
            Err(Error::Ambiguous {
                spec: spec.to_owned(),
                message: format!(
                    "containerd: ID prefix {spec} is ambiguous: {}",
                    ids.join(", ")
                ),
            })
        }
    }
}

/// Every container with a running task, in [`NAMESPACES`].
pub async fn list() -> std::result::Result<Vec<ContainerInfo>, String> {
    let (channel, path) = connect().await?;
    let mut all = Vec::new();
    for namespace in NAMESPACES {
        let listed = containers(&channel, namespace, Vec::new())
            .await
            .map_err(|e| format!("containerd ({path}): {e:#}"))?;
        tracing::info!(
            "containerd ({path}), namespace {namespace}: {} containers",
            listed.len()
        );
        for container in listed {
            let name = display_name(&container);
            let info = task(&channel, &container, name).await;
            if info.pid.is_some() {
                all.push(info);
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prefix_becomes_a_filter_only_if_an_id_can_begin_with_it() {
        assert_eq!(
            id_prefix_filter("ea9a4e").as_deref(),
            Some("id~=\"^ea9a4e\"")
        );
        assert_eq!(
            id_prefix_filter("web.v1_a-b").as_deref(),
            Some("id~=\"^web[.]v1_a-b\"")
        );
        // Characters that would end the quoted value or mean something in a regex: no ID
        // holds them, so nothing is asked.
        for spec in ["", "a\"", "a*", "a|b", "a/b", "a b", "a\\"] {
            assert_eq!(id_prefix_filter(spec), None, "{spec:?}");
        }
    }
}
