//! The forked side of [`Command`](crate::Command): from `fork` to `execve`.
//!
//! This code runs in a child forked from a possibly multi-threaded process, so it may only
//! make async-signal-safe system calls: no allocation, no locks, no panics. Everything it
//! uses was prepared by the parent. A failing step writes `(step, errno)` to the
//! close-on-exec error pipe and exits with 127.

use std::ffi::CStr;
use std::os::fd::RawFd;

pub(crate) use crate::error::SpawnStep as Step;

/// How the child confines itself like the target, prepared before fork.
pub(crate) struct ChildConfinement<'a> {
    pub caps: crate::confine::CapSets,
    pub no_new_privs: bool,
    /// Seccomp programs, oldest first.
    pub seccomp: &'a [libc::sock_fprog],
    /// The LSM exec attribute file and the label to write to it.
    pub lsm_exec: Option<(&'a CStr, &'a [u8])>,
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
    /// Mark inherited fds close-on-exec instead of closing them: the caller itself is about to
    /// exec (`exec_in`) and, should exec fail, still owns them.
    pub cloexec_only: bool,
}

/// A failed step and its errno.
pub(crate) type Failure = (Step, i32);

/// `Err` with `step` and the current errno when a `-1`-means-errno call failed.
fn check(ret: libc::c_int, step: Step) -> Result<(), Failure> {
    if ret < 0 {
        Err((step, errno()))
    } else {
        Ok(())
    }
}

/// The calling thread's errno (reading it is async-signal-safe).
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reports a failure to the parent through the error pipe and exits.
fn report(err_fd: Option<RawFd>, (step, errno): Failure) -> ! {
    let mut report = [0u8; 8];
    report[..4].copy_from_slice(&step.code().to_ne_bytes());
    report[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writes a local buffer to an fd we own, then exits without running any
    // destructor or atexit handler of the parent's copy of the program.
    unsafe {
        if let Some(fd) = err_fd {
            libc::write(fd, report.as_ptr().cast(), report.len());
        }
        libc::_exit(127)
    }
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
    // SAFETY: every call below is an async-signal-safe system call on integers, fds the
    // parent prepared, and NUL-terminated strings / null-terminated arrays it built.
    unsafe {
        // Non-dumpable before joining anything, the pid namespace above all: the target's
        // root must not be able to ptrace us while we still hold the caller's fds and memory.
        check(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0), Step::Prctl)?;
        for (target_fd, source) in plan.stdio.iter().enumerate() {
            let target_fd = target_fd as RawFd;
            match source {
                Some(fd) if *fd == target_fd => check(libc::fcntl(target_fd, libc::F_SETFD, 0), Step::Stdio)?,
                Some(fd) => check(libc::dup2(*fd, target_fd), Step::Stdio)?,
                None => {}
            }
        }
        // Into the target's cgroups while still in our own cgroup namespace: "0" means
        // "the writing process".
        for fd in plan.cgroup_fds {
            if libc::write(*fd, c"0".as_ptr().cast(), 1) != 1 {
                check(-1, Step::Cgroup)?;
            }
        }
        // The label applies at exec; written now, through the host's /proc.
        if let Some((path, label)) = plan.confine.as_ref().and_then(|c| c.lsm_exec) {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check(fd, Step::Lsm)?;
            if libc::write(fd, label.as_ptr().cast(), label.len()) != label.len() as isize {
                check(-1, Step::Lsm)?;
            }
            libc::close(fd);
        }
        // In a user namespace whose setgroups is "deny" (unprivileged ones) setgroups fails
        // after joining: clear the host's supplementary groups before joining (util-linux
        // does the same), so that none of them leaks into the namespace either way.
        let cleared_before = plan.joins_user
            && plan.groups.is_some()
            && libc::setgroups(0, std::ptr::null()) == 0;
        join_namespaces(plan)?;
        // Nothing of the caller's may be reachable (a host directory through
        // /proc/self/fd/N) while the root and working directory are chosen.
        close_inherited_fds(plan)?;
        if let Some(root) = plan.root {
            check(libc::fchdir(root), Step::Chroot)?;
            check(libc::chroot(c".".as_ptr()), Step::Chroot)?;
            check(libc::chdir(c"/".as_ptr()), Step::Chdir)?;
        }
        if let Some(cwd) = plan.cwd_fd {
            check(libc::fchdir(cwd), Step::Chdir)?;
        }
        if let Some(path) = plan.cwd_path {
            chdir_in_root(path)?;
        }
        if plan.root.is_some() || plan.cwd_fd.is_some() || plan.cwd_path.is_some() {
            ensure_cwd_in_root()?;
        }
        // The kept root and cwd fds are the target's; nothing needs them now.
        close_above_stderr_except(plan.err_fd, plan.cloexec_only)?;
        if plan.fork_for_pid {
            let middle = libc::getpid();
            // A raw clone rather than glibc's fork(): no pthread_atfork handlers of the
            // caller's may run here.
            let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
            check(pid as libc::c_int, Step::PidNamespaceFork)?;
            if pid > 0 {
                if let Some(fd) = plan.err_fd {
                    libc::close(fd);
                }
                relay_until_exit(pid as libc::pid_t);
            }
            new_session(plan)?;
            credentials(plan, cleared_before)?;
            // The program dies with the relaying process rather than outlive it unwatched
            // (set after the credentials: changing them clears it).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // If the middle process died before that, we were reparented: the parent is then
            // the namespace's init or a subreaper, no longer the middle process (which is
            // invisible, pid 0, from inside another pid namespace).
            let parent = libc::getppid();
            if parent != 0 && parent != middle {
                libc::_exit(127);
            }
        } else {
            new_session(plan)?;
            credentials(plan, cleared_before)?;
        }
        unblock_all_signals();
    }
    Ok(())
}

