#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
//!
//! # Order
//!
//! Stopping at the first that knows the target:
//! 1. a PID (all digits);
//! 2. a namespace file path (absolute or an existing file, e.g. `/run/netns/blue`);
//! 3. a Kubernetes pod through the CRI ([`cri`]): `pod/NAME` (namespace from `-n`, default
//!    `default`), `NAME -n NAMESPACE`, `NAMESPACE/NAME` or `NAMESPACE/POD/CONTAINER` (when no
//!    such file exists);
//!    the container from `-c`, else the pod's default one, or for `veth`/`flow` the sandbox;
//! 4. Docker: a container name, ID or unique ID prefix (Engine API; honours `DOCKER_HOST`);
//! 5. Podman: the same through its Docker-compatible socket (honours `CONTAINER_HOST`);
//! 6. containerd: a container ID or unique prefix in namespaces `moby`, `k8s.io`, `default`
//!    (honours `CONTAINERD_ADDRESS`);
//! 7. an `ip netns` name (`/run/netns/NAME`).
//!
//! A runtime that is not reachable is noted and skipped; when nothing matches, the error lists
//! every place tried and what each said.

pub mod containerd;
pub mod cri;
pub mod docker;
mod error;
pub mod host_root;
pub mod verify;

pub use error::{Error, Result};

use std::path::Path;
use std::time::Duration;

use nsenter_core::{Pid, Target};
use serde::Serialize;

/// How long one runtime API call may take before the runtime counts as unreachable.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// A runtime (or kind of target) that [`ResolveOptions::runtime`] can force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// A process id.
    Pid,
    /// A namespace file.
    Path,
    /// The Docker Engine API.
    Docker,
    /// Podman's Docker-compatible API.
    Podman,
    /// containerd's own API (container IDs).
    Containerd,
    /// The Kubernetes CRI (pods).
    Cri,
    /// An `ip netns` name.
    Netns,
}

impl RuntimeKind {
    /// Every kind, as a command line lists them.
    pub const ALL: [RuntimeKind; 7] = [
        RuntimeKind::Pid,
        RuntimeKind::Path,
        RuntimeKind::Docker,
        RuntimeKind::Podman,
        RuntimeKind::Containerd,
        RuntimeKind::Cri,
        RuntimeKind::Netns,
    ];

    /// Its name on a command line: `pid`, `path`, `docker`, `podman`, `containerd`, `cri`,
    /// `netns`.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Pid => "pid",
            RuntimeKind::Path => "path",
            RuntimeKind::Docker => "docker",
            RuntimeKind::Podman => "podman",
            RuntimeKind::Containerd => "containerd",
            RuntimeKind::Cri => "cri",
            RuntimeKind::Netns => "netns",
        }
    }

    /// The kind a [`name`](RuntimeKind::name) names.
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        RuntimeKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// What it is, in a few words (for a command line's help).
    pub fn about(self) -> &'static str {
        match self {
            RuntimeKind::Pid => "A process id",
            RuntimeKind::Path => "A namespace file",
            RuntimeKind::Docker => "The Docker Engine API",
            RuntimeKind::Podman => "Podman's Docker-compatible API",
            RuntimeKind::Containerd => "containerd's own API (container IDs)",
            RuntimeKind::Cri => "The Kubernetes CRI (pods)",
            RuntimeKind::Netns => "An `ip netns` name",
        }
    }
}

/// What the user said besides TARGET.
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Try only this one (the CLI's `--runtime`).
    pub runtime: Option<RuntimeKind>,
    /// `-n`: the Kubernetes namespace of a `pod/NAME` (default `default`).
    pub k8s_namespace: Option<String>,
    /// `-c/--container`: the container of a multi-container pod.
    pub k8s_container: Option<String>,
    /// `--cri-endpoint`: the CRI socket (else `CONTAINER_RUNTIME_ENDPOINT`, else the
    /// well-known ones).
    pub cri_endpoint: Option<String>,
    /// A pod without `-c` means its sandbox (network namespace), not its default container.
    pub pod_sandbox: bool,
    /// A paused (frozen) target is fine: only its namespaces are read, nothing joins its
    /// cgroup or waits on its processes (`veth` without --down/--up).
    pub frozen_ok: bool,
}

