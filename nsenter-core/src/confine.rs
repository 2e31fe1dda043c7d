//! What confines a process, read from the kernel so that a program started inside its
//! namespaces can be confined the same way, as `docker exec` runs a program: capability sets,
//! NoNewPrivs, seccomp filters, LSM exec label, user, group and supplementary groups.
//!
//! Everything is read before fork, and anything that cannot be read or parsed is an error:
//! a program taken from the container's filesystem never runs with more than the container's
//! powers because a fact was missing.

use std::ffi::CString;
use std::io;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::pid::Pid;
use crate::powers::Powers;
use crate::status::{CapSets, Status};
use crate::sys;
use crate::target::Target;

/// How powerful a started program is (see [`Command::confine`](crate::Command::confine)).
///
/// A program taken from the target's filesystem is the container's code: with the caller's
/// (host root's) powers it could take over the host, so by default it runs as the container
/// would run it. A program from the host's filesystem keeps the caller's powers, and is never
/// started where the container could reach it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confinement {
    /// [`LikeTarget`](Confinement::LikeTarget) when the program comes from the target's
    /// filesystem (its mount namespace is joined without a root of the caller's, or
    /// [`RootDir::Target`](crate::RootDir::Target)); [`Caller`](Confinement::Caller)
    /// otherwise.
    #[default]
    Auto,
    /// The target's capability sets (bounding, permitted, effective, inheritable, ambient),
    /// NoNewPrivs, seccomp filters, LSM exec label, cgroups, uid, gid and groups (explicit ids
    /// still win), and its environment instead of the caller's.
    LikeTarget,
    /// The caller's powers, whatever the program is (`docker exec --privileged`).
    Caller,
}

/// The calling process's supplementary groups (`None` if they cannot be read).
pub(crate) fn own_groups() -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    Status::parse(&text).groups.ok()
}

/// What confines the target, from its `/proc/PID/status`: unreadable or malformed is an
/// error naming the field, never a default.
struct Facts {
    caps: CapSets,
    no_new_privs: bool,
    seccomp_mode: u8,
    /// Effective uid and gid (the ones a new program runs as), and the groups.
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

fn read_status(target: &Target, pid: i32) -> Result<Facts> {
    let fail = |source| Error::Confine {
        target: target.id(),
        what: "status",
        source,
    };
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(fail)?;
    let status = Status::parse(&text);
    let facts = || -> std::result::Result<Facts, String> {
        Ok(Facts {
            caps: status.caps()?,
            no_new_privs: status.no_new_privs.clone()?,
            seccomp_mode: status.seccomp.clone()?,
            uid: status.uids.clone()?[1],
            gid: status.gids.clone()?[1],
            groups: status.groups.clone()?,
        })
    };
    facts().map_err(|why| fail(io::Error::new(io::ErrorKind::InvalidData, why)))
}

/// The capability sets `docker exec` (runc) gives a program: the container's bounding set;
/// as root the same permitted and effective sets, as any other uid none; the inheritable
/// and ambient sets empty. Only the bounding set is taken from the target's process: it
/// can only shrink, so a process of the container cannot raise what a program gets.
pub(crate) fn exec_caps(bounding: u64, root: bool) -> CapSets {
    let held = if root { bounding } else { 0 };
    CapSets {
        inheritable: 0,
        permitted: held,
        effective: held,
        bounding,
        ambient: 0,
    }
}

/// Maps an id as seen from the caller's user namespace into the target's, through the
/// target's `uid_map`/`gid_map` ("inside outside count" lines). `None`: not mapped.
pub(crate) fn map_into(map: &str, outside_id: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (inside, outside, count) = (fields.next()??, fields.next()??, fields.next()??);
        let id = u64::from(outside_id);
        (id >= outside && id < outside + count).then(|| (inside + id - outside) as u32)
    })
}

/// Everything the child needs to confine the program like the target.
#[derive(Debug)]
pub(crate) struct Confined {
    pub caps: CapSets,
    pub no_new_privs: bool,
    /// Classic BPF programs, oldest first (the order to install them in).
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    /// The LSM's exec attribute file of the calling thread and what to write to it.
    pub lsm_exec: Option<(CString, Vec<u8>)>,
    /// The target's ids, as seen inside its user namespace when that is joined.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Reads how `target` is confined. `joins_user`: ids are translated into its user namespace.
pub(crate) fn read(target: &Target, joins_user: bool) -> Result<Confined> {
    let pid = target.live_pid(NamespaceSet::EMPTY)?.get();
    let fail = |what: &'static str, source: io::Error| Error::Confine {
        target: target.id(),
        what,
        source,
    };
    let invalid =
        |what| io::Error::new(io::ErrorKind::InvalidData, format!("no valid {what} field"));
    let status = read_status(target, pid)?;
    let seccomp = match status.seccomp_mode {
        0 => Vec::new(),
        2 => seccomp_filters(pid).map_err(|e| fail("seccomp filters", e))?,
        _ => {
            let why = "strict seccomp mode cannot be copied";
            return Err(fail(
                "seccomp filters",
                io::Error::new(io::ErrorKind::Unsupported, why),
            ));
        }
    };
    let lsm_exec = lsm_exec_label(pid).map_err(|e| fail("LSM label", e))?;
    let (mut uid, mut gid, mut groups) = (status.uid, status.gid, status.groups);
    if joins_user {
        let map = |file: &'static str| {
            std::fs::read_to_string(format!("/proc/{pid}/{file}"))
                .map_err(|e| fail("user namespace id maps", e))
        };
        let (uid_map, gid_map) = (map("uid_map")?, map("gid_map")?);
        let unmapped = || fail("user namespace id maps", invalid("mapped id"));
        uid = map_into(&uid_map, uid).ok_or_else(unmapped)?;
        gid = map_into(&gid_map, gid).ok_or_else(unmapped)?;
        groups = groups
            .iter()
            .filter_map(|g| map_into(&gid_map, *g))
            .collect();
    }
    // Everything above was read by pid: it is the pinned process's only if that still lives.
    target.ensure_alive()?;
    Ok(Confined {
        caps: status.caps,
        no_new_privs: status.no_new_privs,
        seccomp,
        lsm_exec,
        uid,
        gid,
        groups,
    })
}

