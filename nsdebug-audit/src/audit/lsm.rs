//! Rules: processes no AppArmor or SELinux label confines (`lsm`).

use super::powers::holders;
use super::process::Process;
use super::{vanished, Host};
use crate::{sys, Finding, Report, Severity, Unknown};

pub(super) fn lsm(processes: &[Process], host: &Host, report: &mut Report) {
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
