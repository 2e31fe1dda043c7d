//! The forked side of [`Command`](crate::Command): from `fork` to `execve`.
//!
//! This code runs in a child forked from a possibly multi-threaded process, so it may only
//! make async-signal-safe system calls: no allocation, no locks, no panics. Everything it
//! uses was prepared by the parent. A failing step writes `(step, errno)` to the
//! close-on-exec error pipe and exits with 127.
//!
//! The plan's fds are typed: [`BorrowedFd`]s (and the `OwnedFd`s of the cgroup files) that
//! borrow from what the parent prepared, so no plan can outlive the fds it names. A
//! `BorrowedFd` is a plain `i32` with a lifetime: copying it, or reading it with
//! `as_raw_fd`, allocates nothing. The owners live in the parent's memory, which the child
//! shares copy-on-write and never drops (it ends in exec or `_exit`): when the child closes
//! its copy of a planned fd, no owner closes it a second time.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

pub(crate) use crate::error::SpawnStep as Step;
use crate::sys::raw::{self, Errno};

/// How the child confines itself like the target, prepared before fork.
pub(crate) struct ChildConfinement<'a> {
    pub caps: crate::status::CapSets,
    pub no_new_privs: bool,
    /// Seccomp programs, oldest first.
    pub seccomp: &'a [libc::sock_fprog],
    /// The LSM exec attribute file and the label to write to it.
    pub lsm_exec: Option<(&'a CStr, &'a [u8])>,
}

/// A toolbox session's private mount namespace, prepared before fork.
pub(crate) struct ToolboxPlan<'a> {
    /// The target's mount namespace (a pidfd or its namespace file).
    pub target_mnt: BorrowedFd<'a>,
    /// Ours, to come back to.
    pub own_mnt: BorrowedFd<'a>,
    /// A directory of ours that gets a private tmpfs.
    pub scratch: &'a CStr,
    /// Where the target's root goes, in it.
    pub root_at: &'a CStr,
    /// The target's files may be written (never followed through a symlink either way).
    pub writable: bool,
    /// The pid of the process that forks the session: the session dies with it.
    pub parent: libc::pid_t,
}

/// What the child does, all prepared before fork (pointers into the parent's copy of memory,
/// which the child shares copy-on-write).
pub(crate) struct Plan<'a> {
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub candidates: &'a [*const libc::c_char],
    pub pidfd: Option<BorrowedFd<'a>>,
    pub flags: libc::c_int,
    /// Without a pidfd: each namespace file, opened before any is entered, and its type.
    pub namespace_fds: &'a [(BorrowedFd<'a>, libc::c_int)],
    pub root: Option<BorrowedFd<'a>>,
    pub cwd_fd: Option<BorrowedFd<'a>>,
    pub cwd_path: Option<&'a CStr>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<&'a [libc::gid_t]>,
    pub stdio: [Option<BorrowedFd<'a>>; 3],
    pub err_fd: Option<BorrowedFd<'a>>,
    /// The `cgroup.procs` files of the target's cgroups, opened for writing.
    pub cgroup_fds: &'a [OwnedFd],
    pub fork_for_pid: bool,
    pub joins_user: bool,
    /// Start a new session, with stdin as its controlling terminal when it is one.
    pub new_session: bool,
    pub confine: Option<ChildConfinement<'a>>,
    pub toolbox: Option<ToolboxPlan<'a>>,
    /// Mark inherited fds close-on-exec instead of closing them: the caller itself is about to
    /// exec (`exec_in`) and, should exec fail, still owns them.
    pub cloexec_only: bool,
    /// A host program waits here, in the joined pid namespace and right before exec, until
    /// the parent has checked again that no process of the target can reach it.
    pub handshake: Option<Handshake<'a>>,
}

/// The child's ends of the check before exec: it writes a byte to `ready` once it is in
/// the pid namespace, then execs only if a byte comes on `go` (end of file: refused).
#[derive(Clone, Copy)]
pub(crate) struct Handshake<'a> {
    pub ready: BorrowedFd<'a>,
    pub go: BorrowedFd<'a>,
}

/// A failed step and its errno.
pub(crate) type Failure = (Step, Errno);

/// Attaches the step to a raw call's errno.
trait AtStep<T> {
    fn at(self, step: Step) -> Result<T, Failure>;
}

impl<T> AtStep<T> for Result<T, Errno> {
    fn at(self, step: Step) -> Result<T, Failure> {
        self.map_err(|errno| (step, errno))
    }
}

/// Reports a failure to the parent through the error pipe and exits.
fn report(err_fd: Option<BorrowedFd<'_>>, (step, errno): Failure) -> ! {
    let mut report = [0u8; 8];
    report[..4].copy_from_slice(&step.code().to_ne_bytes());
    report[4..].copy_from_slice(&errno.to_ne_bytes());
    if let Some(fd) = err_fd {
        // Nothing more can be done if the parent stopped listening.
        let _ = raw::write_all_once(fd.as_raw_fd(), &report);
    }
    raw::exit(127)
}

/// The child after fork, started with every signal blocked: never returns.
pub(crate) fn run(plan: &Plan<'_>) -> ! {
    reset_signals();
    let failure = match setup(plan) {
        Ok(()) => exec(plan),
        Err(failure) => failure,
    };
    report(plan.err_fd, failure)
}

