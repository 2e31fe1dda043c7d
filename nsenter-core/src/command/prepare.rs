//! Everything computed before fork: the child may not allocate, so every string, pointer
//! array and fd it uses is made here, owned by [`Prepared`] until the child has exec'd, and
//! lent to it as a [`Plan`].

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use super::ids;
use super::{Command, RootDir, Stdio, WorkDir, DEFAULT_PATH, TOOLBOX_ROOT};
use crate::child::{self, ChildConfinement, Plan, Step, ToolboxPlan};
use crate::confine::{self, Confined};
use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::sys;
use crate::target::{NamespaceId, Target};

impl Command {
    /// Everything the child needs, made before fork: the child may not allocate.
    pub(super) fn prepare<'t>(
        &self,
        target: &'t Target,
        kinds: NamespaceSet,
        stdio: [Stdio; 3],
    ) -> Result<Prepared<'t>> {
        let cstring =
            |s: &OsStr, what| CString::new(s.as_bytes()).map_err(|_| Error::NulByte { what });
        let mut argv = vec![cstring(&self.program, "program")?];
        for arg in &self.args {
            argv.push(cstring(arg, "argument")?);
        }
        let mut confined = self.confinement_for(target, kinds)?;
        let env = self.environment(target, kinds)?;
        let mut envp = Vec::with_capacity(env.len());
        for (key, value) in &env {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            envp.push(CString::new(pair).map_err(|_| Error::NulByte {
                what: "environment",
            })?);
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let candidates = exec_candidates(&self.program, path.as_deref())?;

        let mut namespace_fds = Vec::new();
        let pidfd = target.pidfd();
        if pidfd.is_none() {
            // No pidfd: open every namespace file before the child enters any.
            for ns in kinds.iter() {
                namespace_fds.push((target.namespace_file(ns)?, ns.clone_flag()));
            }
        }
        let open_dir = |path: PathBuf| {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| Error::NulByte { what: "path" })?;
            sys::open(&c, libc::O_PATH | libc::O_DIRECTORY).map_err(|source| {
                match source.raw_os_error() {
                    Some(libc::ENOENT) if !target.is_alive() => Error::TargetExited {
                        target: target.id(),
                    },
                    _ => Error::OpenPath { path, source },
                }
            })
        };
        let mnt = NamespaceSet::of(Namespace::Mnt);
        let root = match &self.root {
            None => None,
            Some(RootDir::Target) => Some(open_dir(target.proc_path("root", mnt)?)?),
            Some(RootDir::Path(path)) => Some(open_dir(path.clone())?),
        };
        let (cwd_fd, cwd_path) = match &self.cwd {
            None => (None, None),
            Some(WorkDir::Target) => (Some(open_dir(target.proc_path("cwd", mnt)?)?), None),
            Some(WorkDir::Path(path)) => {
                (None, Some(cstring(path.as_os_str(), "working directory")?))
            }
        };
        let cgroup_procs = match self.join_cgroup || confined.is_some() {
            true if confined.is_none() && target.is_frozen() => {
                return Err(Error::Frozen {
                    target: target.id(),
                })
            }
            true => open_cgroup_procs(target)?,
            false => Vec::new(),
        };
        target.ensure_alive()?;
        let requested = ids::Requested {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.as_deref(),
            joins_user: kinds.contains(Namespace::User) && !self.preserve_credentials,
        };
        let target_ids = confined.as_ref().map(|c| ids::TargetIds {
            uid: c.uid,
            gid: c.gid,
            groups: &c.groups,
        });
        let ids = ids::decide(requested, target_ids, confine::own_groups);
        if let Some(c) = confined.as_mut() {
            // What `docker exec` gives the uid the program runs as, whatever the target's
            // process raised or dropped (its inheritable and ambient sets above all).
            c.caps = confine::exec_caps(c.caps.bounding, ids.root());
        }
        let mut stdio_fds = [None, None, None];
        for (i, stream) in stdio.into_iter().enumerate() {
            let fd = match stream {
                Stdio::Inherit => continue,
                Stdio::Null => {
                    sys::open(c"/dev/null", libc::O_RDWR).map_err(|source| Error::OpenPath {
                        path: "/dev/null".into(),
                        source,
                    })?
                }
                Stdio::Fd(fd) => fd,
            };
            // Above stderr, so that dup2 onto 0-2 in the child cannot overwrite another source.
            let high = sys::dup_at_least(fd.as_fd(), 3)
                .map_err(|source| self.spawn_error(Step::Dup, source))?;
            drop(fd);
            stdio_fds[i] = Some(high);
        }
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        let candidate_ptrs = candidates.iter().map(|c| c.as_ptr()).collect();
        let toolbox = match &self.toolbox {
            None => None,
            Some(_) if kinds.contains(Namespace::Mnt) => {
                let why = "a toolbox keeps a mount namespace of its own: do not join the target's";
                return Err(self.spawn_error(
                    Step::Toolbox,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
                ));
            }
            Some(scratch) => {
                let target_mnt = match target.pidfd() {
                    Some(pidfd) => pidfd,
                    None => target.namespace_file(Namespace::Mnt)?,
                };
                let own_mnt =
                    sys::open(c"/proc/thread-self/ns/mnt", libc::O_RDONLY).map_err(|source| {
                        Error::SaveOwn {
                            namespace: Namespace::Mnt,
                            source,
                        }
                    })?;
                let path = |p: PathBuf| {
                    CString::new(p.into_os_string().into_vec()).map_err(|_| Error::NulByte {
                        what: "toolbox path",
                    })
                };
                Some(PreparedToolbox {
                    target_mnt,
                    own_mnt,
                    scratch: path(scratch.clone())?,
                    root_at: path(scratch.join(TOOLBOX_ROOT))?,
                    writable: self.toolbox_writable,
                })
            }
        };
        let seccomp_programs = confined
            .as_ref()
            .map(|c| {
                c.seccomp
                    .iter()
                    .map(|program| libc::sock_fprog {
                        len: program.len() as libc::c_ushort,
                        filter: program.as_ptr() as *mut libc::sock_filter,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let recheck = confined.is_none()
            && self.trust(kinds).checks_reach()
            && kinds.contains(Namespace::Pid)
            && !kinds.contains(Namespace::User)
            && target.pid().is_some();
        Ok(Prepared {
            toolbox,
            confined,
            seccomp_programs,
            new_session: self.new_session,
            _strings: (argv, envp, candidates, cwd_path.clone()),
            argv_ptrs,
            envp_ptrs,
            candidate_ptrs,
            pidfd,
            flags: kinds.clone_flags(),
            namespace_fds,
            root,
            cwd_fd,
            cwd_path,
            uid: ids.uid,
            gid: ids.gid,
            groups: ids.groups,
            stdio_fds,
            cgroup_procs,
            fork_for_pid: kinds.contains(Namespace::Pid),
            joins_user: kinds.contains(Namespace::User),
            recheck,
        })
    }

    /// The environment, as the trust decision gives it (see [`Trust::environment`]), or
    /// none after [`env_clear`](Command::env_clear); then the variables set or removed here.
    fn environment(
        &self,
        target: &Target,
        kinds: NamespaceSet,
    ) -> Result<Vec<(OsString, OsString)>> {
        let mut env: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            self.trust(kinds)
                .environment(std::env::vars_os(), self.env_from_target, || {
                    match target.pid() {
                        Some(_) => target.environment(),
                        // A namespace file has no environment: the caller's stays.
                        None => Ok(std::env::vars_os().collect()),
                    }
                })?
        };
        for (key, value) in &self.env {
            env.retain(|(k, _)| k != key);
            if let Some(value) = value {
                env.push((key.clone(), value.clone()));
            }
        }
        Ok(env)
    }

    /// Whether the program is confined like the target, and how, by [`Confinement`]; checks
    /// that a program with the caller's powers cannot be reached by the target.
    fn confinement_for(&self, target: &Target, kinds: NamespaceSet) -> Result<Option<Confined>> {
        let trust = self.trust(kinds);
        if trust.confined() {
            if target.pid().is_none() {
                return Err(Error::Confine {
                    target: target.id(),
                    what: "process",
                    source: std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "a namespace file has no process to take capabilities, seccomp filters and ids from",
                    ),
                });
            }
            // Reading its seccomp filters stops it, and its cgroup is joined: both would wait
            // for a frozen target to thaw.
            if target.is_frozen() {
                return Err(Error::Frozen {
                    target: target.id(),
                });
            }
            return confine::read(target, kinds.contains(Namespace::User)).map(Some);
        }
        // Joining the user namespace is refused here; the container's processes are read
        // right before exec, once the pid namespace is joined (spawn_in's handshake).
        if trust.checks_reach() && kinds.contains(Namespace::User) {
            if let Some(why) = confine::host_program_reachable(target, kinds, self.uid, None)? {
                return Err(Error::HostProgramReachable {
                    target: target.id(),
                    why,
                });
            }
        }
        Ok(None)
    }
}