/// A container as a runtime reports it.
#[derive(Clone, Debug, Serialize)]
pub struct ContainerInfo {
    /// `docker`, `podman` or `containerd`.
    pub runtime: &'static str,
    /// Full container ID.
    pub id: String,
    /// Name (Docker/Podman), or the Kubernetes pod/container for CRI containers.
    pub name: String,
    /// containerd namespace (`moby`, `k8s.io`...) or, through the CRI, the Kubernetes namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Host pid of the container's init process, when running.
    pub pid: Option<i32>,
    /// Runtime's status word (`running`, `exited`...).
    pub status: String,
    /// Docker/Podman network mode (`bridge`, `host`, `none`, `container:ID`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// The Kubernetes names, for a container (or pod sandbox) found through the CRI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Box<Kubernetes>>,
    /// The CRI endpoint that reported it, to ask again.
    #[serde(skip)]
    pub cri: Option<cri::CriRef>,
    /// What the runtime says besides (image, address, how it ended), when it says it.
    #[serde(flatten)]
    pub details: Box<Details>,
}

/// Where a CRI container sits in Kubernetes: what `kubectl` calls it.
#[derive(Clone, Debug, Serialize)]
pub struct Kubernetes {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container in the pod; `None` for the pod's sandbox (its network namespace).
    pub container: Option<String>,
}

/// Facts a runtime may report about a container, for `ps`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Details {
    /// The image it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its IPv4 address on its first network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Its exit code, once it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Whether the OOM killer killed its init (Docker's `OOMKilled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    /// The mounts the runtime recorded (Docker's and Podman's `Mounts`), for `audit`.
    #[serde(skip)]
    pub mounts: Vec<RecordedMount>,
    /// Whether the runtime ran it `--privileged`, for `audit`.
    #[serde(skip)]
    pub privileged: bool,
    /// The capabilities the runtime added (`--cap-add`), for `audit`.
    #[serde(skip)]
    pub cap_add: Vec<String>,
    /// The devices the runtime gave (Docker's and Podman's `HostConfig.Devices`: host path
    /// and cgroup permissions), for `audit`; `None` when the runtime does not record them.
    #[serde(skip)]
    pub devices: Option<Vec<(String, String)>>,
    /// Docker's and Podman's `HostConfig.DeviceCgroupRules`, for `audit`.
    #[serde(skip)]
    pub device_cgroup_rules: Vec<String>,
    /// Docker's and Podman's `HostConfig.SecurityOpt` (`no-new-privileges`,
    /// `seccomp=unconfined`...), for `audit`.
    #[serde(skip)]
    pub security_opt: Vec<String>,
    /// The attempt (0 first, then one per restart) of a CRI container shown: kubelet keeps
    /// the exited ones of a crash loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When it stopped (RFC 3339), once it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The memory limit it was given (bytes; `None`: none or not said).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<i64>,
    /// Its Docker networks: (name, network ID), for naming the bridges its peers are on.
    #[serde(skip)]
    pub networks: Vec<(String, String)>,
    /// Docker/Podman pid mode (`host` when the container shares the host's pids).
    #[serde(skip)]
    pub pid_mode: Option<String>,
    /// The CRI's network mode as its runtime spec says (`host` without a network namespace
    /// of its own, `pod` with one), when it says.
    #[serde(skip)]
    pub spec_network_mode: Option<String>,
    /// The uid owning the unix socket that answered (Docker/Podman).
    #[serde(skip)]
    pub socket_owner: Option<u32>,
}

impl ContainerInfo {
    /// `docker container nginx (3f2a1b0c9d8e)`; a CRI container with its attempt.
    pub fn describe(&self) -> String {
        let attempt = self
            .details
            .attempt
            .map_or(String::new(), |n| format!(", attempt {n}"));
        format!(
            "{} container {} ({}){attempt}",
            self.runtime,
            self.name,
            short_id(&self.id)
        )
    }
}

/// The first 12 characters of an ID, as Docker shows them.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What one runtime said about a name.
pub enum Lookup {
    /// It knows the container.
    Found(ContainerInfo),
    /// It answered and does not know it.
    NotFound(String),
    /// It could not be asked (no socket, connection refused, timeout).
    Unreachable(String),
}