/// One stage of [`setup`]. The list a plan gets ([`stages`]) is computed from the plan alone,
/// without a system call, and [`setup`] runs exactly that list: the order the security rules
/// need is checked by unit tests that need no root (the seam youki keeps for its syscalls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `PR_SET_DUMPABLE` 0: the target's root must not ptrace us while we hold the caller's
    /// fds and memory.
    NonDumpable,
    /// A toolbox session dies with the thread that forked it.
    DieWithCaller,
    /// The plan's fds onto 0, 1 and 2.
    Stdio,
    /// Into the target's cgroups.
    Cgroup,
    /// The LSM exec label, through the host's /proc.
    Lsm,
    /// Supplementary groups cleared before a user namespace is joined.
    ClearGroups,
    /// The toolbox's private mount namespace.
    Toolbox,
    /// `setns` of the chosen namespaces.
    Join,
    /// A read-only /sys of the joined network namespace (toolbox).
    Sysfs,
    /// The caller's fds closed, before any root or directory is chosen (CVE-2024-21626).
    CloseInherited,
    /// `chroot` into the kept root.
    Root,
    /// `chdir` into the kept or named directory, then checked to be beneath the root.
    Cwd,
    /// Every fd above stderr closed but the error pipe and handshake.
    CloseAboveStderr,
    /// Fork into the joined pid namespace; the parent stays behind as the relay.
    PidNamespaceFork,
    /// A toolbox session: its reaper, then the program with fixed ids.
    ToolboxSession,
    /// A session of the program's own.
    NewSession,
    /// Groups, gid, uid and capabilities (and seccomp without NoNewPrivs, as `docker exec`).
    Credentials,
    /// The program dies with the relay (after the credentials, which clear it).
    DieWithRelay,
    /// NoNewPrivs and the target's seccomp filters: last of what changes the program's powers.
    Seccomp,
    /// Wait for the parent's last check.
    AwaitGo,
}

/// The most stages a plan can have.
const MAX_STAGES: usize = 20;

/// The stages of `plan`, in order (a fixed array: the child may not allocate).
pub(crate) fn stages(plan: &Plan<'_>) -> ([Option<Stage>; MAX_STAGES], usize) {
    let mut list = [None; MAX_STAGES];
    let mut n = 0;
    let mut push = |stage: Stage, when: bool| {
        if when && n < MAX_STAGES {
            list[n] = Some(stage);
            n += 1;
        }
    };
    let toolbox = plan.toolbox.is_some();
    let confine_nnp = plan.confine.as_ref().is_some_and(|c| c.no_new_privs);
    push(Stage::NonDumpable, true);
    push(Stage::DieWithCaller, toolbox);
    push(Stage::Stdio, true);
    push(Stage::Cgroup, !plan.cgroup_fds.is_empty());
    push(
        Stage::Lsm,
        plan.confine.as_ref().is_some_and(|c| c.lsm_exec.is_some()),
    );
    push(Stage::ClearGroups, plan.joins_user && plan.groups.is_some());
    push(Stage::Toolbox, toolbox);
    push(Stage::Join, true);
    push(Stage::Sysfs, toolbox);
    push(Stage::CloseInherited, true);
    push(Stage::Root, plan.root.is_some());
    push(
        Stage::Cwd,
        plan.root.is_some() || plan.cwd_fd.is_some() || plan.cwd_path.is_some(),
    );
    push(Stage::CloseAboveStderr, true);
    push(Stage::PidNamespaceFork, plan.fork_for_pid);
    push(Stage::ToolboxSession, toolbox);
    push(Stage::NewSession, !toolbox);
    push(Stage::Credentials, !toolbox);
    push(Stage::DieWithRelay, plan.fork_for_pid && !toolbox);
    push(Stage::Seccomp, confine_nnp);
    push(Stage::AwaitGo, plan.handshake.is_some());
    (list, n)
}

/// What one stage leaves for the next ones.
#[derive(Default)]
struct Progress {
    /// The supplementary groups were cleared before joining.
    cleared_before: bool,
    /// The pid of the relay, seen from the program after the pid-namespace fork.
    middle: libc::pid_t,
}

/// Everything between fork (or, for [`Command::exec_in`](crate::Command::exec_in), the
/// caller itself) and exec: the [`stages`] of the plan, in order. Only async-signal-safe
/// calls.
///
/// The order matters for safety: non-dumpable first; the LSM label while `/proc` is still the
/// host's; every inherited fd closed right after joining, before any `chroot`/`chdir`
/// (CVE-2024-21626); the working directory resolved inside the root and checked to be
/// beneath it; the pid-namespace fork before credentials change, so the relaying process keeps
/// none of the container's limits; the seccomp filters last that the remaining calls allow.
pub(crate) fn setup(plan: &Plan<'_>) -> Result<(), Failure> {
    let (list, n) = stages(plan);
    let mut progress = Progress::default();
    for stage in list[..n].iter().flatten() {
        run_stage(*stage, plan, &mut progress)?;
    }
    raw::sigmask(libc::SIG_SETMASK, &[]);
    Ok(())
}

