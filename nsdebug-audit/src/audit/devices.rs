//! What devices the devices cgroup lets the container open beyond the runtime's defaults, and
//! "the devices cgroup allows every device" weighed by what the kernel lets the container do
//! with it. In a user namespace not created by the host's root, mknod of a device needs
//! CAP_MKNOD in the host's user namespace, which no process there has, and every filesystem
//! it mounts is nodev: what it can reach is exactly the host device nodes already in its mount
//! tables. Rootless Podman on a cgroup v1 host leaves its containers in its user's cgroup,
//! whose devices cgroup is the root one: that is critical only if those nodes are.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::exposure::DeviceNode;
use super::process::Process;
use crate::cgroup::{parse_devices_list, CgroupDir, DeviceRule};
use crate::{sys, Finding, Report, Severity, Unknown};

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

/// What runc (Docker's, Podman's and containerd's default) lets every container open: the
/// OCI default devices, `/dev/pts`, `/dev/ptmx` and `/dev/tty*` of its own (checked against
/// the `devices.list` of a default Docker container on this host). `b *:* m` and `c *:* m`
/// (mknod only) open nothing.
const RUNC_ALLOWED: [(char, Option<u64>, Option<u64>); 10] = [
    ('c', Some(1), Some(3)),    // null
    ('c', Some(1), Some(5)),    // zero
    ('c', Some(1), Some(7)),    // full
    ('c', Some(1), Some(8)),    // random
    ('c', Some(1), Some(9)),    // urandom
    ('c', Some(5), Some(0)),    // tty
    ('c', Some(5), Some(1)),    // console
    ('c', Some(5), Some(2)),    // ptmx
    ('c', Some(10), Some(200)), // net/tun
    ('c', Some(136), None),     // pts/*
];

/// What opening the devices of `rule` gives, and why: the host's disks are its filesystems
/// raw, `mem`/`kmem`/`port` its memory and I/O ports (each a way out of any container).
fn device_severity(rule: &DeviceRule) -> (Severity, &'static str) {
    match (rule.kind, rule.major, rule.minor) {
        ('a', ..) | ('c', None, _) => (Severity::Critical, "every device of the host"),
        ('b', ..) => (
            Severity::Critical,
            "a host block device: its filesystems read and written raw, past every mount",
        ),
        ('c', Some(1), None | Some(1) | Some(2) | Some(4)) => (
            Severity::Critical,
            "the host's physical or kernel memory or I/O ports",
        ),
        ('c', Some(1), Some(11)) => (
            Severity::High,
            "the host's kernel log: kernel addresses and every container's messages read, forged lines written",
        ),
        ('c', Some(4 | 7 | 13), _) => (
            Severity::High,
            "a host terminal, console screen or input device: what the host's users type or see",
        ),
        _ => (
            Severity::Medium,
            "a host device beyond the runtime's defaults: its driver is the container's to call",
        ),
    }
}

/// The host's name of a device (`vda`), from the host's sysfs (`/sys/dev/{block,char}/M:N`).
fn host_name(rule: &DeviceRule) -> Option<String> {
    let kind = match rule.kind {
        'b' => "block",
        'c' => "char",
        _ => return None,
    };
    let uevent = std::fs::read_to_string(format!(
        "/sys/dev/{kind}/{}:{}/uevent",
        rule.major?, rule.minor?
    ))
    .ok()?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(|name| format!("/dev/{name}"))
}

/// Whether the node `meta` is a device `rule` allows.
fn matches(rule: &DeviceRule, meta: &std::fs::Metadata) -> bool {
    let kind = meta.file_type();
    let kind_ok = match rule.kind {
        'b' => kind.is_block_device(),
        'c' => kind.is_char_device(),
        _ => kind.is_block_device() || kind.is_char_device(),
    };
    let (major, minor) = (
        libc::major(meta.rdev()) as u64,
        libc::minor(meta.rdev()) as u64,
    );
    kind_ok && rule.major.is_none_or(|m| m == major) && rule.minor.is_none_or(|m| m == minor)
}

/// Entries of the container's `/dev` looked at, at most: the container chooses how many.
const DEV_ENTRIES: usize = 4096;

/// The v1 devices cgroup of the container (`dirs`): every rule that opens a device beyond
/// runc's defaults is a `devices` finding naming it, with the nodes of it in the container's
/// `/dev` (made there by the runtime's mknod, so no mount table shows them) as evidence.
/// `a *:* rwm` is one critical finding. On cgroup v2 the allowlist is an eBPF program that is
/// not read back: an unknown, never a pass.
pub(super) fn cgroup_allowed(dirs: &[CgroupDir], processes: &[Process], report: &mut Report) {
    let pid = report.pid;
    let Some(dir) = dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "devices"))
    else {
        if dirs.iter().any(|d| d.v2) {
            report.unknowns.push(Unknown::new(
                "devices",
                Some(pid),
                "cgroup v2 allows devices by an eBPF program, which cannot be read back: which host devices the container may open is not known",
            ));
        }
        return;
    };
    let path = dir.dir.join("devices.list");
    let rules = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|list| parse_devices_list(&list))
    {
        Ok(rules) => rules,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "devices",
                Some(pid),
                format!("{}: {why}", path.display()),
            ));
            return;
        }
    };
    if rules.iter().any(|r| r.kind == 'a' && r.access == "rwm") {
        report.findings.push(Finding::new(
            "devices",
            Severity::Critical,
            "access to every device of the host (devices cgroup allows all)",
            format!("{}: a *:* rwm", path.display()),
        ));
        return;
    }
    let extra: Vec<&DeviceRule> = rules
        .iter()
        .filter(|r| r.opens() && !RUNC_ALLOWED.contains(&(r.kind, r.major, r.minor)))
        .collect();
    if extra.is_empty() {
        return;
    }
    // The nodes in the container's /dev, seen through its init's root (never followed).
    let nodes: Vec<(String, std::fs::Metadata)> = processes
        .iter()
        .find(|p| p.pid == pid)
        .and_then(|p| sys::open_dir_at(&p.dir, "root").ok())
        .and_then(|root| sys::list_in_root(&root, "/dev").ok())
        .unwrap_or_default()
        .into_iter()
        .take(DEV_ENTRIES)
        .filter(|e| e.meta.file_type().is_block_device() || e.meta.file_type().is_char_device())
        .map(|e| (format!("/dev/{}", e.name), e.meta))
        .collect();
    for rule in extra {
        let (severity, why) = device_severity(rule);
        let kind = if rule.kind == 'b' { "block" } else { "char" };
        let named = match host_name(rule) {
            Some(name) => format!(
                "{name} ({kind} {}:{})",
                rule.major.unwrap_or(0),
                rule.minor.unwrap_or(0)
            ),
            None => format!("devices {}", rule.spelled()),
        };
        let found: Vec<&str> = nodes
            .iter()
            .filter(|(_, meta)| matches(rule, meta))
            .map(|(name, _)| name.as_str())
            .collect();
        let inside = if found.is_empty() {
            String::new()
        } else {
            format!("; in the container: {}", found.join(", "))
        };
        report.findings.push(Finding::new(
            "devices",
            severity,
            format!("the devices cgroup lets the container open {named}: {why}"),
            format!("{}: {}{inside}", path.display(), rule.spelled()),
        ));
    }
}