/// A resolved TARGET: the pinned target and how to name it.
#[non_exhaustive]
pub struct Resolved {
    /// The process or namespace file to enter.
    pub target: Target,
    /// What it is, for messages: `docker container nginx (3f2a1b0c9d8e), pid 4242`.
    pub description: String,
    /// The container, when a runtime knew it.
    pub container: Option<ContainerInfo>,
    /// What the caller may want to tell the user about the choice made, e.g. which
    /// container of a pod was chosen and why. The library prints nothing.
    pub notes: Vec<String>,
}

/// Resolves TARGET in the stated order (or only with `options.runtime`); -v logs what it
/// became, and each runtime asked.
pub async fn resolve(spec: &str, options: &ResolveOptions) -> Result<Resolved> {
    let resolved = resolve_in_order(spec, options).await;
    if let Ok(found) = &resolved {
        tracing::info!("{} is {}", escaped(spec), found.description);
    }
    resolved
}

/// A name as typed, control characters escaped, for a log line.
fn escaped(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).collect()
}

async fn resolve_in_order(spec: &str, options: &ResolveOptions) -> Result<Resolved> {
    let only = options.runtime;
    let wants = |kind: RuntimeKind| only.is_none() || only == Some(kind);
    let mut tried: Vec<String> = Vec::new();
    if spec.is_empty() || spec == "." || spec == ".." || spec.chars().any(char::is_control) {
        return Err(invalid(spec, format!("{spec:?} is not a TARGET: give a container name or ID, pod/NAME, a pid, an ip netns name or a namespace file")));
    }

    // `pid:N` (or --runtime pid) says it is a pid: no container can shadow it, and host pids
    // (PID 1, kernel threads) are then allowed.
    let (spec, explicit_pid) = match spec.strip_prefix("pid:") {
        Some(pid) => (pid, true),
        None => (spec, only == Some(RuntimeKind::Pid)),
    };
    if explicit_pid && spec.parse::<i32>().is_err() {
        return Err(invalid(spec, format!("pid:{spec}: not a number")));
    }
    if wants(RuntimeKind::Pid) || explicit_pid {
        match spec.parse::<i32>() {
            Ok(pid) => match Pid::try_from(pid).and_then(Target::open) {
                Ok(target) => {
                    if !explicit_pid {
                        refuse_ambiguous_or_host_pid(spec, pid).await?;
                    }
                    if !options.frozen_ok {
                        ensure_not_frozen(&target, &format!("pid {pid}"))?;
                    }
                    return Ok(Resolved {
                        target,
                        description: format!("pid {pid}"),
                        container: None,
                        notes: Vec::new(),
                    });
                }
                // Digits that are no live pid may still name a container (or an ID prefix).
                Err(
                    nsenter_core::Error::NoSuchProcess { .. }
                    | nsenter_core::Error::InvalidPid { .. },
                ) if only.is_none() && !explicit_pid => {
                    tried.push(format!("pid: no process {pid}"))
                }
                Err(error) => return Err(error.into()),
            },
            Err(_) => tried.push("pid: not a number".to_owned()),
        }
    }
    let pod = pod_spec(spec, options)?;
    if wants(RuntimeKind::Path) {
        // A path must look like one (`/`, `./`, `../`): `shop/web` is a pod, whatever a
        // directory in the current one is called.
        if looks_like_path(spec) {
            let target = Target::from_namespace_file(spec)?;
            return Ok(Resolved {
                target,
                description: format!("namespace file {spec}"),
                container: None,
                notes: Vec::new(),
            });
        }
        tried.push("namespace file: not a path (those begin with /, ./ or ../)".to_owned());
    }
    if let Some(pod) = pod {
        if !wants(RuntimeKind::Cri) {
            return Err(invalid(
                spec,
                format!("{spec}: pods are found through the CRI, but --runtime excludes it"),
            ));
        }
        let found = cri::find(&pod, options.cri_endpoint.as_deref()).await?;
        let notes: Vec<String> = found.note.into_iter().collect();
        // A sandbox without an infra process (CRI-O can run pods so) has only its netns file.
        if let (None, Some(path), Some(cri::CriRef { sandbox: true, .. })) =
            (found.info.pid, &found.netns_path, &found.info.cri)
        {
            verify::cri_netns_path(path, None)?;
            let target =
                Target::from_namespace_file(path).map_err(|error| Error::OpenContainer {
                    what: found.info.describe(),
                    error,
                })?;
            let description = format!("{}, netns {path}", found.info.describe());
            return Ok(Resolved {
                target,
                description,
                container: Some(found.info),
                notes,
            });
        }
        let mut resolved = pin_allowing(found.info, options.frozen_ok).await?;
        resolved.notes = notes;
        return Ok(resolved);
    }
    // Every runtime is asked: a name two of them know (or an `ip netns` name too) is refused
    // as ambiguous rather than resolved to the first one asked.
    let mut found: Vec<ContainerInfo> = Vec::new();
    for (kind, answer) in ask_all(spec, wants).await {
        match answer? {
            // Docker's containers are containerd tasks too (namespace moby): the same one.
            Lookup::Found(info) if found.iter().any(|f| f.id == info.id) => {}
            Lookup::Found(info) => found.push(info),
            // The one runtime asked for could not be asked: that, not "not found".
            Lookup::Unreachable(cause) if only == Some(kind) => {
                return Err(Error::Unreachable {
                    what: spec.to_owned(),
                    cause,
                })
            }
            Lookup::NotFound(why) | Lookup::Unreachable(why) => tried.push(why),
        }
    }
    let netns = Path::new("/run/netns").join(spec);
    let is_netns = wants(RuntimeKind::Netns)
        && !spec.contains('/')
        && !spec.starts_with('.')
        && netns.exists();
    let mut candidates: Vec<String> = found
        .iter()
        .map(|info| format!("{} (--runtime {})", info.describe(), info.runtime))
        .collect();
    if is_netns {
        candidates.push(format!("ip netns {spec} (--runtime netns)"));
    }
    if candidates.len() > 1 {
        return Err(Error::Ambiguous {
            spec: spec.to_owned(),
            message: format!(
                "{spec} is ambiguous: it names {}; say which with --runtime",
                candidates.join(" and ")
            ),
        });
    }
    if let Some(info) = found.pop() {
        return pin_allowing(info, options.frozen_ok).await;
    }
    if wants(RuntimeKind::Netns) {
        let path = netns;
        if is_netns {
            let target = Target::from_namespace_file(&path)?;
            return Ok(Resolved {
                target,
                description: format!("ip netns {spec}"),
                container: None,
                notes: Vec::new(),
            });
        }
        tried.push(format!("ip netns: no {}", path.display()));
    }
    let hint = suggestion(spec, options).await;
    Err(Error::NotFound {
        spec: spec.to_owned(),
        hint,
        tried,
    })
}