/// Runs one stage of [`setup`].
fn run_stage(stage: Stage, plan: &Plan<'_>, progress: &mut Progress) -> Result<(), Failure> {
    match stage {
        Stage::NonDumpable => raw::prctl(libc::PR_SET_DUMPABLE, 0, 0).at(Step::Prctl)?,
        Stage::DieWithCaller => {
            // A session with host powers never outlives the nsdebug that watches it, SIGKILL
            // included. (The death signal follows the forking *thread*: the caller forks from
            // one that lasts as long as the session.)
            raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
                .at(Step::SessionReaper)?;
            if plan
                .toolbox
                .as_ref()
                .is_some_and(|t| raw::getppid() != t.parent)
            {
                raw::exit(127);
            }
        }
        Stage::Stdio => {
            for (target_fd, source) in plan.stdio.iter().enumerate() {
                let target_fd = target_fd as RawFd;
                match source.map(|fd| fd.as_raw_fd()) {
                    Some(fd) if fd == target_fd => raw::clear_cloexec(target_fd).at(Step::Stdio)?,
                    // SAFETY: fds 0-2 are the child's own to replace: nothing in it uses them.
                    Some(fd) => unsafe { raw::dup2(fd, target_fd) }.at(Step::Stdio)?,
                    None => {}
                }
            }
        }
        Stage::Cgroup => {
            // Into the target's cgroups while still in our own cgroup namespace: "0" means
            // "the writing process".
            for fd in plan.cgroup_fds {
                raw::write_all_once(fd.as_raw_fd(), b"0").at(Step::Cgroup)?;
            }
        }
        Stage::Lsm => {
            // The label applies at exec; written now, through the host's /proc.
            if let Some((path, label)) = plan.confine.as_ref().and_then(|c| c.lsm_exec) {
                let fd = raw::open(path, libc::O_WRONLY).at(Step::Lsm)?;
                let written = raw::write_all_once(fd, label);
                // SAFETY: the child opened `fd` just above and uses it no more.
                unsafe { raw::close(fd) };
                written.at(Step::Lsm)?;
            }
        }
        Stage::ClearGroups => {
            // In a user namespace whose setgroups is "deny" (unprivileged ones) setgroups
            // fails after joining: clear the host's supplementary groups before joining
            // (util-linux does the same), so that none of them leaks into the namespace
            // either way.
            progress.cleared_before = raw::setgroups(&[]).is_ok();
        }
        Stage::Toolbox => {
            if let Some(toolbox) = &plan.toolbox {
                build_toolbox(toolbox)?;
            }
        }
        Stage::Join => join_namespaces(plan)?,
        Stage::Sysfs => {
            // /sys shows the network namespace of whoever mounts it: ours now is the
            // target's. Best effort: a tool that needs it will say so.
            let read_only = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            let _ = raw::mount_new(c"sysfs", c"/sys", read_only, None);
        }
        // Nothing of the caller's may be reachable (a host directory through
        // /proc/self/fd/N) while the root and working directory are chosen.
        Stage::CloseInherited => close_inherited_fds(plan)?,
        Stage::Root => {
            if let Some(root) = plan.root {
                raw::fchdir(root.as_raw_fd()).at(Step::Chroot)?;
                raw::chroot_to_cwd().at(Step::Chroot)?;
                raw::chdir(c"/").at(Step::Chdir)?;
            }
        }
        Stage::Cwd => {
            if let Some(cwd) = plan.cwd_fd {
                raw::fchdir(cwd.as_raw_fd()).at(Step::Chdir)?;
            }
            if let Some(path) = plan.cwd_path {
                chdir_in_root(path)?;
            }
            ensure_cwd_in_root()?;
        }
        Stage::CloseAboveStderr => {
            // The kept root and cwd fds are the target's; nothing needs them now.
            let (ready, go) = handshake_fds(plan);
            let mut keep = [plan.err_fd, ready, go].map(fd_or_none);
            keep.sort_unstable();
            close_all_above_stderr_but(&keep, plan.cloexec_only)?;
        }
        Stage::PidNamespaceFork => progress.middle = fork_into_pid_namespace(plan)?,
        Stage::ToolboxSession => start_session(plan, progress.cleared_before)?,
        Stage::NewSession => new_session(plan)?,
        Stage::Credentials => credentials(plan, progress.cleared_before)?,
        Stage::DieWithRelay => {
            // The program dies with the relaying process rather than outlive it unwatched
            // (set after the credentials: changing them clears it).
            raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
                .at(Step::Prctl)?;
            // If the middle process died before that, we were reparented: the parent is
            // then the namespace's init or a subreaper, no longer the middle process (which
            // is invisible, pid 0, from inside another pid namespace).
            let parent = raw::getppid();
            if parent != 0 && parent != progress.middle {
                raw::exit(127);
            }
        }
        Stage::Seccomp => {
            if let Some(confine) = &plan.confine {
                raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).at(Step::NoNewPrivs)?;
                install_seccomp(confine.seccomp)?;
            }
        }
        Stage::AwaitGo => {
            if let Some(handshake) = plan.handshake {
                await_go(handshake);
            }
        }
    }
    Ok(())
}

