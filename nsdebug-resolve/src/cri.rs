//! Kubernetes pods through the CRI (`runtime.v1`), as kubelet and `crictl` see them: containerd,
//! CRI-O, k3s and RKE2 alike.
//!
//! Endpoint, as `crictl` finds it: `--cri-endpoint`, else `CONTAINER_RUNTIME_ENDPOINT` (that one
//! only), else every well-known socket that exists ([`WELL_KNOWN`]), in that order.

use std::collections::HashMap;

use nsdebug_cri::v1::{
    ContainerFilter, ContainerState, ContainerStatusRequest, ContainerStatusResponse,
    ListContainersRequest, ListPodSandboxRequest, PodSandboxFilter, PodSandboxState,
    PodSandboxStatusRequest,
};
use nsdebug_cri::RuntimeClient;

use super::{ContainerInfo, Details, Error, Kubernetes, API_TIMEOUT};

/// The sockets tried when no endpoint is named: containerd, k3s and RKE2 (which share k3s'
/// path), CRI-O.
pub const WELL_KNOWN: [&str; 4] = [
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
];

/// The labels kubelet puts on a pod's sandbox and containers.
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";

/// The annotation that names a pod's default container (`kubectl exec` and `logs` honour it).
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// Which pod (and container) a TARGET names.
#[derive(Clone, Debug)]
pub struct PodSpec {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name (`-c`), if given.
    pub container: Option<String>,
    /// Without a container name: the pod's sandbox (its network namespace) rather than the
    /// default container. `veth` and `flow` want this.
    pub sandbox_when_unnamed: bool,
    /// A pod whose sandbox stopped is still found (its containers' records, for `why`).
    pub stopped_too: bool,
}

/// A pod's sandbox or container found through the CRI.
pub struct Found {
    /// What nsdebug tells about it; `runtime` is `cri`.
    pub info: ContainerInfo,
    /// The network namespace file the runtime reports (a sandbox without an infra process,
    /// as CRI-O can run them, has no pid but has this).
    pub netns_path: Option<String>,
    /// Said on stderr when nsdebug chose the container: which one and why.
    pub note: Option<String>,
}

/// The endpoints to ask: named (`--cri-endpoint`, `CONTAINER_RUNTIME_ENDPOINT`) or the
/// well-known sockets that exist. An error says where nothing was found.
pub fn endpoints(named: Option<&str>) -> Result<Vec<String>, String> {
    let named = named
        .map(str::to_owned)
        .or_else(|| std::env::var("CONTAINER_RUNTIME_ENDPOINT").ok());
    if let Some(endpoint) = named.filter(|e| !e.is_empty()) {
        let path = endpoint
            .strip_prefix("unix://")
            .unwrap_or(&endpoint)
            .to_owned();
        if !endpoint.starts_with('/') && !endpoint.starts_with("unix://") {
            return Err(format!(
                "CRI endpoint {endpoint}: only unix sockets (unix:///path or /path) are supported"
            ));
        }
        return match std::path::Path::new(&path).exists() {
            true => Ok(vec![path]),
            false => Err(format!("CRI: no socket at {path}")),
        };
    }
    // Found by looking, not named: only root's or the user's (see verify).
    let present: Vec<String> = WELL_KNOWN
        .iter()
        .filter(|path| std::path::Path::new(path).exists())
        .filter(|path| super::verify::found_socket_trusted(std::path::Path::new(path)).is_ok())
        .map(|p| (*p).to_owned())
        .collect();
    if present.is_empty() {
        return Err(format!("CRI: no socket at {}", WELL_KNOWN.join(", ")));
    }
    Ok(present)
}

async fn connect(endpoint: &str) -> Result<RuntimeClient, String> {
    let channel = tokio::time::timeout(API_TIMEOUT, nsdebug_cri::connect(endpoint))
        .await
        .map_err(|_| format!("CRI ({endpoint}): no answer within {API_TIMEOUT:?}"))?
        .map_err(|e| format!("CRI ({endpoint}): {e}"))?;
    Ok(RuntimeClient::new(channel))
}

