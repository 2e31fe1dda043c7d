//! The audit: every process of a container read from `/proc` (through one directory fd per
//! process, so a reused pid is never mixed in), its cgroups, its mounts traced to the host,
//! each fact either known or an [`Unknown`] with the reason.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nsenter_core::powers::Powers as Model;
use nsenter_core::Target;

use crate::cgroup::cgroup_dirs;
use crate::mounts::{beneath, Mount};
use crate::status::{
    capability_names, capability_severity, docker_default_mask, Status, CAPABILITIES,
};
use crate::{sys, Error, Finding, Powers, Record, Report, Result, Severity, Unknown};

/// The namespaces compared with the host's, and what sharing each means.
const NAMESPACES: [(&str, Severity, &str); 7] = [
    (
        "mnt",
        Severity::Critical,
        "shares the host's mount namespace: the host's files",
    ),
    (
        "net",
        Severity::High,
        "shares the host's network namespace (--net=host): every host interface and port",
    ),
    (
        "pid",
        Severity::High,
        "shares the host's pid namespace (--pid=host): sees and signals host processes",
    ),
    (
        "ipc",
        Severity::Medium,
        "shares the host's IPC namespace (--ipc=host): host shared memory",
    ),
    (
        "user",
        Severity::Medium,
        "no user namespace remapping: root inside is root on the host",
    ),
    (
        "uts",
        Severity::Low,
        "shares the host's UTS namespace (--uts=host): can set the host's hostname",
    ),
    (
        "cgroup",
        Severity::Low,
        "shares the host's cgroup namespace: sees the host's cgroup tree",
    ),
];

/// Where setuid programs are looked for (not recursively), inside the container's root.
const PROGRAM_DIRS: [&str; 7] = [
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/libexec",
];

/// A process that is not there any more.
fn vanished(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

fn proc_dir(pid: i32) -> io::Result<File> {
    sys::open_dir(Path::new(&format!("/proc/{pid}")))
}

mod exposure;
mod granted;
mod held;
mod host;
mod limits;

use exposure::mounts;
use granted::grants;
use held::held_objects;
pub use host::{Host, HostReport};
use limits::cgroups;

/// What one thread of a process is, as far as it could be read. Credentials, capabilities,
/// NoNewPrivs, seccomp and namespaces belong to each thread: a thread can keep what its
/// process's main thread dropped, so every thread is read.
struct Process {
    /// The thread id (the pid, for the main thread).
    pid: i32,
    /// The process (thread group) it belongs to.
    tgid: i32,
    /// Its `/proc/PID/task/TID` directory.
    dir: File,
    comm: String,
    /// `pid 42 (httpd)`, or `thread 43 of pid 42 (worker)`.
    label: String,
    status: Status,
    namespaces: Vec<(&'static str, Result<String, String>)>,
    /// Its user namespace, when it is known not to be the host's: its capabilities then act
    /// only on what that namespace owns, not on the host.
    own_userns: Option<String>,
}

impl Process {
    /// `pid 42`, or `thread 43 of pid 42`.
    fn who(&self) -> String {
        if self.pid == self.tgid {
            format!("pid {}", self.pid)
        } else {
            format!("thread {} of pid {}", self.pid, self.tgid)
        }
    }

    fn ns(&self, kind: &str) -> Option<&Result<String, String>> {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, id)| id)
    }
}

/// The powers a process holds, from its status: the capabilities beyond Docker's default it
/// holds (permitted, effective or ambient), seccomp off, no NoNewPrivs, host uid 0. Fields
/// that could not be read give nothing here: they are unknowns.
pub fn powers_of(status: &Status) -> Vec<(String, Severity)> {
    let mut powers = Vec::new();
    if let Some(held) = held_capabilities(status) {
        if held.count_ones() as usize >= CAPABILITIES.len() {
            powers.push(("every capability".to_owned(), Severity::Critical));
        } else {
            for name in capability_names(held & !docker_default_mask()) {
                powers.push((format!("CAP_{name}"), capability_severity(&name)));
            }
        }
    }
    if status.seccomp == Ok(0) {
        powers.push(("seccomp off".to_owned(), Severity::High));
    }
    if status.uids.as_ref().is_ok_and(|uids| uids.contains(&0)) {
        powers.push(("uid 0".to_owned(), Severity::High));
    }
    if status.no_new_privs == Ok(false) {
        powers.push(("no NoNewPrivs".to_owned(), Severity::Low));
    }
    powers.sort_by_key(|power| std::cmp::Reverse(power.1));
    powers
}

