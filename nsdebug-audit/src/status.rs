//! Capabilities by name and how bad each is; `/proc/PID/status` itself is read by
//! [`nsenter_core::status`], the one reader every crate uses (re-exported here).

pub use nsenter_core::status::{Fact, Status};

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
    // Critical: a known way out of any container. SYS_ADMIN mounts and much else,
    // SYS_MODULE loads kernel code, SYS_RAWIO reaches I/O ports and raw devices,
    // DAC_READ_SEARCH reads any host file by handle (open_by_handle_at, "shocker").
    // High: the host's processes (SYS_PTRACE, critical with the host's pid namespace),
    // network (NET_ADMIN), kernel tracing (BPF, PERFMON: critical together) or the host
    // itself down (SYS_BOOT: reboot, kexec_load of a kernel of its choosing).
    match name {
        "SYS_ADMIN" | "SYS_MODULE" | "SYS_RAWIO" | "DAC_READ_SEARCH" => Critical,
        "SYS_PTRACE" | "NET_ADMIN" | "BPF" | "PERFMON" | "SYS_BOOT" => High,
        "SYS_TIME" | "MAC_ADMIN" | "MAC_OVERRIDE" | "SYSLOG" => Medium,
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
}
