//! What the container's mounts and open files expose of the host: host paths, runtime
//! sockets reachable inside, writable `/sys` and `/proc/sys`, host files held open.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use super::{vanished, Host, Process};
use crate::mounts::{
    beneath, covering, exposure, host_path, join, parse_fdinfo, parse_mountinfo, runtime_managed,
    Mount,
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

/// Files a process holds open on a mount of the host that is not in its own mount namespace:
/// passed or leaked in from outside, they reach the host past every mount (a directory's `..`
/// leads to the host's `/`; runc's CVE-2024-21626). Pipes, sockets and other files of the
/// kernel's internal mounts are on no mount of the host's table and are left alone.
pub(super) fn open_files(processes: &[Process], host: &Host, report: &mut Report) {
    // Without the host's mounts, `mounts` has already said so.
    let Ok(host_mounts) = &host.mounts else {
        return;
    };
    let mut tables: Vec<(String, Result<Vec<u64>, String>)> = Vec::new();
    let mut seen: BTreeSet<(i32, String)> = BTreeSet::new();
    for p in processes {
        let ns = match p.ns("mnt") {
            Some(Ok(ns)) => ns.clone(),
            _ => format!("pid {}", p.pid),
        };
        if !tables.iter().any(|(n, _)| *n == ns) {
            let ids = sys::read_at(&p.dir, "mountinfo")
                .map_err(|e| format!("/proc/{}/mountinfo: {e}", p.pid))
                .and_then(|text| parse_mountinfo(&text))
                .map(|table| table.iter().map(|m| m.id).collect());
            tables.push((ns.clone(), ids));
        }
        let own_ids = match tables.iter().find(|(n, _)| *n == ns).map(|(_, ids)| ids) {
            Some(Ok(ids)) => ids,
            Some(Err(why)) => {
                report
                    .unknowns
                    .push(Unknown::new("fd.host", Some(p.pid), why.clone()));
                continue;
            }
            None => continue,
        };
        let fds = format!("/proc/self/fd/{}/fd", p.dir.as_raw_fd());
        let entries = match std::fs::read_dir(&fds) {
            Ok(entries) => entries,
            Err(e) if vanished(&e) => continue,
            Err(e) => {
                report.unknowns.push(Unknown::new(
                    "fd.host",
                    Some(p.pid),
                    format!("/proc/{}/fd: {e}", p.pid),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let fd = entry.file_name().to_string_lossy().into_owned();
            // Threads usually share their process's files: each open file once per process.
            if !seen.insert((p.tgid, fd.clone())) {
                continue;
            }
            let info = match sys::read_at(&p.dir, &format!("fdinfo/{fd}")) {
                Ok(info) => parse_fdinfo(&info),
                // Closed meanwhile.
                Err(e) if vanished(&e) => continue,
                Err(e) => Err(e.to_string()),
            };
            let (mnt_id, flags) = match info {
                Ok(info) => info,
                Err(why) => {
                    report.unknowns.push(Unknown::new(
                        "fd.host",
                        Some(p.pid),
                        format!("/proc/{}/fdinfo/{fd}: {why}", p.pid),
                    ));
                    continue;
                }
            };
            if own_ids.contains(&mnt_id) {
                continue;
            }
            let Some(mount) = host_mounts.iter().find(|m| m.id == mnt_id) else {
                continue;
            };
            // The object itself (the magic link followed): what it is and where the host has it.
            let (Ok(meta), Ok(path)) = (
                std::fs::metadata(entry.path()),
                std::fs::read_link(entry.path()),
            ) else {
                continue;
            };
            let path = path.to_string_lossy().into_owned();
            let writable = flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32;
            let (severity, what) = if meta.is_dir() {
                (Severity::Critical, "a directory")
            } else if meta.is_file() {
                (
                    exposure(&path, writable),
                    if writable {
                        "a file, writable,"
                    } else {
                        "a file"
                    },
                )
            } else {
                (Severity::High, "a file")
            };
            let evidence = format!(
                "{} fd {fd} -> {path} (flags {flags:o}): mount {mnt_id} ({} {} on {}) is the host's, not in its mount namespace",
                p.label, mount.device, mount.root, mount.point
            );
            let title = format!(
                "{} holds {what} of the host open ({path}), outside its mounts",
                p.who()
            );
            report
                .findings
                .push(Finding::new("fd.host", severity, title, evidence).about(p.pid, vec![p.pid]));
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