/// Forks into the joined pid namespace: the parent relays signals to the program and ends as
/// it ends (never returns); the program gets back the relay's pid.
fn fork_into_pid_namespace(plan: &Plan<'_>) -> Result<libc::pid_t, Failure> {
    let (ready, go) = handshake_fds(plan);
    // A toolbox session's outer relay keeps the host's /proc (before the session's own
    // covers it) to sweep the session's mount namespace when it ends.
    let host_proc = match plan.toolbox {
        Some(_) => Some(
            raw::open(
                c"/proc",
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
            .at(Step::SessionReaper)?,
        ),
        None => None,
    };
    let middle = raw::getpid();
    // SAFETY: both sides go on with async-signal-safe calls only, and end in exec or
    // `_exit` (`relay_until_exit` never returns).
    let pid = unsafe { raw::fork_raw() }.at(Step::PidNamespaceFork)?;
    if pid > 0 {
        // The parent must see end of file on these once the program is gone.
        for fd in [plan.err_fd, ready, go].into_iter().flatten() {
            // SAFETY: this process's copy of a planned fd, which it uses no more; its owner
            // (in the parent's memory image) is never dropped here.
            unsafe { raw::close(fd.as_raw_fd()) };
        }
        if let Some(proc_fd) = host_proc {
            HOST_PROC.store(proc_fd, Ordering::Relaxed);
            // Out of the container's sight (in the host's pid namespace), unlike the
            // reaper: a session whose reaper the container killed or stopped still ends
            // with nsdebug, caught here instead of dying at once.
            // (Past the fork a failure can no longer be reported; should this one fail,
            // the SIGKILL set above stays, and the reaper still ends the session.)
            let _ = raw::prctl(libc::PR_SET_PDEATHSIG, PARENT_GONE as libc::c_ulong, 0);
            if raw::getppid() != plan.toolbox.as_ref().map_or(0, |t| t.parent) {
                sweep_mount_namespace();
                raw::exit(127);
            }
        }
        relay_until_exit(pid, false);
    }
    if let Some(fd) = host_proc {
        // SAFETY: the child opened `fd` above and uses it no more.
        unsafe { raw::close(fd) };
    }
    Ok(middle)
}

/// The toolbox's mount namespace: a private copy of ours (so the host's tools are all there)
/// with a tmpfs on `scratch` and, in it, a detached copy of the target's whole mount tree
/// (`open_tree` in its mount namespace, `move_mount` in ours, as cntr does: no path the
/// container controls is followed by us), and its `/etc/resolv.conf` and `/etc/hosts` over ours
/// when they are regular files. Nothing of this is seen outside: the namespace dies with the
/// session.
fn build_toolbox(toolbox: &ToolboxPlan<'_>) -> Result<(), Failure> {
    raw::setns(toolbox.target_mnt.as_raw_fd(), libc::CLONE_NEWNS).at(Step::Toolbox)?;
    let tree = raw::clone_tree(c"/", true);
    let file = |path: &CStr| match raw::clone_tree(path, false) {
        Ok(fd) if raw::is_regular_file(fd) => Some(fd),
        Ok(fd) => {
            // SAFETY: the child opened (or was handed) `fd` and uses it no more.
            unsafe { raw::close(fd) };
            None
        }
        Err(_) => None,
    };
    let files = [
        (file(c"/etc/resolv.conf"), c"/etc/resolv.conf"),
        (file(c"/etc/hosts"), c"/etc/hosts"),
    ];
    raw::setns(toolbox.own_mnt.as_raw_fd(), libc::CLONE_NEWNS).at(Step::Toolbox)?;
    let tree = tree.at(Step::Toolbox)?;
    // Before the tree is attached or anything is mounted in it: no symlink of the container's
    // leads a host program out of its files (read-only unless asked), and nothing mounted in
    // the session propagates to the container's peers (an `rshared` volume) or back.
    let nosymfollow = raw::MOUNT_ATTR_NOSYMFOLLOW;
    let attrs = match toolbox.writable {
        true => nosymfollow,
        false => nosymfollow | raw::MOUNT_ATTR_RDONLY,
    };
    raw::set_tree_attrs(tree, attrs).at(Step::ToolboxLockdown)?;
    raw::unshare_mount_ns().at(Step::Toolbox)?;
    raw::make_mounts_private().at(Step::Toolbox)?;
    raw::mount_new(
        c"tmpfs",
        toolbox.scratch,
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(c"mode=0755,size=64k"),
    )
    .at(Step::Toolbox)?;
    raw::mkdir(toolbox.root_at, 0o755).at(Step::Toolbox)?;
    raw::attach_tree(tree, toolbox.root_at).at(Step::Toolbox)?;
    // SAFETY: the child opened (or was handed) `tree` and uses it no more.
    unsafe { raw::close(tree) };
    for (fd, path) in files {
        if let Some(fd) = fd {
            // Best effort: a host whose file is a symlink keeps its own, and so does one
            // whose copy could not be locked down like the tree.
            if raw::set_tree_attrs(fd, attrs).is_ok() {
                let _ = raw::attach_tree(fd, path);
            }
            // SAFETY: the child opened (or was handed) `fd` and uses it no more.
            unsafe { raw::close(fd) };
        }
    }
    Ok(())
}

/// A fresh /proc of the pid namespace the program is in (mounted by the program's own
/// process: procfs shows the mounter's pid namespace).
fn toolbox_proc(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.toolbox.is_some() {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        raw::mount_new(c"proc", c"/proc", flags, None).at(Step::Toolbox)?;
    }
    Ok(())
}

/// `CAP_SETGID` and `CAP_SETUID`: what changing gid or uid takes.
const ID_CAP_NUMBERS: [u64; 2] = [6, 7];
/// The same as a capability set.
const ID_CAPS: u64 = (1 << 6) | (1 << 7);

/// The signal a session's reaper gets when the process above it dies: one nobody sends
/// (SIGSTKFLT), so that the reaper can tell it from the signals it passes on.
const PARENT_GONE: libc::c_int = libc::SIGSTKFLT;

/// A toolbox session, from the process in the target's pid namespace: a fresh `/proc` there,
/// then we become the session's reaper (a child subreaper: every orphan of the session comes
/// to us, however deep, a background job or a daemon that double-forked) and the relay to the
/// program. When the program ends, or the process above us dies (SIGKILL included: its death
/// signal reaches us), we kill every process left in the session before ending. Returns in
/// the program, ready for exec.
fn start_session(plan: &Plan<'_>, cleared_before: bool) -> Result<(), Failure> {
    toolbox_proc(plan)?;
    let parent = raw::getppid();
    raw::prctl(libc::PR_SET_PDEATHSIG, PARENT_GONE as libc::c_ulong, 0).at(Step::SessionReaper)?;
    if raw::getppid() != parent {
        raw::exit(127);
    }
    raw::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).at(Step::SessionReaper)?;
    let reaper = raw::getpid();
    // SAFETY: both sides go on with async-signal-safe calls only, and end in exec or `_exit`
    // (`relay_until_exit` never returns).
    let program = unsafe { raw::fork_raw() }.at(Step::SessionReaper)?;
    if program > 0 {
        if let Some(fd) = plan.err_fd {
            // SAFETY: this process's copy of a planned fd, which it uses no more; its owner
            // (in the parent's memory image) is never dropped here.
            unsafe { raw::close(fd.as_raw_fd()) };
        }
        relay_until_exit(program, true);
    }
    new_session(plan)?;
    // No program of the session may become another user: a container process of that uid
    // could then reach it (ptrace, /proc/PID/root), with the host's files and our terminal.
    // Out of the bounding set while we may still cut it; the ids the caller chose are set
    // with the permitted set as it is; then out of every set, and no setuid binary or file
    // capability gives them back.
    for cap in ID_CAP_NUMBERS {
        raw::prctl(libc::PR_CAPBSET_DROP, cap, 0).at(Step::FixedIds)?;
    }
    credentials(plan, cleared_before)?;
    let (effective, permitted, inheritable) = raw::capget().at(Step::FixedIds)?;
    raw::capset(
        effective & !ID_CAPS,
        permitted & !ID_CAPS,
        inheritable & !ID_CAPS,
    )
    .at(Step::FixedIds)?;
    raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).at(Step::FixedIds)?;
    // The program dies with its reaper (set after the credentials: changing them clears it).
    raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0).at(Step::Prctl)?;
    if raw::getppid() != reaper {
        raw::exit(127);
    }
    Ok(())
}

