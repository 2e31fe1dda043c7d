//! Async-signal-safe wrappers for the forked child (and the relaying middle process): each is
//! one raw system call, no allocation, no lock, and an error is the bare errno, so they are
//! safe to call between `fork` and `execve` of a multi-threaded program.

use std::ffi::CStr;
use std::os::fd::RawFd;

/// An errno value.
pub(crate) type Errno = i32;

/// The calling thread's errno.
pub(crate) fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Sets the calling thread's errno: a signal handler puts back what it found, so that the
/// code it interrupted reads its own error.
pub(crate) fn set_errno(value: Errno) {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = value };
}

/// `-1`-means-errno to `Result`.
pub(crate) fn result(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// `prctl(2)` with integer arguments.
pub(crate) fn prctl(
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
) -> Result<(), Errno> {
    // SAFETY: integer arguments only; no option used here takes a pointer.
    result(
        unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) }.into(),
    )
    .map(drop)
}

/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, program)`.
///
/// # Safety
/// `program.filter` must point to `program.len` readable instructions (the kernel copies
/// them during the call). The filter then binds this thread and every program it execs: the
/// caller must install it last, after every call the filter might refuse.
pub(crate) unsafe fn install_seccomp_filter(program: &libc::sock_fprog) -> Result<(), Errno> {
    // SAFETY: the caller guarantees `program` describes a readable BPF program; the kernel
    // copies it before returning.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            program as *const libc::sock_fprog,
        )
    };
    result(ret.into()).map(drop)
}

/// `dup2(2)`.
///
/// # Safety
/// `to` is closed and replaced silently: the caller must own it (or it must be unused), and
/// nothing else may go on using the file it referred to.
pub(crate) unsafe fn dup2(from: RawFd, to: RawFd) -> Result<(), Errno> {
    // SAFETY: integer arguments; the caller owns `to` (see above).
    result(unsafe { libc::dup2(from, to) }.into()).map(drop)
}

/// Clears close-on-exec on `fd`.
pub(crate) fn clear_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }.into()).map(drop)
}

/// Sets close-on-exec on `fd` (errors ignored: used on fds that may not exist).
pub(crate) fn set_cloexec(fd: RawFd) {
    // SAFETY: integer arguments only.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// `setsid(2)`.
pub(crate) fn setsid() -> Result<(), Errno> {
    // SAFETY: no arguments.
    result(unsafe { libc::setsid() }.into()).map(drop)
}

/// Whether `fd` is a terminal.
pub(crate) fn isatty(fd: RawFd) -> bool {
    // SAFETY: integer argument only.
    unsafe { libc::isatty(fd) == 1 }
}

/// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal `fd` the caller's controlling terminal.
pub(crate) fn make_controlling_terminal(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }.into()).map(drop)
}

/// `write(2)` of the whole buffer in one call (short writes are errors: used for small
/// control files and pipes).
/// Reads one byte from `fd`, retrying on EINTR: `Ok(false)` at end of file.
pub(crate) fn read_byte(fd: RawFd) -> Result<bool, Errno> {
    let mut byte = 0u8;
    loop {
        // SAFETY: `byte` is valid for a write of one byte for the duration of the call.
        match result(unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } as libc::c_long) {
            Ok(n) => return Ok(n == 1),
            Err(libc::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

pub(crate) fn write_all_once(fd: RawFd, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: `bytes` is valid for reads of its length.
    let written =
        result(unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) } as libc::c_long)?;
    if written as usize != bytes.len() {
        return Err(libc::EIO);
    }
    Ok(())
}

/// `open(2)` with `O_CLOEXEC` added.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno> {
    // SAFETY: `path` is NUL-terminated and valid for the call.
    result(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }.into())
        .map(|fd| fd as RawFd)
}

/// `openat2(2)` of `path` relative to `dir` with open `flags` (`O_CLOEXEC` added) and
/// `resolve` flags.
pub(crate) fn openat2(
    dir: RawFd,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> Result<RawFd, Errno> {
    // SAFETY: an all-zero `open_how` is valid; the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: `path` is NUL-terminated, `how` is a valid `open_how` of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    result(fd).map(|fd| fd as RawFd)
}

/// `close(2)` (errors ignored: nothing can be done about them here).
///
/// # Safety
/// The caller must own `fd` and use it no more: a number closed twice, or closed under an
/// `OwnedFd`, may by then name another file.
pub(crate) unsafe fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and drops it here (see above).
    unsafe { libc::close(fd) };
}

/// `close_range(2)` with `flags` (0, or `CLOSE_RANGE_CLOEXEC`).
pub(crate) fn close_range(
    first: libc::c_uint,
    last: libc::c_uint,
    flags: libc::c_uint,
) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }).map(drop)
}

/// The soft limit on open fds.
pub(crate) fn fd_limit() -> Result<libc::rlim_t, Errno> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes.
    result(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }.into())?;
    Ok(limit.rlim_cur)
}

/// `setns(2)`.
pub(crate) fn setns(fd: RawFd, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments only.
    result(unsafe { libc::setns(fd, flags) }.into()).map(drop)
}

/// `fchdir(2)`.
pub(crate) fn fchdir(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: integer argument only.
    result(unsafe { libc::fchdir(fd) }.into()).map(drop)
}

/// `chdir(2)`.
pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated and valid for the call.
    result(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
}

/// `chroot(".")`.
pub(crate) fn chroot_to_cwd() -> Result<(), Errno> {
    // SAFETY: a static NUL-terminated path.
    result(unsafe { libc::chroot(c".".as_ptr()) }.into()).map(drop)
}

/// `getcwd(2)` (the system call: a path not beneath the root starts with "(unreachable)").
pub(crate) fn getcwd(buffer: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into it.
    result(unsafe { libc::syscall(libc::SYS_getcwd, buffer.as_mut_ptr(), buffer.len()) }).map(drop)
}

/// `setgroups(2)`.
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> Result<(), Errno> {
    // SAFETY: `groups` is valid for reads of its length (a null pointer for an empty list is
    // never dereferenced).
    result(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) }.into()).map(drop)
}

/// `setgid(2)` (the raw call: only this thread, which is the whole child).
pub(crate) fn setgid(gid: libc::gid_t) -> Result<(), Errno> {
    // SAFETY: integer argument only.
    result(unsafe { libc::syscall(libc::SYS_setgid, gid) }).map(drop)
}

/// `setuid(2)` (the raw call: only this thread, which is the whole child).
pub(crate) fn setuid(uid: libc::uid_t) -> Result<(), Errno> {
    // SAFETY: integer argument only.
    result(unsafe { libc::syscall(libc::SYS_setuid, uid) }).map(drop)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one of two 32-bit halves.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two halves.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `capset(2)` of this thread's effective, permitted and inheritable sets.
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |bits: u64, high: bool| {
        if high {
            (bits >> 32) as u32
        } else {
            bits as u32
        }
    };
    let data = [false, true].map(|high| CapData {
        effective: half(effective, high),
        permitted: half(permitted, high),
        inheritable: half(inheritable, high),
    });
    // SAFETY: the header and the two data structs are laid out as the kernel expects
    // (`struct __user_cap_header_struct`, `struct __user_cap_data_struct[2]`).
    result(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    })
    .map(drop)
}

/// `capget(2)` of this thread: its (effective, permitted, inheritable) sets.
pub(crate) fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: as for `capset`; the kernel writes the two halves into `data`.
    result(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let join = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// `execve(2)`: returns only on failure.
///
/// # Safety
/// `path` must be NUL-terminated, and `argv` and `envp` must each end with a null pointer
/// and otherwise hold NUL-terminated strings, all alive for the call.
pub(crate) unsafe fn execve(
    path: *const libc::c_char,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Errno {
    // SAFETY: the caller guarantees the strings and arrays (see above).
    unsafe { libc::execve(path, argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// `clone(2)` with just SIGCHLD, as `fork` without glibc's `pthread_atfork` handlers:
/// `Ok(0)` in the child, `Ok(pid)` in the parent.
///
/// # Safety
/// As for `fork`: in a multi-threaded process the child may only make async-signal-safe
/// calls (no allocation, no lock) until it execs or `_exit`s, and it must never return into
/// code that would run the parent's destructors or unwinding.
pub(crate) unsafe fn fork_raw() -> Result<libc::pid_t, Errno> {
    // SAFETY: a fork-like clone; the caller keeps the child to the rules above.
    result(unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) })
        .map(|pid| pid as libc::pid_t)
}

/// `getpid(2)`.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// `getppid(2)`: 0 when the parent is outside our pid namespace.
pub(crate) fn getppid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getppid() }
}

/// `kill(2)` (errors ignored: the process may be gone).
pub(crate) fn kill(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: integer arguments only.
    unsafe { libc::kill(pid, signal) };
}

/// `waitpid(2)`: the raw status.
pub(crate) fn waitpid(
    pid: libc::pid_t,
    flags: libc::c_int,
) -> Result<(libc::pid_t, libc::c_int), Errno> {
    let mut status = 0;
    // SAFETY: writes only into a local integer.
    let ret = result(unsafe { libc::waitpid(pid, &mut status, flags) }.into())?;
    Ok((ret as libc::pid_t, status))
}

/// `_exit(2)`: ends the process without running any of the parent's destructors or atexit
/// handlers.
pub(crate) fn exit(code: libc::c_int) -> ! {
    // SAFETY: always safe; never returns.
    unsafe { libc::_exit(code) }
}

/// Resets `signal` to its default action.
pub(crate) fn default_action(signal: libc::c_int) {
    // SAFETY: signal(2) with SIG_DFL installs no handler.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Changes the calling thread's signal mask by `signals` (`how`: SIG_SETMASK, SIG_UNBLOCK...).
pub(crate) fn sigmask(how: libc::c_int, signals: &[libc::c_int]) {
    let set = sigset(signals.iter().copied());
    // SAFETY: reads a local, initialised set.
    unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
}

/// A signal set of `signals`.
fn sigset(signals: impl IntoIterator<Item = libc::c_int>) -> libc::sigset_t {
    // SAFETY: an all-zero sigset is valid storage; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset/sigaddset on a local set.
    unsafe { libc::sigemptyset(&mut set) };
    for signal in signals {
        // SAFETY: sigaddset on a local, initialised set.
        unsafe { libc::sigaddset(&mut set, signal) };
    }
    set
}

/// Blocks `signals` on the calling thread; returns the mask before.
pub(crate) fn block(signals: impl IntoIterator<Item = libc::c_int>) -> libc::sigset_t {
    let set = sigset(signals);
    let mut old = sigset([]);
    // SAFETY: reads `set`, writes `old`, both local.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    old
}

/// Restores a mask returned by [`block`].
pub(crate) fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: reads a mask the kernel gave us.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Installs `handler` (an `SA_SIGINFO` handler, `SA_RESTART`) for `signal`; returns the
/// action before.
///
/// # Safety
/// `handler` runs between any two instructions of any thread: it must make only
/// async-signal-safe calls, touch only atomics or locals, and leave errno as it found it.
pub(crate) unsafe fn set_handler(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> libc::sigaction {
    // SAFETY: all-zero sigactions are valid storage; the new one is filled below.
    let (mut action, mut old): (libc::sigaction, libc::sigaction) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    action.sa_sigaction = handler as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
    action.sa_mask = sigset([]);
    // SAFETY: `action` is a valid action whose handler the caller vouches for; `old` is writable.
    unsafe { libc::sigaction(signal, &action, &mut old) };
    old
}

/// Puts back an action returned by [`set_handler`].
pub(crate) fn restore_action(signal: libc::c_int, old: &libc::sigaction) {
    // SAFETY: an action the kernel gave us.
    unsafe { libc::sigaction(signal, old, std::ptr::null_mut()) };
}

/// `OPEN_TREE_CLONE`: a detached copy of the mount tree instead of the mount itself.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `AT_RECURSIVE`: with the mounts beneath.
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// `open_tree(2)` with `OPEN_TREE_CLONE`: a detached copy of the mount (tree, with
/// `recursive`) at `path`, as a close-on-exec fd; the final symlink is not followed.
pub(crate) fn clone_tree(path: &CStr, recursive: bool) -> Result<RawFd, Errno> {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint
        | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is NUL-terminated and valid for the call; integer flags.
    result(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
        .map(|fd| fd as RawFd)
}

/// `move_mount(2)` of the detached tree `tree` onto `target` (final symlink not followed).
pub(crate) fn attach_tree(tree: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: NUL-terminated paths valid for the call; integer flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    result(ret).map(drop)
}

/// `MOUNT_ATTR_RDONLY`.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSYMFOLLOW` (Linux >= 5.12): no symlink is followed on the mount.
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `struct mount_attr` of `mount_setattr(2)` (its first version, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` with `AT_RECURSIVE` on the (detached) tree `tree`: sets `attrs` on every
/// mount of it and makes each private (no propagation to or from its peers).
pub(crate) fn set_tree_attrs(tree: RawFd, attrs: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: `attr` is a valid `struct mount_attr` whose size is passed; empty NUL-terminated
    // path with AT_EMPTY_PATH names the fd itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    result(ret).map(drop)
}

/// `mount(2)` of a new file system of `fstype` (no source device) at `target`.
pub(crate) fn mount_new(
    fstype: &CStr,
    target: &CStr,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let data = data.map_or(std::ptr::null(), |d| d.as_ptr().cast::<libc::c_void>());
    // SAFETY: NUL-terminated strings valid for the call (data may be null).
    result(
        unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                flags,
                data,
            )
        }
        .into(),
    )
    .map(drop)
}

/// Makes every mount of this mount namespace private (nothing propagates to or from the
/// namespace it was copied from).
pub(crate) fn make_mounts_private() -> Result<(), Errno> {
    // SAFETY: static NUL-terminated path; null source, fstype and data are allowed here.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    result(ret.into()).map(drop)
}

/// `read(2)` into `buffer`: the count read.
pub(crate) fn read(fd: RawFd, buffer: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buffer` is writable for its length.
    result(unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) } as libc::c_long)
        .map(|n| n as usize)
}

