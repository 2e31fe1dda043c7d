//! Rules: capabilities held beyond Docker's default (`caps.all`, `caps.extra`) and those a
//! process could regain from its bounding set (`caps.bounding`).

use super::powers::{by_power, capped, held_capabilities, holders};
use super::process::Process;
use crate::status::{capability_names, capability_severity, docker_default_mask, CAPABILITIES};
use crate::{Finding, Report, Severity};

pub(super) fn capabilities(processes: &[Process], report: &mut Report) {
    let default = docker_default_mask();
    let all = (1u64 << CAPABILITIES.len()) - 1;
    let holding: Vec<&Process> = by_power(
        processes
            .iter()
            .filter(|p| held_capabilities(&p.status).is_some_and(|h| h & !default != 0))
            .collect(),
    );
    if let Some(top) = holding.first() {
        let held = held_capabilities(&top.status).unwrap_or(0);
        let (pid, pids, others) = holders(&holding);
        let union = holding
            .iter()
            .fold(0, |m, p| m | held_capabilities(&p.status).unwrap_or(0))
            & !default;
        let names = capability_names(union);
        let userns = top
            .own_userns
            .as_ref()
            .map(|ns| format!(" in {ns}, its own user namespace, not the host's"))
            .unwrap_or_default();
        let evidence = format!(
            "{} holds {} (CapPrm {:016x}, CapEff {:016x}){userns}{others}",
            top.label,
            capability_names(held & !default).join(", "),
            top.status.cap_prm.as_ref().unwrap_or(&0),
            top.status.cap_eff.as_ref().unwrap_or(&0)
        );
        // Each holder's capabilities count as much as they can do from its user namespace.
        let severity_of = |p: &Process| {
            let extra = held_capabilities(&p.status).unwrap_or(0) & !default;
            capability_names(extra)
                .iter()
                .map(|n| capped(p, capability_severity(n)))
                .max()
                .unwrap_or(Severity::Low)
        };
        let finding = if held & all == all {
            let within = if top.own_userns.is_some() {
                " in a user namespace of its own"
            } else {
                " (--privileged-like)"
            };
            Finding::new(
                "caps.all",
                capped(top, Severity::Critical),
                format!("{} holds every capability{within}", top.who()),
                evidence,
            )
        } else {
            let severity = holding
                .iter()
                .map(|p| severity_of(p))
                .max()
                .unwrap_or(Severity::Low);
            Finding::new(
                "caps.extra",
                severity,
                format!(
                    "capabilities beyond Docker's default held by a process: {}",
                    names.join(", ")
                ),
                evidence,
            )
        };
        report.findings.push(finding.about(pid, pids));
    }
    // What a process could regain: its bounding set beyond the default and beyond what it holds.
    let regain = |p: &Process| -> u64 {
        match (p.status.cap_bnd.as_ref(), held_capabilities(&p.status)) {
            (Ok(bnd), Some(held)) => bnd & !default & !held,
            _ => 0,
        }
    };
    let able: Vec<&Process> = by_power(processes.iter().filter(|p| regain(p) != 0).collect());
    if !able.is_empty() {
        let union = able.iter().fold(0, |m, p| m | regain(p));
        let without_nnp: Vec<&Process> = able
            .iter()
            .copied()
            .filter(|p| p.status.no_new_privs == Ok(false))
            .collect();
        let names = capability_names(union);
        let (severity, title, shown) = if let Some(first) = without_nnp.first() {
            let names_open = capability_names(without_nnp.iter().fold(0, |m, p| m | regain(p)));
            let severity = without_nnp
                .iter()
                .flat_map(|p| {
                    capability_names(regain(p))
                        .into_iter()
                        .map(move |n| capped(p, capability_severity(&n)))
                })
                .max()
                .unwrap_or(Severity::Low);
            (severity, format!("capabilities a process without NoNewPrivs can regain by executing a setuid-root or file-capability program: {}", names_open.join(", ")), *first)
        } else {
            (
                Severity::Low,
                format!(
                    "capabilities left in the bounding set, kept out of reach by NoNewPrivs: {}",
                    names.join(", ")
                ),
                able[0],
            )
        };
        let list = if without_nnp.is_empty() {
            able.clone()
        } else {
            without_nnp.clone()
        };
        let (pid, pids, others) = holders(&list);
        let evidence = format!(
            "{}: CapBnd {:016x} has {}, NoNewPrivs {}{others}",
            shown.label,
            shown.status.cap_bnd.as_ref().unwrap_or(&0),
            capability_names(regain(shown)).join(", "),
            u8::from(shown.status.no_new_privs == Ok(true))
        );
        report
            .findings
            .push(Finding::new("caps.bounding", severity, title, evidence).about(pid, pids));
    }
}