/// The program leads a session of its own (in its pid namespace, after the fork there), on
/// its stdin as controlling terminal when that is a terminal.
fn new_session(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.new_session {
        // SAFETY: setsid, isatty and ioctl(TIOCSCTTY) on fd 0: integer arguments only.
        unsafe {
            check(libc::setsid(), Step::Session)?;
            if libc::isatty(0) == 1 {
                check(libc::ioctl(0, libc::TIOCSCTTY, 0), Step::Session)?;
            }
        }
    }
    Ok(())
}

/// Groups, ids, capabilities, NoNewPrivs and seccomp filters, in the order runc uses: the
/// bounding set is cut while we still have CAP_SETPCAP; without NoNewPrivs the filters go in
/// while CAP_SYS_ADMIN allows it (later calls must pass them, as in `docker exec`); with
/// NoNewPrivs they go in last.
fn credentials(plan: &Plan<'_>, cleared_before: bool) -> Result<(), Failure> {
    // SAFETY: async-signal-safe system calls on integers and on memory the parent prepared.
    unsafe {
        if let Some(confine) = &plan.confine {
            for cap in 0..64u64 {
                // EINVAL: the kernel has no such capability; nothing to drop.
                if confine.caps.bounding & (1 << cap) == 0
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
                    && errno() != libc::EINVAL
                {
                    check(-1, Step::Capabilities)?;
                }
            }
            if !confine.no_new_privs {
                install_seccomp(confine.seccomp)?;
            }
            // Keep the permitted set across the change of uid; capset trims it below.
            check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0), Step::Capabilities)?;
        }
        if let Some(groups) = plan.groups {
            // An empty list that was already cleared needs nothing more; a non-empty one
            // must be set inside, or the program does not start.
            let ret = libc::setgroups(groups.len(), groups.as_ptr());
            if !(groups.is_empty() && cleared_before) {
                check(ret, Step::Setgroups)?;
            }
        }
        if let Some(gid) = plan.gid {
            check(libc::setgid(gid), Step::Setgid)?;
        }
        if let Some(uid) = plan.uid {
            check(libc::setuid(uid), Step::Setuid)?;
        }
        if let Some(confine) = &plan.confine {
            capset(&confine.caps)?;
            check(libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), Step::Capabilities)?;
            for cap in 0..64u64 {
                if confine.caps.ambient & (1 << cap) != 0 {
                    check(libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0), Step::Capabilities)?;
                }
            }
            if confine.no_new_privs {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), Step::NoNewPrivs)?;
                install_seccomp(confine.seccomp)?;
            }
        }
    }
    Ok(())
}

