//! What the container's mounts expose of the host: host paths, runtime sockets reachable
//! inside, writable `/sys`, `/proc/sys` and root, and recorded mounts it hid. (What its
//! processes hold open is `held`.)

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::process::Process;
use super::Host;
use crate::mounts::{
    beneath, covering, exposure, host_path, join, parse_mountinfo, runtime_managed,
    service_account_token, Mount,
};
use crate::{sys, Finding, Record, Report, Severity, Unknown};

/// The device nodes the OCI runtime spec gives every container, by device numbers: a
/// runtime that cannot mknod (rootless) binds the host's instead.
const OCI_DEFAULT_DEVICES: [(u64, u64, &str); 6] = [
    (1, 3, "null"),
    (1, 5, "zero"),
    (1, 7, "full"),
    (1, 8, "random"),
    (1, 9, "urandom"),
    (5, 0, "tty"),
];

/// A host device node (or the host's device directory) in one of the container's mount
/// tables: what a process that cannot mknod can still reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DeviceNode {
    /// `/dev/kmsg (char 1:11, the host's /dev/kmsg)`.
    pub(super) described: String,
    /// What reaching it is worth: info for an OCI default device.
    pub(super) severity: Severity,
    /// `b` or `c` with its major and minor; `None` for a directory of nodes.
    pub(super) numbers: Option<(char, u64, u64)>,
}

/// The host device nodes in the container's mount tables (see [`DeviceNode`]).
pub(super) fn mounts(
    processes: &[Process],
    host: &Host,
    record: &Record,
    report: &mut Report,
) -> Vec<DeviceNode> {
    let mut devices = Vec::new();
    let host_mounts = match &host.mounts {
        Ok(mounts) => mounts,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "mounts",
                Some(report.pid),
                format!("the host's mounts: {why}"),
            ));
            return devices;
        }
    };
    // One process per mount namespace (a process may have made its own).
    let mut seen: Vec<&str> = Vec::new();
    // What each mount of every table shows (device, path in that filesystem), for the
    // runtime's record.
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut unread = Vec::new();
    for p in processes {
        let ns = match p.ns("mnt") {
            Some(Ok(ns)) => ns.as_str(),
            // Unknown already reported with the namespaces; read this process's mounts anyway.
            _ => "",
        };
        if !ns.is_empty() {
            if seen.contains(&ns) {
                continue;
            }
            seen.push(ns);
        }
        let table = sys::read_at(&p.dir, "mountinfo")
            .map_err(|e| format!("/proc/{}/mountinfo: {e}", p.pid))
            .and_then(|t| parse_mountinfo(&t));
        match table {
            Ok(table) => {
                shown.extend(table.iter().map(|m| (m.device.clone(), m.root.clone())));
                for node in mounts_of(p, &table, host, host_mounts, record, report) {
                    if !devices.contains(&node) {
                        devices.push(node);
                    }
                }
            }
            Err(why) => {
                unread.push(p.pid);
                report
                    .unknowns
                    .push(Unknown::new("mounts", Some(p.pid), why))
            }
        }
    }
    hidden(record, &shown, host_mounts, &unread, report);
    devices
}