/// The host's `/proc` in a session's outer relay (-1 elsewhere), for [`sweep_mount_namespace`].
static HOST_PROC: AtomicI32 = AtomicI32::new(-1);

/// The handler of [`PARENT_GONE`] in a session's reaper and outer relay: the session ends now.
extern "C" fn parent_gone(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    if HOST_PROC.load(Ordering::Relaxed) >= 0 {
        sweep_mount_namespace();
    } else {
        kill_session();
    }
    raw::exit(128 + libc::SIGKILL);
}

/// Kills, round after round until none is left (bounded), every process in our mount
/// namespace but us: the session's, since the toolbox made that namespace for it alone. By
/// namespace rather than by descent, so that the processes the container's init inherited
/// from a reaper it killed die too (a process that left for a mount namespace of its own is
/// the reaper's to kill). Only async-signal-safe calls.
fn sweep_mount_namespace() {
    let proc_fd = HOST_PROC.load(Ordering::Relaxed);
    if proc_fd < 0 {
        return;
    }
    let Ok(own) = raw::stat_identity_at(proc_fd, c"thread-self/ns/mnt") else {
        return;
    };
    let me = raw::getpid();
    let mut entries = [0u8; 4096];
    let mut path = [0u8; 32];
    for _ in 0..1000 {
        let Ok(dir) = raw::openat(proc_fd, c".", libc::O_RDONLY | libc::O_DIRECTORY) else {
            return;
        };
        let mut any = false;
        while let Ok(filled) = raw::getdents(dir, &mut entries) {
            if filled == 0 {
                break;
            }
            let mut at = 0;
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name (NUL-ended).
            while at + 19 < filled {
                let reclen = u16::from_ne_bytes([entries[at + 16], entries[at + 17]]) as usize;
                if reclen == 0 || at + reclen > filled {
                    break;
                }
                let name = &entries[at + 19..at + reclen];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                at += reclen;
                let Some(pid) = parse_pid(name).filter(|pid| *pid != me) else {
                    continue;
                };
                let Some(file) = ns_mnt_path(name, &mut path) else {
                    continue;
                };
                if raw::stat_identity_at(proc_fd, file) == Ok(own) {
                    raw::kill(pid, libc::SIGKILL);
                    any = true;
                }
            }
        }
        // SAFETY: the child opened (or was handed) `dir` and uses it no more.
        unsafe { raw::close(dir) };
        // Reap what is ours to reap; the rest goes to whoever inherited it.
        while let Ok((reaped, _)) = raw::waitpid(-1, libc::WNOHANG) {
            if reaped <= 0 {
                break;
            }
        }
        if !any {
            return;
        }
        raw::sleep_ms(5);
    }
}

/// `PID/ns/mnt`, NUL-terminated in `buffer`.
fn ns_mnt_path<'a>(pid: &[u8], buffer: &'a mut [u8; 32]) -> Option<&'a CStr> {
    let suffix = b"/ns/mnt\0";
    let end = pid.len() + suffix.len();
    if end > buffer.len() {
        return None;
    }
    buffer[..pid.len()].copy_from_slice(pid);
    buffer[pid.len()..end].copy_from_slice(suffix);
    CStr::from_bytes_with_nul(&buffer[..end]).ok()
}

/// Kills every child of ours, and the orphans that come to us as they die, until none is
/// left (bounded: a session forking faster than it dies is still cut down round by round).
/// Only async-signal-safe calls: it runs in a signal handler too.
fn kill_session() {
    let mut path = [0u8; 64];
    let Some(path) = children_path(&mut path) else {
        return;
    };
    let mut buffer = [0u8; 4096];
    for _ in 0..10_000 {
        let Ok(fd) = raw::open(path, libc::O_RDONLY) else {
            return;
        };
        let read = raw::read(fd, &mut buffer);
        // SAFETY: the child opened (or was handed) `fd` and uses it no more.
        unsafe { raw::close(fd) };
        let Ok(read) = read else {
            return;
        };
        let mut any = false;
        for pid in buffer[..read].split(|b| *b == b' ' || *b == b'\n') {
            if let Some(pid) = parse_pid(pid) {
                raw::kill(pid, libc::SIGKILL);
                any = true;
            }
        }
        // Reap one (or learn that none is left); its children are ours by then.
        match raw::waitpid(-1, if any { 0 } else { libc::WNOHANG }) {
            Err(libc::EINTR) => {}
            Err(_) => return,
            Ok((0, _)) if !any => return,
            Ok(_) => {}
        }
    }
}

