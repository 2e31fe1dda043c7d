//! Rules: how much power a process holds (capabilities, seccomp, uid 0, NoNewPrivs), the
//! most powerful process, and the order findings name their holders in.

use super::process::Process;
use crate::status::{
    capability_names, capability_severity, docker_default_mask, Status, CAPABILITIES,
};
use crate::{Powers, Report, Severity};

/// The powers a process holds, from its status: the capabilities beyond Docker's default it
/// holds (permitted, effective or ambient), seccomp off, no NoNewPrivs, host uid 0. Fields
/// that could not be read give nothing here: they are unknowns.
pub fn powers_of(status: &Status) -> Vec<(String, Severity)> {
    let mut powers = Vec::new();
    if let Some(held) = held_capabilities(status) {
        if held.count_ones() as usize >= CAPABILITIES.len() {
            powers.push(("every capability".to_owned(), Severity::Critical));
        } else {
            for name in capability_names(held & !docker_default_mask()) {
                powers.push((format!("CAP_{name}"), capability_severity(&name)));
            }
        }
    }
    if status.seccomp == Ok(0) {
        powers.push(("seccomp off".to_owned(), Severity::High));
    }
    if status.uids.as_ref().is_ok_and(|uids| uids.contains(&0)) {
        powers.push(("uid 0".to_owned(), Severity::High));
    }
    if status.no_new_privs == Ok(false) {
        powers.push(("no NoNewPrivs".to_owned(), Severity::Low));
    }
    powers.sort_by_key(|power| std::cmp::Reverse(power.1));
    powers
}

/// How bad holding a capability is for process `p`: at most medium in a user namespace of
/// its own (it acts on what that namespace owns, not on the host).
pub(super) fn capped(p: &Process, severity: Severity) -> Severity {
    if p.own_userns.is_some() {
        severity.min(Severity::Medium)
    } else {
        severity
    }
}

/// [`powers_of`] for a process of the container, its user namespace considered.
pub(super) fn process_powers(p: &Process) -> Vec<(String, Severity)> {
    let mut powers: Vec<(String, Severity)> = powers_of(&p.status)
        .into_iter()
        .map(|(name, severity)| match &p.own_userns {
            Some(_) if name.starts_with("CAP_") || name == "every capability" => {
                (format!("{name} (own user namespace)"), capped(p, severity))
            }
            _ => (name, severity),
        })
        .collect();
    powers.sort_by_key(|power| std::cmp::Reverse(power.1));
    powers
}

/// Permitted | effective | ambient: what the process can use now; `None` if any is unknown.
pub(super) fn held_capabilities(status: &Status) -> Option<u64> {
    Some(
        *status.cap_prm.as_ref().ok()?
            | *status.cap_eff.as_ref().ok()?
            | *status.cap_amb.as_ref().ok()?,
    )
}

/// How much power: the worst power first, then how many of each severity.
pub(super) fn rank(powers: &[(String, Severity)]) -> (Option<Severity>, u64) {
    (
        powers.iter().map(|(_, s)| *s).max(),
        powers.iter().map(|(_, s)| 16u64.pow(*s as u32)).sum(),
    )
}

pub(super) fn most_powerful(processes: &[Process], report: &mut Report) {
    let strongest = processes
        .iter()
        .map(|p| (p, process_powers(p)))
        .max_by(|(a, pa), (b, pb)| rank(pa).cmp(&rank(pb)).then(b.pid.cmp(&a.pid)));
    report.most_powerful = strongest.map(|(p, powers)| Powers {
        pid: p.pid,
        thread_of: (p.pid != p.tgid).then_some(p.tgid),
        comm: p.comm.clone(),
        severity: rank(&powers).0,
        powers: powers.into_iter().map(|(name, _)| name).collect(),
    });
}

/// `pid 4242 (helper)`, and the other holders.
pub(super) fn holders(list: &[&Process]) -> (i32, Vec<i32>, String) {
    let pids: Vec<i32> = list.iter().map(|p| p.pid).collect();
    let first = list.first().map_or(0, |p| p.pid);
    let others = match pids.len() {
        0 | 1 => String::new(),
        n if n <= 8 => format!(
            "; also pid {}",
            pids[1..]
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        n => format!("; and {} other processes", n - 1),
    };
    (first, pids, others)
}

/// The processes ordered most powerful first.
pub(super) fn by_power(mut list: Vec<&Process>) -> Vec<&Process> {
    list.sort_by(|a, b| {
        rank(&process_powers(b))
            .cmp(&rank(&process_powers(a)))
            .then(a.pid.cmp(&b.pid))
    });
    list
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::status::Status;

    pub(crate) const HELPER: &str = "Name:\thelper\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nCapPrm:\t00000000a82c25fb\nCapEff:\t00000000a82c25fb\nCapBnd:\t00000000a82c25fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n";
    const DROPPED: &str = "Name:\tinit\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n";

    #[test]
    fn the_helper_holds_the_powers_and_the_dropped_init_none() {
        let helper = powers_of(&Status::parse(HELPER));
        let names: Vec<&str> = helper.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "CAP_SYS_ADMIN",
                "CAP_SYS_PTRACE",
                "seccomp off",
                "uid 0",
                "no NoNewPrivs"
            ]
        );
        assert_eq!(rank(&helper).0, Some(Severity::Critical));
        let init = powers_of(&Status::parse(DROPPED));
        assert!(init.is_empty(), "{init:?}");
        assert!(rank(&helper) > rank(&init));
    }
}
