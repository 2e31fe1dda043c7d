//! The host's side: its namespaces, mounts, runtime sockets and LSMs, read once; what is
//! host-wide is reported once, in the host section.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::Serialize;

use super::namespaces::NAMESPACES;
use super::proc_dir;
use crate::mounts::{join, parse_mountinfo, Mount, RUNTIME_SOCKETS};
use crate::{sys, Finding, Severity, Unknown};

/// Host-wide facts: read once, reported once (the host section), and the reference every
/// container is compared with.
pub struct Host {
    pub(super) pid: i32,
    pub(super) namespaces: Vec<(&'static str, Result<String, String>)>,
    pub(super) mounts: Result<Vec<Mount>, String>,
    pub(super) own_mounts: Result<Vec<Mount>, String>,
    pub(super) sockets: Vec<Socket>,
    pub(super) lsm: Result<bool, String>,
    lsm_evidence: String,
    unknowns: Vec<Unknown>,
}

/// A runtime's socket on the host.
pub(super) struct Socket {
    pub(super) runtime: &'static str,
    pub(super) path: String,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

/// The host section of a report: facts about the host, not about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// The pid whose namespaces stand for the host's.
    pub pid: i32,
    /// Host-wide findings (e.g. no LSM confining any container).
    pub findings: Vec<Finding>,
    /// Host facts that could not be established.
    pub unknowns: Vec<Unknown>,
}

impl Host {
    /// The host's namespace of `kind` (`"ipc"`, `"pid"`...): its id, or why it was not read.
    pub(super) fn namespace(&self, kind: &str) -> Option<&Result<String, String>> {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, id)| id)
    }

    /// Reads the host's facts through process `pid` (PID 1, or another process in the host's
    /// namespaces and root): its namespaces, its mounts, the runtime sockets present, the LSMs.
    pub fn read(pid: i32) -> Host {
        let mut unknowns = Vec::new();
        let dir = proc_dir(pid).map_err(|e| format!("cannot open /proc/{pid}: {e}"));
        let namespaces = NAMESPACES
            .iter()
            .map(|(ns, _, _)| {
                let id = dir.as_ref().map_err(Clone::clone).and_then(|d| {
                    sys::readlink_at(d, &format!("ns/{ns}"))
                        .map_err(|e| format!("host /proc/{pid}/ns/{ns}: {e}"))
                });
                (*ns, id)
            })
            .collect();
        let mounts = dir
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|d| {
                sys::read_at(d, "mountinfo").map_err(|e| format!("host /proc/{pid}/mountinfo: {e}"))
            })
            .and_then(|text| parse_mountinfo(&text));
        let own_mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))
            .and_then(|t| parse_mountinfo(&t));
        let mut sockets: Vec<Socket> = Vec::new();
        match dir.as_ref().map_err(Clone::clone).and_then(|d| {
            sys::open_dir_at(d, "root").map_err(|e| format!("host /proc/{pid}/root: {e}"))
        }) {
            Err(why) => unknowns.push(Unknown::new(
                "mount.runtime-socket",
                None,
                format!("the host's runtime sockets: {why}"),
            )),
            Ok(root) => {
                let mut candidates: Vec<(&'static str, String)> = RUNTIME_SOCKETS
                    .iter()
                    .map(|(runtime, path)| (*runtime, (*path).to_owned()))
                    .collect();
                // Rootless Docker and Podman: one socket per user.
                if let Ok(users) = sys::list_in_root(&root, "/run/user") {
                    for user in users
                        .iter()
                        .filter(|u| u.meta.is_dir() && u.name.bytes().all(|b| b.is_ascii_digit()))
                    {
                        candidates.push((
                            "docker (rootless)",
                            format!("/run/user/{}/docker.sock", user.name),
                        ));
                        candidates.push((
                            "podman (rootless)",
                            format!("/run/user/{}/podman/podman.sock", user.name),
                        ));
                    }
                }
                for (runtime, path) in &candidates {
                    let (runtime, path) = (*runtime, path.as_str());
                    match sys::stat_in_root(&root, path) {
                        Ok(meta) if meta.file_type().is_socket() => {
                            if sockets
                                .iter()
                                .any(|s| s.dev == meta.dev() && s.ino == meta.ino())
                            {
                                continue;
                            }
                            // Host paths are compared with mounts' host paths: resolve /var/run -> /run.
                            let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
                            let real = std::fs::canonicalize(parent).map(|p| {
                                join(
                                    &p.to_string_lossy(),
                                    path.rsplit('/').next().unwrap_or(path),
                                )
                            });
                            match real {
                                Ok(real) => sockets.push(Socket {
                                    runtime,
                                    path: real,
                                    dev: meta.dev(),
                                    ino: meta.ino(),
                                }),
                                Err(e) => unknowns.push(Unknown::new(
                                    "mount.runtime-socket",
                                    None,
                                    format!("{path}: {e}"),
                                )),
                            }
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.raw_os_error(),
                                Some(libc::ENOENT) | Some(libc::ENOTDIR)
                            ) => {}
                        Err(e) => unknowns.push(Unknown::new(
                            "mount.runtime-socket",
                            None,
                            format!("host {path}: {e}"),
                        )),
                    }
                }
            }
        }
        let (lsm, lsm_evidence) = read_lsm();
        Host {
            pid,
            namespaces,
            mounts,
            own_mounts,
            sockets,
            lsm,
            lsm_evidence,
            unknowns,
        }
    }

    /// The host section: host-wide findings and unknowns.
    pub fn report(&self) -> HostReport {
        let mut findings = Vec::new();
        let mut unknowns = self.unknowns.clone();
        match &self.lsm {
            Ok(false) => findings.push(Finding::new(
                "lsm",
                Severity::Medium,
                "no AppArmor, SELinux or Smack active: no container is confined by an LSM",
                self.lsm_evidence.clone(),
            )),
            Ok(true) => {}
            Err(why) => unknowns.push(Unknown::new("lsm", None, why.clone())),
        }
        for (ns, id) in &self.namespaces {
            if let Err(why) = id {
                unknowns.push(Unknown::new(&format!("namespace.{ns}"), None, why.clone()));
            }
        }
        for (id, fact) in [("mounts", &self.mounts), ("cgroup", &self.own_mounts)] {
            if let Err(why) = fact {
                unknowns.push(Unknown::new(id, None, why.clone()));
            }
        }
        HostReport {
            pid: self.pid,
            findings,
            unknowns,
        }
    }
}

/// Whether an LSM that labels processes (AppArmor, SELinux, Smack) is active, and the evidence.
fn read_lsm() -> (Result<bool, String>, String) {
    const LABELLING: [&str; 3] = ["apparmor", "selinux", "smack"];
    match std::fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(list) => {
            let active = list.trim().split(',').any(|l| LABELLING.contains(&l));
            (Ok(active), format!("/sys/kernel/security/lsm: {}", list.trim()))
        }
        Err(list_error) => match std::fs::read("/proc/self/attr/current") {
            Ok(_) => (Ok(true), "/proc/self/attr/current is readable: an LSM labels processes".to_owned()),
            // The kernel answers EINVAL when no LSM implements process labels.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (
                Ok(false),
                format!("/sys/kernel/security/lsm unreadable ({list_error}); /proc/self/attr/current: EINVAL, no LSM provides process labels"),
            ),
            Err(e) => (Err(format!("/sys/kernel/security/lsm: {list_error}; /proc/self/attr/current: {e}")), String::new()),
        },
    }
}
