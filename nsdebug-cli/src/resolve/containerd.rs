//! containerd through its gRPC API: containers by ID in the usual namespaces, and Kubernetes
//! pods' containers by their CRI labels.

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{GetRequest, ListContainersRequest};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::Request;
use containerd_client::with_namespace;

use super::{ContainerInfo, Lookup, API_TIMEOUT};

/// The namespaces searched for a container ID: Docker's, Kubernetes' (CRI), `ctr`'s default.
pub const NAMESPACES: [&str; 3] = ["moby", "k8s.io", "default"];

const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// CRI marks a pod's sandbox (pause) container with this label = "sandbox".
const CRI_KIND: &str = "io.cri-containerd.kind";

/// The socket: `CONTAINERD_ADDRESS`, the system containerd's, or the one Docker starts itself.
fn socket() -> Result<String, String> {
    if let Ok(address) = std::env::var("CONTAINERD_ADDRESS") {
        // Named explicitly: that one or none.
        let path = address.trim_start_matches("unix://").to_owned();
        return match std::path::Path::new(&path).exists() {
            true => Ok(path),
            false => Err(format!("containerd: no socket at {path} (CONTAINERD_ADDRESS)")),
        };
    }
    let mut candidates = Vec::new();
    candidates.push("/run/containerd/containerd.sock".to_owned());
    candidates.push("/var/run/docker/containerd/containerd.sock".to_owned());
    candidates
        .iter()
        .find(|path| std::path::Path::new(path).exists())
        .cloned()
        .ok_or_else(|| format!("containerd: no socket at {}", candidates.join(" or ")))
}

/// Whether a containerd socket exists.
pub fn is_present() -> bool {
    socket().is_ok()
}

async fn connect() -> Result<(Channel, String), String> {
    let path = socket()?;
    let channel = tokio::time::timeout(API_TIMEOUT, containerd_client::connect(&path))
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

async fn containers(channel: &Channel, namespace: &'static str, filters: Vec<String>) -> anyhow::Result<Vec<Listed>> {
    let mut client = ContainersClient::new(channel.clone());
    let request = with_namespace!(ListContainersRequest { filters }, namespace);
    let response = tokio::time::timeout(API_TIMEOUT, client.list(request))
        .await
        .map_err(|_| anyhow!("containerd: no answer within {API_TIMEOUT:?}"))??;
    Ok(response
        .into_inner()
        .containers
        .into_iter()
        .map(|c| Listed { id: c.id, namespace, labels: c.labels })
        .collect())
}

/// The task (running process) of a container: its pid and status.
async fn task(channel: &Channel, listed: &Listed, name: String) -> ContainerInfo {
    let mut client = TasksClient::new(channel.clone());
    let request = with_namespace!(GetRequest { container_id: listed.id.clone(), exec_id: String::new() }, listed.namespace);
    let process = tokio::time::timeout(API_TIMEOUT, client.get(request))
        .await
        .ok()
        .and_then(Result::ok)
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

fn display_name(listed: &Listed) -> String {
    match (listed.labels.get(POD_NAMESPACE), listed.labels.get(POD_NAME), listed.labels.get(CONTAINER_NAME)) {
        (Some(ns), Some(pod), Some(container)) => format!("{ns}/{pod}/{container}"),
        (Some(ns), Some(pod), None) => format!("{ns}/{pod}"),
        _ => listed.id.clone(),
    }
}

/// Looks a container ID (or unique prefix) up in [`NAMESPACES`].
pub async fn lookup(spec: &str) -> anyhow::Result<Lookup> {
    let (channel, path) = match connect().await {
        Ok(connected) => connected,
        Err(why) => return Ok(Lookup::Unreachable(why)),
    };
    let mut matches = Vec::new();
    for namespace in NAMESPACES {
        match containers(&channel, namespace, Vec::new()).await {
            Ok(list) => matches.extend(list.into_iter().filter(|c| c.id.starts_with(spec))),
            Err(e) => return Ok(Lookup::Unreachable(format!("containerd ({path}): {e:#}"))),
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
            let ids: Vec<String> = matches.iter().map(|c| format!("{}/{}", c.namespace, c.id)).collect();
            bail!("containerd: ID prefix {spec} is ambiguous: {}", ids.join(", "))
        }
    }
}

/// A Kubernetes pod's container, by CRI labels in namespace `k8s.io`.
pub async fn find_pod(pod: &str, namespace: &str, container: Option<&str>) -> anyhow::Result<ContainerInfo> {
    let (channel, path) = connect().await.map_err(|why| anyhow!("pod/{pod}: {why}"))?;
    let mut filters = vec![format!("labels.\"{POD_NAME}\"=={pod},labels.\"{POD_NAMESPACE}\"=={namespace}")];
    if let Some(container) = container {
        filters = vec![format!("{},labels.\"{CONTAINER_NAME}\"=={container}", filters[0])];
    }
    let mut found: Vec<Listed> = containers(&channel, "k8s.io", filters)
        .await?
        .into_iter()
        .filter(|c| c.labels.get(CRI_KIND).map(String::as_str) != Some("sandbox"))
        .collect();
    let wanted = match container {
        Some(c) => format!("container {c} of pod {namespace}/{pod}"),
        None => format!("pod {namespace}/{pod}"),
    };
    if found.is_empty() {
        bail!("{wanted}: not found in containerd ({path}) namespace k8s.io");
    }
    // The kubelet keeps the exited attempts of restarted containers: only running ones count.
    let mut running = Vec::new();
    let mut stopped = Vec::new();
    for listed in found.drain(..) {
        let name = display_name(&listed);
        let info = task(&channel, &listed, name).await;
        if info.pid.is_some() {
            running.push((listed, info));
        } else {
            stopped.push(info);
        }
    }
    match running.len() {
        0 => Ok(stopped.remove(0)),
        1 => Ok(running.remove(0).1),
        _ => {
            let names: Vec<String> =
                running.iter().map(|(c, _)| c.labels.get(CONTAINER_NAME).cloned().unwrap_or_else(|| c.id.clone())).collect();
            bail!("{wanted} has {} running containers ({}): choose one with --container", running.len(), names.join(", "))
        }
    }
}

/// Every container with a running task, in [`NAMESPACES`].
pub async fn list() -> Result<Vec<ContainerInfo>, String> {
    let (channel, path) = connect().await?;
    let mut all = Vec::new();
    for namespace in NAMESPACES {
        let listed = containers(&channel, namespace, Vec::new()).await.map_err(|e| format!("containerd ({path}): {e:#}"))?;
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
