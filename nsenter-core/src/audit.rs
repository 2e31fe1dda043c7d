//! What a process is really isolated from, read from the kernel (procfs, cgroupfs), not
//! from what a runtime was asked for: shared namespaces, capabilities, no_new_privs,
//! seccomp, LSM label, cgroup limits, dangerous mounts, device access, root mapping.

use std::fmt;

use crate::cgroup::cgroup_dirs;
use crate::error::{Error, Result};
use crate::kind::Namespace;
use crate::target::Target;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Weakens isolation a little.
    Low,
    /// Weakens isolation.
    Medium,
    /// Breaks an isolation boundary.
    High,
    /// Hands the container the host.
    Critical,
}

impl Severity {
    /// Parses `info`, `low`, `medium`, `high`, `critical`.
    pub fn parse(word: &str) -> Option<Severity> {
        Some(match word {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One finding: a stable id, its severity, what it means and the kernel's evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `namespace.net`, `caps.extra`, `cgroup.pids`.
    pub id: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it means.
    pub title: String,
    /// What the kernel said.
    pub evidence: String,
}

fn finding(id: &str, severity: Severity, title: impl Into<String>, evidence: impl Into<String>) -> Finding {
    Finding { id: id.to_owned(), severity, title: title.into(), evidence: evidence.into() }
}

/// Capability names by bit number (linux/capability.h).
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby's `DefaultCapabilities`).
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
];

/// The names of the capabilities in a `CapEff`-style mask.
pub fn capability_names(mask: u64) -> Vec<&'static str> {
    CAPABILITIES.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, name)| *name).collect()
}

/// Capabilities whose holder can leave the container or take the host.
const DANGEROUS: [(&str, Severity); 8] = [
    ("SYS_ADMIN", Severity::Critical),
    ("SYS_MODULE", Severity::Critical),
    ("SYS_RAWIO", Severity::Critical),
    ("DAC_READ_SEARCH", Severity::High),
    ("SYS_PTRACE", Severity::High),
    ("NET_ADMIN", Severity::High),
    ("SYS_BOOT", Severity::Medium),
    ("SYS_TIME", Severity::Medium),
];

/// The kernel's view of a process, as [`audit`] reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    /// Effective, permitted, bounding capability masks.
    pub cap_eff: u64,
    /// Permitted capabilities.
    pub cap_prm: u64,
    /// Bounding set.
    pub cap_bnd: u64,
    /// `NoNewPrivs`.
    pub no_new_privs: bool,
    /// `Seccomp`: 0 none, 1 strict, 2 filter.
    pub seccomp: u8,
    /// Real uid as the host sees it.
    pub host_uid: u32,
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// Reads `/proc/PID/status` of a process target.
pub fn process_facts(target: &Target) -> Result<ProcessFacts> {
    let path = target.proc_path("status", Namespace::User.into())?;
    let status = std::fs::read_to_string(&path).map_err(|source| Error::OpenPath { path, source })?;
    target.ensure_alive()?;
    let hex = |name| status_field(&status, name).and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0);
    Ok(ProcessFacts {
        cap_eff: hex("CapEff"),
        cap_prm: hex("CapPrm"),
        cap_bnd: hex("CapBnd"),
        no_new_privs: status_field(&status, "NoNewPrivs") == Some("1"),
        seccomp: status_field(&status, "Seccomp").and_then(|v| v.parse().ok()).unwrap_or(0),
        host_uid: status_field(&status, "Uid").and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0),
    })
}

/// Audits `target` against `host` (PID 1, or another process in the host's namespaces).
pub fn audit(target: &Target, host: &Target) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    namespaces(target, host, &mut findings)?;
    let facts = process_facts(target)?;
    capabilities(&facts, &mut findings);
    if !facts.no_new_privs {
        findings.push(finding("no-new-privs", Severity::Low, "setuid binaries can still raise privileges (no-new-privileges not set)", "NoNewPrivs: 0"));
    }
    if facts.seccomp == 0 {
        findings.push(finding("seccomp", Severity::High, "no seccomp filter: every system call is open to the container", "Seccomp: 0"));
    }
    lsm(target, &mut findings);
    root_mapping(target, &facts, &mut findings);
    cgroups(target, &mut findings);
    mounts(target, &mut findings)?;
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    Ok(findings)
}