fn invalid(spec: &str, message: String) -> Error {
    Error::InvalidTarget {
        spec: spec.to_owned(),
        message,
    }
}

/// A mount the runtime recorded for a container (Docker's and Podman's `Mounts`): what it
/// was asked for, which `audit` compares with what the kernel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMount {
    /// `bind`, `volume`, `tmpfs`...
    pub kind: String,
    /// The host path it shows (for a bind mount).
    pub source: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// Whether it was made writable.
    pub writable: bool,
}

/// The runtime's record of a container, running or not (nothing is pinned): what `why` tells
/// and where `debug` finds a stopped container's files. Pods and container names only. The
/// notes (which container of a pod was chosen) come with it, as with [`resolve`].
pub async fn record(spec: &str, options: &ResolveOptions) -> Result<Recorded> {
    let wants = |kind: RuntimeKind| options.runtime.is_none_or(|only| only == kind);
    if let Some(mut pod) = pod_spec(spec, options)? {
        pod.stopped_too = true;
        let found = cri::find(&pod, options.cri_endpoint.as_deref()).await?;
        return Ok(Recorded {
            info: found.info,
            notes: found.note.into_iter().collect(),
        });
    }
    let mut tried = Vec::new();
    for (_, answer) in ask_all(spec, wants).await {
        match answer? {
            Lookup::Found(info) => {
                return Ok(Recorded {
                    info,
                    notes: Vec::new(),
                })
            }
            Lookup::NotFound(why) | Lookup::Unreachable(why) => tried.push(why),
        }
    }
    Err(Error::NotFound {
        spec: spec.to_owned(),
        hint: String::new(),
        tried,
    })
}

/// What [`record`] found: the runtime's record, and notes for the user.
#[derive(Debug)]
#[non_exhaustive]
pub struct Recorded {
    /// The runtime's record of the container.
    pub info: ContainerInfo,
    /// What the caller should tell the user (which container of a pod was chosen).
    pub notes: Vec<String>,
}