/// How bad holding a capability is for process `p`: at most medium in a user namespace of
/// its own (it acts on what that namespace owns, not on the host).
fn capped(p: &Process, severity: Severity) -> Severity {
    if p.own_userns.is_some() {
        severity.min(Severity::Medium)
    } else {
        severity
    }
}

/// [`powers_of`] for a process of the container, its user namespace considered.
fn process_powers(p: &Process) -> Vec<(String, Severity)> {
    let mut powers: Vec<(String, Severity)> = powers_of(&p.status)
        .into_iter()
        .map(|(name, severity)| match &p.own_userns {
            Some(_) if name.starts_with("CAP_") || name == "every capability" => {
                (format!("{name} (own user namespace)"), capped(p, severity))
            }
            _ => (name, severity),
        })
        .collect();
    powers.sort_by_key(|power| std::cmp::Reverse(power.1));
    powers
}

/// Permitted | effective | ambient: what the process can use now; `None` if any is unknown.
fn held_capabilities(status: &Status) -> Option<u64> {
    Some(
        *status.cap_prm.as_ref().ok()?
            | *status.cap_eff.as_ref().ok()?
            | *status.cap_amb.as_ref().ok()?,
    )
}

/// How much power: the worst power first, then how many of each severity.
fn rank(powers: &[(String, Severity)]) -> (Option<Severity>, u64) {
    (
        powers.iter().map(|(_, s)| *s).max(),
        powers.iter().map(|(_, s)| 16u64.pow(*s as u32)).sum(),
    )
}

/// Every finding id the audit gives (what `--ignore` accepts).
pub const FINDING_IDS: [&str; 33] = [
    "caps.all",
    "caps.extra",
    "caps.bounding",
    "seccomp",
    "root",
    "no-new-privs",
    "namespace.mnt",
    "namespace.net",
    "namespace.pid",
    "namespace.ipc",
    "namespace.user",
    "namespace.uts",
    "namespace.cgroup",
    "lsm",
    "cgroup.pids",
    "cgroup.memory",
    "cgroup.cpu",
    "cgroup.outside",
    "memory.oom-kill-disabled",
    "memory.oom-kills",
    "memory.oom-unkillable",
    "memory.oom-protected",
    "devices",
    "mount.runtime-socket",
    "mount.host-path",
    "mount.sys-rw",
    "mount.proc-sys-rw",
    "mount.root-rw",
    "mount.detached",
    "mount.hidden",
    "fd.host",
    "k8s.service-account-token",
    "record.grant-dropped",
];

/// Audits the container whose init process is `target` against `host`, with no record of
/// its runtime (see [`audit_with`]).
pub fn audit(target: &Target, host: &Host) -> Result<Report> {
    audit_with(target, host, &Record::default())
}

