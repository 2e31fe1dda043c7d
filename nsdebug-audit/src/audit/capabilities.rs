//! Rules: capabilities held beyond Docker's default (`caps.all`, `caps.extra`) and those a
//! process could regain from its bounding set (`caps.bounding`).

use super::powers::{by_power, capped, held_capabilities, holders};
use super::process::Process;
use super::Host;
use crate::status::{capability_names, capability_severity, docker_default_mask, CAPABILITIES};
use crate::{Finding, Report, Severity};

/// Capabilities that are an escape only together with another fact: what makes them one.
/// SYS_PTRACE in the host's pid namespace ptraces host root processes (their memory, their
/// fds: the host); BPF with PERFMON loads tracing programs that read kernel memory.
fn combined(p: &Process, held: u64, host: &Host) -> Option<&'static str> {
    let names = capability_names(held);
    let holds = |n: &str| names.iter().any(|h| h == n);
    if holds("SYS_PTRACE") && p.shares_host("pid", host) {
        Some("SYS_PTRACE in the host's pid namespace: ptraces the host's root processes")
    } else if holds("BPF") && holds("PERFMON") {
        Some("BPF with PERFMON: tracing programs that read kernel memory")
    } else {
        None
    }
}

pub(super) fn capabilities(processes: &[Process], host: &Host, report: &mut Report) {
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
            let held = held_capabilities(&p.status).unwrap_or(0);
            let alone = capability_names(held & !default)
                .iter()
                .map(|n| capped(p, capability_severity(n)))
                .max()
                .unwrap_or(Severity::Low);
            match combined(p, held, host) {
                Some(_) => alone.max(capped(p, Severity::Critical)),
                None => alone,
            }
        };
        // The combination, named beside the capabilities: the finding says both facts.
        let combination = holding.iter().find_map(|p| {
            combined(p, held_capabilities(&p.status).unwrap_or(0), host).map(|why| (p, why))
        });
        let reason = combination.map(|(_, why)| why);
        let together = combination
            .map(|(p, why)| format!("; {}: {why}", p.who()))
            .unwrap_or_default();
        let evidence = format!("{evidence}{together}");
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
                    "capabilities beyond Docker's default held by a process: {}{}",
                    names.join(", "),
                    reason.map(|why| format!(" ({why})")).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::status::Status;

    fn process(caps: u64, pid_ns: &str) -> Process {
        Process {
            pid: 7,
            tgid: 7,
            dir: File::open("/").unwrap(),
            comm: "p".into(),
            label: "pid 7 (p)".into(),
            status: Status::parse(&format!(
                "CapPrm:\t{caps:016x}\nCapEff:\t{caps:016x}\nCapBnd:\t{caps:016x}\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
            )),
            namespaces: vec![("pid", Ok(pid_ns.to_owned()))],
            own_userns: None,
        }
    }

    fn caps_extra(p: Process) -> (Severity, String) {
        let mut host = Host::read(std::process::id() as i32);
        host.namespaces = vec![("pid", Ok("pid:[1]".to_owned()))];
        let mut report = Report::default();
        capabilities(&[p], &host, &mut report);
        let f = report
            .findings
            .iter()
            .find(|f| f.id == "caps.extra")
            .unwrap();
        (f.severity, f.title.clone())
    }

    /// The escapes that take two facts: each alone high, together critical and named.
    #[test]
    fn capabilities_that_escape_together_are_critical_together() {
        const PTRACE: u64 = 1 << 19;
        const PERFMON: u64 = 1 << 38;
        const BPF: u64 = 1 << 39;
        let default = docker_default_mask();
        assert_eq!(
            caps_extra(process(default | PTRACE, "pid:[2]")).0,
            Severity::High
        );
        let (severity, title) = caps_extra(process(default | PTRACE, "pid:[1]"));
        assert_eq!(severity, Severity::Critical);
        assert!(title.contains("host's pid namespace"), "{title}");
        assert_eq!(
            caps_extra(process(default | BPF, "pid:[2]")).0,
            Severity::High
        );
        let (severity, title) = caps_extra(process(default | BPF | PERFMON, "pid:[2]"));
        assert_eq!(severity, Severity::Critical);
        assert!(title.contains("BPF with PERFMON"), "{title}");
        // DAC_READ_SEARCH alone: open_by_handle_at reads any host file.
        assert_eq!(
            caps_extra(process(default | 1 << 2, "pid:[2]")).0,
            Severity::Critical
        );
    }
}