/// For a TARGET nothing knows: a pod of that name (say `NS/POD`), or the nearest name of a
/// running container or pod (`ux-wbe`: did you mean ux-web?). Only asked once all failed.
async fn suggestion(spec: &str, options: &ResolveOptions) -> String {
    let (listed, _) = list_all(options.cri_endpoint.as_deref(), false).await;
    let pods: Vec<String> = listed
        .iter()
        .filter_map(|c| c.kubernetes.as_ref())
        .filter(|k| k.pod == spec)
        .map(|k| format!("{}/{}", k.namespace, k.pod))
        .collect();
    if let Some(pod) = pods.first() {
        return format!(" (a pod is named so: say {pod}, or {spec} -n NAMESPACE)");
    }
    let names = listed.iter().map(|c| match &c.kubernetes {
        Some(k) => format!("{}/{}", k.namespace, k.pod),
        None => c.name.clone(),
    });
    names
        .map(|name| (edit_distance(&name, spec), name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len())
        .min()
        .map_or(String::new(), |(_, name)| {
            format!(" (did you mean {}?)", escaped(&name))
        })
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Whether TARGET is written as a path: `/...`, `./...` or `../...`.
fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('/') || spec.starts_with("./") || spec.starts_with("../")
}

/// The container runtimes asked about a name, in the stated order.
const CONTAINER_RUNTIMES: [RuntimeKind; 3] = [
    RuntimeKind::Docker,
    RuntimeKind::Podman,
    RuntimeKind::Containerd,
];

/// Asks one container runtime (Docker, Podman or containerd) about a name, ID or ID prefix.
async fn ask(runtime: RuntimeKind, spec: &str) -> Result<Lookup> {
    let answer = ask_quietly(runtime, spec).await;
    log_answer(runtime, &answer);
    answer
}

/// Asks every container runtime `wants` admits, all at once: a name must be put to each of
/// them (one that two know is ambiguous), and their answers take as long as the slowest one
/// rather than the sum. The answers come back, and -v logs them, in the stated order.
async fn ask_all(
    spec: &str,
    wants: impl Fn(RuntimeKind) -> bool,
) -> Vec<(RuntimeKind, Result<Lookup>)> {
    let asked = |kind: RuntimeKind| {
        let wanted = wants(kind);
        async move {
            match wanted {
                true => Some(ask_quietly(kind, spec).await),
                false => None,
            }
        }
    };
    let [docker, podman, containerd] = CONTAINER_RUNTIMES;
    let (docker_answer, podman_answer, containerd_answer) =
        tokio::join!(asked(docker), asked(podman), asked(containerd));
    [
        (docker, docker_answer),
        (podman, podman_answer),
        (containerd, containerd_answer),
    ]
    .into_iter()
    .filter_map(|(kind, answer)| {
        let answer = answer?;
        log_answer(kind, &answer);
        Some((kind, answer))
    })
    .collect()
}

/// [`ask`] without the log line.
async fn ask_quietly(runtime: RuntimeKind, spec: &str) -> Result<Lookup> {
    match engine(runtime) {
        Some(engine) => engine.lookup(spec).await,
        None => containerd::lookup(spec).await,
    }
}

/// Docker's or Podman's Engine API, for those two; containerd has its own.
fn engine(runtime: RuntimeKind) -> Option<docker::Engine> {
    match runtime {
        RuntimeKind::Docker => Some(docker::Engine::docker()),
        RuntimeKind::Podman => Some(docker::Engine::podman()),
        _ => None,
    }
}

/// -v: each socket asked, and what it said.
fn log_answer(runtime: RuntimeKind, answer: &Result<Lookup>) {
    match answer {
        Ok(Lookup::Found(info)) => {
            tracing::info!("asked {}: {}", asked_where(runtime), info.describe())
        }
        Ok(Lookup::NotFound(why) | Lookup::Unreachable(why)) => tracing::info!("asked {why}"),
        Err(error) => tracing::info!("asked {}: {error:#}", asked_where(runtime)),
    }
}

/// Which runtime, and where it was asked, for a log line.
fn asked_where(runtime: RuntimeKind) -> String {
    engine(runtime).map_or_else(|| "containerd".to_owned(), |engine| engine.where_looked())
}

/// A bare number that is a live pid is refused when it also names a container (a container
/// named `42`, or an ID starting with those digits) or is the host's own PID 1 or a kernel
/// thread: entering those by a slip of the keyboard would run the command in the wrong place.
async fn refuse_ambiguous_or_host_pid(spec: &str, pid: i32) -> Result<()> {
    for (_, answer) in ask_all(spec, |_| true).await {
        if let Ok(Lookup::Found(info)) = answer {
            let runtime_name = info.runtime;
            return Err(Error::Ambiguous {
                spec: spec.to_owned(),
                message: format!(
                    "{spec} is ambiguous: it is pid {pid} ({}) and {}; say pid:{spec} for the process or \
                     --runtime {runtime_name} for the container",
                    process_name(pid),
                    info.describe()
                ),
            });
        }
    }
    if pid == 1 {
        return Err(Error::HostProcess {
            pid,
            message: "pid 1 is the host's init: its namespaces are the host's own; say pid:1 to enter them anyway".to_owned(),
        });
    }
    if is_kernel_thread(pid) {
        return Err(Error::HostProcess {
            pid,
            message: format!(
                "pid {pid} ({}) is a kernel thread: its namespaces are the host's own; say pid:{pid} to enter them anyway",
                process_name(pid)
            ),
        });
    }
    Ok(())
}

/// The command name of a process (`?` when it cannot be read), printable.
fn process_name(pid: i32) -> String {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_else(|_| "?".into());
    name.trim_end()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Whether `pid` is a kernel thread (`PF_KTHREAD` in the flags of `/proc/PID/stat`).
fn is_kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Field 9 (flags), counted after the command name, which may hold spaces and ')'.
    let flags = stat.rfind(')').and_then(|end| {
        stat[end + 1..]
            .split_whitespace()
            .nth(6)?
            .parse::<u64>()
            .ok()
    });
    flags.is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Whether a name is a Kubernetes object name (a DNS subdomain: lower-case letters, digits,
/// `-` and `.`, starting and ending alphanumeric).
fn is_k8s_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
}

/// The pod a TARGET names, if it names one: `pod/NAME` (with `-n`), or `NAMESPACE/NAME`
/// and `NAMESPACE/POD/CONTAINER` made of Kubernetes names when no such file exists (a
/// namespace file path is absolute or names an existing file).
fn pod_spec(spec: &str, options: &ResolveOptions) -> Result<Option<cri::PodSpec>> {
    let with =
        |namespace: String, pod: &str, container: Option<&str>| -> Result<Option<cri::PodSpec>> {
            let container = match (container, &options.k8s_container) {
                (Some(c), Some(other)) if c != other => {
                    return Err(invalid(
                        spec,
                        format!("{spec} names container {c}, -c names {other}"),
                    ))
                }
                (Some(c), _) => Some(c.to_owned()),
                (None, named) => named.clone(),
            };
            Ok(Some(cri::PodSpec {
                namespace,
                pod: pod.to_owned(),
                container,
                sandbox_when_unnamed: options.pod_sandbox,
                stopped_too: false,
            }))
        };
    if let Some(pod) = spec
        .strip_prefix("pod/")
        .or_else(|| spec.strip_prefix("pods/"))
    {
        if !is_k8s_name(pod) {
            return Err(invalid(spec, format!("{spec}: {pod:?} is not a pod name")));
        }
        return with(
            options
                .k8s_namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            pod,
            None,
        );
    }
    if looks_like_path(spec) {
        return Ok(None);
    }
    let parts: Vec<&str> = spec.split('/').collect();
    // `NAME -n NAMESPACE`, as kubectl takes it: -n means nothing but a pod's namespace.
    if let (Some(namespace), [name]) = (&options.k8s_namespace, parts.as_slice()) {
        if is_k8s_name(name) {
            return with(namespace.clone(), name, None);
        }
    }
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| is_k8s_name(p)) {
        return Ok(None);
    }
    if let Some(namespace) = options
        .k8s_namespace
        .as_deref()
        .filter(|ns| *ns != parts[0])
    {
        return Err(invalid(
            spec,
            format!("{spec} is in namespace {}, -n says {namespace}", parts[0]),
        ));
    }
    with(parts[0].to_owned(), parts[1], parts.get(2).copied())
}

/// Refuses a target whose cgroup is frozen (`docker pause`, `ctr task pause`, a frozen pod):
/// entering it would hang until it is thawed. Every subcommand gets this answer with the
/// container's name; nsenter-core asks again just before it seizes or joins the cgroup of a
/// target it confines, since a container can be paused between the two (a second
/// `/proc/PID/cgroup` read, on purpose).
fn ensure_not_frozen(target: &Target, what: &str) -> Result<()> {
    if target.is_frozen() {
        return Err(Error::Frozen {
            what: what.to_owned(),
        });
    }
    Ok(())
}

/// Pins a container's init process, making sure the pid still belongs to the container:
/// between the runtime's answer and the pidfd, the container may have restarted and its old
/// pid gone to another process.
pub async fn pin(info: ContainerInfo) -> Result<Resolved> {
    pin_allowing(info, false).await
}

/// [`pin`], with a paused container accepted when `frozen_ok`.
async fn pin_allowing(info: ContainerInfo, frozen_ok: bool) -> Result<Resolved> {
    let Some(pid) = info.pid.filter(|pid| *pid > 0) else {
        return Err(Error::NotRunning {
            what: info.describe(),
            status: info.status,
        });
    };
    let target =
        Pid::try_from(pid)
            .and_then(Target::open)
            .map_err(|error| Error::OpenContainer {
                what: info.describe(),
                error,
            })?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    // Runtimes name the container's cgroup after its ID; only if not, ask the runtime again.
    if !cgroup_names_container(&cgroup, &info.id) {
        let still = match (info.runtime, &info.cri) {
            ("cri", Some(cri)) => cri::pid_again(cri, &info.id).await? == Some(pid),
            (runtime, _) => {
                let kind = match runtime {
                    "docker" => RuntimeKind::Docker,
                    "podman" => RuntimeKind::Podman,
                    _ => RuntimeKind::Containerd,
                };
                match ask(kind, &info.id).await? {
                    Lookup::Found(now) => now.pid == Some(pid),
                    Lookup::NotFound(_) => false,
                    // No answer is no proof of a restart: say what stopped the check.
                    Lookup::Unreachable(cause) => {
                        return Err(Error::Unreachable {
                            what: info.describe(),
                            cause,
                        })
                    }
                }
            }
        };
        if !still || !target.is_alive() {
            return Err(Error::Restarted {
                what: info.describe(),
            });
        }
    }
    verify::runtime_answer(&info, pid, &target)?;
    if !frozen_ok {
        ensure_not_frozen(&target, &info.describe())?;
    }
    Ok(Resolved {
        description: format!("{}, pid {pid}", info.describe()),
        target,
        container: Some(info),
        notes: Vec::new(),
    })
}

/// Whether a `/proc/PID/cgroup` text puts the process in a cgroup named after container `id`:
/// a path component that is the ID itself (cgroupfs driver, ctr) or a systemd scope of it
/// (`docker-ID.scope`, `libpod-ID.scope`, `cri-containerd-ID.scope`, `crio-ID.scope`).
/// A whole component must match: a substring could be a sub-cgroup a container made.
fn cgroup_names_container(cgroup: &str, id: &str) -> bool {
    if id.len() < 12 {
        return false;
    }
    cgroup
        .lines()
        .filter_map(nsenter_core::cgroup::membership_line)
        .any(|(_, path)| {
            path.split('/').any(|component| {
                let inner = component.strip_suffix(".scope").unwrap_or(component);
                let inner = ["docker-", "libpod-", "cri-containerd-", "crio-"]
                    .iter()
                    .find_map(|prefix| inner.strip_prefix(prefix))
                    .unwrap_or(inner);
                inner == id
            })
        })
}

/// Every container of every reachable runtime, and the runtimes that are installed (their
/// socket exists) but could not be asked.
pub async fn list_all(
    cri_endpoint: Option<&str>,
    stopped_too: bool,
) -> (Vec<ContainerInfo>, Vec<String>) {
    let mut containers = Vec::new();
    let mut unreachable = Vec::new();
    for engine in [docker::Engine::docker(), docker::Engine::podman()] {
        if !engine.is_present() {
            // -v: a service on another socket is named by DOCKER_HOST/CONTAINER_HOST.
            let place = engine.where_looked();
            let variable = if place.starts_with("docker") {
                "DOCKER_HOST"
            } else {
                "CONTAINER_HOST"
            };
            tracing::info!("{place}: no socket, not asked ({variable}=unix://PATH names another)");
            continue;
        }
        match engine.list(stopped_too).await {
            Ok(list) => containers.extend(list),
            Err(why) => unreachable.push(why),
        }
    }
    let (pods, cri_unreachable) = cri::list(cri_endpoint).await;
    containers.extend(pods);
    unreachable.extend(cri_unreachable);
    if !containerd::is_present() {
        tracing::info!("containerd: no socket, not asked");
        return (containers, unreachable);
    }
    match containerd::list().await {
        Ok(list) => {
            // Docker's containers are also containerd tasks in namespace moby, and the CRI's
            // are in k8s.io (their pause sandboxes too): show each once, pods as the CRI names them.
            let known: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
            let cri_seen = containers.iter().any(|c| c.runtime == "cri");
            let shown = |c: &ContainerInfo| {
                known.contains(&c.id) || (cri_seen && c.namespace.as_deref() == Some("k8s.io"))
            };
            containers.extend(list.into_iter().filter(|c| !shown(c)));
        }
        Err(why) => unreachable.push(why),
    }
    (containers, unreachable)
}

/// The host's namespaces: PID 1's, or, where PID 1 cannot be inspected (some sandboxes
/// hide it), our own, since nsdebug runs on the host.
pub fn host_reference() -> Result<Target> {
    let init = Target::open(Pid::try_from(1)?)?;
    if init.namespace_id(nsenter_core::Namespace::Net).is_ok() {
        return Ok(init);
    }
    Ok(Target::open(Pid::this())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(
        spec: &str,
        namespace: Option<&str>,
        container: Option<&str>,
    ) -> Result<Option<(String, String, Option<String>)>> {
        let options = ResolveOptions {
            k8s_namespace: namespace.map(str::to_owned),
            k8s_container: container.map(str::to_owned),
            ..Default::default()
        };
        Ok(pod_spec(spec, &options)?.map(|p| (p.namespace, p.pod, p.container)))
    }

    #[test]
    fn pods_are_named_as_kubectl_users_name_them() {
        let some = |ns: &str, name: &str, c: Option<&str>| {
            Some((ns.to_owned(), name.to_owned(), c.map(str::to_owned)))
        };
        assert_eq!(
            pod("pod/web", None, None).ok(),
            Some(some("default", "web", None))
        );
        assert_eq!(
            pod("pod/web", Some("shop"), Some("app")).ok(),
            Some(some("shop", "web", Some("app")))
        );
        assert_eq!(
            pod("shop/web", None, None).ok(),
            Some(some("shop", "web", None))
        );
        assert_eq!(
            pod("shop/web/app", None, None).ok(),
            Some(some("shop", "web", Some("app")))
        );
        assert_eq!(
            pod("shop/web", Some("shop"), Some("app")).ok(),
            Some(some("shop", "web", Some("app")))
        );
        assert_eq!(
            pod("web", Some("shop"), None).ok(),
            Some(some("shop", "web", None))
        );
        // Without -n a bare name is a container name for Docker, Podman...
        assert_eq!(pod("web", None, None).ok(), Some(None));
    }

    #[test]
    fn every_runtime_is_found_by_its_name_and_nothing_else_is() {
        for kind in RuntimeKind::ALL {
            assert_eq!(RuntimeKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(RuntimeKind::from_name("Docker"), None);
        assert_eq!(RuntimeKind::from_name(""), None);
    }

    #[test]
    fn paths_and_contradictions_are_not_pods() {
        // Absolute paths and existing files are namespace files; capitals are no Kubernetes names.
        assert_eq!(pod("/run/netns/blue", None, None).ok(), Some(None));
        assert_eq!(pod("/proc/1/ns/net", None, None).ok(), Some(None));
        assert_eq!(pod("Shop/Web", None, None).ok(), Some(None));
        assert_eq!(pod("a/b/c/d", None, None).ok(), Some(None));
        assert!(pod("shop/web", Some("other"), None)
            .is_err_and(|e| e.to_string().contains("-n says other")));
        assert!(pod("shop/web/app", None, Some("db"))
            .is_err_and(|e| e.to_string().contains("-c names db")));
        assert!(pod("pod/Bad_Name", None, None).is_err());
    }
}