/// `openat(2)` relative to `dir`.
pub(crate) fn openat(dir: RawFd, path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno> {
    // SAFETY: NUL-terminated path valid for the call.
    result(unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC) }.into())
        .map(|fd| fd as RawFd)
}

/// The (device, inode) of `path` beneath `dir`, links followed (a `/proc/PID/ns/*` file gives
/// its namespace's identity).
pub(crate) fn stat_identity_at(dir: RawFd, path: &CStr) -> Result<(u64, u64), Errno> {
    // SAFETY: all-zero `stat` is valid storage; fstatat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path and writable `st` valid for the call.
    result(unsafe { libc::fstatat(dir, path.as_ptr(), &mut st, 0) }.into())?;
    Ok((st.st_dev, st.st_ino))
}

/// `getdents64(2)` of the directory `fd` into `buffer`: the bytes filled (0 at its end).
pub(crate) fn getdents(fd: RawFd, buffer: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buffer` is writable for its length.
    result(unsafe { libc::syscall(libc::SYS_getdents64, fd, buffer.as_mut_ptr(), buffer.len()) })
        .map(|n| n as usize)
}

/// Sleeps `millis` milliseconds (interrupted early by a signal).
pub(crate) fn sleep_ms(millis: u32) {
    let time = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::c_long::from(millis.min(999)) * 1_000_000,
    };
    // SAFETY: a valid timespec; the remainder is not wanted.
    unsafe { libc::nanosleep(&time, std::ptr::null_mut()) };
}

/// `unshare(CLONE_NEWNS)`: a mount namespace of this process's own, a copy of the one it
/// was in. Only this flag is offered: others (`CLONE_FILES`, `CLONE_NEWUSER`...) would change
/// what the rest of the child relies on.
pub(crate) fn unshare_mount_ns() -> Result<(), Errno> {
    // SAFETY: integer argument only; a new mount namespace breaks no invariant of this
    // process (its fds and memory are untouched).
    result(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into()).map(drop)
}

/// `mkdir(2)`.
pub(crate) fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: NUL-terminated path valid for the call.
    result(unsafe { libc::mkdir(path.as_ptr(), mode) }.into()).map(drop)
}

/// Whether the open `fd` is a regular file.
pub(crate) fn is_regular_file(fd: RawFd) -> bool {
    // SAFETY: all-zero `stat` is valid storage; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and of the right size.
    (unsafe { libc::fstat(fd, &mut st) } == 0) && (st.st_mode & libc::S_IFMT) == libc::S_IFREG
}
