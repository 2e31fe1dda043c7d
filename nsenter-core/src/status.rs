//! The one reader of `/proc/PID/status` (and `/proc/PID/task/TID/status`): every crate that
//! decides from a process's credentials, capabilities, NoNewPrivs or seccomp mode parses it
//! here, field by field. A field that is missing or does not parse is an error with the
//! reason, never a default (a missing `Seccomp:` is not "no seccomp").

use crate::pid::Pid;

/// A field's value, or why it is not known.
pub type Fact<T> = Result<T, String>;

/// The five capability sets, as bit masks (bit N = capability N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// `CapInh:`.
    pub inheritable: u64,
    /// `CapPrm:`.
    pub permitted: u64,
    /// `CapEff:`.
    pub effective: u64,
    /// `CapBnd:`.
    pub bounding: u64,
    /// `CapAmb:`.
    pub ambient: u64,
}

/// `CAP_SETUID`: who holds it may take any uid (of its user namespace).
pub const CAP_SETUID: u32 = 7;
/// `CAP_SYS_PTRACE`: who holds it may read and write any process it can see.
pub const CAP_SYS_PTRACE: u32 = 19;

/// The fields of a `/proc/PID/status` file that say who a process (or thread) is and what
/// it may do. Ids are as the reader's user namespace sees them (read from the host: host ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `Name:`, the command name (chosen by the process: escape it before printing).
    pub name: Fact<String>,
    /// `State:`'s letter (`R`, `S`, `Z`...).
    pub state: Fact<char>,
    /// `Tgid:`, the process a thread belongs to.
    pub tgid: Fact<Pid>,
    /// `PPid:`, its parent process (`None`: the kernel's 0, a parent outside the reader's pid
    /// namespace).
    pub ppid: Fact<Option<Pid>>,
    /// `NSpid:`, its pid in each pid namespace from the reader's down to its own.
    pub ns_pid: Fact<Vec<Pid>>,
    /// `Uid:` real, effective, saved, filesystem.
    pub uids: Fact<[u32; 4]>,
    /// `Gid:` real, effective, saved, filesystem.
    pub gids: Fact<[u32; 4]>,
    /// `Groups:`, the supplementary groups.
    pub groups: Fact<Vec<u32>>,
    /// `CapInh:`.
    pub cap_inh: Fact<u64>,
    /// `CapPrm:`.
    pub cap_prm: Fact<u64>,
    /// `CapEff:`.
    pub cap_eff: Fact<u64>,
    /// `CapBnd:`.
    pub cap_bnd: Fact<u64>,
    /// `CapAmb:`.
    pub cap_amb: Fact<u64>,
    /// `NoNewPrivs:`.
    pub no_new_privs: Fact<bool>,
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub seccomp: Fact<u8>,
    /// `VmRSS:` in KiB (absent for kernel threads and zombies).
    pub vm_rss_kib: Fact<u64>,
}

fn field<'a>(status: &'a str, name: &str) -> Fact<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .ok_or_else(|| format!("no {name} line"))
}

fn hex(status: &str, name: &str) -> Fact<u64> {
    let value = field(status, name)?;
    if value.is_empty() || value.len() > 16 {
        return Err(format!("{name} {value:?} is not a 64-bit hex mask"));
    }
    u64::from_str_radix(value, 16).map_err(|_| format!("{name} {value:?} is not a 64-bit hex mask"))
}

fn numbers<T: std::str::FromStr>(status: &str, name: &str) -> Fact<Vec<T>> {
    let value = field(status, name)?;
    value
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{name} {value:?} is not a list of numbers"))
}

fn four_ids(status: &str, name: &str) -> Fact<[u32; 4]> {
    let ids = numbers::<u32>(status, name)?;
    <[u32; 4]>::try_from(ids).map_err(|ids| format!("{name} has {} ids, not four", ids.len()))
}