/// Audits the container whose init process is `target` against `host` and against what its
/// runtime recorded of it (`record`): its own mounts are recognised by their ids, and a bind
/// mount recorded but in none of its processes' mount tables was hidden by the container.
pub fn audit_with(target: &Target, host: &Host, record: &Record) -> Result<Report> {
    let Some(pid) = target.pid() else {
        return Err(Error::NotAProcess {
            target: target.id().to_string(),
        });
    };
    // Every process and thread of the container, read by the model `enter` and `debug`
    // decide from too (nsenter-core's), so the three agree.
    let model = Model::read(target).map_err(|error| match error {
        nsenter_core::Error::TargetExited { .. } => Error::Gone { pid },
        other => Error::Proc {
            pid,
            source: io::Error::other(other.to_string()),
        },
    })?;
    let mut report = Report {
        pid,
        ..Report::default()
    };
    for unreadable in model.unreadable() {
        report.unknowns.push(Unknown::new(
            "process",
            Some(unreadable.pid),
            unreadable.why.clone(),
        ));
    }
    if let Some(why) = model.unlisted() {
        report.unknowns.push(Unknown::new(
            "processes",
            Some(pid),
            format!("only pid {pid} was audited; its other processes could not be listed: {why}"),
        ));
    }
    outside_findings(&model, host, &mut report);
    let host_userns = host
        .namespaces
        .iter()
        .find(|(ns, _)| *ns == "user")
        .and_then(|(_, id)| id.as_ref().ok());
    let mut processes = Vec::new();
    for task in model.tasks() {
        let (tid, member) = (task.tid, task.tgid);
        let Ok(dir) = task.dir.try_clone() else {
            report.unknowns.push(Unknown::new(
                "process",
                Some(tid),
                format!("/proc/{member}/task/{tid}: out of file descriptors"),
            ));
            continue;
        };
        let namespaces: Vec<(&'static str, Result<String, String>)> = NAMESPACES
            .iter()
            .map(|(ns, _, _)| {
                (
                    *ns,
                    sys::readlink_at(&dir, &format!("ns/{ns}"))
                        .map_err(|e| format!("/proc/{member}/task/{tid}/ns/{ns}: {e}")),
                )
            })
            .collect();
        let comm = task.status.name.clone().unwrap_or_else(|_| "?".to_owned());
        let label = if tid == member {
            format!("pid {tid} ({comm})")
        } else {
            format!("thread {tid} of pid {member} ({comm})")
        };
        let own_userns = match (namespaces.iter().find(|(ns, _)| *ns == "user"), host_userns) {
            (Some((_, Ok(id))), Some(host_id)) if id != host_id => Some(id.clone()),
            // Unknown, or the host's: its capabilities are taken as the host's.
            _ => None,
        };
        processes.push(Process {
            pid: tid,
            tgid: member,
            dir,
            comm,
            label,
            status: task.status.clone(),
            namespaces,
            own_userns,
        });
    }
    report.processes = processes
        .iter()
        .map(|p| p.tgid)
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect();
    status_unknowns(&processes, &mut report.unknowns);
    most_powerful(&processes, &mut report);
    capabilities(&processes, &mut report);
    process_findings(&processes, &mut report);
    namespaces(&processes, host, &mut report);
    lsm(&processes, host, &mut report);
    let membership = processes
        .iter()
        .find(|p| p.tgid == pid)
        .ok_or_else(|| format!("no live thread of pid {pid} was read"))
        .and_then(|p| {
            sys::read_at(&p.dir, "cgroup").map_err(|e| format!("/proc/{pid}/cgroup: {e}"))
        });
    match membership.and_then(|text| {
        Ok((
            cgroup_dirs(&text, host.own_mounts.as_ref().map_err(Clone::clone)?)?,
            text,
        ))
    }) {
        Ok((dirs, text)) => cgroups(&dirs, &text, &mut report),
        Err(why) => {
            for id in ["cgroup.pids", "cgroup.memory", "cgroup.cpu"] {
                report
                    .unknowns
                    .push(Unknown::new(id, Some(pid), why.clone()));
            }
        }
    }
    mounts(&processes, host, record, &mut report);
    grants(&processes, record, &mut report);
    held_objects(&processes, host, &mut report);
    // Everything read above is of the container's process only if it is still the same one.
    if !target.is_alive() {
        return Err(Error::Gone { pid });
    }
    report.sort();
    Ok(report)
}

/// Processes of the container's pid namespace that are in none of its cgroups (checked
/// again, so a process forked while the cgroups were listed does not count): not limited by
/// them.
fn outside_findings(model: &Model, host: &Host, report: &mut Report) {
    let dirs = match model.cgroups() {
        Ok(dirs) => dirs,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "cgroup.outside",
                None,
                format!("the container's cgroups: {why}"),
            ));
            return;
        }
    };
    let container_cgroups: Vec<PathBuf> = dirs.iter().map(|d| d.dir.clone()).collect();
    let mut outside: Vec<i32> = Vec::new();
    for (_, task) in model.processes() {
        match outside_cgroups(task.tgid, &container_cgroups, host) {
            Ok(true) => outside.push(task.tgid),
            Ok(false) => {}
            Err(why) => report
                .unknowns
                .push(Unknown::new("cgroup.outside", Some(task.tgid), why)),
        }
    }
    if let Some(first) = outside.first() {
        let also = if outside.len() > 1 {
            format!(
                "; also pid {}",
                outside[1..]
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        let evidence = format!("pid {first} is in its pid namespace, but its /proc/{first}/cgroup is not beneath {} (or its other hierarchies){also}", container_cgroups[0].display());
        report.findings.push(
            Finding::new("cgroup.outside", Severity::High, "processes of the container outside its cgroups: its limits do not hold them (escaped, or a container sharing its pid namespace)", evidence)
                .about(*first, outside.clone()),
        );
    }
}

/// Whether process `pid` is in none of the container's cgroup directories (in a hierarchy
/// they cover). A process gone is not outside; one whose cgroups cannot be read is unknown.
fn outside_cgroups(pid: i32, container: &[PathBuf], host: &Host) -> Result<bool, String> {
    let mounts = host.own_mounts.as_ref().map_err(Clone::clone)?;
    let text = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Ok(text) => text,
        Err(e) if vanished(&e) => return Ok(false),
        Err(e) => return Err(format!("/proc/{pid}/cgroup: {e}")),
    };
    let dirs = cgroup_dirs(&text, mounts)?;
    // Compare in the hierarchies both have: same mount, the process's dir beneath the container's.
    Ok(dirs.iter().any(|dir| {
        container
            .iter()
            .any(|own| match (dir.dir.to_str(), own.to_str()) {
                (Some(a), Some(b)) => same_hierarchy(a, b, mounts) && beneath(a, b).is_none(),
                _ => false,
            })
    }))
}

