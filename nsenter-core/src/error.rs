//! Typed errors: each says which namespace of which process failed, and why.

use std::io;
use std::path::PathBuf;

use crate::kind::{Namespace, NamespaceSet};
use crate::pid::Pid;
use crate::target::TargetId;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while pinning a process or entering its namespaces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A number that names no single process (0 or negative: process groups to `kill(2)`).
    #[error("{raw} is not a process id (it must be greater than 0)")]
    InvalidPid {
        /// The number given.
        raw: i32,
    },
    /// No process has this pid (ESRCH when it was opened).
    #[error("pid {pid}: no such process")]
    NoSuchProcess {
        /// The pid asked for.
        pid: Pid,
    },
    /// The pid names a thread, not a process (thread-group leader).
    #[error("pid {pid} is a thread, not a process: give the id of its thread-group leader")]
    NotAProcess {
        /// The pid asked for.
        pid: Pid,
    },
    /// Opening a pidfd for the process failed for another reason (e.g. out of fds).
    #[error("pid {pid}: cannot open a pidfd")]
    Pin {
        /// The pid asked for.
        pid: Pid,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The pinned process exited (or its pid was recycled) after it was opened.
    #[error("{target}: the process exited")]
    TargetExited {
        /// The process that exited.
        target: TargetId,
    },
    /// The caller lacks the privilege to open or join the namespaces.
    #[error(
        "cannot enter the {namespaces} namespace of {target}: permission denied \
         (joining another process's namespaces needs CAP_SYS_ADMIN: run as root)"
    )]
    PermissionDenied {
        /// The target.
        target: TargetId,
        /// The namespaces that were being opened or joined.
        namespaces: NamespaceSet,
    },
    /// The running kernel has no namespaces of this kind.
    #[error("the kernel does not support {namespace} namespaces (no /proc/self/ns/{namespace})")]
    Unsupported {
        /// The missing kind.
        namespace: Namespace,
    },
    /// User and time namespaces can be joined only by a single-threaded process.
    #[error(
        "cannot join the {namespace} namespace of {target} from a thread: the kernel lets only \
         a single-threaded process join {namespace} namespaces; use nsenter_core::Command, which \
         joins them in its forked child"
    )]
    SingleThreadedOnly {
        /// The target.
        target: TargetId,
        /// The kind that needs a single-threaded caller (user or time).
        namespace: Namespace,
    },
    /// Opening `/proc/PID/ns/KIND` failed for another reason.
    #[error("cannot open the {namespace} namespace of {target}")]
    OpenNamespace {
        /// The target.
        target: TargetId,
        /// The namespace kind.
        namespace: Namespace,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `setns(2)` failed for another reason.
    #[error("cannot enter the {namespaces} namespace of {target}")]
    Enter {
        /// The target.
        target: TargetId,
        /// The namespaces being joined.
        namespaces: NamespaceSet,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// This kind of namespace can only be joined by a new child process.
    #[error(
        "the {namespace} namespace applies only to children: use Command::spawn_in, which forks"
    )]
    NeedsFork {
        /// The kind (pid).
        namespace: Namespace,
    },
    /// A namespace-file target holds one namespace; another kind was asked for.
    #[error("{target} is a {has} namespace: it has no {wanted} namespace")]
    NotInTarget {
        /// The namespace-file target.
        target: TargetId,
        /// The kind the file is.
        has: Namespace,
        /// The kinds asked for that it does not have.
        wanted: NamespaceSet,
    },
    /// A path given as a namespace file cannot be opened or is not a namespace file.
    #[error("{}: not a namespace file", path.display())]
    NotANamespaceFile {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Joining the target's cgroups (`Command::join_cgroup`) failed.
    #[error("cannot join the cgroups of {target}")]
    Cgroup {
        /// The target.
        target: TargetId,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Saving the calling thread's own namespaces (to restore them later) failed.
    #[error("cannot save the calling thread's {namespace} namespace")]
    SaveOwn {
        /// The namespace kind.
        namespace: Namespace,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A path given to the command runner (root, working directory) cannot be opened.
    #[error("cannot open {}", path.display())]
    OpenPath {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The program, its arguments or environment contain a NUL byte.
    #[error("{what} contains a NUL byte")]
    NulByte {
        /// Which input.
        what: &'static str,
    },
    /// The program was not found: no such file, or no such name in any `PATH` directory
    /// (of the target's filesystem when its mount namespace is joined).
    #[error("cannot run {program}: {}", if *.searched_path { "not found in PATH" } else { "no such file" })]
    ProgramNotFound {
        /// The program.
        program: String,
        /// Whether it was looked up in `PATH` (it had no `/`).
        searched_path: bool,
    },
    /// A step of starting the program inside the namespaces failed.
    #[error("cannot run {program}: {step} failed")]
    Spawn {
        /// The program.
        program: String,
        /// The failing step.
        step: SpawnStep,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Waiting for or signalling the started program failed.
    #[error("cannot {action} process {pid}")]
    Child {
        /// What was attempted.
        action: &'static str,
        /// The child's pid.
        pid: Pid,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// How the target is confined could not be read, so a program cannot be confined like it
    /// (and is not started with more powers instead).
    #[error("cannot run the program as {target} runs: cannot read its {what}")]
    Confine {
        /// The target.
        target: TargetId,
        /// Which fact (`status`, `seccomp filters`, `LSM label`, `user namespace id maps`).
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A program with the caller's powers would be started where the target could reach it.
    #[error(
        "refusing to start a host program with host powers in the pid namespace of {target}: {why}"
    )]
    HostProgramReachable {
        /// The target.
        target: TargetId,
        /// How the target could reach it: `pid 4242 (helper) holds CAP_SYS_PTRACE`.
        why: String,
    },
    /// The processes of the target's container could not be read.
    #[error("cannot read the processes of {target}")]
    Processes {
        /// The target.
        target: TargetId,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The target's cgroup is frozen (a paused container): joining or reading it would hang.
    #[error("{target} is paused (its cgroup is frozen): unpause it first")]
    Frozen {
        /// The target.
        target: TargetId,
    },
    /// The closure given to [`run_in`](crate::run_in) could not be run on a new thread.
    #[error("cannot start a thread to enter the namespaces")]
    Thread(#[source] io::Error),
}

/// A step of starting a program ([`Error::Spawn`]), in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpawnStep {
    /// Creating a pipe (error reporting, captured output).
    Pipe,
    /// Duplicating a standard stream's fd above stderr.
    Dup,
    /// Forking the child.
    Fork,
    /// `prctl(PR_SET_DUMPABLE, 0)`.
    Prctl,
    /// `dup2` of a standard stream onto 0, 1 or 2.
    Stdio,
    /// `setsid` and `TIOCSCTTY` for a session on a terminal of its own.
    Session,
    /// Joining the target's cgroups.
    Cgroup,
    /// Writing the target's LSM exec label.
    Lsm,
    /// `setns`.
    Setns,
    /// `chroot` to the root directory.
    Chroot,
    /// `chdir` to the working directory.
    Chdir,
    /// The working directory is outside the root.
    CwdOutsideRoot,
    /// `close_range` of inherited fds.
    CloseFds,
    /// Building the private mounts of a toolbox session (the target's root, /proc, /sys).
    Toolbox,
    /// Forking into the joined pid namespace.
    PidNamespaceFork,
    /// Making the target's files of a toolbox session read-only, without symlinks and
    /// private (`mount_setattr`, Linux >= 5.12).
    ToolboxLockdown,
    /// Making a toolbox session end with its caller and its program (parent-death signal,
    /// child subreaper).
    SessionReaper,
    /// Taking from a toolbox session the power to change uid or gid.
    FixedIds,
    /// `setgroups`.
    Setgroups,
    /// `setgid`.
    Setgid,
    /// `setuid`.
    Setuid,
    /// Setting the target's capability sets.
    Capabilities,
    /// Installing the target's seccomp filters.
    Seccomp,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs,
    /// `execve` of a program that exists.
    Exec,
}

impl SpawnStep {
    const ALL: [SpawnStep; 25] = [
        SpawnStep::Pipe,
        SpawnStep::Dup,
        SpawnStep::Fork,
        SpawnStep::Prctl,
        SpawnStep::Stdio,
        SpawnStep::Session,
        SpawnStep::Cgroup,
        SpawnStep::Lsm,
        SpawnStep::Setns,
        SpawnStep::Chroot,
        SpawnStep::Chdir,
        SpawnStep::CwdOutsideRoot,
        SpawnStep::CloseFds,
        SpawnStep::Toolbox,
        SpawnStep::PidNamespaceFork,
        SpawnStep::ToolboxLockdown,
        SpawnStep::SessionReaper,
        SpawnStep::FixedIds,
        SpawnStep::Setgroups,
        SpawnStep::Setgid,
        SpawnStep::Setuid,
        SpawnStep::Capabilities,
        SpawnStep::Seccomp,
        SpawnStep::NoNewPrivs,
        SpawnStep::Exec,
    ];

    /// The step a code read from the child's error pipe stands for.
    pub(crate) fn from_code(code: u32) -> SpawnStep {
        SpawnStep::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(SpawnStep::Exec)
    }

    /// The code the child writes to its error pipe.
    pub(crate) fn code(self) -> u32 {
        SpawnStep::ALL
            .iter()
            .position(|s| *s == self)
            .unwrap_or(SpawnStep::ALL.len() - 1) as u32
    }
}

impl std::fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpawnStep::Pipe => "pipe",
            SpawnStep::Dup => "fcntl(F_DUPFD_CLOEXEC)",
            SpawnStep::Fork => "fork",
            SpawnStep::Prctl => "prctl(PR_SET_DUMPABLE)",
            SpawnStep::Stdio => "dup2 of a standard stream",
            SpawnStep::Session => "setsid/TIOCSCTTY (a session on its own terminal)",
            SpawnStep::Cgroup => "joining the target's cgroups",
            SpawnStep::Lsm => "setting the target's LSM exec label",
            SpawnStep::Setns => "setns",
            SpawnStep::Chroot => "chroot",
            SpawnStep::Chdir => "chdir",
            SpawnStep::CwdOutsideRoot => "chdir (the working directory is outside the root)",
            SpawnStep::CloseFds => "close_range",
            SpawnStep::Toolbox => {
                "building the private mounts (the target's root, /proc, /sys; Linux >= 5.2)"
            }
            SpawnStep::PidNamespaceFork => "fork into the pid namespace",
            SpawnStep::ToolboxLockdown => {
                "making the container's files read-only, private and symlink-free \
                 (mount_setattr, Linux >= 5.12)"
            }
            SpawnStep::SessionReaper => {
                "the session's reaper (parent-death signal, child subreaper)"
            }
            SpawnStep::FixedIds => "dropping CAP_SETUID/CAP_SETGID and setting NoNewPrivs",
            SpawnStep::Setgroups => "setgroups",
            SpawnStep::Setgid => "setgid",
            SpawnStep::Setuid => "setuid",
            SpawnStep::Capabilities => "setting the target's capabilities",
            SpawnStep::Seccomp => "installing the target's seccomp filters",
            SpawnStep::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            SpawnStep::Exec => "execve",
        })
    }
}

impl Error {
    /// Classifies an errno from `setns(2)` on `target`'s `namespaces`.
    pub(crate) fn from_setns(target: TargetId, namespaces: NamespaceSet, err: io::Error) -> Error {
        match err.raw_os_error() {
            Some(libc::ESRCH) => Error::TargetExited { target },
            Some(libc::EPERM) | Some(libc::EACCES) => {
                Error::PermissionDenied { target, namespaces }
            }
            Some(libc::EUSERS) => Error::SingleThreadedOnly {
                target,
                namespace: Namespace::Time,
            },
            _ => Error::Enter {
                target,
                namespaces,
                source: err,
            },
        }
    }
}