/// Runs one CRI call with the API timeout, as a one-line error.
async fn call<T>(
    endpoint: &str,
    what: &str,
    future: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(API_TIMEOUT, future).await {
        Err(_) => Err(format!(
            "CRI ({endpoint}): {what}: no answer within {API_TIMEOUT:?}"
        )),
        Ok(Err(status)) => Err(format!("CRI ({endpoint}): {what}: {}", status.message())),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// What the CRI recorded of a container, for `audit` to check against the kernel: its
/// mounts (the CRI's own `ContainerStatus.mounts`: kubelet's volumes and hostPaths), and
/// from containerd's verbose info the CRI config's `privileged` and added capabilities and
/// the runtime spec's confinement, spelt as Docker's `SecurityOpt` (`no-new-privileges`,
/// `seccomp=unconfined` when the spec has no seccomp section) so one parser reads both.
/// Without verbose info the confinement is not claimed either way (no `SecurityOpt`).
fn recorded(status: &ContainerStatusResponse, json: Option<&serde_json::Value>) -> Details {
    let mounts = status
        .status
        .as_ref()
        .map(|s| {
            s.mounts
                .iter()
                .map(|m| super::RecordedMount {
                    kind: "bind".to_owned(),
                    source: m.host_path.clone(),
                    destination: m.container_path.clone(),
                    writable: !m.readonly,
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(json) = json else {
        return Details {
            mounts,
            ..Details::default()
        };
    };
    let security = json.pointer("/config/linux/security_context");
    let privileged = security
        .and_then(|s| s.get("privileged"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let cap_add = security
        .and_then(|s| s.pointer("/capabilities/add_capabilities"))
        .and_then(serde_json::Value::as_array)
        .map(|caps| {
            caps.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let device_rules = json
        .pointer("/runtimeSpec/linux/resources/devices")
        .and_then(spec_device_rules);
    let mut security_opt = Vec::new();
    if let Some(spec) = json.get("runtimeSpec") {
        if spec.pointer("/process/noNewPrivileges") == Some(&serde_json::Value::Bool(true)) {
            security_opt.push("no-new-privileges".to_owned());
        }
        // Always one seccomp word, so an empty list means "the spec was not read".
        if spec
            .pointer("/linux/seccomp")
            .is_none_or(serde_json::Value::is_null)
        {
            security_opt.push("seccomp=unconfined".to_owned());
        } else {
            security_opt.push("seccomp=runtime-spec".to_owned());
        }
    }
    Details {
        mounts,
        privileged,
        cap_add,
        security_opt,
        devices: device_rules.as_ref().map(|_| Vec::new()),
        device_cgroup_rules: device_rules.unwrap_or_default(),
        ..Details::default()
    }
}

/// The runtime spec's device cgroup (`linux.resources.devices`) as `devices.list` lines: a
/// leading deny-all, then what it allows. Any other deny is not claimed (`None`): what it
/// takes away depends on the order the runtime applies them in.
fn spec_device_rules(devices: &serde_json::Value) -> Option<Vec<String>> {
    let mut rules = Vec::new();
    for (index, device) in devices.as_array()?.iter().enumerate() {
        let number = |key: &str| match device.get(key) {
            None | Some(serde_json::Value::Null) => Some("*".to_owned()),
            Some(n) if n.as_i64() == Some(-1) => Some("*".to_owned()),
            Some(n) => n.as_u64().map(|n| n.to_string()),
        };
        let kind = device.get("type").and_then(|t| t.as_str()).unwrap_or("a");
        let access = device
            .get("access")
            .and_then(|a| a.as_str())
            .unwrap_or("rwm");
        let rule = format!("{kind} {}:{} {access}", number("major")?, number("minor")?);
        match device.get("allow").and_then(serde_json::Value::as_bool) {
            Some(true) => rules.push(rule),
            Some(false) if index == 0 && rule == "a *:* rwm" => {}
            _ => return None,
        }
    }
    Some(rules)
}

/// The `info` JSON of a verbose status (containerd's: the pid, the runtime spec, the CRI
/// config), parsed once for all that is read of it.
pub(crate) fn info_json(info: &HashMap<String, String>) -> Option<serde_json::Value> {
    serde_json::from_str(info.get("info")?).ok()
}

/// The `info` JSON of a verbose status: the pid and the network namespace path.
fn verbose_info(json: Option<&serde_json::Value>) -> (Option<i32>, Option<String>) {
    let Some(json) = json else {
        return (None, None);
    };
    let pid = json
        .get("pid")
        .and_then(serde_json::Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0);
    let netns = json
        .pointer("/runtimeSpec/linux/namespaces")
        .and_then(serde_json::Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|ns| ns.get("type").and_then(|t| t.as_str()) == Some("network"))
        })
        .and_then(|ns| ns.get("path")?.as_str())
        .filter(|path| !path.is_empty())
        .map(str::to_owned);
    (pid, netns)
}

/// A sandbox as listed.
struct Sandbox {
    id: String,
    namespace: String,
    name: String,
    ready: bool,
    created_at: i64,
    annotations: HashMap<String, String>,
}

async fn sandboxes(
    client: &mut RuntimeClient,
    endpoint: &str,
    filter: Option<PodSandboxFilter>,
) -> Result<Vec<Sandbox>, String> {
    let listed = call(
        endpoint,
        "ListPodSandbox",
        client.list_pod_sandbox(ListPodSandboxRequest { filter }),
    )
    .await?;
    Ok(listed
        .items
        .into_iter()
        .filter_map(|item| {
            let metadata = item.metadata?;
            Some(Sandbox {
                id: item.id,
                namespace: metadata.namespace,
                name: metadata.name,
                ready: item.state == PodSandboxState::SandboxReady as i32,
                created_at: item.created_at,
                annotations: item.annotations,
            })
        })
        .collect())
}

/// The pods of one endpoint, `NAMESPACE/NAME`, sorted and de-duplicated.
fn pod_names(pods: &[Sandbox]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Finds a pod's container (or sandbox) on the first endpoint that has the pod.
pub async fn find(spec: &PodSpec, named_endpoint: Option<&str>) -> super::Result<Found> {
    let wanted = format!("pod {}/{}", spec.namespace, spec.pod);
    let endpoints = endpoints(named_endpoint).map_err(unreachable(&wanted))?;
    let mut tried = Vec::new();
    for endpoint in &endpoints {
        let mut client = match connect(endpoint).await {
            Ok(client) => client,
            Err(why) => {
                tried.push(why);
                continue;
            }
        };
        // The pod and its containers by kubelet's labels, both asked at once on the one
        // connection; only when that finds nothing, every pod (some runtimes' pods lack labels,
        // and the error lists what exists).
        let selector: HashMap<String, String> = HashMap::from([
            (POD_NAME.to_owned(), spec.pod.clone()),
            (POD_NAMESPACE.to_owned(), spec.namespace.clone()),
        ]);
        let pod_filter = PodSandboxFilter {
            label_selector: selector.clone(),
            ..Default::default()
        };
        let container_filter = ContainerFilter {
            label_selector: selector,
            ..Default::default()
        };
        let mut second = client.clone();
        let (labelled, containers) = tokio::join!(
            sandboxes(&mut client, endpoint, Some(pod_filter)),
            call(
                endpoint,
                "ListContainers",
                second.list_containers(ListContainersRequest {
                    filter: Some(container_filter)
                })
            ),
        );
        let labelled = labelled.unwrap_or_default();
        let labelled_found = labelled
            .iter()
            .any(|p| p.namespace == spec.namespace && p.name == spec.pod);
        let (pods, containers) = match labelled_found {
            true => (labelled, containers.ok().map(|listed| listed.containers)),
            false => match sandboxes(&mut client, endpoint, None).await {
                Ok(pods) => (pods, None),
                Err(why) => {
                    tried.push(why);
                    continue;
                }
            },
        };
        let mut matching: Vec<&Sandbox> = pods
            .iter()
            .filter(|p| p.namespace == spec.namespace && p.name == spec.pod)
            .collect();
        if matching.is_empty() {
            let names = pod_names(&pods);
            let listed = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            tried.push(format!("CRI ({endpoint}): no such pod; pods: {listed}"));
            continue;
        }
        // A pod re-created by kubelet leaves not-ready sandboxes behind: the newest ready one counts.
        matching.sort_by_key(|p| std::cmp::Reverse((p.ready, p.created_at)));
        let sandbox = matching[0];
        if !sandbox.ready && !spec.stopped_too {
            return Err(Error::SandboxNotReady {
                pod: format!("{wanted} (CRI {endpoint})"),
                sandbox: super::short_id(&sandbox.id).to_owned(),
            });
        }
        let containers = containers.map(|list| {
            list.into_iter()
                .filter(|c| c.pod_sandbox_id == sandbox.id)
                .collect()
        });
        return find_in(&mut client, endpoint, sandbox, containers, spec, &wanted).await;
    }
    Err(Error::NotFound {
        spec: wanted,
        hint: String::new(),
        tried,
    })
}

async fn find_in(
    client: &mut RuntimeClient,
    endpoint: &str,
    sandbox: &Sandbox,
    listed: Option<Vec<nsdebug_cri::v1::Container>>,
    spec: &PodSpec,
    wanted: &str,
) -> super::Result<Found> {
    // The sandbox's containers, unless already listed by their labels.
    let listed = match listed {
        Some(listed) if !listed.is_empty() => listed,
        _ => {
            let filter = ContainerFilter {
                pod_sandbox_id: sandbox.id.clone(),
                ..Default::default()
            };
            let request = ListContainersRequest {
                filter: Some(filter),
            };
            call(endpoint, "ListContainers", client.list_containers(request))
                .await
                .map_err(unreachable(wanted))?
                .containers
        }
    };
    // kubelet keeps the exited attempts of restarted containers: per name, the running one,
    // else the newest attempt.
    let mut containers: Vec<_> = listed
        .into_iter()
        .filter(|c| c.metadata.is_some())
        .collect();
    containers.sort_by_key(|c| {
        let running = c.state == ContainerState::ContainerRunning as i32;
        std::cmp::Reverse((
            running,
            c.metadata.as_ref().map_or(0, |m| m.attempt),
            c.created_at,
        ))
    });
    let mut by_name: Vec<(String, nsdebug_cri::v1::Container)> = Vec::new();
    for container in containers {
        let name = container
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        if !by_name.iter().any(|(n, _)| *n == name) {
            by_name.push((name, container));
        }
    }
    // Oldest first: the order in which kubelet started them, the pod spec's order.
    by_name.sort_by_key(|(_, c)| c.created_at);
    let names: Vec<&str> = by_name.iter().map(|(n, _)| n.as_str()).collect();
    let listing = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };

    let (chosen, note) = match &spec.container {
        Some(name) => match by_name.iter().find(|(n, _)| n == name) {
            Some((_, c)) => (c, None),
            None => {
                return Err(Error::NoSuchContainer {
                    pod: wanted.to_owned(),
                    container: Some(name.clone()),
                    containers: names.iter().map(|n| (*n).to_owned()).collect(),
                })
            }
        },
        None if spec.sandbox_when_unnamed => return sandbox_found(client, endpoint, sandbox).await,
        None => {
            let annotated = sandbox.annotations.get(DEFAULT_CONTAINER);
            let by_annotation = annotated.and_then(|a| by_name.iter().find(|(n, _)| n == a));
            // An annotation naming no container of the pod is said, then ignored (as kubectl does).
            let stale = annotated
                .filter(|_| by_annotation.is_none())
                .map_or(String::new(), |a| {
                    format!(
                        "; its {DEFAULT_CONTAINER} annotation names {a}, which it does not have"
                    )
                });
            match (by_annotation, by_name.as_slice()) {
                (Some((n, c)), _) => {
                    (c, Some(format!("{wanted}: container {n} (its {DEFAULT_CONTAINER} annotation); containers: {listing}")))
                }
                (None, [(n, c)]) => (c, (!stale.is_empty()).then(|| format!("{wanted}: container {n}, the only one{stale}"))),
                (None, [(n, c), ..]) => (
                    c,
                    Some(format!("{wanted}: container {n} (the first; no {DEFAULT_CONTAINER} annotation{stale}); choose with -c: {listing}")),
                ),
                (None, []) => {
                    return Err(Error::NoSuchContainer {
                        pod: wanted.to_owned(),
                        container: None,
                        containers: Vec::new(),
                    })
                }
            }
        }
    };
    let request = ContainerStatusRequest {
        container_id: chosen.id.clone(),
        verbose: true,
    };
    let status = call(
        endpoint,
        "ContainerStatus",
        client.container_status(request),
    )
    .await
    .map_err(unreachable(wanted))?;
    let json = info_json(&status.info);
    let (pid, netns_path) = verbose_info(json.as_ref());
    let modes = super::verify::spec_modes_of(json.as_ref());
    let state = ContainerState::try_from(chosen.state).map_or("unknown", |s| match s {
        ContainerState::ContainerCreated => "created",
        ContainerState::ContainerRunning => "running",
        ContainerState::ContainerExited => "exited",
        ContainerState::ContainerUnknown => "unknown",
    });
    let name = chosen
        .metadata
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or_default();
    let info = ContainerInfo {
        runtime: "cri",
        id: chosen.id.clone(),
        name: format!("{}/{}/{name}", sandbox.namespace, sandbox.name),
        namespace: Some(sandbox.namespace.clone()),
        kubernetes: Some(Box::new(Kubernetes {
            namespace: sandbox.namespace.clone(),
            pod: sandbox.name.clone(),
            container: Some(name.to_owned()),
        })),
        pid: pid.filter(|_| state == "running"),
        status: state.to_owned(),
        network_mode: None,
        cri: Some(CriRef {
            endpoint: endpoint.to_owned(),
            sandbox: false,
            pod_sandbox_id: sandbox.id.clone(),
        }),
        details: Box::new(super::Details {
            attempt: chosen.metadata.as_ref().map(|m| m.attempt),
            ..super::Details {
                pid_mode: modes.pid_mode,
                spec_network_mode: modes.spec_network_mode,
                ..recorded(&status, json.as_ref())
            }
        }),
    };
    Ok(Found {
        info,
        netns_path,
        note,
    })
}

async fn sandbox_found(
    client: &mut RuntimeClient,
    endpoint: &str,
    sandbox: &Sandbox,
) -> super::Result<Found> {
    let request = PodSandboxStatusRequest {
        pod_sandbox_id: sandbox.id.clone(),
        verbose: true,
    };
    let status = call(
        endpoint,
        "PodSandboxStatus",
        client.pod_sandbox_status(request),
    )
    .await
    .map_err(unreachable(&format!(
        "pod {}/{}",
        sandbox.namespace, sandbox.name
    )))?;
    let json = info_json(&status.info);
    let (pid, netns_path) = verbose_info(json.as_ref());
    let info = ContainerInfo {
        runtime: "cri",
        id: sandbox.id.clone(),
        name: format!("{}/{} (sandbox)", sandbox.namespace, sandbox.name),
        namespace: Some(sandbox.namespace.clone()),
        kubernetes: Some(Box::new(Kubernetes {
            namespace: sandbox.namespace.clone(),
            pod: sandbox.name.clone(),
            container: None,
        })),
        pid,
        status: if sandbox.ready { "ready" } else { "notready" }.to_owned(),
        network_mode: None,
        cri: Some(CriRef {
            endpoint: endpoint.to_owned(),
            sandbox: true,
            pod_sandbox_id: sandbox.id.clone(),
        }),
        details: Box::new(super::verify::spec_modes_of(json.as_ref())),
    };
    Ok(Found {
        info,
        netns_path,
        note: None,
    })
}

/// The error of a CRI call that failed: the endpoint could not be asked about `what`.
fn unreachable(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |cause| Error::Unreachable {
        what: what.to_owned(),
        cause,
    }
}

/// Where a CRI container came from, to ask again.
#[derive(Clone, Debug)]
pub struct CriRef {
    /// The endpoint that reported it.
    pub endpoint: String,
    /// A pod sandbox rather than a container.
    pub sandbox: bool,
    /// The id of its pod's sandbox (its own, for a sandbox): the runtime's files for the pod
    /// (shm, hosts, resolv.conf) are in a directory named after it.
    pub pod_sandbox_id: String,
}

/// Asks the endpoint again for the pid of a container or sandbox (after a restart it differs).
pub async fn pid_again(cri: &CriRef, id: &str) -> super::Result<Option<i32>> {
    let mut client = connect(&cri.endpoint).await.map_err(unreachable(id))?;
    let info = if cri.sandbox {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: true,
        };
        call(
            &cri.endpoint,
            "PodSandboxStatus",
            client.pod_sandbox_status(request),
        )
        .await
        .map_err(unreachable(id))?
        .info
    } else {
        let request = ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: true,
        };
        call(
            &cri.endpoint,
            "ContainerStatus",
            client.container_status(request),
        )
        .await
        .map_err(unreachable(id))?
        .info
    };
    Ok(verbose_info(info_json(&info).as_ref()).0)
}

/// Every running container of every reachable endpoint, named `NAMESPACE/POD/CONTAINER`.
pub async fn list(named_endpoint: Option<&str>) -> (Vec<ContainerInfo>, Vec<String>) {
    let mut all = Vec::new();
    let mut unreachable = Vec::new();
    let Ok(endpoints) = endpoints(named_endpoint) else {
        tracing::info!("cri: no socket, not asked (--cri-endpoint names one)");
        return (all, unreachable);
    };
    // Pod IPs by sandbox ID: asked once per pod, not per container.
    let mut ips: HashMap<String, Option<String>> = HashMap::new();
    for endpoint in endpoints {
        let mut client = match connect(&endpoint).await {
            Ok(client) => client,
            Err(why) => {
                unreachable.push(why);
                continue;
            }
        };
        let pods = match sandboxes(&mut client, &endpoint, None).await {
            Ok(pods) => pods,
            Err(why) => {
                unreachable.push(why);
                continue;
            }
        };
        let running = ContainerFilter {
            state: Some(nsdebug_cri::v1::ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        let request = ListContainersRequest {
            filter: Some(running),
        };
        let containers =
            match call(&endpoint, "ListContainers", client.list_containers(request)).await {
                Ok(listed) => listed.containers,
                Err(why) => {
                    unreachable.push(why);
                    continue;
                }
            };
        tracing::info!("cri ({endpoint}): {} running containers", containers.len());
        for container in containers {
            let Some(pod) = pods.iter().find(|p| p.id == container.pod_sandbox_id) else {
                continue;
            };
            let name = container
                .metadata
                .as_ref()
                .map(|m| m.name.as_str())
                .unwrap_or_default();
            let request = ContainerStatusRequest {
                container_id: container.id.clone(),
                verbose: true,
            };
            let (pid, image) = match call(
                &endpoint,
                "ContainerStatus",
                client.container_status(request),
            )
            .await
            {
                // The image as the pod asked for it (ContainerStatus names it; the listing
                // has only its ID).
                Ok(status) => (
                    verbose_info(info_json(&status.info).as_ref()).0,
                    status
                        .status
                        .and_then(|s| s.image)
                        .map(|i| i.image)
                        .filter(|i| !i.is_empty()),
                ),
                Err(_) => (None, None),
            };
            if !ips.contains_key(&pod.id) {
                let ip = pod_ip(&mut client, &endpoint, &pod.id).await;
                ips.insert(pod.id.clone(), ip);
            }
            let details = Details {
                image,
                ip: ips.get(&pod.id).cloned().flatten(),
                ..Default::default()
            };
            all.push(ContainerInfo {
                runtime: "cri",
                id: container.id.clone(),
                name: format!("{}/{}/{name}", pod.namespace, pod.name),
                namespace: Some(pod.namespace.clone()),
                kubernetes: Some(Box::new(Kubernetes {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    container: Some(name.to_owned()),
                })),
                pid,
                status: "running".to_owned(),
                network_mode: None,
                cri: Some(CriRef {
                    endpoint: endpoint.clone(),
                    sandbox: false,
                    pod_sandbox_id: container.pod_sandbox_id.clone(),
                }),
                details: Box::new(details),
            });
        }
    }
    (all, unreachable)
}

/// A pod's IP as its sandbox status reports it (the CNI's answer), if any.
async fn pod_ip(client: &mut RuntimeClient, endpoint: &str, pod_id: &str) -> Option<String> {
    let request = PodSandboxStatusRequest {
        pod_sandbox_id: pod_id.to_owned(),
        verbose: false,
    };
    let status = call(
        endpoint,
        "PodSandboxStatus",
        client.pod_sandbox_status(request),
    )
    .await
    .ok()?;
    status
        .status?
        .network
        .map(|n| n.ip)
        .filter(|ip| !ip.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `recorded` makes of a status, its info parsed as the lookup parses it.
    fn record_of(status: &ContainerStatusResponse) -> Details {
        recorded(status, info_json(&status.info).as_ref())
    }

    /// containerd's verbose info, as it spells it (the CRI config in snake_case, the OCI
    /// spec in camelCase), and the CRI's typed mounts.
    #[test]
    fn the_cri_record_from_the_status_and_the_runtime_spec() {
        let status = |info: &str| ContainerStatusResponse {
            status: Some(nsdebug_cri::v1::ContainerStatus {
                mounts: vec![nsdebug_cri::v1::Mount {
                    host_path: "/etc".into(),
                    container_path: "/hostetc".into(),
                    readonly: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            info: HashMap::from([("info".to_owned(), info.to_owned())]),
        };
        let confined = record_of(&status(
            r#"{"config": {"linux": {"security_context": {"privileged": false,
                "capabilities": {"add_capabilities": ["NET_ADMIN"]}}}},
                "runtimeSpec": {"process": {"noNewPrivileges": true},
                "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}}"#,
        ));
        assert_eq!(confined.mounts.len(), 1);
        assert_eq!(
            (
                confined.mounts[0].source.as_str(),
                confined.mounts[0].destination.as_str(),
                confined.mounts[0].writable
            ),
            ("/etc", "/hostetc", false)
        );
        assert!(!confined.privileged);
        assert_eq!(confined.cap_add, ["NET_ADMIN"]);
        assert_eq!(
            confined.security_opt,
            ["no-new-privileges", "seccomp=runtime-spec"]
        );
        let open = record_of(&status(
            r#"{"config": {"linux": {"security_context": {"privileged": true}}},
                "runtimeSpec": {"process": {}, "linux": {}}}"#,
        ));
        assert!(open.privileged);
        assert_eq!(open.security_opt, ["seccomp=unconfined"]);
        // No verbose info: the mounts, and no claim about confinement.
        assert_eq!(open.devices, None, "no device section: not claimed");
        let devices = record_of(&status(
            r#"{"runtimeSpec": {"linux": {"resources": {"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"}]}}}}"#,
        ));
        assert_eq!(devices.devices, Some(vec![]));
        assert_eq!(devices.device_cgroup_rules, ["c 1:3 rwm", "c 136:* rwm"]);
        let reordered = record_of(&status(
            r#"{"runtimeSpec": {"linux": {"resources": {"devices": [
                {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"},
                {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "rwm"}]}}}}"#,
        ));
        assert_eq!(
            reordered.devices, None,
            "a deny after an allow is not claimed"
        );
        let unread = record_of(&status("not json"));
        assert_eq!(unread.mounts.len(), 1);
        assert!(unread.security_opt.is_empty() && !unread.privileged);
    }

    #[test]
    fn verbose_info_gives_the_pid_and_the_network_namespace_path() {
        let info = HashMap::from([(
            "info".to_owned(),
            r#"{"pid": 4242, "runtimeSpec": {"linux": {"namespaces": [
                {"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}}}"#
                .to_owned(),
        )]);
        assert_eq!(
            verbose_info(info_json(&info).as_ref()),
            (Some(4242), Some("/var/run/netns/cni-1".to_owned()))
        );
        // No pid (a sandbox without an infra process), a pid 0, or no info at all.
        let no_pid = HashMap::from([("info".to_owned(), r#"{"pid": 0}"#.to_owned())]);
        assert_eq!(verbose_info(info_json(&no_pid).as_ref()), (None, None));
        assert_eq!(
            verbose_info(info_json(&HashMap::new()).as_ref()),
            (None, None)
        );
        let garbage = HashMap::from([("info".to_owned(), "not json".to_owned())]);
        assert_eq!(verbose_info(info_json(&garbage).as_ref()), (None, None));
    }

    #[test]
    fn a_named_endpoint_is_the_only_one_and_must_be_a_unix_socket() {
        assert!(
            endpoints(Some("tcp://127.0.0.1:1")).is_err_and(|e| e.contains("only unix sockets"))
        );
        assert!(endpoints(Some("unix:///nonexistent/cri.sock"))
            .is_err_and(|e| e.contains("no socket at /nonexistent/cri.sock")));
    }
}