/// `capset(2)` with the target's effective, permitted and inheritable sets (version 3: two
/// 32-bit halves).
fn capset(caps: &crate::confine::CapSets) -> Result<(), Failure> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let half = |bits: u64, high: bool| if high { (bits >> 32) as u32 } else { bits as u32 };
    let data = [false, true].map(|high| Data {
        effective: half(caps.effective, high),
        permitted: half(caps.permitted, high),
        inheritable: half(caps.inheritable, high),
    });
    // SAFETY: the header and the two data structs are laid out as the kernel expects
    // (`struct __user_cap_header_struct`, `struct __user_cap_data_struct[2]`).
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    check(ret as libc::c_int, Step::Capabilities)
}

/// Installs seccomp programs, oldest first, so that they stack as they did in the target.
fn install_seccomp(programs: &[libc::sock_fprog]) -> Result<(), Failure> {
    for program in programs {
        // SAFETY: `program` points to instructions the parent copied from the target's
        // filter and keeps alive until exec.
        let ret = unsafe {
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, program as *const libc::sock_fprog, 0, 0)
        };
        check(ret, Step::Seccomp)?;
    }
    Ok(())
}

/// `chdir` to `path` resolved as if the current root were `/` of the whole lookup
/// (`openat2` `RESOLVE_IN_ROOT`): `..` and absolute symlinks stay inside, magic links such as
/// `/proc/self/fd/N` are refused.
fn chdir_in_root(path: &CStr) -> Result<(), Failure> {
    // SAFETY: open/openat2/fchdir/close on a NUL-terminated path and a local `open_how`.
    unsafe {
        let root = libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
        check(root, Step::Chdir)?;
        let mut how: libc::open_how = std::mem::zeroed();
        how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        let fd = libc::syscall(
            libc::SYS_openat2,
            root,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        ) as libc::c_int;
        let saved = errno();
        libc::close(root);
        if fd < 0 {
            return Err((Step::Chdir, saved));
        }
        let ret = libc::fchdir(fd);
        let saved = errno();
        libc::close(fd);
        if ret < 0 {
            return Err((Step::Chdir, saved));
        }
    }
    Ok(())
}

/// Fails unless the working directory is beneath the root: the kernel's `getcwd` starts
/// such a path with "(unreachable)" instead of "/".
fn ensure_cwd_in_root() -> Result<(), Failure> {
    let mut buffer = [0u8; 4096];
    // SAFETY: getcwd writes at most `buffer.len()` bytes into the local buffer.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buffer.as_mut_ptr(), buffer.len()) };
    if ret < 0 {
        // ENAMETOOLONG is still beneath the root; anything else says nothing either way.
        return match errno() {
            libc::ENAMETOOLONG => Ok(()),
            e => Err((Step::Chdir, e)),
        };
    }
    if buffer[0] != b'/' {
        return Err((Step::CwdOutsideRoot, libc::EXDEV));
    }
    Ok(())
}

