//! The trust decision: whether a program is the container's code (taken from its filesystem)
//! or the caller's (from the host's), how powerful it runs, and which environment it gets.
//! Decided here once, by [`Trust::decide`], and used by [`Command`](crate::Command) for
//! everything it does; a front end prints the decision (its [`Display`](std::fmt::Display))
//! and never derives it again.

use std::ffi::{OsStr, OsString};
use std::fmt;

use crate::command::RootDir;
use crate::confine::Confinement;
use crate::kind::{Namespace, NamespaceSet};

/// The target's variables that a host program may take (`nsdebug enter -e`): how it
/// formats and where it connects, never what code it runs (no `PATH`, `LD_*`, `BASH_FUNC_*`,
/// `PROMPT_COMMAND`, `ENV`, `PYTHONPATH`, `HOME`...). Names listed here, or made of letters,
/// digits and `_` and starting with `LC_` or `KUBERNETES_`.
pub const HOST_PROGRAM_ENV: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "TZ",
    "HOSTNAME",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Whether a host program may take the target's variable `key` (see [`HOST_PROGRAM_ENV`]).
pub fn host_program_may_take(key: &OsStr) -> bool {
    let key = key.as_encoded_bytes();
    HOST_PROGRAM_ENV
        .iter()
        .any(|allowed| allowed.as_bytes() == key)
        || ((key.starts_with(b"LC_") || key.starts_with(b"KUBERNETES_"))
            && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'))
}

/// How a program is run, as decided from where it comes from and what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trust {
    from_target: bool,
    confined: bool,
    exposed: bool,
}

impl Trust {
    /// Decides for a program started in `kinds` with `root`, `confinement` and whether the
    /// caller accepts a reachable host program (`expose_host_program`). The program comes
    /// from the target's filesystem when its mount namespace is joined without a root of the
    /// caller's, or with [`RootDir::Target`].
    pub fn decide(
        kinds: NamespaceSet,
        root: Option<&RootDir>,
        confinement: Confinement,
        expose_host_program: bool,
    ) -> Trust {
        let from_target = match root {
            Some(RootDir::Target) => true,
            Some(RootDir::Path(_)) => false,
            None => kinds.contains(Namespace::Mnt),
        };
        let confined = match confinement {
            Confinement::LikeTarget => true,
            Confinement::Caller => false,
            Confinement::Auto => from_target,
        };
        Trust {
            from_target,
            confined,
            exposed: expose_host_program,
        }
    }

    /// Whether the program is taken from the target's filesystem (the container's code).
    pub fn from_target(&self) -> bool {
        self.from_target
    }

    /// Whether it runs confined like the target (`docker exec`), not with the caller's powers.
    pub fn confined(&self) -> bool {
        self.confined
    }

    /// Whether it keeps the caller's powers and is refused where the target could reach it.
    pub fn checks_reach(&self) -> bool {
        !self.confined && !self.from_target && !self.exposed
    }

    /// The environment the program starts from: the target's for the container's code
    /// (confined or not: never the operator's), else the caller's plus, when
    /// `take_target` (`-e`), the target's variables [`host_program_may_take`] allows.
    /// `target` is read only when needed.
    pub fn environment<E>(
        &self,
        caller: impl IntoIterator<Item = (OsString, OsString)>,
        take_target: bool,
        target: impl FnOnce() -> Result<Vec<(OsString, OsString)>, E>,
    ) -> Result<Vec<(OsString, OsString)>, E> {
        if self.from_target || self.confined {
            return target();
        }
        let mut env: Vec<(OsString, OsString)> = caller.into_iter().collect();
        if take_target {
            for (key, value) in target()? {
                if host_program_may_take(&key) {
                    env.retain(|(k, _)| *k != key);
                    env.push((key, value));
                }
            }
        }
        Ok(env)
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.from_target, self.confined, self.exposed) {
            (true, true, _) => "the container's program, confined like the container",
            (true, false, _) => "the container's program with host powers (privileged)",
            (false, true, _) => "a host program, confined like the container",
            (false, false, false) => {
                "a host program with host powers, out of the container's reach"
            }
            (false, false, true) => {
                "a host program with host powers, exposed to the container on request"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn where_the_program_comes_from_decides() {
        let mnt = NamespaceSet::of(Namespace::Mnt);
        let net = NamespaceSet::of(Namespace::Net);
        let auto = Confinement::Auto;
        let container = Trust::decide(mnt, None, auto, false);
        assert!(container.from_target() && container.confined() && !container.checks_reach());
        let privileged = Trust::decide(mnt, None, Confinement::Caller, false);
        assert!(privileged.from_target() && !privileged.confined());
        let host = Trust::decide(net, None, auto, false);
        assert!(!host.from_target() && !host.confined() && host.checks_reach());
        let own_root = Trust::decide(mnt, Some(&RootDir::Path("/".into())), auto, false);
        assert!(!own_root.from_target() && own_root.checks_reach());
        assert!(Trust::decide(net, Some(&RootDir::Target), auto, false).confined());
        assert!(!Trust::decide(net, None, auto, true).checks_reach());
    }

    #[test]
    fn the_container_never_steers_a_host_programs_environment() {
        let target = env(&[
            ("PATH", "/var/lib/docker/overlay2/x/diff/bin"),
            ("LD_PRELOAD", "/tmp/pwn.so"),
            ("BASH_FUNC_ls%%", "() { pwned; }"),
            ("TZ", "Europe/Paris"),
            ("LC_ALL", "C"),
            ("LC_$(x)", "y"),
        ]);
        let caller = env(&[("PATH", "/usr/bin"), ("TZ", "UTC")]);
        let host = Trust::decide(
            NamespaceSet::of(Namespace::Net),
            None,
            Confinement::Auto,
            false,
        );
        let got = host
            .environment(caller.clone(), true, || Ok::<_, ()>(target.clone()))
            .unwrap();
        assert_eq!(
            got,
            env(&[
                ("PATH", "/usr/bin"),
                ("TZ", "Europe/Paris"),
                ("LC_ALL", "C")
            ])
        );
        assert_eq!(
            host.environment(caller.clone(), false, || Err(())).unwrap(),
            caller,
            "without -e the target is not even read"
        );
        // The container's code gets the container's environment, privileged or not.
        let privileged = Trust::decide(
            NamespaceSet::of(Namespace::Mnt),
            None,
            Confinement::Caller,
            false,
        );
        assert_eq!(
            privileged
                .environment(caller, false, || Ok::<_, ()>(target.clone()))
                .unwrap(),
            target
        );
    }
}