impl Status {
    /// Parses the text of a `/proc/PID/status` file (read lossily: a process may name itself
    /// in bytes that are not UTF-8, and must not hide behind them).
    pub fn parse(status: &str) -> Status {
        let one = |name: &str| {
            let value = field(status, name)?;
            value
                .parse::<i32>()
                .map_err(|_| format!("{name} {value:?} is not a number"))
        };
        Status {
            name: field(status, "Name").map(str::to_owned),
            state: field(status, "State").and_then(|v| {
                v.chars()
                    .next()
                    .filter(char::is_ascii_uppercase)
                    .ok_or_else(|| format!("State {v:?} has no state letter"))
            }),
            tgid: one("Tgid")
                .and_then(|n| Pid::new(n).ok_or_else(|| format!("Tgid {n} is not a pid"))),
            ppid: one("PPid").map(Pid::new),
            ns_pid: numbers(status, "NSpid").and_then(|pids: Vec<i32>| {
                if pids.is_empty() {
                    return Err("NSpid is empty".to_owned());
                }
                pids.into_iter()
                    .map(|n| Pid::new(n).ok_or_else(|| format!("NSpid has {n}, not a pid")))
                    .collect()
            }),
            uids: four_ids(status, "Uid"),
            gids: four_ids(status, "Gid"),
            groups: numbers(status, "Groups"),
            cap_inh: hex(status, "CapInh"),
            cap_prm: hex(status, "CapPrm"),
            cap_eff: hex(status, "CapEff"),
            cap_bnd: hex(status, "CapBnd"),
            cap_amb: hex(status, "CapAmb"),
            no_new_privs: field(status, "NoNewPrivs").and_then(|v| match v {
                "0" => Ok(false),
                "1" => Ok(true),
                _ => Err(format!("NoNewPrivs {v:?} is neither 0 nor 1")),
            }),
            seccomp: field(status, "Seccomp").and_then(|v| match v {
                "0" | "1" | "2" => v.parse().map_err(|_| format!("Seccomp {v:?}")),
                _ => Err(format!("Seccomp {v:?} is not 0, 1 or 2")),
            }),
            vm_rss_kib: field(status, "VmRSS").and_then(|v| {
                v.trim_end_matches("kB")
                    .trim()
                    .parse()
                    .map_err(|_| format!("VmRSS {v:?} is not a size in kB"))
            }),
        }
    }

    /// The five capability sets, or the first that could not be read.
    pub fn caps(&self) -> Fact<CapSets> {
        Ok(CapSets {
            inheritable: self.cap_inh.clone()?,
            permitted: self.cap_prm.clone()?,
            effective: self.cap_eff.clone()?,
            bounding: self.cap_bnd.clone()?,
            ambient: self.cap_amb.clone()?,
        })
    }

    /// Whether it holds capability `cap` or may take it back by exec: it is in its permitted,
    /// effective or ambient set, or in its bounding set without NoNewPrivs (root regains
    /// the bounding set at exec, anyone else through a setuid or file-capability program of
    /// the container's). What cannot be read counts as held.
    pub fn may_use(&self, cap: u32) -> bool {
        let bit = 1u64 << cap;
        let has = |set: &Fact<u64>| set.as_ref().map_or(true, |mask| mask & bit != 0);
        has(&self.cap_prm)
            || has(&self.cap_eff)
            || has(&self.cap_amb)
            || (has(&self.cap_bnd) && self.no_new_privs != Ok(true))
    }