/// Why a program with the caller's powers, started in `target`'s pid namespace, could be
/// reached (ptraced, its memory, environment, fds or binary opened) by the container: `None`
/// when the kernel's ptrace checks keep every process of the container out. Decided from the
/// [`Powers`] model: every process and thread, never one. `started`: the process forked to
/// start the program, whose children are ours (see [`Powers::host_program_reach`]).
pub(crate) fn host_program_reachable(
    target: &Target,
    kinds: NamespaceSet,
    uid: Option<u32>,
    started: Option<Pid>,
) -> Result<Option<String>> {
    if !kinds.contains(Namespace::Pid) {
        return Ok(None);
    }
    if kinds.contains(Namespace::User) {
        return Ok(Some("it would join the container's user namespace, where the container's root has every capability".to_owned()));
    }
    let model = Powers::read(target)?;
    Ok(model
        .host_program_reach(uid, started)
        .map(|reach| reach.to_string()))
}

/// The target's seccomp filters, oldest first, read with `PTRACE_SECCOMP_GET_FILTER`: the
/// target is seized and interrupted for the time of the read (well under a millisecond), then
/// let go. Fails if another tracer holds it or it does not stop within 2 s (frozen).
fn seccomp_filters(pid: i32) -> io::Result<Vec<Vec<libc::sock_filter>>> {
    sys::ptrace_seize(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "cannot ptrace it to read them (another process traces it?)",
        ),
        _ => e,
    })?;
    let _detach = Detach(pid);
    sys::ptrace_interrupt(pid)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !sys::waitpid_nohang_traced(pid)? {
        if std::time::Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the process did not stop to be read",
            ));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let mut filters = Vec::new();
    for index in 0.. {
        let count = match sys::ptrace_seccomp_filter(pid, index, &mut []) {
            Ok(count) => count,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(e),
        };
        let mut program = vec![
            libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0
            };
            count
        ];
        sys::ptrace_seccomp_filter(pid, index, &mut program)?;
        filters.push(program);
    }
    // Index 0 is the filter installed last.
    filters.reverse();
    Ok(filters)
}

/// Lets a seized process go.
struct Detach(i32);

impl Drop for Detach {
    fn drop(&mut self) {
        sys::ptrace_detach(self.0);
    }
}

/// The LSM label the program must get at exec, when an LSM confines the target: AppArmor
/// (`/proc/PID/attr/apparmor/current`: "PROFILE (MODE)") or SELinux (`attr/current`).
fn lsm_exec_label(pid: i32) -> io::Result<Option<(CString, Vec<u8>)>> {
    let read = |path: PathBuf| match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        // No such LSM, or none active: the attribute is missing or refuses reads.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EINVAL | libc::ENOPROTOOPT)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    };
    if let Some(label) = read(PathBuf::from(format!("/proc/{pid}/attr/apparmor/current")))? {
        return Ok(apparmor_exec(&label)
            .map(|value| (c"/proc/thread-self/attr/apparmor/exec".to_owned(), value)));
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        if let Some(label) = read(PathBuf::from(format!("/proc/{pid}/attr/current")))? {
            let label = label
                .split(|b| *b == 0 || *b == b'\n')
                .next()
                .unwrap_or_default()
                .to_vec();
            if !label.is_empty() {
                return Ok(Some((c"/proc/thread-self/attr/exec".to_owned(), label)));
            }
        }
    }
    Ok(None)
}

/// `exec PROFILE` for an AppArmor label `PROFILE (MODE)`; `None` when unconfined.
fn apparmor_exec(label: &[u8]) -> Option<Vec<u8>> {
    let label = String::from_utf8_lossy(label);
    let profile = label.trim_end_matches(['\n', '\0']).trim();
    let profile = profile
        .rsplit_once(" (")
        .map_or(profile, |(name, _mode)| name);
    if profile.is_empty() || profile == "unconfined" {
        return None;
    }
    Some(format!("exec {profile}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_caps_are_dockers_not_the_targets() {
        let default = 0xa80425fb;
        let root = exec_caps(default, true);
        assert_eq!(
            (root.permitted, root.effective, root.bounding),
            (default, default, default)
        );
        assert_eq!((root.inheritable, root.ambient), (0, 0));
        let user = exec_caps(default, false);
        assert_eq!(
            (user.permitted, user.effective, user.bounding),
            (0, 0, default)
        );
        assert_eq!((user.inheritable, user.ambient), (0, 0));
    }

    #[test]
    fn ids_map_into_a_user_namespace() {
        let map = "         0     100000      65536\n";
        assert_eq!(map_into(map, 100000), Some(0));
        assert_eq!(map_into(map, 101000), Some(1000));
        assert_eq!(map_into(map, 0), None, "host root is not mapped");
        assert_eq!(map_into("0 0 4294967295\n", 42), Some(42));
    }

    #[test]
    fn apparmor_labels_become_exec_requests() {
        assert_eq!(
            apparmor_exec(b"docker-default (enforce)\n"),
            Some(b"exec docker-default".to_vec())
        );
        assert_eq!(apparmor_exec(b"unconfined\n"), None);
        assert_eq!(
            apparmor_exec(b"cri-containerd.apparmor.d (complain)"),
            Some(b"exec cri-containerd.apparmor.d".to_vec())
        );
    }
}