/// Opens (for writing, in the caller) the `cgroup.procs` file of each of the target's cgroups.
fn open_cgroup_procs(target: &Target) -> Result<Vec<OwnedFd>> {
    let pid = target.live_pid(NamespaceSet::of(Namespace::Cgroup))?.get();
    let cgroup_error = |source| Error::Cgroup {
        target: target.id(),
        source,
    };
    // Already in the same cgroups (one namespace of ours, or a target that is no container):
    // nothing to move, and no write to cgroupfs that an unprivileged caller could not make.
    let membership = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
    if membership(&pid.to_string()).map_err(cgroup_error)?
        == membership("self").map_err(cgroup_error)?
    {
        return Ok(Vec::new());
    }
    let files = crate::cgroup::procs_files(pid).map_err(cgroup_error)?;
    files
        .into_iter()
        .map(|file| {
            let c = CString::new(file.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
                what: "cgroup path",
            })?;
            sys::open(&c, libc::O_WRONLY).map_err(cgroup_error)
        })
        .collect()
}

/// The kernel refuses `setns` into one's own user namespace (EINVAL): drop it from the set.
pub(super) fn without_own_user_namespace(
    target: &Target,
    kinds: NamespaceSet,
) -> Result<NamespaceSet> {
    if kinds.contains(Namespace::User)
        && target.namespace_id(Namespace::User)? == NamespaceId::of_current_thread(Namespace::User)?
    {
        return Ok(kinds.without(Namespace::User));
    }
    Ok(kinds)
}