    /// Its pid in its own (innermost) pid namespace.
    pub fn inner_pid(&self) -> Option<Pid> {
        self.ns_pid.as_ref().ok()?.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a Docker container started with `--cap-add SYS_ADMIN --cap-add SYS_PTRACE`
    /// (kernel 6.x), shortened.
    const RECORDED: &str = "Name:\thelper\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t4200\n\
Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 1 2 3 4 6 10 11 20 26 27 \nNSpid:\t4242\t7\nVmRSS:\t    1234 kB\nCapInh:\t0000000000000000\nCapPrm:\t00000000a82c25fb\n\
CapEff:\t00000000a82c25fb\nCapBnd:\t00000000a82c25fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";

    #[test]
    fn recorded_status_is_read_field_by_field() {
        let status = Status::parse(RECORDED);
        assert_eq!(status.name.as_deref(), Ok("helper"));
        assert_eq!(status.state, Ok('S'));
        let pid = |n| Pid::new(n).expect("a pid");
        assert_eq!(status.tgid, Ok(pid(4242)));
        assert_eq!(status.ppid, Ok(Some(pid(4200))));
        assert_eq!(status.ns_pid, Ok(vec![pid(4242), pid(7)]));
        assert_eq!(status.inner_pid(), Some(pid(7)));
        assert_eq!(status.uids, Ok([0, 0, 0, 0]));
        assert_eq!(
            status.groups,
            Ok(vec![0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27])
        );
        assert_eq!(status.cap_eff, Ok(0xa82c25fb));
        assert_eq!(status.no_new_privs, Ok(false));
        assert_eq!(status.seccomp, Ok(0));
        assert_eq!(status.vm_rss_kib, Ok(1234));
        assert!(status.may_use(CAP_SYS_PTRACE));
    }

    #[test]
    fn missing_or_garbled_fields_are_unknown_with_the_reason_not_zero() {
        let garbled = RECORDED
            .replace("Seccomp:\t0\n", "")
            .replace("CapEff:\t00000000a82c25fb", "CapEff:\tzz")
            .replace("Uid:\t0\t0\t0\t0", "Uid:\t0\t0")
            .replace("NoNewPrivs:\t0", "NoNewPrivs:\t");
        let status = Status::parse(&garbled);
        assert_eq!(status.seccomp, Err("no Seccomp line".to_owned()));
        assert!(
            status
                .cap_eff
                .as_ref()
                .is_err_and(|why| why.contains("\"zz\"")),
            "{:?}",
            status.cap_eff
        );
        assert!(status.uids.is_err(), "two uids are not a uid");
        assert!(status.no_new_privs.is_err());
        assert!(status.caps().is_err());
        // The fields that were intact still are.
        assert_eq!(status.cap_prm, Ok(0xa82c25fb));
        let empty = Status::parse("");
        assert!([empty.cap_prm, empty.cap_eff, empty.cap_bnd, empty.cap_amb]
            .iter()
            .all(Result::is_err));
        assert!(empty.seccomp.is_err() && empty.uids.is_err() && empty.no_new_privs.is_err());
    }

    #[test]
    fn a_field_name_is_matched_whole() {
        // "Seccomp_filters:" must not be read as "Seccomp:".
        let status = Status::parse("Seccomp_filters:\t1\n");
        assert!(status.seccomp.is_err());
    }

    #[test]
    fn a_dropped_capability_is_out_of_use_only_when_it_cannot_come_back() {
        let without = |text: &str| {
            text.replace("00000000a82c25fb", "00000000a80425fb") // SYS_PTRACE and SYS_ADMIN off
        };
        let dropped = Status::parse(&without(RECORDED));
        assert!(!dropped.may_use(CAP_SYS_PTRACE));
        // Only in the bounding set: exec as root brings it back, unless NoNewPrivs.
        let bounding = Status::parse(
            &without(RECORDED).replace("CapBnd:\t00000000a80425fb", "CapBnd:\t00000000a82c25fb"),
        );
        assert!(bounding.may_use(CAP_SYS_PTRACE));
        let nnp = Status::parse(
            &without(RECORDED)
                .replace("CapBnd:\t00000000a80425fb", "CapBnd:\t00000000a82c25fb")
                .replace("NoNewPrivs:\t0", "NoNewPrivs:\t1"),
        );
        assert!(!nnp.may_use(CAP_SYS_PTRACE));
        // Unreadable counts as held.
        let garbled = Status::parse(&without(RECORDED).replace("CapAmb:\t0000000000000000", ""));
        assert!(garbled.may_use(CAP_SYS_PTRACE));
    }
}
