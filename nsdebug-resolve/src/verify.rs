//! What a runtime answers, checked against the kernel before anything is entered: a socket
//! that lies (or one someone else planted) must not make nsdebug enter, or audit, a host
//! process as if it were the container.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nsenter_core::{Namespace, NamespaceId, Target};

use super::{escaped, ContainerInfo, Error, Result};

/// A refusal of what a runtime answered: one line.
fn unconfirmed(message: String) -> Error {
    Error::Unconfirmed { message }
}

/// Refuses the pid a runtime named for `info` unless the kernel agrees that it is in that
/// container: its cgroup names the container's ID (every runtime names the container's cgroup
/// after it), and it shares the host's mount namespace never, its pid and network namespaces
/// only when the runtime says the container was made so (Docker's and Podman's `PidMode` and
/// `NetworkMode` `host`; the CRI and containerd report no such mode here, so only the mount
/// namespace is held against them). One line names what did not match.
pub fn runtime_answer(info: &ContainerInfo, pid: i32, target: &Target) -> Result<()> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let host = super::host_reference()?;
    // Rootless Podman without a delegated cgroup leaves its containers in the user's own
    // cgroup: a process of the socket's owner (not root) in a user namespace of its own, which
    // that user could start anyway, is no host process to be lured into.
    let rootless = info.runtime == "podman"
        && host_uid(pid).is_some_and(|uid| uid != 0 && Some(uid) == info.details.socket_owner)
        && namespace_of(pid, target, Namespace::User)? != host.namespace_id(Namespace::User)?;
    if !rootless && !super::cgroup_names_container(&cgroup, &info.id) {
        let path = cgroup
            .lines()
            .find_map(nsenter_core::cgroup::membership_line)
            .map_or("?", |(_, path)| path);
        return Err(unconfirmed(format!(
            "{} names pid {pid}, whose cgroup {} does not name container {}: refusing a runtime \
             answer the kernel does not confirm",
            info.describe(),
            escaped(path),
            super::short_id(&info.id)
        )));
    }
    // Docker and Podman always say; the CRI says through the runtime spec in its verbose
    // answer (containerd's), else nothing is known and sharing is not held against it.
    let (pid_mode, net_mode) = match info.runtime {
        "docker" | "podman" => (
            info.details.pid_mode.as_deref().or(Some("")),
            info.network_mode.as_deref().or(Some("")),
        ),
        _ => (
            info.details.pid_mode.as_deref(),
            info.details.spec_network_mode.as_deref(),
        ),
    };
    let may_share = |mode: Option<&str>| mode.is_none_or(|mode| mode == "host");
    let allowed = [
        (Namespace::Mnt, "mount", false),
        (Namespace::Pid, "pid", may_share(pid_mode)),
        (Namespace::Net, "network", may_share(net_mode)),
    ];
    for (namespace, name, may_share) in allowed {
        if may_share {
            continue;
        }
        if namespace_of(pid, target, namespace)? == host.namespace_id(namespace)? {
            return Err(unconfirmed(format!(
                "{} names pid {pid}, which is in the host's {name} namespace though {} did not \
                 say the container shares it: refusing",
                info.describe(),
                info.runtime
            )));
        }
    }
    Ok(())
}

/// The target's namespace of kind `ns`; for a leader that exited while its other threads
/// run (its own namespace files are gone), a live thread's.
fn namespace_of(pid: i32, target: &Target, ns: Namespace) -> Result<NamespaceId> {
    match target.namespace_id(ns) {
        Err(nsenter_core::Error::TargetExited { .. }) => {}
        other => return Ok(other?),
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| unconfirmed(format!("pid {pid}: reading its threads: {e}")))?;
    for task in tasks.flatten() {
        if let Ok(file) = std::fs::File::open(task.path().join("ns").join(ns.proc_name())) {
            return NamespaceId::of_file(file.as_fd()).map_err(|e| {
                unconfirmed(format!("pid {pid}: its {} namespace: {e}", ns.proc_name()))
            });
        }
    }
    Err(unconfirmed(format!("pid {pid}: every thread exited")))
}

/// The real uid of `pid` as the host sees it (`/proc/PID/status`, through the one reader).
fn host_uid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(nsenter_core::status::Status::parse(&status).uids.ok()?[0])
}