/// Whether two cgroup directories are in the same mounted hierarchy.
fn same_hierarchy(a: &str, b: &str, mounts: &[Mount]) -> bool {
    let root_of = |path: &str| {
        mounts
            .iter()
            .filter(|m| {
                (m.fstype == "cgroup" || m.fstype == "cgroup2") && beneath(path, &m.point).is_some()
            })
            .max_by_key(|m| m.point.len())
            .map(|m| m.point.clone())
    };
    root_of(a).is_some_and(|root| Some(root) == root_of(b))
}

/// Every status field that could not be read, as the unknown of the finding it decides.
fn status_unknowns(processes: &[Process], unknowns: &mut Vec<Unknown>) {
    for p in processes {
        let s = &p.status;
        let fields: [(&str, Option<&String>); 8] = [
            ("caps.extra", s.cap_prm.as_ref().err()),
            ("caps.extra", s.cap_eff.as_ref().err()),
            ("caps.extra", s.cap_amb.as_ref().err()),
            ("caps.bounding", s.cap_bnd.as_ref().err()),
            ("seccomp", s.seccomp.as_ref().err()),
            ("no-new-privs", s.no_new_privs.as_ref().err()),
            ("root", s.uids.as_ref().err()),
            ("process", s.name.as_ref().err()),
        ];
        for (id, why) in fields {
            if let Some(why) = why {
                unknowns.push(Unknown::new(
                    id,
                    Some(p.pid),
                    format!("/proc/{}/status: {why}", p.pid),
                ));
            }
        }
    }
}

fn most_powerful(processes: &[Process], report: &mut Report) {
    let strongest = processes
        .iter()
        .map(|p| (p, process_powers(p)))
        .max_by(|(a, pa), (b, pb)| rank(pa).cmp(&rank(pb)).then(b.pid.cmp(&a.pid)));
    report.most_powerful = strongest.map(|(p, powers)| Powers {
        pid: p.pid,
        thread_of: (p.pid != p.tgid).then_some(p.tgid),
        comm: p.comm.clone(),
        severity: rank(&powers).0,
        powers: powers.into_iter().map(|(name, _)| name).collect(),
    });
}

