//! The few raw system calls this crate makes, each behind a safe function.
//!
//! Every fd opened here is close-on-exec (DESIGN.md security rules).

pub(crate) mod raw;
pub(crate) mod tty;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::pid::Pid;
use crate::signal::Signal;

/// Turns a `-1`-means-errno return value into an `io::Result`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    raw::result(ret).map_err(io::Error::from_raw_os_error)
}

/// Takes ownership of a freshly returned fd.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: callers pass only a non-negative fd just returned by the kernel, which nothing
    // else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `pidfd_open(2)`: a close-on-exec fd that refers to process `pid` for as long as it lives.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    Ok(owned(fd))
}

/// Whether the process behind `pidfd` has not been reaped yet (`pidfd_send_signal` with
/// signal 0 only checks for existence; EPERM means it exists but is not ours to signal).
pub(crate) fn pidfd_is_alive(pidfd: BorrowedFd<'_>) -> bool {
    // SAFETY: plain system call; a null siginfo is allowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    ret == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `setns(2)`: joins the namespace behind `fd` (a namespace file or, with several flags,
/// a pidfd) on the calling thread.
pub(crate) fn setns(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system call on a borrowed, open fd.
    check(unsafe { libc::setns(fd.as_raw_fd(), flags) } as libc::c_long).map(drop)
}

/// `unshare(CLONE_FS)`: the calling thread gets its own root, cwd and umask, which
/// `setns(CLONE_NEWNS)` requires. The one flag offered: others would change what the rest of
/// the process shares with this thread.
pub(crate) fn unshare_fs() -> io::Result<()> {
    // SAFETY: integer argument only; unsharing the fs struct affects this thread alone.
    check(unsafe { libc::unshare(libc::CLONE_FS) } as libc::c_long).map(drop)
}

/// `open(2)` with `O_CLOEXEC` always added.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) } as libc::c_long)?;
    Ok(owned(fd))
}

/// Reads one byte: `Ok(false)` at end of file.
pub(crate) fn read_byte(fd: BorrowedFd<'_>) -> io::Result<bool> {
    raw::read_byte(fd.as_raw_fd()).map_err(io::Error::from_raw_os_error)
}

/// Writes one byte.
pub(crate) fn write_byte(fd: BorrowedFd<'_>) -> io::Result<()> {
    raw::write_all_once(fd.as_raw_fd(), b"g").map_err(io::Error::from_raw_os_error)
}

/// `openat(2)` relative to `dir`, with `O_CLOEXEC` always added.
pub(crate) fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string and `dir` an open fd for the call.
    let fd = check(
        unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags | libc::O_CLOEXEC) }
            as libc::c_long,
    )?;
    Ok(owned(fd))
}

/// `ioctl(NS_GET_NSTYPE)`: the `CLONE_NEW*` flag of a namespace file (ENOTTY otherwise).
pub(crate) fn namespace_type(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
                                                 // SAFETY: an argument-less ioctl on a borrowed, open fd.
    let ret = check(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) } as libc::c_long)?;
    Ok(ret as libc::c_int)
}

