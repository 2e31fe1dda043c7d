//! Rules: what a process runs with (`seccomp`, `root`, `no-new-privs` with the setuid
//! programs that could raise it).

use std::os::unix::fs::PermissionsExt;

use nix::sys::stat::Mode;

use super::powers::{by_power, holders};
use super::process::Process;
use crate::{sys, Finding, Report, Severity, Unknown};

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

pub(super) fn process_findings(processes: &[Process], report: &mut Report) {
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
                        && entry.meta.permissions().mode() & (Mode::S_ISUID | Mode::S_ISGID).bits()
                            != 0
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
