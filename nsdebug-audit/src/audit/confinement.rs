//! The runtime's record of confinement (no-new-privileges, a seccomp profile) against each
//! process's kernel state (`NoNewPrivs:`, `Seccomp:` of its status). A process less confined
//! than recorded makes the record mislead whoever reads it (`docker inspect`, docker-bench,
//! kube-bench): a process put into the container from outside (`nsenter`, `docker exec
//! --privileged`) without the filter. More confined than recorded is `record.grant-dropped`.

use super::powers::holders;
use super::process::Process;
use crate::{Finding, Record, Report, Severity};

/// Whether a process lacks one recorded confinement.
type Lacks = fn(&Process) -> bool;

pub(super) fn less_confined(processes: &[Process], record: &Record, report: &mut Report) {
    let checks: [(bool, &str, &str, Lacks); 2] = [
        (
            record.no_new_privileges,
            "no-new-privileges",
            "NoNewPrivs 0",
            |p| p.status.no_new_privs == Ok(false),
        ),
        (
            record.seccomp == Some(true),
            "a seccomp profile",
            "Seccomp 0",
            |p| p.status.seccomp == Ok(0),
        ),
    ];
    for (recorded, what, kernel, lacks) in checks {
        if !recorded {
            continue;
        }
        let lacking: Vec<&Process> = processes.iter().filter(|p| lacks(p)).collect();
        if lacking.is_empty() {
            continue;
        }
        let (pid, pids, others) = holders(&lacking);
        let label = lacking.first().map_or(String::new(), |p| p.label.clone());
        report.findings.push(
            Finding::new(
                "record.less-confined",
                Severity::High,
                format!(
                    "{} records {what}, but pid {pid} runs without it: its record misleads whoever reads it",
                    record.runtime
                ),
                format!("{label}: {kernel}{others}"),
            )
            .about(pid, pids),
        );
    }
}