/// `pid 4242 (helper)`, and the other holders.
fn holders(list: &[&Process]) -> (i32, Vec<i32>, String) {
    let pids: Vec<i32> = list.iter().map(|p| p.pid).collect();
    let first = list.first().map_or(0, |p| p.pid);
    let others = match pids.len() {
        0 | 1 => String::new(),
        n if n <= 8 => format!(
            "; also pid {}",
            pids[1..]
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        n => format!("; and {} other processes", n - 1),
    };
    (first, pids, others)
}

/// The processes ordered most powerful first.
fn by_power(mut list: Vec<&Process>) -> Vec<&Process> {
    list.sort_by(|a, b| {
        rank(&process_powers(b))
            .cmp(&rank(&process_powers(a)))
            .then(a.pid.cmp(&b.pid))
    });
    list
}

fn capabilities(processes: &[Process], report: &mut Report) {
    let default = docker_default_mask();
    let all = (1u64 << CAPABILITIES.len()) - 1;
    let holding: Vec<&Process> = by_power(
        processes
            .iter()
            .filter(|p| held_capabilities(&p.status).is_some_and(|h| h & !default != 0))
            .collect(),
    );
    if let Some(top) = holding.first() {
        let held = held_capabilities(&top.status).unwrap_or(0);
        let (pid, pids, others) = holders(&holding);
        let union = holding
            .iter()
            .fold(0, |m, p| m | held_capabilities(&p.status).unwrap_or(0))
            & !default;
        let names = capability_names(union);
        let userns = top
            .own_userns
            .as_ref()
            .map(|ns| format!(" in {ns}, its own user namespace, not the host's"))
            .unwrap_or_default();
        let evidence = format!(
            "{} holds {} (CapPrm {:016x}, CapEff {:016x}){userns}{others}",
            top.label,
            capability_names(held & !default).join(", "),
            top.status.cap_prm.as_ref().unwrap_or(&0),
            top.status.cap_eff.as_ref().unwrap_or(&0)
        );
        // Each holder's capabilities count as much as they can do from its user namespace.
        let severity_of = |p: &Process| {
            let extra = held_capabilities(&p.status).unwrap_or(0) & !default;
            capability_names(extra)
                .iter()
                .map(|n| capped(p, capability_severity(n)))
                .max()
                .unwrap_or(Severity::Low)
        };
        let finding = if held & all == all {
            let within = if top.own_userns.is_some() {
                " in a user namespace of its own"
            } else {
                " (--privileged-like)"
            };
            Finding::new(
                "caps.all",
                capped(top, Severity::Critical),
                format!("{} holds every capability{within}", top.who()),
                evidence,
            )
        } else {
            let severity = holding
                .iter()
                .map(|p| severity_of(p))
                .max()
                .unwrap_or(Severity::Low);
            Finding::new(
                "caps.extra",
                severity,
                format!(
                    "capabilities beyond Docker's default held by a process: {}",
                    names.join(", ")
                ),
                evidence,
            )
        };
        report.findings.push(finding.about(pid, pids));
    }
    // What a process could regain: its bounding set beyond the default and beyond what it holds.
    let regain = |p: &Process| -> u64 {
        match (p.status.cap_bnd.as_ref(), held_capabilities(&p.status)) {
            (Ok(bnd), Some(held)) => bnd & !default & !held,
            _ => 0,
        }
    };
    let able: Vec<&Process> = by_power(processes.iter().filter(|p| regain(p) != 0).collect());
    if !able.is_empty() {
        let union = able.iter().fold(0, |m, p| m | regain(p));
        let without_nnp: Vec<&Process> = able
            .iter()
            .copied()
            .filter(|p| p.status.no_new_privs == Ok(false))
            .collect();
        let names = capability_names(union);
        let (severity, title, shown) = if let Some(first) = without_nnp.first() {
            let names_open = capability_names(without_nnp.iter().fold(0, |m, p| m | regain(p)));
            let severity = without_nnp
                .iter()
                .flat_map(|p| {
                    capability_names(regain(p))
                        .into_iter()
                        .map(move |n| capped(p, capability_severity(&n)))
                })
                .max()
                .unwrap_or(Severity::Low);
            (severity, format!("capabilities a process without NoNewPrivs can regain by executing a setuid-root or file-capability program: {}", names_open.join(", ")), *first)
        } else {
            (
                Severity::Low,
                format!(
                    "capabilities left in the bounding set, kept out of reach by NoNewPrivs: {}",
                    names.join(", ")
                ),
                able[0],
            )
        };
        let list = if without_nnp.is_empty() {
            able.clone()
        } else {
            without_nnp.clone()
        };
        let (pid, pids, others) = holders(&list);
        let evidence = format!(
            "{}: CapBnd {:016x} has {}, NoNewPrivs {}{others}",
            shown.label,
            shown.status.cap_bnd.as_ref().unwrap_or(&0),
            capability_names(regain(shown)).join(", "),
            u8::from(shown.status.no_new_privs == Ok(true))
        );
        report
            .findings
            .push(Finding::new("caps.bounding", severity, title, evidence).about(pid, pids));
    }
}

fn process_findings(processes: &[Process], report: &mut Report) {
    let unconfined: Vec<&Process> = by_power(
        processes
            .iter()
            .filter(|p| p.status.seccomp == Ok(0))
            .collect(),
    );
    if !unconfined.is_empty() {
        let (pid, pids, others) = holders(&unconfined);
        let evidence = format!("{}: Seccomp 0{others}", unconfined[0].label);
        report.findings.push(
            Finding::new(
                "seccomp",
                Severity::High,
                format!(
                    "no seccomp filter on {}: every system call is open to it",
                    unconfined[0].who()
                ),
                evidence,
            )
            .about(pid, pids),
        );
    }
    let root: Vec<&Process> = by_power(
        processes
            .iter()
            .filter(|p| p.status.uids.as_ref().is_ok_and(|u| u.contains(&0)))
            .collect(),
    );
    if let Some(first) = root.first() {
        let (pid, pids, others) = holders(&root);
        let uids = first
            .status
            .uids
            .as_ref()
            .map(|u| u.map(|id| id.to_string()).join(" "))
            .unwrap_or_default();
        let evidence = format!(
            "{}: Uid {uids} (real, effective, saved, fs) as the host sees them{others}",
            first.label
        );
        report.findings.push(
            Finding::new(
                "root",
                Severity::High,
                format!(
                    "{} runs as uid 0, which is uid 0 (root) on the host",
                    first.who()
                ),
                evidence,
            )
            .about(pid, pids),
        );
    }
    let open: Vec<&Process> = by_power(
        processes
            .iter()
            .filter(|p| p.status.no_new_privs == Ok(false))
            .collect(),
    );
    if let Some(first) = open.first() {
        let (pid, pids, others) = holders(&open);
        let mut evidence = format!("{}: NoNewPrivs 0{others}", first.label);
        let (severity, title) = match setuid_programs(first) {
            Ok(found) if found.is_empty() => (Severity::Low, "no-new-privileges not set (no setuid, setgid or file-capability program in the container's bin directories)".to_owned()),
            Ok(found) => {
                evidence.push_str(&format!("; setuid/setgid/file-capability programs: {}", found.iter().take(5).cloned().collect::<Vec<_>>().join(", ")));
                (Severity::Medium, format!("{} setuid or file-capability programs can raise the privileges of {} (no-new-privileges not set)", found.len(), first.who()))
            }
            Err(why) => {
                report.unknowns.push(Unknown::new("no-new-privs", Some(pid), format!("setuid programs in its root: {why}")));
                (Severity::Low, "no-new-privileges not set".to_owned())
            }
        };
        report
            .findings
            .push(Finding::new("no-new-privs", severity, title, evidence).about(pid, pids));
    }
}

/// Setuid or setgid regular files, and programs with file capabilities, in the usual program
/// directories of `process`'s root.
fn setuid_programs(process: &Process) -> Result<Vec<String>, String> {
    let root = sys::open_dir_at(&process.dir, "root")
        .map_err(|e| format!("/proc/{}/root: {e}", process.pid))?;
    let mut found = Vec::new();
    for dir in PROGRAM_DIRS {
        match sys::list_in_root(&root, dir) {
            Ok(entries) => {
                for entry in entries {
                    if entry.meta.is_file()
                        && entry.meta.permissions().mode() & (libc::S_ISUID | libc::S_ISGID) != 0
                    {
                        found.push(format!("{dir}/{}", entry.name));
                    } else if entry.file_caps {
                        found.push(format!("{dir}/{} (file capabilities)", entry.name));
                    }
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {}
            Err(e) => return Err(format!("{dir}: {e}")),
        }
    }
    found.sort();
    Ok(found)
}

fn namespaces(processes: &[Process], host: &Host, report: &mut Report) {
    for (ns, severity, title) in NAMESPACES {
        let host_id = match host
            .namespaces
            .iter()
            .find(|(k, _)| *k == ns)
            .map(|(_, id)| id)
        {
            Some(Ok(id)) => id,
            Some(Err(why)) => {
                report.unknowns.push(Unknown::new(
                    &format!("namespace.{ns}"),
                    Some(report.pid),
                    format!("the host's: {why}"),
                ));
                continue;
            }
            None => continue,
        };
        let mut sharing = Vec::new();
        for p in processes {
            match p.ns(ns) {
                Some(Ok(id)) if id == host_id => sharing.push(p),
                Some(Err(why)) => report.unknowns.push(Unknown::new(
                    &format!("namespace.{ns}"),
                    Some(p.pid),
                    why.clone(),
                )),
                _ => {}
            }
        }
        if !sharing.is_empty() {
            let (pid, pids, others) = holders(&sharing);
            report.findings.push(
                Finding::new(
                    &format!("namespace.{ns}"),
                    severity,
                    title,
                    format!("pid {pid}: {host_id} is the host's{others}"),
                )
                .about(pid, pids),
            );
        }
    }
}

fn lsm(processes: &[Process], host: &Host, report: &mut Report) {
    // With no labelling LSM, the host section says so once.
    if host.lsm != Ok(true) {
        return;
    }
    let mut unconfined = Vec::new();
    for p in processes {
        match sys::read_at(&p.dir, "attr/current") {
            Ok(label) if matches!(label.trim_end_matches(['\0', '\n']), "unconfined" | "") => {
                unconfined.push(p)
            }
            Ok(_) => {}
            Err(e) if vanished(&e) => {}
            Err(e) => report.unknowns.push(Unknown::new(
                "lsm",
                Some(p.pid),
                format!("/proc/{}/attr/current: {e}", p.pid),
            )),
        }
    }
    if !unconfined.is_empty() {
        let (pid, pids, others) = holders(&unconfined);
        report.findings.push(
            Finding::new(
                "lsm",
                Severity::Medium,
                format!("pid {pid} is not confined by AppArmor or SELinux"),
                format!("pid {pid}: label \"unconfined\"{others}"),
            )
            .about(pid, pids),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELPER: &str = "Name:\thelper\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nCapPrm:\t00000000a82c25fb\nCapEff:\t00000000a82c25fb\nCapBnd:\t00000000a82c25fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n";
    const DROPPED: &str = "Name:\tinit\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";

    #[test]
    fn the_helper_holds_the_powers_and_the_dropped_init_none() {
        let helper = powers_of(&Status::parse(HELPER));
        let names: Vec<&str> = helper.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CAP_SYS_ADMIN",
                "CAP_SYS_PTRACE",
                "seccomp off",
                "uid 0",
                "no NoNewPrivs"
            ]
        );
        assert_eq!(rank(&helper).0, Some(Severity::Critical));
        let init = powers_of(&Status::parse(DROPPED));
        assert!(init.is_empty(), "{init:?}");
        assert!(rank(&helper) > rank(&init));
    }

    #[test]
    fn unreadable_fields_give_no_power_and_no_pass() {
        // A status whose seccomp, uid and capability fields are garbled: nothing is claimed
        // from them (no "uid 0", no "seccomp off"), and each is an unknown.
        let garbled = HELPER
            .replace("Seccomp:\t0", "Seccomp:\t?")
            .replace("Uid:\t0\t0\t0\t0", "Uid:\t")
            .replace("CapEff:\t00000000a82c25fb", "CapEff:\t");
        let status = Status::parse(&garbled);
        let powers = powers_of(&status);
        assert!(
            powers
                .iter()
                .all(|(n, _)| !n.starts_with("CAP_") && n != "seccomp off" && n != "uid 0"),
            "{powers:?}"
        );
        let process = Process {
            pid: 7,
            tgid: 7,
            dir: File::open("/").unwrap(),
            comm: "x".into(),
            label: "pid 7 (x)".into(),
            status,
            namespaces: vec![],
            own_userns: None,
        };
        let mut unknowns = Vec::new();
        status_unknowns(std::slice::from_ref(&process), &mut unknowns);
        let ids: Vec<&str> = unknowns.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["caps.extra", "seccomp", "root"]);
        assert!(
            unknowns
                .iter()
                .all(|u| u.pid == Some(7) && u.reason.starts_with("/proc/7/status: ")),
            "{unknowns:?}"
        );
    }

    #[test]
    fn an_unreadable_host_mount_table_makes_mounts_unknown_not_clean() {
        let me = std::process::id() as i32;
        let mut host = Host::read(me);
        host.mounts = Err("recorded failure".to_owned());
        let report = audit(&Target::open(me).unwrap(), &host).unwrap();
        assert!(
            report
                .unknowns
                .iter()
                .any(|u| u.id == "mounts" && u.reason.contains("recorded failure")),
            "{:?}",
            report.unknowns
        );
        assert!(
            !report.findings.iter().any(|f| f.id.starts_with("mount.")),
            "{:?}",
            report.findings
        );
        assert!(
            host.report().unknowns.iter().any(|u| u.id == "mounts"),
            "and the host section says why"
        );
    }
}
