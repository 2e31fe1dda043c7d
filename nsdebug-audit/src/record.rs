//! What the container's runtime recorded of it (Docker's and Podman's inspect, the CRI's
//! status), handed to the audit as plain data by the caller that asked the runtime: the
//! audit reads the kernel, and this is what the kernel's view is checked against.

/// The runtime's record of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// `docker`, `podman`, `cri`, `containerd`; empty when no runtime knows the target.
    pub runtime: String,
    /// The container's own ids (container, pod sandbox): its runtime mounts are recognised
    /// only in the directories named after them.
    pub ids: Vec<String>,
    /// The bind mounts the runtime made (Docker's and Podman's `Mounts`).
    pub mounts: Vec<RecordedMount>,
    /// Whether it was run privileged (`--privileged`).
    pub privileged: bool,
    /// The capabilities it was given beyond the default (`--cap-add`), as the runtime
    /// spells them (`SYS_ADMIN`, `CAP_SYS_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    /// Whether it was run with no-new-privileges (`--security-opt no-new-privileges`, the
    /// runtime spec's `noNewPrivileges`).
    pub no_new_privileges: bool,
    /// Whether the record says a seccomp filter confines it: `Some(true)` a profile (the
    /// runtime's default or one named), `Some(false)` `seccomp=unconfined` (or privileged),
    /// `None` when the record does not say.
    pub seccomp: Option<bool>,
    /// The devices it was given (Docker's and Podman's `HostConfig.Devices`, `--device`);
    /// `None` when the record does not say (the CRI, no runtime).
    pub devices: Option<Vec<RecordedDevice>>,
    /// Its device cgroup rules (`--device-cgroup-rule`, `c 1:11 rwm`).
    pub device_cgroup_rules: Vec<String>,
}

impl Record {
    /// What Docker's and Podman's `HostConfig.SecurityOpt` (with `Privileged`) record of the
    /// confinement: `no-new-privileges` (`:true`, `=true`), `seccomp=unconfined`
    /// (`seccomp:unconfined`); without the latter and not privileged, their default profile.
    pub fn set_security_opt(&mut self, security_opt: &[String]) {
        let value = |opt: &str, key: &str| {
            opt.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(['=', ':']))
                .map(str::to_owned)
        };
        self.no_new_privileges = security_opt.iter().any(|opt| {
            opt == "no-new-privileges"
                || value(opt, "no-new-privileges").is_some_and(|v| v == "true")
        });
        let unconfined = security_opt
            .iter()
            .any(|opt| value(opt, "seccomp").is_some_and(|v| v == "unconfined"));
        self.seccomp = Some(!unconfined && !self.privileged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opt_in_each_spelling() {
        let record = |opts: &[&str], privileged: bool| {
            let mut r = Record {
                privileged,
                ..Record::default()
            };
            r.set_security_opt(&opts.iter().map(|o| o.to_string()).collect::<Vec<_>>());
            (r.no_new_privileges, r.seccomp)
        };
        assert_eq!(record(&[], false), (false, Some(true)));
        assert_eq!(record(&["no-new-privileges"], false), (true, Some(true)));
        assert_eq!(
            record(&["no-new-privileges:true"], false),
            (true, Some(true))
        );
        assert_eq!(
            record(&["no-new-privileges=false"], false),
            (false, Some(true))
        );
        assert_eq!(record(&["seccomp=unconfined"], false), (false, Some(false)));
        assert_eq!(record(&["seccomp:unconfined"], false), (false, Some(false)));
        assert_eq!(record(&["seccomp=/p.json"], false), (false, Some(true)));
        assert_eq!(record(&[], true), (false, Some(false)));
    }
}

/// One mount the runtime recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMount {
    /// `bind`, `volume`, `tmpfs`...
    pub kind: String,
    /// The host path it shows (for a bind mount).
    pub source: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// Whether it was made writable.
    pub writable: bool,
}

/// One device the runtime recorded giving the container (`--device /dev/vda:/dev/xvda:rw`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedDevice {
    /// The host's node (or a directory of nodes, every one beneath it given).
    pub path_on_host: String,
    /// What the devices cgroup was asked to allow: `r`, `w`, `m` (`rwm` by default; empty,
    /// as Podman records its default, is `rwm`).
    pub permissions: String,
}
