//! Grants the runtime recorded (`--privileged`, `--cap-add`, `seccomp=unconfined`) that no process of the container
//! holds or can regain any more: a config reader (docker-bench 5.3, 5.4) reports them, the
//! kernel no longer shows them. Said as info, so the two views can be reconciled.

use super::powers::held_capabilities;
use super::process::Process;
use crate::status::{capability_names, CAPABILITIES};
use crate::{Finding, Record, Report, Severity};

pub(super) fn grants(processes: &[Process], record: &Record, report: &mut Report) {
    // `seccomp=unconfined` recorded (not through --privileged) while every process has a
    // filter: more confined than recorded.
    let unconfined_recorded = record.seccomp == Some(false) && !record.privileged;
    if !record.privileged && record.cap_add.is_empty() && !unconfined_recorded {
        return;
    }
    // What any process holds or keeps in its bounding set; a process whose capabilities
    // cannot be read is an unknown already and counts as holding everything here.
    let reachable = processes.iter().fold(0u64, |mask, p| {
        let bounding = p.status.cap_bnd.as_ref().ok().copied();
        match (held_capabilities(&p.status), bounding) {
            (Some(held), Some(bounding)) => mask | held | bounding,
            _ => u64::MAX,
        }
    });
    let all = (1u64 << CAPABILITIES.len()) - 1;
    let mut gone: Vec<String> = Vec::new();
    if record.privileged && reachable & all != all {
        gone.push("--privileged (every capability)".to_owned());
    }
    for cap in &record.cap_add {
        let name = cap.trim_start_matches("CAP_").to_ascii_uppercase();
        let bit = if name == "ALL" {
            Some(all)
        } else {
            CAPABILITIES
                .iter()
                .position(|c| *c == name)
                .map(|bit| 1u64 << bit)
        };
        if bit.is_some_and(|bit| reachable & bit != bit) {
            gone.push(format!("--cap-add {name}"));
        }
    }
    if unconfined_recorded
        && !processes.is_empty()
        && processes
            .iter()
            .all(|p| matches!(p.status.seccomp, Ok(mode) if mode > 0))
    {
        gone.push("seccomp=unconfined (every process has a seccomp filter)".to_owned());
    }
    if gone.is_empty() {
        return;
    }
    let pid = report.pid;
    report.findings.push(
        Finding::new(
            "record.grant-dropped",
            Severity::Info,
            format!(
                "{} recorded {}, which no process of the container holds or can regain now (a config reader still reports it)",
                record.runtime,
                gone.join(", ")
            ),
            format!(
                "capabilities held or in a bounding set by any process: {}",
                match capability_names(reachable & all) {
                    names if names.is_empty() => "none".to_owned(),
                    names => names.join(", "),
                }
            ),
        )
        .about(pid, vec![pid]),
    );
}
