//! The forked side of [`Command`](crate::Command): from `fork` to `execve`.
//!
//! This code runs in a child forked from a possibly multi-threaded process, so it may only
//! make async-signal-safe system calls: no allocation, no locks, no panics. Everything it
//! uses was prepared by the parent. A failing step writes `(step, errno)` to the
//! close-on-exec error pipe and exits with 127.

use std::ffi::CStr;
use std::os::fd::RawFd;

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
    pub target_mnt: RawFd,
    /// Ours, to come back to.
    pub own_mnt: RawFd,
    /// A directory of ours that gets a private tmpfs.
    pub scratch: &'a CStr,
    /// Where the target's root goes, in it.
    pub root_at: &'a CStr,
}

/// What the child does, all prepared before fork (pointers into the parent's copy of memory,
/// which the child shares copy-on-write).
pub(crate) struct Plan<'a> {
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub candidates: &'a [*const libc::c_char],
    pub pidfd: Option<RawFd>,
    pub flags: libc::c_int,
    pub namespace_fds: &'a [(RawFd, libc::c_int)],
    pub root: Option<RawFd>,
    pub cwd_fd: Option<RawFd>,
    pub cwd_path: Option<&'a CStr>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<&'a [libc::gid_t]>,
    pub stdio: [Option<RawFd>; 3],
    pub err_fd: Option<RawFd>,
    pub cgroup_fds: &'a [RawFd],
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
    pub handshake: Option<Handshake>,
}