/// `/proc/self/task/TID/children` of the calling (single-threaded) process, NUL-terminated in
/// `buffer`, without allocating.
fn children_path(buffer: &mut [u8; 64]) -> Option<&CStr> {
    let mut digits = [0u8; 12];
    let mut n = raw::getpid() as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buffer[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"/proc/self/task/");
    for i in (0..len).rev() {
        put(&digits[i..=i]);
    }
    put(b"/children\0");
    CStr::from_bytes_with_nul(&buffer[..at]).ok()
}

/// A decimal pid, or `None`.
fn parse_pid(bytes: &[u8]) -> Option<libc::pid_t> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    let mut pid: libc::pid_t = 0;
    for b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        pid = pid * 10 + libc::pid_t::from(b - b'0');
    }
    (pid > 0).then_some(pid)
}

/// The program leads a session of its own (in its pid namespace, after the fork there), on
/// its stdin as controlling terminal when that is a terminal.
fn new_session(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.new_session {
        raw::setsid().at(Step::Session)?;
        if raw::isatty(0) {
            raw::make_controlling_terminal(0).at(Step::Session)?;
        }
    }
    Ok(())
}

/// Groups, ids, capabilities, NoNewPrivs and seccomp filters, in the order runc uses: the
/// bounding set is cut while we still have CAP_SETPCAP; without NoNewPrivs the filters go in
/// while CAP_SYS_ADMIN allows it (later calls must pass them, as in `docker exec`); with
/// NoNewPrivs they go in last.
fn credentials(plan: &Plan<'_>, cleared_before: bool) -> Result<(), Failure> {
    if let Some(confine) = &plan.confine {
        for cap in 0..64u64 {
            if confine.caps.bounding & (1 << cap) == 0 {
                match raw::prctl(libc::PR_CAPBSET_DROP, cap, 0) {
                    // EINVAL: the kernel has no such capability; nothing to drop.
                    Ok(()) | Err(libc::EINVAL) => {}
                    Err(errno) => return Err((Step::Capabilities, errno)),
                }
            }
        }
        if !confine.no_new_privs {
            install_seccomp(confine.seccomp)?;
        }
        // Keep the permitted set across the change of uid; capset trims it below.
        raw::prctl(libc::PR_SET_KEEPCAPS, 1, 0).at(Step::Capabilities)?;
    }
    if let Some(groups) = plan.groups {
        // An empty list that was already cleared needs nothing more; a non-empty one must be
        // set inside, or the program does not start.
        let set = raw::setgroups(groups);
        if !(groups.is_empty() && cleared_before) {
            set.at(Step::Setgroups)?;
        }
    }
    if let Some(gid) = plan.gid {
        raw::setgid(gid).at(Step::Setgid)?;
    }
    if let Some(uid) = plan.uid {
        raw::setuid(uid).at(Step::Setuid)?;
    }
    if let Some(confine) = &plan.confine {
        let caps = &confine.caps;
        raw::capset(caps.effective, caps.permitted, caps.inheritable).at(Step::Capabilities)?;
        raw::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
        )
        .at(Step::Capabilities)?;
        for cap in 0..64u64 {
            if caps.ambient & (1 << cap) != 0 {
                raw::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap,
                )
                .at(Step::Capabilities)?;
            }
        }
        // With NoNewPrivs the filters go in last, as stage `Seccomp` of `setup`.
    }
    Ok(())
}

/// Installs seccomp programs, oldest first, so that they stack as they did in the target.
fn install_seccomp(programs: &[libc::sock_fprog]) -> Result<(), Failure> {
    programs
        .iter()
        // SAFETY: each program was copied from the target by `PTRACE_SECCOMP_GET_FILTER` into
        // memory the plan keeps until exec, its length counted; it is the child's last step
        // before exec.
        .try_for_each(|program| unsafe { raw::install_seccomp_filter(program) }.at(Step::Seccomp))
}

/// `chdir` to `path` resolved as if the current root were `/` of the whole lookup
/// (`openat2` `RESOLVE_IN_ROOT`): `..` and absolute symlinks stay inside, magic links such as
/// `/proc/self/fd/N` are refused.
fn chdir_in_root(path: &CStr) -> Result<(), Failure> {
    let root = raw::open(c"/", libc::O_PATH | libc::O_DIRECTORY).at(Step::Chdir)?;
    let dir = raw::openat2(
        root,
        path,
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    );
    // SAFETY: the child opened (or was handed) `root` and uses it no more.
    unsafe { raw::close(root) };
    let dir = dir.at(Step::Chdir)?;
    let changed = raw::fchdir(dir);
    // SAFETY: the child opened (or was handed) `dir` and uses it no more.
    unsafe { raw::close(dir) };
    changed.at(Step::Chdir)
}

/// Fails unless the working directory is beneath the root: the kernel's `getcwd` starts such
/// a path with "(unreachable)" instead of "/".
fn ensure_cwd_in_root() -> Result<(), Failure> {
    let mut buffer = [0u8; 4096];
    match raw::getcwd(&mut buffer) {
        // Too long to say, but a path from the root all the same.
        Err(libc::ENAMETOOLONG) => Ok(()),
        Err(errno) => Err((Step::Chdir, errno)),
        Ok(()) if buffer[0] == b'/' => Ok(()),
        Ok(()) => Err((Step::CwdOutsideRoot, libc::EXDEV)),
    }
}

/// Tries each candidate path; returns the most telling error when none can be executed.
pub(crate) fn exec(plan: &Plan<'_>) -> Failure {
    let mut errno = libc::ENOENT;
    for path in plan.candidates {
        // SAFETY: the plan's paths and arrays were built before fork as NUL-terminated
        // strings and null-terminated arrays, and it outlives this call.
        let e = unsafe { raw::execve(*path, plan.argv, plan.envp) };
        // Keep looking past directories that do not have it; remember a real refusal.
        if !matches!(e, libc::ENOENT | libc::ENOTDIR) {
            errno = e;
        }
    }
    (Step::Exec, errno)
}

