//! Rules: namespaces shared with the host (`namespace.*`).

use super::powers::holders;
use super::process::Process;
use super::Host;
use crate::{Finding, Report, Severity, Unknown};

/// The namespaces compared with the host's, and what sharing each means.
pub(super) const NAMESPACES: [(&str, Severity, &str); 7] = [
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
        Severity::High,
        "shares the host's IPC namespace (--ipc=host): the host's shared memory read and written",
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

pub(super) fn namespaces(processes: &[Process], host: &Host, report: &mut Report) {
    for (ns, severity, title) in NAMESPACES {
        let host_id = match host.namespace(ns) {
            Some(Ok(id)) => id,
            Some(Err(why)) => {
                report.unknowns.push(Unknown::new(
                    &format!("namespace.{ns}"),
                    Some(report.pid),
                    format!("the host's: {why}"),
                ));
                continue;
            }
            // The host section reads every kind the audit compares: not reached.
            None => {
                report.unknowns.push(Unknown::new(
                    &format!("namespace.{ns}"),
                    Some(report.pid),
                    "the host's was not read",
                ));
                continue;
            }
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