/// The child's ends of the check before exec: it writes a byte to `ready` once it is in
/// the pid namespace, then execs only if a byte comes on `go` (end of file: refused).
#[derive(Clone, Copy)]
pub(crate) struct Handshake {
    pub ready: RawFd,
    pub go: RawFd,
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
fn report(err_fd: Option<RawFd>, (step, errno): Failure) -> ! {
    let mut report = [0u8; 8];
    report[..4].copy_from_slice(&step.code().to_ne_bytes());
    report[4..].copy_from_slice(&errno.to_ne_bytes());
    if let Some(fd) = err_fd {
        // Nothing more can be done if the parent stopped listening.
        let _ = raw::write_all_once(fd, &report);
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

/// Everything between fork (or, for [`Command::exec_in`](crate::Command::exec_in), the
/// caller itself) and exec. Only async-signal-safe calls.
///
/// The order matters for safety: non-dumpable first; the LSM label while `/proc` is still the
/// host's; every inherited fd closed right after joining, before any `chroot`/`chdir`
/// (CVE-2024-21626); the working directory resolved inside the root and checked to be
/// beneath it; the pid-namespace fork before credentials change, so the relaying process keeps
/// none of the container's limits; the seccomp filters last that the remaining calls allow.
pub(crate) fn setup(plan: &Plan<'_>) -> Result<(), Failure> {
    // Non-dumpable before joining anything, the pid namespace above all: the target's root
    // must not be able to ptrace us while we still hold the caller's fds and memory.
    raw::prctl(libc::PR_SET_DUMPABLE, 0, 0).at(Step::Prctl)?;
    for (target_fd, source) in plan.stdio.iter().enumerate() {
        let target_fd = target_fd as RawFd;
        match source {
            Some(fd) if *fd == target_fd => raw::clear_cloexec(target_fd).at(Step::Stdio)?,
            Some(fd) => raw::dup2(*fd, target_fd).at(Step::Stdio)?,
            None => {}
        }
    }
    // Into the target's cgroups while still in our own cgroup namespace: "0" means "the
    // writing process".
    for fd in plan.cgroup_fds {
        raw::write_all_once(*fd, b"0").at(Step::Cgroup)?;
    }
    // The label applies at exec; written now, through the host's /proc.
    if let Some((path, label)) = plan.confine.as_ref().and_then(|c| c.lsm_exec) {
        let fd = raw::open(path, libc::O_WRONLY).at(Step::Lsm)?;
        let written = raw::write_all_once(fd, label);
        raw::close(fd);
        written.at(Step::Lsm)?;
    }
    // In a user namespace whose setgroups is "deny" (unprivileged ones) setgroups fails after
    // joining: clear the host's supplementary groups before joining (util-linux does the
    // same), so that none of them leaks into the namespace either way.
    let cleared_before = plan.joins_user && plan.groups.is_some() && raw::setgroups(&[]).is_ok();
    if let Some(toolbox) = &plan.toolbox {
        build_toolbox(toolbox)?;
    }
    join_namespaces(plan)?;
    if plan.toolbox.is_some() {
        // /sys shows the network namespace of whoever mounts it: ours now is the target's.
        // Best effort: a tool that needs it will say so.
        let read_only = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let _ = raw::mount_new(c"sysfs", c"/sys", read_only, None);
    }
    // Nothing of the caller's may be reachable (a host directory through /proc/self/fd/N)
    // while the root and working directory are chosen.
    close_inherited_fds(plan)?;
    if let Some(root) = plan.root {
        raw::fchdir(root).at(Step::Chroot)?;
        raw::chroot_to_cwd().at(Step::Chroot)?;
        raw::chdir(c"/").at(Step::Chdir)?;
    }
    if let Some(cwd) = plan.cwd_fd {
        raw::fchdir(cwd).at(Step::Chdir)?;
    }
    if let Some(path) = plan.cwd_path {
        chdir_in_root(path)?;
    }
    if plan.root.is_some() || plan.cwd_fd.is_some() || plan.cwd_path.is_some() {
        ensure_cwd_in_root()?;
    }
    // The kept root and cwd fds are the target's; nothing needs them now.
    let (ready, go) = handshake_fds(plan);
    let mut keep = [plan.err_fd, ready, go].map(|fd| fd.map_or(-1, i64::from));
    keep.sort_unstable();
    close_all_above_stderr_but(&keep, plan.cloexec_only)?;
    if plan.fork_for_pid {
        let middle = raw::getpid();
        let pid = raw::fork_raw().at(Step::PidNamespaceFork)?;
        if pid > 0 {
            // The parent must see end of file on these once the program is gone.
            for fd in [plan.err_fd, ready, go].into_iter().flatten() {
                raw::close(fd);
            }
            relay_until_exit(pid);
        }
        new_session(plan)?;
        toolbox_proc(plan)?;
        credentials(plan, cleared_before)?;
        // The program dies with the relaying process rather than outlive it unwatched (set
        // after the credentials: changing them clears it).
        raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0).at(Step::Prctl)?;
        // If the middle process died before that, we were reparented: the parent is then the
        // namespace's init or a subreaper, no longer the middle process (which is invisible,
        // pid 0, from inside another pid namespace).
        let parent = raw::getppid();
        if parent != 0 && parent != middle {
            raw::exit(127);
        }
    } else {
        new_session(plan)?;
        toolbox_proc(plan)?;
        credentials(plan, cleared_before)?;
    }
    if let Some(handshake) = plan.handshake {
        await_go(handshake);
    }
    raw::sigmask(libc::SIG_SETMASK, &[]);
    Ok(())
}

/// The toolbox's mount namespace: a private copy of ours (so the host's tools are all there)
/// with a tmpfs on `scratch` and, in it, a detached copy of the target's whole mount tree
/// (`open_tree` in its mount namespace, `move_mount` in ours, as cntr does: no path the
/// container controls is followed by us), and its `/etc/resolv.conf` and `/etc/hosts` over ours
/// when they are regular files. Nothing of this is seen outside: the namespace dies with the
/// session.
fn build_toolbox(toolbox: &ToolboxPlan<'_>) -> Result<(), Failure> {
    raw::setns(toolbox.target_mnt, libc::CLONE_NEWNS).at(Step::Toolbox)?;
    let tree = raw::clone_tree(c"/", true);
    let file = |path: &CStr| match raw::clone_tree(path, false) {
        Ok(fd) if raw::is_regular_file(fd) => Some(fd),
        Ok(fd) => {
            raw::close(fd);
            None
        }
        Err(_) => None,
    };
    let files = [
        (file(c"/etc/resolv.conf"), c"/etc/resolv.conf"),
        (file(c"/etc/hosts"), c"/etc/hosts"),
    ];
    raw::setns(toolbox.own_mnt, libc::CLONE_NEWNS).at(Step::Toolbox)?;
    let tree = tree.at(Step::Toolbox)?;
    raw::unshare(libc::CLONE_NEWNS).at(Step::Toolbox)?;
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
    raw::close(tree);
    for (fd, path) in files {
        if let Some(fd) = fd {
            // Best effort: a host whose file is a symlink keeps its own.
            let _ = raw::attach_tree(fd, path);
            raw::close(fd);
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
        if confine.no_new_privs {
            raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).at(Step::NoNewPrivs)?;
            install_seccomp(confine.seccomp)?;
        }
    }
    Ok(())
}

/// Installs seccomp programs, oldest first, so that they stack as they did in the target.
fn install_seccomp(programs: &[libc::sock_fprog]) -> Result<(), Failure> {
    programs
        .iter()
        .try_for_each(|program| raw::install_seccomp_filter(program).at(Step::Seccomp))
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
    raw::close(root);
    let dir = dir.at(Step::Chdir)?;
    let changed = raw::fchdir(dir);
    raw::close(dir);
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
        let e = raw::execve(*path, plan.argv, plan.envp);
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
            raw::setns(pidfd, plan.flags).at(Step::Setns)?;
        }
        return Ok(());
    }
    let mut retry = [false; 8];
    for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
        if *flag != libc::CLONE_NEWUSER && raw::setns(*fd, *flag).is_err() {
            if let Some(slot) = retry.get_mut(i) {
                *slot = true;
            }
        }
    }
    for (fd, flag) in plan.namespace_fds {
        if *flag == libc::CLONE_NEWUSER {
            raw::setns(*fd, *flag).at(Step::Setns)?;
        }
    }
    for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
        if retry.get(i).copied().unwrap_or(false) {
            raw::setns(*fd, *flag).at(Step::Setns)?;
        }
    }
    Ok(())
}