/// Host bind mounts the runtime recorded that no mount table of the container shows any
/// more: the container hid them (unmounted them, perhaps keeping them open). A config
/// reader (docker-bench 5.6) still sees them; the kernel's mount tables do not.
fn hidden(
    record: &Record,
    shown: &[(String, String)],
    host_mounts: &[Mount],
    unread: &[i32],
    report: &mut Report,
) {
    for recorded in record
        .mounts
        .iter()
        .filter(|m| m.kind == "bind" || m.kind == "volume")
    {
        // The record has the path as given (`/var/run/docker.sock`); what it is, is a
        // filesystem and a path in it: the host mount holding its real path says which. The
        // source is the host's, named by the operator.
        let real = std::fs::canonicalize(&recorded.source)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| recorded.source.clone());
        let object = covering(host_mounts, &real).and_then(|h| {
            beneath(&real, &h.point).map(|rest| (h.device.clone(), join(&h.root, rest)))
        });
        if object.as_ref().is_some_and(|o| shown.contains(o)) {
            continue;
        }
        if let Some(pid) = unread.first() {
            report.unknowns.push(Unknown::new(
                "mount.hidden",
                Some(*pid),
                format!(
                    "whether {} (recorded at {}) is still mounted: a mount table could not be read",
                    recorded.source, recorded.destination
                ),
            ));
            continue;
        }
        let pid = report.pid;
        report.findings.push(
            Finding::new(
                "mount.hidden",
                exposure(&recorded.source, recorded.writable),
                format!(
                    "the host's {} is recorded by {} as mounted {} at {}, but no mount table of the container shows it: the container hid it",
                    recorded.source,
                    record.runtime,
                    if recorded.writable { "writable" } else { "read-only" },
                    recorded.destination
                ),
                format!(
                    "{} Mounts: {} {} -> {}; no mount of the container's processes shows {}",
                    record.runtime, recorded.kind, recorded.source, recorded.destination, recorded.source
                ),
            )
            .about(pid, vec![pid]),
        );
    }
}