/// Joins the namespaces: one `setns(pidfd, flags)`, or one file at a time without a pidfd
/// (everything but user first, then user, then what needed user's privileges: util-linux's
/// order, which works both when the user namespace takes privilege away and when it gives it).
fn join_namespaces(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(pidfd) = plan.pidfd {
        if plan.flags != 0 {
            raw::setns(pidfd.as_raw_fd(), plan.flags).at(Step::Setns)?;
        }
        return Ok(());
    }
    let mut retry = [false; 8];
    for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
        if *flag != libc::CLONE_NEWUSER && raw::setns(fd.as_raw_fd(), *flag).is_err() {
            if let Some(slot) = retry.get_mut(i) {
                *slot = true;
            }
        }
    }
    for (fd, flag) in plan.namespace_fds {
        if *flag == libc::CLONE_NEWUSER {
            raw::setns(fd.as_raw_fd(), *flag).at(Step::Setns)?;
        }
    }
    for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
        if retry.get(i).copied().unwrap_or(false) {
            raw::setns(fd.as_raw_fd(), *flag).at(Step::Setns)?;
        }
    }
    Ok(())
}

/// Closes every fd above stderr except the error pipe and the target's root and working
/// directory (opened by the parent, still needed for `chroot`/`fchdir`), so the program
/// inherits nothing of the caller's: no host directory, no socket, no pidfd.
fn close_inherited_fds(plan: &Plan<'_>) -> Result<(), Failure> {
    let (ready, go) = handshake_fds(plan);
    let mut keep = [plan.err_fd, plan.root, plan.cwd_fd, ready, go].map(fd_or_none);
    keep.sort_unstable();
    close_all_above_stderr_but(&keep, plan.cloexec_only)
}

/// An fd to keep open, as [`close_all_above_stderr_but`] takes it (-1: none).
fn fd_or_none(fd: Option<BorrowedFd<'_>>) -> i64 {
    fd.map_or(-1, |fd| i64::from(fd.as_raw_fd()))
}

fn handshake_fds<'a>(plan: &Plan<'a>) -> (Option<BorrowedFd<'a>>, Option<BorrowedFd<'a>>) {
    (
        plan.handshake.map(|h| h.ready),
        plan.handshake.map(|h| h.go),
    )
}

/// Says the program is ready, in the joined pid namespace, and waits for the parent's word:
/// exits without exec when the parent refuses (or is gone).
fn await_go(handshake: Handshake<'_>) {
    let (ready, go) = (handshake.ready.as_raw_fd(), handshake.go.as_raw_fd());
    let said = raw::write_all_once(ready, b"r");
    // SAFETY: the child's copy of a planned fd, which it uses no more; its owner (in the
    // parent's memory image) is never dropped in the child.
    unsafe { raw::close(ready) };
    let heard = said.and_then(|()| raw::read_byte(go));
    // SAFETY: as for `ready`.
    unsafe { raw::close(go) };
    let go = heard;
    if go != Ok(true) {
        raw::exit(127);
    }
}

/// Closes (or marks close-on-exec) every fd from 3 up, but those in `keep` (sorted; -1
/// entries ignored).
fn close_all_above_stderr_but(keep: &[i64], cloexec: bool) -> Result<(), Failure> {
    let mut first: i64 = 3;
    for &fd in keep {
        if fd < first {
            continue;
        }
        if fd > first {
            close_range(first as libc::c_uint, (fd - 1) as libc::c_uint, cloexec)?;
        }
        first = fd + 1;
    }
    close_range(first as libc::c_uint, libc::c_uint::MAX, cloexec)
}

/// `CLOSE_RANGE_CLOEXEC` (Linux >= 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// `close_range(2)` (Linux >= 5.9; with `cloexec`, marking instead of closing, >= 5.11), or
/// one `close`/`fcntl` per fd up to the fd limit before that.
fn close_range(first: libc::c_uint, last: libc::c_uint, cloexec: bool) -> Result<(), Failure> {
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    match raw::close_range(first, last, flags) {
        Ok(()) => return Ok(()),
        Err(libc::ENOSYS | libc::EINVAL) => {}
        Err(errno) => return Err((Step::CloseFds, errno)),
    }
    let limit = raw::fd_limit().at(Step::CloseFds)?;
    let end = last.min(limit.min(libc::c_uint::MAX as libc::rlim_t) as libc::c_uint);
    for fd in first..=end {
        if cloexec {
            raw::set_cloexec(fd as RawFd);
        } else {
            // SAFETY: the child opened (or was handed) `fd as RawFd` and uses it no more.
            unsafe { raw::close(fd as RawFd) };
        }
    }
    Ok(())
}

/// Resets every disposition to the default (signals are still blocked, so none of the
/// caller's handlers can run), so the program does not inherit an ignored SIGPIPE.
pub(crate) fn reset_signals() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            raw::default_action(signal);
        }
    }
}