/// Tries each candidate path; returns the most telling error when none can be executed.
pub(crate) fn exec(plan: &Plan<'_>) -> Failure {
    let mut errno = libc::ENOENT;
    for path in plan.candidates {
        // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings / null-terminated
        // arrays that the parent built and keeps alive until we exec or exit.
        unsafe { libc::execve(*path, plan.argv.as_ptr(), plan.envp.as_ptr()) };
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOENT);
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
    // SAFETY: setns on fds prepared by the parent.
    unsafe {
        if let Some(pidfd) = plan.pidfd {
            if plan.flags != 0 {
                check(libc::setns(pidfd, plan.flags), Step::Setns)?;
            }
            return Ok(());
        }
        let mut retry = [false; 8];
        for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
            if *flag != libc::CLONE_NEWUSER && libc::setns(*fd, *flag) < 0 {
                retry[i] = true;
            }
        }
        for (fd, flag) in plan.namespace_fds {
            if *flag == libc::CLONE_NEWUSER {
                check(libc::setns(*fd, *flag), Step::Setns)?;
            }
        }
        for (i, (fd, flag)) in plan.namespace_fds.iter().enumerate() {
            if retry.get(i).copied().unwrap_or(false) {
                check(libc::setns(*fd, *flag), Step::Setns)?;
            }
        }
    }
    Ok(())
}

/// Closes every fd above stderr except the error pipe and the target's root and working
/// directory (opened by the parent, still needed for `chroot`/`fchdir`), so the program
/// inherits nothing of the caller's: no host directory, no socket, no pidfd.
fn close_inherited_fds(plan: &Plan<'_>) -> Result<(), Failure> {
    let mut keep = [plan.err_fd, plan.root, plan.cwd_fd].map(|fd| fd.map_or(-1, |fd| fd as i64));
    keep.sort_unstable();
    close_all_above_stderr_but(&keep, plan.cloexec_only)
}

/// Closes every fd above stderr except the error pipe.
fn close_above_stderr_except(err_fd: Option<RawFd>, cloexec: bool) -> Result<(), Failure> {
    close_all_above_stderr_but(&[err_fd.map_or(-1, |fd| fd as i64)], cloexec)
}

/// Closes (or marks) every fd from 3 up, but those in `keep` (sorted; -1 entries ignored).
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
    // SAFETY: closes (or marks) fds of our own table before exec; integer arguments only.
    unsafe {
        let ret = libc::syscall(libc::SYS_close_range, first, last, flags) as libc::c_int;
        let errno = std::io::Error::last_os_error().raw_os_error();
        if ret == 0 || !matches!(errno, Some(libc::ENOSYS) | Some(libc::EINVAL)) {
            return check(ret, Step::CloseFds);
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), Step::CloseFds)?;
        let end = last.min(limit.rlim_cur.min(libc::c_uint::MAX as libc::rlim_t) as libc::c_uint);
        for fd in first..=end {
            if cloexec {
                libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC);
            } else {
                libc::close(fd as libc::c_int);
            }
        }
    }
    Ok(())
}

/// Resets every disposition to the default (signals are still blocked, so none of the
/// caller's handlers can run), so the program does not inherit an ignored SIGPIPE.
pub(crate) fn reset_signals() {
    // SAFETY: signal(2) with the default handler on every catchable signal.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Unblocks every signal, for the program: neither the fork's blocking nor a runtime's
/// blocked signals may stay blocked in it.
fn unblock_all_signals() {
    // SAFETY: sigprocmask on a local, initialised set.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The middle process: relays signals to the program, waits for it, and ends the same way.
fn relay_until_exit(pid: libc::pid_t) -> ! {
    crate::relay::install(pid);
    // SAFETY: async-signal-safe calls only.
    unsafe {
        // The handlers are in place: now signals may arrive.
        unblock_all_signals();
        let mut status = 0;
        loop {
            if libc::waitpid(pid, &mut status, libc::WUNTRACED) < 0 {
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    libc::_exit(127);
                }
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                break;
            }
            // Stop as the program stopped, so that whoever waits for us sees it; the SIGCONT
            // that continues us is relayed to the program.
            libc::kill(libc::getpid(), libc::SIGSTOP);
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let mut only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut only);
            libc::sigaddset(&mut only, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