fn namespaces(target: &Target, host: &Target, findings: &mut Vec<Finding>) -> Result<()> {
    let shared = target.shared_with(host)?;
    let table = [
        (Namespace::Mnt, Severity::Critical, "shares the host's mount namespace: the host's files"),
        (Namespace::Net, Severity::High, "shares the host's network namespace (--net=host): every host interface and port"),
        (Namespace::Pid, Severity::High, "shares the host's pid namespace (--pid=host): sees and signals host processes"),
        (Namespace::Ipc, Severity::Medium, "shares the host's IPC namespace (--ipc=host): host shared memory"),
        (Namespace::User, Severity::Medium, "no user namespace remapping: root inside is root on the host"),
        (Namespace::Uts, Severity::Low, "shares the host's UTS namespace (--uts=host): can set the host's hostname"),
        (Namespace::Cgroup, Severity::Low, "shares the host's cgroup namespace: sees the host's cgroup tree"),
    ];
    for (ns, severity, title) in table {
        if shared.contains(ns) {
            let id = target.namespace_id(ns)?;
            findings.push(finding(&format!("namespace.{ns}"), severity, title, format!("{ns}:[{id}] is the host's")));
        }
    }
    Ok(())
}

fn capabilities(facts: &ProcessFacts, findings: &mut Vec<Finding>) {
    let names = capability_names(facts.cap_bnd);
    if facts.cap_bnd.count_ones() as usize >= CAPABILITIES.len() - 1 {
        findings.push(finding("caps.all", Severity::Critical, "every capability (--privileged-like)", format!("CapBnd: {:016x}", facts.cap_bnd)));
        return;
    }
    let extra: Vec<&str> = names.iter().copied().filter(|n| !DOCKER_DEFAULT_CAPABILITIES.contains(n)).collect();
    if extra.is_empty() {
        return;
    }
    let severity = DANGEROUS
        .iter()
        .filter(|(name, _)| extra.contains(name))
        .map(|(_, s)| *s)
        .max()
        .unwrap_or(Severity::Low);
    findings.push(finding(
        "caps.extra",
        severity,
        format!("capabilities beyond Docker's default: {}", extra.join(", ")),
        format!("CapBnd: {:016x}, CapEff: {:016x} ({})", facts.cap_bnd, facts.cap_eff, capability_names(facts.cap_eff).join(",")),
    ));
}

fn lsm(target: &Target, findings: &mut Vec<Finding>) {
    let label = target
        .proc_path("attr/current", Namespace::Mnt.into())
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|label| label.trim_end_matches(['\0', '\n']).to_owned());
    match label.as_deref() {
        None => findings.push(finding("lsm", Severity::Medium, "no AppArmor or SELinux confinement (no LSM label readable: none active)", "/proc/PID/attr/current unreadable")),
        Some("unconfined") | Some("") => findings.push(finding("lsm", Severity::Medium, "no AppArmor or SELinux confinement", format!("label {:?}", label.unwrap_or_default()))),
        Some(_) => {}
    }
}

fn root_mapping(target: &Target, facts: &ProcessFacts, findings: &mut Vec<Finding>) {
    if facts.host_uid != 0 {
        return;
    }
    let map = target
        .proc_path("uid_map", Namespace::User.into())
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let identity = map.split_whitespace().take(2).all(|field| field == "0");
    if identity {
        findings.push(finding("root", Severity::High, "runs as uid 0, which is uid 0 (root) on the host", format!("Uid 0, uid_map {}", map.split_whitespace().collect::<Vec<_>>().join(" "))));
    }
}