/// Closes every fd above stderr except the error pipe and the target's root and working
/// directory (opened by the parent, still needed for `chroot`/`fchdir`), so the program
/// inherits nothing of the caller's: no host directory, no socket, no pidfd.
fn close_inherited_fds(plan: &Plan<'_>) -> Result<(), Failure> {
    let (ready, go) = handshake_fds(plan);
    let mut keep =
        [plan.err_fd, plan.root, plan.cwd_fd, ready, go].map(|fd| fd.map_or(-1, i64::from));
    keep.sort_unstable();
    close_all_above_stderr_but(&keep, plan.cloexec_only)
}

fn handshake_fds(plan: &Plan<'_>) -> (Option<RawFd>, Option<RawFd>) {
    (
        plan.handshake.map(|h| h.ready),
        plan.handshake.map(|h| h.go),
    )
}

/// Says the program is ready, in the joined pid namespace, and waits for the parent's word:
/// exits without exec when the parent refuses (or is gone).
fn await_go(handshake: Handshake) {
    let ready = raw::write_all_once(handshake.ready, b"r");
    raw::close(handshake.ready);
    let go = ready.and_then(|()| raw::read_byte(handshake.go));
    raw::close(handshake.go);
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
            raw::close(fd as RawFd);
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
fn relay_until_exit(pid: libc::pid_t) -> ! {
    crate::relay::install(pid);
    // The handlers are in place: now signals may arrive.
    raw::sigmask(libc::SIG_SETMASK, &[]);
    let status = loop {
        match raw::waitpid(pid, libc::WUNTRACED) {
            Err(libc::EINTR) => continue,
            Err(_) => raw::exit(127),
            // Stop as the program stopped, so that whoever waits for us sees it; the SIGCONT
            // that continues us is relayed to the program.
            Ok((_, status)) if libc::WIFSTOPPED(status) => raw::kill(raw::getpid(), libc::SIGSTOP),
            Ok((_, status)) => break status,
        }
    };
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        raw::default_action(signal);
        raw::sigmask(libc::SIG_UNBLOCK, &[signal]);
        raw::kill(raw::getpid(), signal);
        raw::exit(128 + signal);
    }
    raw::exit(libc::WEXITSTATUS(status))
}