/// The pid and network modes a CRI runtime's verbose answer gives in its OCI runtime spec
/// (`info` -> `runtimeSpec.linux.namespaces`): a namespace not listed is the host's.
pub fn spec_modes(info: &std::collections::HashMap<String, String>) -> super::Details {
    spec_modes_of(super::cri::info_json(info).as_ref())
}

/// [`spec_modes`] of the `info` JSON already parsed.
pub(crate) fn spec_modes_of(json: Option<&serde_json::Value>) -> super::Details {
    let namespaces = json.and_then(|json| {
        let list = json
            .pointer("/runtimeSpec/linux/namespaces")?
            .as_array()?
            .clone();
        Some(
            list.iter()
                .filter_map(|ns| Some(ns.get("type")?.as_str()?.to_owned()))
                .collect::<Vec<_>>(),
        )
    });
    let mode = |kind: &str| {
        namespaces.as_ref().map(|list| {
            if list.iter().any(|t| t == kind) {
                "pod".to_owned()
            } else {
                "host".to_owned()
            }
        })
    };
    super::Details {
        pid_mode: mode("pid"),
        spec_network_mode: mode("network"),
        ..Default::default()
    }
}

/// Whether a socket nsdebug found by looking (not one the user named) may be used: it and
/// its directory belong to root or to the user running nsdebug. Another user's socket (in a
/// `$XDG_RUNTIME_DIR` kept by `sudo -E`, say) would let that user decide what root enters.
pub fn found_socket_trusted(path: &Path) -> std::result::Result<(), String> {
    let me = own_uid();
    let owner = |p: &Path| std::fs::symlink_metadata(p).map(|m| m.uid());
    let dir = path.parent().unwrap_or(Path::new("/"));
    for p in [path, dir] {
        match owner(p) {
            Ok(uid) if uid == 0 || uid == me => {}
            Ok(uid) => {
                return Err(format!(
                    "{} belongs to uid {uid}, neither root nor you: not used",
                    p.display()
                ))
            }
            // Not there, or not ours to look at: the connection says why.
            Err(_) => {}
        }
    }
    Ok(())
}

/// Our real uid: the owner of the process's own /proc directory.
fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// Refuses a network namespace path from the CRI unless it is where runtimes keep them
/// (`/run/netns`, `/var/run/netns`) or the sandbox's own process's (`/proc/PID/ns/net`); that
/// it is a namespace file is checked when it is opened (nsfs).
pub fn cri_netns_path(path: &str, sandbox_pid: Option<i32>) -> Result<()> {
    let own = sandbox_pid.map(|pid| format!("/proc/{pid}/ns/net"));
    let in_runtime_dir = ["/run/netns/", "/var/run/netns/"].iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|name| !name.is_empty() && !name.contains('/') && name != "..")
    });
    if in_runtime_dir || own.as_deref() == Some(path) {
        return Ok(());
    }
    Err(unconfirmed(format!(
        "the CRI names network namespace {}, which is neither in /run/netns nor the sandbox's \
         own: refusing",
        escaped(path)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_the_runtime_spec_does_not_list_is_the_hosts() {
        let info =
            |json: &str| std::collections::HashMap::from([("info".to_owned(), json.to_owned())]);
        let pod = spec_modes(&info(
            r#"{"runtimeSpec": {"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}}}"#,
        ));
        assert_eq!(pod.pid_mode.as_deref(), Some("pod"));
        assert_eq!(pod.spec_network_mode.as_deref(), Some("pod"));
        let host = spec_modes(&info(
            r#"{"runtimeSpec": {"linux": {"namespaces": [{"type": "mount"}]}}}"#,
        ));
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
        assert_eq!(host.spec_network_mode.as_deref(), Some("host"));
        let unknown = spec_modes(&info(r#"{"pid": 42}"#));
        assert_eq!((unknown.pid_mode, unknown.spec_network_mode), (None, None));
    }

    #[test]
    fn cri_netns_paths_outside_the_runtimes_directory_are_refused() {
        assert!(cri_netns_path("/var/run/netns/cni-1234", None).is_ok());
        assert!(cri_netns_path("/run/netns/cni-1234", None).is_ok());
        assert!(cri_netns_path("/proc/42/ns/net", Some(42)).is_ok());
        assert!(cri_netns_path("/proc/1/ns/net", Some(42)).is_err());
        assert!(cri_netns_path("/proc/1/ns/net", None).is_err());
        assert!(cri_netns_path("/run/netns/../../proc/1/ns/net", None).is_err());
        assert!(cri_netns_path("/tmp/netns", None).is_err());
    }
}
