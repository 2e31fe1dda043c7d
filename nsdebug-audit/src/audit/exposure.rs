//! What the container's mounts and open files expose of the host: host paths, runtime
//! sockets reachable inside, writable `/sys` and `/proc/sys`, host files held open.

use std::io;
use std::os::unix::fs::MetadataExt;

use super::{Host, Process};
use crate::mounts::{
    beneath, covering, exposure, host_path, join, parse_mountinfo, runtime_managed, Mount,
};
use crate::{sys, Finding, Report, Severity, Unknown};

pub(super) fn mounts(processes: &[Process], host: &Host, report: &mut Report) {
    let host_mounts = match &host.mounts {
        Ok(mounts) => mounts,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "mounts",
                Some(report.pid),
                format!("the host's mounts: {why}"),
            ));
            return;
        }
    };
    // One process per mount namespace (a process may have made its own).
    let mut seen: Vec<&str> = Vec::new();
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
            Ok(table) => mounts_of(p, &table, host, host_mounts, report),
            Err(why) => report
                .unknowns
                .push(Unknown::new("mounts", Some(p.pid), why)),
        }
    }
}

fn mounts_of(
    p: &Process,
    table: &[Mount],
    host: &Host,
    host_mounts: &[Mount],
    report: &mut Report,
) {
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
    let mut exposed: Vec<(String, String)> = Vec::new();
    for mount in table {
        let rw = if mount.writable() { "rw" } else { "ro" };
        let point = &mount.point;
        let Some(source) = host_path(mount, host_mounts) else {
            continue;
        };
        // Runtime sockets reachable beneath this mount, checked by looking them up inside.
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
                Ok(meta) if meta.dev() == socket.dev && meta.ino() == socket.ino => report.findings.push(
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
                ),
                Ok(_) => {}
                // Hidden beneath another mount, or not there: not reachable by that path.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {}
                Err(why) => {
                    report.unknowns.push(Unknown::new("mount.runtime-socket", Some(pid), format!("{inside}: {why}")))
                }
            }
        }
        let own = (point == "/proc"
            || point.starts_with("/proc/")
            || point == "/sys"
            || point.starts_with("/sys/"))
            && host_mounts
                .iter()
                .any(|h| h.device == mount.device && h.point == *point);
        if runtime_managed(mount, &source) || own {
            continue;
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
        let severity = exposure(&source, mount.writable());
        report.findings.push(
            Finding::new(
                "mount.host-path",
                severity,
                format!(
                    "the host's {source} is mounted {} at {point}",
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
}
