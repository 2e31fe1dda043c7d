//! The audit: every process of a container read from `/proc` (through one directory fd per
//! process, so a reused pid is never mixed in), its cgroups, its mounts traced to the host,
//! each fact either known or an [`Unknown`] with the reason.
//!
//! Gathering (what is read from the kernel) is in [`process`] (the container's threads, from
//! nsenter-core's model), [`host`] (the host's side) and the readers of [`crate::cgroup`]
//! and [`crate::mounts`]; each other module is one family of rules, findings from facts.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::Path;

use nsenter_core::powers::Powers as Model;
use nsenter_core::Target;

use crate::cgroup::cgroup_dirs;
use crate::{sys, Error, Record, Report, Result, Unknown};

/// A process that is not there any more.
fn vanished(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

fn proc_dir(pid: i32) -> io::Result<File> {
    sys::open_dir(Path::new(&format!("/proc/{pid}")))
}

mod capabilities;
mod confinement;
mod devices;
mod exposure;
mod granted;
mod held;
mod host;
mod limits;
mod lsm;
mod namespaces;
mod outside;
mod powers;
mod privileges;
mod process;

use capabilities::capabilities;
use exposure::mounts;
use granted::grants;
use held::held_objects;
pub use host::{Host, HostReport};
use limits::cgroups;
use lsm::lsm;
use namespaces::namespaces;
use outside::outside_findings;
use powers::most_powerful;
pub use powers::powers_of;
use privileges::process_findings;
use process::{gather, status_unknowns};

/// Every finding id the audit gives (what `--ignore` accepts).
pub const FINDING_IDS: [&str; 34] = [
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
    "record.less-confined",
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
    let Some(pid) = target.pid().map(nsenter_core::Pid::get) else {
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
            Some(unreadable.pid.get()),
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
    let processes = gather(&model, host, &mut report);
    report.processes = processes
        .iter()
        .map(|p| p.tgid)
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect();
    status_unknowns(&processes, &mut report.unknowns);
    most_powerful(&processes, &mut report);
    capabilities(&processes, host, &mut report);
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
    let dirs = match membership.and_then(|text| {
        Ok((
            cgroup_dirs(&text, host.own_mounts.as_ref().map_err(Clone::clone)?)?,
            text,
        ))
    }) {
        Ok((dirs, text)) => {
            let neighbours: Vec<i32> = model.cgroup_neighbours().iter().map(|p| p.get()).collect();
            cgroups(&dirs, &text, &neighbours, &mut report);
            Some(dirs)
        }
        Err(why) => {
            for id in ["cgroup.pids", "cgroup.memory", "cgroup.cpu", "devices"] {
                report
                    .unknowns
                    .push(Unknown::new(id, Some(pid), why.clone()));
            }
            None
        }
    };
    let device_nodes = mounts(&processes, host, record, &mut report);
    if let Some(dirs) = dirs {
        devices::cgroup_allowed(&dirs, &processes, &device_nodes, record, &mut report);
    }
    devices::in_user_namespace(&processes, &device_nodes, &mut report);
    grants(&processes, record, &mut report);
    confinement::less_confined(&processes, record, &mut report);
    held_objects(&processes, host, &mut report);
    // Everything read above is of the container's process only if it is still the same one.
    if !target.is_alive() {
        return Err(Error::Gone { pid });
    }
    report.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_host_mount_table_makes_mounts_unknown_not_clean() {
        let me = std::process::id() as i32;
        let mut host = Host::read(me);
        host.mounts = Err("recorded failure".to_owned());
        let report = audit(&Target::open(nsenter_core::Pid::this()).unwrap(), &host).unwrap();
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

    #[test]
    fn a_host_namespace_not_read_is_unknown_not_skipped() {
        let me = std::process::id() as i32;
        let mut host = Host::read(me);
        host.namespaces.retain(|(ns, _)| *ns != "uts");
        let report = audit(&Target::open(nsenter_core::Pid::this()).unwrap(), &host).unwrap();
        assert!(
            report
                .unknowns
                .iter()
                .any(|u| u.id == "namespace.uts" && u.reason == "the host's was not read"),
            "{:?}",
            report.unknowns
        );
        assert!(!report.findings.iter().any(|f| f.id == "namespace.uts"));
    }
}