fn mounts_of(
    p: &Process,
    table: &[Mount],
    host: &Host,
    host_mounts: &[Mount],
    record: &Record,
    report: &mut Report,
) -> Vec<DeviceNode> {
    let mut devices = Vec::new();
    let root = sys::open_dir_at(&p.dir, "root");
    let pid = p.pid;
    // What /sys and /proc/sys are is decided by the mount that covers them, whichever it is:
    // without a read-only /proc/sys of its own, /proc/sys is as writable as /proc.
    for (path, fstype, id, title) in [
        (
            "/sys",
            "sysfs",
            "mount.sys-rw",
            "/sys is writable (normally read-only in a container)",
        ),
        (
            "/proc/sys",
            "proc",
            "mount.proc-sys-rw",
            "/proc/sys is writable: host kernel settings",
        ),
    ] {
        if let Some(mount) = covering(table, path).filter(|m| m.fstype == fstype && m.writable()) {
            let evidence = format!(
                "pid {pid} mountinfo: {} {} on {} ({}) - {fstype} covers {path}",
                mount.device, mount.root, mount.point, mount.options
            );
            report
                .findings
                .push(Finding::new(id, Severity::High, title, evidence).about(pid, vec![pid]));
        }
    }
    // docker-bench 5.13: a root filesystem the container can write (no --read-only).
    if let Some(root_mount) = covering(table, "/").filter(|m| m.writable()) {
        if !report.findings.iter().any(|f| f.id == "mount.root-rw") {
            report.findings.push(
                Finding::new(
                    "mount.root-rw",
                    Severity::Low,
                    "the root filesystem is writable (not --read-only; docker-bench 5.13)",
                    format!(
                        "pid {pid} mountinfo: {} {} on / ({}) - {} ({})",
                        root_mount.device,
                        root_mount.root,
                        root_mount.options,
                        root_mount.fstype,
                        root_mount.super_options.split(',').next().unwrap_or("")
                    ),
                )
                .about(pid, vec![pid]),
            );
        }
    }
    let mut exposed: Vec<(String, String)> = Vec::new();
    for mount in table {
        let rw = if mount.writable() { "rw" } else { "ro" };
        let point = &mount.point;
        let source = match source_of(mount, host_mounts) {
            Ok(Some(source)) => source,
            Ok(None) => continue,
            Err(why) => {
                report
                    .unknowns
                    .push(Unknown::new("mount.host-path", Some(pid), why));
                continue;
            }
        };
        // Runtime sockets reachable beneath this mount, checked by looking them up inside.
        // A mount of the socket itself is that one fact, not also a host path.
        let mut is_socket = false;
        for socket in &host.sockets {
            let Some(rest) = beneath(&socket.path, &source) else {
                continue;
            };
            let inside = join(point, rest);
            let looked = match &root {
                Ok(root) => sys::stat_in_root(root, &inside),
                Err(e) => Err(e.raw_os_error().map_or_else(
                    || io::Error::other(e.to_string()),
                    io::Error::from_raw_os_error,
                )),
            };
            match looked {
                Ok(meta) if meta.dev() == socket.dev && meta.ino() == socket.ino => {
                    is_socket |= rest.is_empty();
                    report.findings.push(
                    Finding::new(
                        "mount.runtime-socket",
                        Severity::Critical,
                        format!("{}'s socket is reachable at {inside}: it controls the host", socket.runtime),
                        format!(
                            "pid {pid}: {inside} is the host's {} (mount of the host's {source} at {point}, {rw})",
                            socket.path
                        ),
                    )
                    .about(pid, vec![pid]),
                )
                }
                Ok(_) => {}
                // Hidden beneath another mount, or not there: not reachable by that path.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {}
                Err(why) => report.unknowns.push(Unknown::new(
                    "mount.runtime-socket",
                    Some(pid),
                    format!("{inside}: {why}"),
                )),
            }
        }
        let own = (point == "/proc"
            || point.starts_with("/proc/")
            || point == "/sys"
            || point.starts_with("/sys/"))
            && host_mounts
                .iter()
                .any(|h| h.device == mount.device && h.point == *point);
        if service_account_token(&source) {
            report.findings.push(
                Finding::new(
                    "k8s.service-account-token",
                    Severity::Low,
                    format!("a Kubernetes service-account token is mounted at {point}: the pod can call the API server as its service account"),
                    format!("pid {pid} mountinfo: {} {} on {point} - {} (the kubelet's {source})", mount.device, mount.root, mount.fstype),
                )
                .about(pid, vec![pid]),
            );
        }
        if runtime_managed(mount, &source, &record.ids).is_some() || own || is_socket {
            continue;
        }
        // A bind of a node of the host's devtmpfs: what is mounted (looked at inside, the
        // same filesystem as the mount, so not something mounted over it) says which device.
        let node = (mount.fstype == "devtmpfs"
            && covering(host_mounts, &source).is_some_and(|h| h.fstype == "devtmpfs"))
        .then(|| root.as_ref().ok())
        .flatten()
        .and_then(|root| sys::stat_in_root(root, point).ok())
        .filter(|meta| format!("{}:{}", major(meta.dev()), minor(meta.dev())) == mount.device)
        .and_then(|meta| {
            let kind = meta.file_type();
            let (major, minor) = (major(meta.rdev()), minor(meta.rdev()));
            if kind.is_char_device() {
                Some(("char", major, minor))
            } else if kind.is_block_device() {
                Some(("block", major, minor))
            } else if kind.is_dir() {
                Some(("directory", 0, 0))
            } else {
                None
            }
        });
        let severity = exposure(&source, mount.writable());
        let mut node_title = String::new();
        if let Some((kind, major, minor)) = node {
            let default = OCI_DEFAULT_DEVICES
                .iter()
                .find(|(ma, mi, _)| kind == "char" && (*ma, *mi) == (major, minor));
            let described = match (kind, default) {
                ("directory", _) => {
                    format!("every host device node beneath {point} (the host's {source})")
                }
                (_, Some((_, _, name))) => {
                    format!("{point} ({kind} {major}:{minor}, the OCI default {name})")
                }
                _ => format!("{point} ({kind} {major}:{minor}, the host's {source})"),
            };
            devices.push(DeviceNode {
                described,
                numbers: match kind {
                    "char" => Some(('c', major, minor)),
                    "block" => Some(('b', major, minor)),
                    _ => None,
                },
                severity: if default.is_some() {
                    Severity::Info
                } else {
                    severity
                },
            });
            // The runtime's bind of a default device (rootless Podman cannot mknod): the
            // same device every container gets, wherever it is bound (masked paths too).
            if default.is_some() {
                continue;
            }
            if kind != "directory" {
                node_title = format!(" ({kind} device {major}:{minor})");
            }
        }
        // A mount the host made beneath an exposed host directory shows up beneath it in the
        // container too: it is part of that exposure, not another one.
        let nested = exposed
            .iter()
            .any(|(point_above, source_above): &(String, String)| {
                beneath(point, point_above)
                    .is_some_and(|rest| !rest.is_empty() && join(source_above, rest) == source)
            });
        exposed.push((point.clone(), source.clone()));
        if nested {
            continue;
        }
        // --ipc=host: Docker binds the host's /dev/shm into a container in the host's IPC
        // namespace. One fact (the host's shared memory), so one finding: namespace.ipc,
        // with this mount as its evidence. A /dev/shm bound without it stays a host path.
        if source == "/dev/shm" && mount.fstype == "tmpfs" && p.shares_host("ipc", host) {
            let bound = format!(
                "; pid {pid} mountinfo: the host's /dev/shm tmpfs ({} {}) on {point}",
                mount.device, mount.root
            );
            if let Some(ipc) = report.findings.iter_mut().find(|f| f.id == "namespace.ipc") {
                if !ipc.evidence.contains(&bound) {
                    ipc.evidence.push_str(&bound);
                }
                continue;
            }
        }
        report.findings.push(
            Finding::new(
                "mount.host-path",
                severity,
                format!(
                    "{}the host's {source}{node_title} is mounted {} at {point}",
                    if record.runtime == "cri" {
                        "hostPath volume: "
                    } else {
                        ""
                    },
                    if mount.writable() {
                        "writable"
                    } else {
                        "read-only"
                    }
                ),
                format!(
                    "pid {pid} mountinfo: {} {} on {point} ({}) - {}",
                    mount.device, mount.root, mount.options, mount.fstype
                ),
            )
            .about(pid, vec![pid]),
        );
    }
    devices
}

