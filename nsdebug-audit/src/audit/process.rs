//! Gathering: every thread of the container from nsenter-core's model, with what the audit
//! reads of it beyond its status (its namespaces, its user namespace against the host's).

use std::fs::File;

use nsenter_core::powers::Powers as Model;

use super::namespaces::NAMESPACES;
use super::Host;
use crate::status::Status;
use crate::{sys, Report, Unknown};

/// What one thread of a process is, as far as it could be read. Credentials, capabilities,
/// NoNewPrivs, seccomp and namespaces belong to each thread: a thread can keep what its
/// process's main thread dropped, so every thread is read.
pub(super) struct Process {
    /// The thread id (the pid, for the main thread).
    pub(super) pid: i32,
    /// The process (thread group) it belongs to.
    pub(super) tgid: i32,
    /// Its `/proc/PID/task/TID` directory.
    pub(super) dir: File,
    pub(super) comm: String,
    /// `pid 42 (httpd)`, or `thread 43 of pid 42 (worker)`.
    pub(super) label: String,
    pub(super) status: Status,
    pub(super) namespaces: Vec<(&'static str, Result<String, String>)>,
    /// Its user namespace, when it is known not to be the host's: its capabilities then act
    /// only on what that namespace owns, not on the host.
    pub(super) own_userns: Option<String>,
}

impl Process {
    /// `pid 42`, or `thread 43 of pid 42`.
    pub(super) fn who(&self) -> String {
        if self.pid == self.tgid {
            format!("pid {}", self.pid)
        } else {
            format!("thread {} of pid {}", self.pid, self.tgid)
        }
    }

    pub(super) fn ns(&self, kind: &str) -> Option<&Result<String, String>> {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, id)| id)
    }

    /// Whether it is in the host's namespace of `kind` (both read, and the same).
    pub(super) fn shares_host(&self, kind: &str, host: &Host) -> bool {
        matches!(
            (self.ns(kind), host.namespace(kind)),
            (Some(Ok(ours)), Some(Ok(hosts))) if ours == hosts
        )
    }
}

/// Every thread of `model` as a [`Process`]; one that cannot be gathered is an unknown.
pub(super) fn gather(model: &Model, host: &Host, report: &mut Report) -> Vec<Process> {
    let host_userns = host.namespace("user").and_then(|id| id.as_ref().ok());
    let mut processes = Vec::new();
    for task in model.tasks() {
        let (tid, member) = (task.tid.get(), task.tgid.get());
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
    processes
}

/// Every status field that could not be read, as the unknown of the finding it decides.
pub(super) fn status_unknowns(processes: &[Process], unknowns: &mut Vec<Unknown>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::powers::powers_of;
    use crate::audit::powers::tests::HELPER;

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
}