/// The paths to try with `execve`, in order: the program itself if it has a `/`, else
/// each `PATH` directory joined with it.
fn exec_candidates(program: &OsStr, path: Option<&OsStr>) -> Result<Vec<CString>> {
    let nul = |_| Error::NulByte { what: "program" };
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![CString::new(program.as_bytes()).map_err(nul)?]);
    }
    let path = path.map(OsStr::as_bytes).unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            CString::new(full).map_err(nul)
        })
        .collect()
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Owns what the raw pointers and fds of a [`Plan`] point to until the child has exec'd.
pub(super) struct Prepared<'t> {
    toolbox: Option<PreparedToolbox<'t>>,
    confined: Option<Confined>,
    /// Points into `confined`'s filters.
    seccomp_programs: Vec<libc::sock_fprog>,
    new_session: bool,
    _strings: (Vec<CString>, Vec<CString>, Vec<CString>, Option<CString>),
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    candidate_ptrs: Vec<*const libc::c_char>,
    /// The target's pidfd and namespace files are the target's: borrowed for `'t`.
    pidfd: Option<BorrowedFd<'t>>,
    flags: libc::c_int,
    namespace_fds: Vec<(BorrowedFd<'t>, libc::c_int)>,
    root: Option<OwnedFd>,
    cwd_fd: Option<OwnedFd>,
    cwd_path: Option<CString>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<libc::gid_t>>,
    /// Above stderr, dup2'd onto 0-2 by the child.
    stdio_fds: [Option<OwnedFd>; 3],
    cgroup_procs: Vec<OwnedFd>,
    fork_for_pid: bool,
    joins_user: bool,
    /// A host program in the target's pid namespace: checked again before exec.
    pub(super) recheck: bool,
}

/// What a toolbox session's child needs (see [`Command::toolbox`]).
struct PreparedToolbox<'t> {
    target_mnt: BorrowedFd<'t>,
    own_mnt: OwnedFd,
    scratch: CString,
    root_at: CString,
    writable: bool,
}

impl Prepared<'_> {
    /// The child's plan: borrows every fd it names from here (or from the caller's error
    /// pipe and handshake), so none can be closed while a plan is alive.
    pub(super) fn plan<'a>(
        &'a self,
        err_fd: Option<BorrowedFd<'a>>,
        handshake: Option<child::Handshake<'a>>,
    ) -> Plan<'a> {
        Plan {
            argv: &self.argv_ptrs,
            envp: &self.envp_ptrs,
            candidates: &self.candidate_ptrs,
            pidfd: self.pidfd,
            flags: self.flags,
            namespace_fds: &self.namespace_fds,
            root: self.root.as_ref().map(OwnedFd::as_fd),
            cwd_fd: self.cwd_fd.as_ref().map(OwnedFd::as_fd),
            cwd_path: self.cwd_path.as_deref(),
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.as_deref(),
            stdio: self
                .stdio_fds
                .each_ref()
                .map(|fd| fd.as_ref().map(OwnedFd::as_fd)),
            err_fd,
            cgroup_fds: &self.cgroup_procs,
            fork_for_pid: self.fork_for_pid,
            joins_user: self.joins_user,
            new_session: self.new_session,
            confine: self.confined.as_ref().map(|c| ChildConfinement {
                caps: c.caps,
                no_new_privs: c.no_new_privs,
                seccomp: &self.seccomp_programs,
                lsm_exec: c
                    .lsm_exec
                    .as_ref()
                    .map(|(path, label)| (path.as_c_str(), label.as_slice())),
            }),
            toolbox: self.toolbox.as_ref().map(|t| ToolboxPlan {
                target_mnt: t.target_mnt,
                own_mnt: t.own_mnt.as_fd(),
                scratch: &t.scratch,
                root_at: &t.root_at,
                writable: t.writable,
                parent: std::process::id() as libc::pid_t,
            }),
            cloexec_only: err_fd.is_none(),
            handshake,
        }
    }
}