/// Whether an fd (`O_PATH` is enough) lives on nsfs, the namespace file system.
pub(crate) fn is_nsfs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    const NSFS_MAGIC: libc::c_long = 0x6e73_6673;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` points to writable memory of the right size; the kernel fills it on success.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstatfs returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Ok(st.f_type as libc::c_long == NSFS_MAGIC)
}

/// `gettid(2)`.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid cannot fail and touches no memory.
    unsafe { libc::gettid() }
}

/// `fstat(2)` of an open fd (`O_PATH` is enough).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points to writable memory of the right size; the kernel fills it on success.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstat returned 0, so `st` is initialised.
    Ok(unsafe { st.assume_init() })
}

/// `fstat(2)`: (st_dev, st_ino) of an open fd.
pub(crate) fn fstat_identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// `fchdir(2)`.
pub(crate) fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a borrowed, open fd.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) } as libc::c_long).map(drop)
}

/// `chroot(".")`: makes the current directory the root.
pub(crate) fn chroot_to_cwd() -> io::Result<()> {
    // SAFETY: a static NUL-terminated path.
    check(unsafe { libc::chroot(c".".as_ptr()) } as libc::c_long).map(drop)
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a close-on-exec duplicate numbered `min` or above.
pub(crate) fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain fcntl on a borrowed, open fd.
    let dup =
        check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)?;
    Ok(owned(dup))
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two fds the kernel writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    Ok((owned(fds[0] as libc::c_long), owned(fds[1] as libc::c_long)))
}

/// A null address or data argument of `ptrace(2)` (variadic: it must be pointer-sized).
const NULL: *mut libc::c_void = std::ptr::null_mut();

/// `PTRACE_SEIZE`: become the tracer of `pid` without stopping it.
pub(crate) fn ptrace_seize(pid: i32) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments; no memory is passed.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, NULL, NULL) }).map(drop)
}

/// `PTRACE_INTERRUPT`: stop a seized process (it reports the stop to `waitpid`).
pub(crate) fn ptrace_interrupt(pid: i32) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments; no memory is passed.
    check(unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, NULL, NULL) }).map(drop)
}

/// `PTRACE_DETACH`: let a traced process go (and run on). Errors are ignored: a process
/// that exited has no tracer left to detach.
pub(crate) fn ptrace_detach(pid: i32) {
    // SAFETY: plain system call with integer arguments; no memory is passed.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, NULL, NULL) };
}

/// `waitpid(pid, WNOHANG | __WALL)` by its tracer: whether it has stopped (or exited).
pub(crate) fn waitpid_nohang_traced(pid: i32) -> io::Result<bool> {
    let mut status = 0;
    // SAFETY: waitpid writes only into a local integer.
    let ret = check(
        unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) } as libc::c_long,
    )?;
    Ok(ret > 0)
}

/// `PTRACE_SECCOMP_GET_FILTER`: the number of instructions of the `index`th newest seccomp
/// filter of a stopped tracee, copied into `program` when it is large enough (pass an empty
/// slice to learn the size). ENOENT: no filter with that index.
pub(crate) fn ptrace_seccomp_filter(
    pid: i32,
    index: usize,
    program: &mut [libc::sock_filter],
) -> io::Result<usize> {
    const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
    let buffer = if program.is_empty() {
        std::ptr::null_mut()
    } else {
        program.as_mut_ptr()
    };
    // SAFETY: the kernel writes at most as many instructions as the filter has, and it is
    // asked to only when `program` was sized from that count by a first call.
    let count = check(unsafe {
        libc::ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            pid,
            index as *mut libc::c_void,
            buffer.cast::<libc::c_void>(),
        )
    })?;
    Ok(count as usize)
}

/// `fork(2)`: the child's pid in the parent, `None` in the child.
///
/// # Safety
/// In a multi-threaded program the child may only make async-signal-safe calls until it
/// execs or exits (no allocation, no lock): the caller's child side must keep to that.
pub(crate) unsafe fn fork() -> io::Result<Option<Pid>> {
    // SAFETY: the caller upholds the child's restrictions (see above).
    check(unsafe { libc::fork() }.into()).map(|pid| Pid::new(pid as libc::pid_t))
}

/// `kill(2)`.
pub(crate) fn kill(pid: Pid, signal: Signal) -> io::Result<()> {
    // SAFETY: integer arguments only; a `Pid` is > 0, so this never signals a process group.
    check(unsafe { libc::kill(pid.get(), signal.get()) }.into()).map(drop)
}

/// `waitpid(2)`: `(pid, raw status)`, pid 0 with `WNOHANG` when nothing changed.
pub(crate) fn waitpid(
    pid: libc::pid_t,
    flags: libc::c_int,
) -> io::Result<(libc::pid_t, libc::c_int)> {
    raw::waitpid(pid, flags).map_err(io::Error::from_raw_os_error)
}

/// `openat2(2)` of `path` (read-only) beneath `dir` as if `dir` were the root
/// (`RESOLVE_IN_ROOT`: `..` and absolute symlinks stay inside), magic links refused.
pub(crate) fn open_in_root(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let fd = raw::openat2(dir.as_raw_fd(), path, flags, resolve)
        .map_err(io::Error::from_raw_os_error)?;
    Ok(owned(fd.into()))
}