fn major(dev: u64) -> u64 {
    nix::sys::stat::major(dev)
}

fn minor(dev: u64) -> u64 {
    nix::sys::stat::minor(dev)
}

/// The host path a container's mount shows; `None` for a filesystem the host does not mount
/// (the container's own: its root, tmpfs, proc). A filesystem the host mounts, shown from a
/// part of it no host mount shows, is the host's but has no host path: an error saying so.
fn source_of(mount: &Mount, host_mounts: &[Mount]) -> Result<Option<String>, String> {
    match host_path(mount, host_mounts) {
        Some(source) => Ok(Some(source)),
        None if host_mounts.iter().any(|h| h.device == mount.device) => Err(format!(
            "{}: {} of device {}, a filesystem the host mounts, but from a part of it no host mount shows",
            mount.point, mount.root, mount.device
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a container's mount is placed: at a host path, as the container's own
    /// filesystem, or (a host filesystem from a part the host shows nowhere) not at all,
    /// which is an error with the reason, never a silent skip.
    #[test]
    fn a_host_filesystem_from_a_part_the_host_shows_nowhere_is_not_skipped() {
        let host = parse_mountinfo(
            "20 1 8:1 /var /var rw - ext4 /dev/sda1 rw\n21 1 0:5 / /dev rw - devtmpfs udev rw\n",
        )
        .unwrap();
        let table = parse_mountinfo(
            "30 29 8:1 /var/lib/x /data rw - ext4 /dev/sda1 rw\n31 29 0:50 / /tmp rw - tmpfs tmpfs rw\n32 29 8:1 /etc /hostetc rw - ext4 /dev/sda1 rw\n",
        )
        .unwrap();
        assert_eq!(
            source_of(&table[0], &host),
            Ok(Some("/var/lib/x".to_owned()))
        );
        assert_eq!(source_of(&table[1], &host), Ok(None));
        let why = source_of(&table[2], &host).unwrap_err();
        assert!(
            why.starts_with("/hostetc: /etc of device 8:1") && why.contains("no host mount shows"),
            "{why}"
        );
    }
}