fn read_trimmed(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn cgroups(target: &Target, findings: &mut Vec<Finding>) {
    let Some(pid) = target.pid() else { return };
    let Ok(dirs) = cgroup_dirs(pid) else { return };
    let find = |v1: &str, v2_file: &str| -> Option<(String, String)> {
        for dir in &dirs {
            let (file, ok) = if dir.v2 { (v2_file.to_owned(), true) } else { (v1.to_owned(), dir.controllers.iter().any(|c| v1.starts_with(&format!("{c}.")))) };
            if ok {
                if let Some(value) = read_trimmed(&dir.dir.join(&file)) {
                    return Some((value, dir.dir.join(file).display().to_string()));
                }
            }
        }
        None
    };
    // Huge v1 values mean "no limit" (the page-rounded maximum).
    let unlimited = |value: &str| value == "max" || value == "-1" || value.parse::<u64>().is_ok_and(|v| v >= 1 << 62);
    match find("pids.max", "pids.max") {
        Some((value, path)) if unlimited(&value) => findings.push(finding("cgroup.pids", Severity::Medium, "no pids limit: a fork bomb takes the host", format!("{path} = {value}"))),
        Some((value, path)) => findings.push(finding("cgroup.pids", Severity::Info, format!("processes limited to {value}"), format!("{path} = {value}"))),
        None => findings.push(finding("cgroup.pids", Severity::Medium, "no pids controller: processes are not limited", "no pids.max")),
    }
    match find("memory.limit_in_bytes", "memory.max") {
        Some((value, path)) if unlimited(&value) => findings.push(finding("cgroup.memory", Severity::Medium, "no memory limit", format!("{path} = {value}"))),
        Some((value, path)) => findings.push(finding("cgroup.memory", Severity::Info, format!("memory limited to {value} bytes"), format!("{path} = {value}"))),
        None => findings.push(finding("cgroup.memory", Severity::Medium, "no memory controller: memory is not limited", "no memory limit file")),
    }
    match find("cpu.cfs_quota_us", "cpu.max") {
        Some((value, path)) if value == "-1" || value.starts_with("max") => {
            findings.push(finding("cgroup.cpu", Severity::Low, "no CPU quota", format!("{path} = {value}")))
        }
        _ => {}
    }
    if let Some((value, path)) = find("devices.list", "") {
        if value.lines().any(|l| l.trim() == "a *:* rwm") {
            findings.push(finding("devices", Severity::Critical, "access to every device of the host (devices cgroup allows all)", format!("{path}: a *:* rwm")));
        }
    }
}

/// Sockets of container runtimes: whoever can write them owns the host.
const RUNTIME_SOCKETS: [&str; 5] = ["docker.sock", "containerd.sock", "podman.sock", "crio.sock", "dockershim.sock"];

fn mounts(target: &Target, findings: &mut Vec<Finding>) -> Result<()> {
    let path = target.proc_path("mountinfo", Namespace::Mnt.into())?;
    let mountinfo = std::fs::read_to_string(&path).map_err(|source| Error::OpenPath { path, source })?;
    let host_root_device = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.split(' ').nth(4) == Some("/")).and_then(|l| l.split(' ').nth(2).map(str::to_owned)));
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(device), Some(root), Some(point), Some(options)) = (fields.get(2), fields.get(3), fields.get(4), fields.get(5)) else { continue };
        let fstype = line.split(" - ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or("");
        let writable = options.split(',').any(|o| o == "rw");
        if RUNTIME_SOCKETS.iter().any(|s| root.ends_with(s) || point.ends_with(s)) {
            findings.push(finding("mount.runtime-socket", Severity::Critical, format!("a container runtime's socket is mounted at {point}: it controls the host"), format!("mountinfo: {root} on {point} ({options})")));
        }
        let from_host_root = host_root_device.as_deref() == Some(*device);
        if from_host_root && writable && ["/", "/etc", "/root", "/var/lib/docker", "/boot"].contains(root) {
            findings.push(finding("mount.host-path", Severity::Critical, format!("the host's {root} is mounted writable at {point}"), format!("mountinfo: {device} {root} on {point} ({options})")));
        }
        if *point == "/sys" && fstype == "sysfs" && writable {
            findings.push(finding("mount.sys-rw", Severity::High, "/sys is writable (normally read-only in a container)", format!("mountinfo: sysfs on /sys ({options})")));
        }
        if *point == "/proc/sys" && writable {
            findings.push(finding("mount.proc-sys-rw", Severity::High, "/proc/sys is writable: host kernel settings", format!("mountinfo: /proc/sys ({options})")));
        }
    }
    Ok(())
}
