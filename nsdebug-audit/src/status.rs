//! `/proc/PID/status`, parsed field by field: a field that is missing or does not parse is an
//! error with the reason, never a default (a missing `Seccomp:` is not "no seccomp").

/// A field's value, or why it is not known.
pub type Fact<T> = Result<T, String>;

/// The fields of `/proc/PID/status` the audit uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `Name:`, the command name.
    pub name: Fact<String>,
    /// `State:`'s letter (`R`, `S`, `Z`...).
    pub state: Fact<char>,
    /// `Uid:` real, effective, saved, filesystem, as the reader's user namespace sees them:
    /// read from the host, host uids.
    pub uids: Fact<[u32; 4]>,
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

impl Status {
    /// Parses the text of a `/proc/PID/status` file.
    pub fn parse(status: &str) -> Status {
        let uids = field(status, "Uid").and_then(|value| {
            let ids: Vec<u32> = value
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| format!("Uid {value:?} is not four uids"))?;
            <[u32; 4]>::try_from(ids).map_err(|_| format!("Uid {value:?} is not four uids"))
        });
        Status {
            name: field(status, "Name").map(str::to_owned),
            state: field(status, "State").and_then(|v| {
                v.chars()
                    .next()
                    .filter(char::is_ascii_uppercase)
                    .ok_or_else(|| format!("State {v:?} has no state letter"))
            }),
            uids,
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
        }
    }
}

/// Capability names by bit number (linux/capability.h), without the `CAP_` prefix.
#[rustfmt::skip]
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
];

/// Docker's default capability set (moby's `DefaultCapabilities`).
#[rustfmt::skip]
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
];

/// The names of the capabilities in a `CapEff`-style mask (unknown bits as `CAP_N`).
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            CAPABILITIES
                .get(bit)
                .map_or_else(|| format!("{bit}"), |name| (*name).to_owned())
        })
        .collect()
}

/// The mask of Docker's default capabilities.
pub fn docker_default_mask() -> u64 {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(_, name)| DOCKER_DEFAULT_CAPABILITIES.contains(name))
        .fold(0, |mask, (bit, _)| mask | 1 << bit)
}

/// How bad holding a capability is: some hand over the host, the rest beyond Docker's
/// default set are low.
pub fn capability_severity(name: &str) -> crate::Severity {
    use crate::Severity::*;
    match name {
        "SYS_ADMIN" | "SYS_MODULE" | "SYS_RAWIO" => Critical,
        "DAC_READ_SEARCH" | "SYS_PTRACE" | "NET_ADMIN" | "BPF" | "PERFMON" => High,
        "SYS_BOOT" | "SYS_TIME" | "MAC_ADMIN" | "MAC_OVERRIDE" | "SYSLOG" => Medium,
        _ => Low,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a Docker container started with `--cap-add SYS_ADMIN --cap-add SYS_PTRACE`
    /// (kernel 6.x), shortened.
    const RECORDED: &str = "Name:\thelper\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t4200\n\
Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t4242\t7\nCapInh:\t0000000000000000\nCapPrm:\t00000000a82c25fb\n\
CapEff:\t00000000a82c25fb\nCapBnd:\t00000000a82c25fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";

    #[test]
    fn recorded_status_is_read_field_by_field() {
        let status = Status::parse(RECORDED);
        assert_eq!(status.name.as_deref(), Ok("helper"));
        assert_eq!(status.state, Ok('S'));
        assert_eq!(status.uids, Ok([0, 0, 0, 0]));
        assert_eq!(status.cap_eff, Ok(0xa82c25fb));
        assert_eq!(status.no_new_privs, Ok(false));
        assert_eq!(status.seccomp, Ok(0));
        let names = capability_names(status.cap_eff.clone().unwrap());
        assert!(
            names.contains(&"SYS_ADMIN".to_owned()) && names.contains(&"SYS_PTRACE".to_owned()),
            "{names:?}"
        );
        assert_eq!(
            status.cap_eff.unwrap() & !docker_default_mask(),
            1 << 21 | 1 << 19,
            "exactly SYS_ADMIN and SYS_PTRACE beyond the default"
        );
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
        assert!(
            status.uids.is_err(),
            "two uids are not a uid: {:?}",
            status.uids
        );
        assert!(status.no_new_privs.is_err(), "{:?}", status.no_new_privs);
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
}
