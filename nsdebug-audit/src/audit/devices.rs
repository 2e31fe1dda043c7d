//! "The devices cgroup allows every device" weighed by what the kernel lets the container do
//! with it. In a user namespace not created by the host's root, mknod of a device needs
//! CAP_MKNOD in the host's user namespace, which no process there has, and every filesystem
//! it mounts is nodev: what it can reach is exactly the host device nodes already in its mount
//! tables. Rootless Podman on a cgroup v1 host leaves its containers in its user's cgroup,
//! whose devices cgroup is the root one: that is critical only if those nodes are.

use super::exposure::DeviceNode;
use super::process::Process;
use crate::{sys, Report, Severity};

/// Lowers the `devices` finding to what the reachable device nodes justify when every
/// process and thread of the container is in a user namespace owned by a uid other than
/// the host's root. One whose namespace or its owner cannot be read keeps it critical.
pub(super) fn in_user_namespace(processes: &[Process], nodes: &[DeviceNode], report: &mut Report) {
    let Some(finding) = report.findings.iter_mut().find(|f| f.id == "devices") else {
        return;
    };
    let mut owners: Vec<u32> = Vec::new();
    for p in processes {
        let owner = p
            .own_userns
            .as_ref()
            .and_then(|_| sys::userns_owner(&p.dir).ok());
        match owner {
            Some(uid) if uid != 0 => {
                if !owners.contains(&uid) {
                    owners.push(uid);
                }
            }
            _ => return,
        }
    }
    if owners.is_empty() {
        return;
    }
    finding.severity = nodes
        .iter()
        .map(|n| n.severity)
        .max()
        .unwrap_or(Severity::Info);
    finding.title = "the devices cgroup allows every device, but no process can make a device node: only those mounted in are reachable".to_owned();
    let uids: Vec<String> = owners.iter().map(u32::to_string).collect();
    let reachable: Vec<&str> = nodes.iter().map(|n| n.described.as_str()).collect();
    finding.evidence = format!(
        "{}; user namespace owned by uid {}: mknod refused, its mounts nodev; reachable device nodes: {}",
        finding.evidence,
        uids.join(", uid "),
        if reachable.is_empty() {
            "none".to_owned()
        } else {
            reachable.join(", ")
        }
    );
}