/// The middle process: relays signals to the program, waits for it, and ends the same way.
/// As a session's reaper (`session`) it also reaps the orphans that come to it, kills what
/// is left of the session when the program ends, and ends it at once when the process above
/// dies ([`PARENT_GONE`]).
fn relay_until_exit(pid: libc::pid_t, session: bool) -> ! {
    crate::relay::install(pid);
    let outer = HOST_PROC.load(Ordering::Relaxed) >= 0;
    if session || outer {
        // SAFETY: `parent_gone` makes only async-signal-safe calls and ends the process.
        unsafe { raw::set_handler(PARENT_GONE, parent_gone) };
    }
    // The handlers are in place: now signals may arrive.
    raw::sigmask(libc::SIG_SETMASK, &[]);
    let status = loop {
        match raw::waitpid(if session { -1 } else { pid }, libc::WUNTRACED) {
            Err(libc::EINTR) => continue,
            Err(_) => raw::exit(127),
            Ok((reaped, _)) if reaped != pid => continue,
            // Stop as the program stopped, so that whoever waits for us sees it; the SIGCONT
            // that continues us is relayed to the program. Not in a toolbox session: a stopped
            // relay could not end the session (nor reap, which holds up the teardown of the
            // container's pid namespace), and the caller reports stops anywhere in it.
            Ok((_, status)) if libc::WIFSTOPPED(status) => {
                if !session && !outer {
                    raw::kill(raw::getpid(), libc::SIGSTOP)
                }
            }
            Ok((_, status)) => break status,
        }
    };
    if session {
        kill_session();
    }
    if outer {
        sweep_mount_namespace();
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        raw::default_action(signal);
        raw::sigmask(libc::SIG_UNBLOCK, &[signal]);
        raw::kill(raw::getpid(), signal);
        raw::exit(128 + signal);
    }
    raw::exit(libc::WEXITSTATUS(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open fd to stand for every fd of a plan: `stages` makes no call with them.
    fn placeholder() -> BorrowedFd<'static> {
        use std::os::fd::AsFd;
        static NULL: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
        NULL.get_or_init(|| std::fs::File::open("/dev/null").expect("/dev/null"))
            .as_fd()
    }

    /// A plan with nothing optional.
    fn bare() -> Plan<'static> {
        Plan {
            argv: &[],
            envp: &[],
            candidates: &[],
            pidfd: Some(placeholder()),
            flags: 0,
            namespace_fds: &[],
            root: None,
            cwd_fd: None,
            cwd_path: None,
            uid: None,
            gid: None,
            groups: None,
            stdio: [None; 3],
            err_fd: Some(placeholder()),
            cgroup_fds: &[],
            fork_for_pid: false,
            joins_user: false,
            new_session: false,
            confine: None,
            toolbox: None,
            cloexec_only: false,
            handshake: None,
        }
    }

    fn list(plan: &Plan<'_>) -> Vec<Stage> {
        let (list, n) = stages(plan);
        list[..n].iter().flatten().copied().collect()
    }

    fn position(list: &[Stage], stage: Stage) -> usize {
        list.iter()
            .position(|s| *s == stage)
            .unwrap_or_else(|| panic!("{stage:?} missing from {list:?}"))
    }

    /// Every combination of the plan's options that changes the list.
    fn variants() -> Vec<Plan<'static>> {
        static CGROUPS: std::sync::OnceLock<[OwnedFd; 1]> = std::sync::OnceLock::new();
        let cgroups = CGROUPS.get_or_init(|| {
            [placeholder()
                .try_clone_to_owned()
                .expect("a duplicate of /dev/null")]
        });
        static GROUPS: [libc::gid_t; 1] = [5];
        let mut plans = Vec::new();
        for bits in 0..64u32 {
            let mut plan = bare();
            let on = |bit: u32| bits & (1 << bit) != 0;
            plan.fork_for_pid = on(0);
            plan.root = on(1).then(placeholder);
            plan.cwd_path = on(2).then_some(c"/tmp");
            plan.joins_user = on(3);
            plan.groups = on(3).then_some(&GROUPS[..]);
            plan.uid = on(3).then_some(1000);
            plan.cgroup_fds = if on(4) { cgroups } else { &[] };
            plan.confine = on(5).then(|| ChildConfinement {
                caps: crate::status::CapSets::default(),
                no_new_privs: true,
                seccomp: &[],
                lsm_exec: Some((c"/proc/thread-self/attr/exec", b"label")),
            });
            plans.push(plan);
        }
        plans
    }

    #[test]
    fn the_child_is_non_dumpable_before_anything_else() {
        for plan in variants() {
            assert_eq!(list(&plan)[0], Stage::NonDumpable, "{:?}", list(&plan));
        }
    }

    #[test]
    fn inherited_fds_are_closed_after_joining_and_before_root_and_cwd() {
        for plan in variants() {
            let list = list(&plan);
            let closed = position(&list, Stage::CloseInherited);
            assert!(position(&list, Stage::Join) < closed, "{list:?}");
            for later in [Stage::Root, Stage::Cwd] {
                if let Some(at) = list.iter().position(|s| *s == later) {
                    assert!(closed < at, "{later:?} before the fds are closed: {list:?}");
                }
            }
        }
    }

    #[test]
    fn the_pid_namespace_fork_comes_before_the_ids_change() {
        for plan in variants().into_iter().filter(|p| p.fork_for_pid) {
            let list = list(&plan);
            let fork = position(&list, Stage::PidNamespaceFork);
            assert!(fork < position(&list, Stage::Credentials), "{list:?}");
            assert!(fork > position(&list, Stage::CloseAboveStderr), "{list:?}");
        }
    }

    #[test]
    fn seccomp_with_no_new_privs_is_the_last_change_of_powers() {
        for plan in variants().into_iter().filter(|p| p.confine.is_some()) {
            let list = list(&plan);
            let seccomp = position(&list, Stage::Seccomp);
            assert!(
                list[seccomp + 1..].iter().all(|s| *s == Stage::AwaitGo),
                "{list:?}"
            );
            assert!(position(&list, Stage::Credentials) < seccomp, "{list:?}");
        }
        assert!(!list(&bare()).contains(&Stage::Seccomp));
    }

    #[test]
    fn groups_are_cleared_before_a_user_namespace_is_joined() {
        let mut plan = bare();
        plan.joins_user = true;
        plan.groups = Some(&[]);
        let list = list(&plan);
        assert!(position(&list, Stage::ClearGroups) < position(&list, Stage::Join));
        plan.joins_user = false;
        assert!(!super::tests::list(&plan).contains(&Stage::ClearGroups));
    }
}
