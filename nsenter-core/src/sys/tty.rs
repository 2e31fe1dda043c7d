//! The system calls behind a pty taken from a target's own devpts: each a safe function over
//! a borrowed fd, so the module above holds no unsafe code.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::{check, owned, raw};

/// `statfs.f_type` of a devpts file system.
const DEVPTS_SUPER_MAGIC: libc::c_long = 0x1cd1;

/// `openat2(2)` with `O_PATH` of `path` beneath `dir`: no symlink (the last component's
/// either), no magic link, no `..` out of `dir`. `O_PATH` calls no driver's `open` and does not
/// block on a FIFO, so nothing the container planted there acts before it is checked.
pub(crate) fn open_path_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let fd = raw::openat2(dir.as_raw_fd(), path, libc::O_PATH, resolve)
        .map_err(io::Error::from_raw_os_error)?;
    Ok(owned(fd.into()))
}

/// `fstat(2)`: (`st_mode`, `st_rdev`) of an open fd (`O_PATH` is enough).
pub(crate) fn mode_and_rdev(fd: BorrowedFd<'_>) -> io::Result<(libc::mode_t, libc::dev_t)> {
    let st = super::fstat(fd)?;
    Ok((st.st_mode, st.st_rdev))
}

/// Whether an fd (`O_PATH` is enough) lives on a devpts file system (`fstatfs(2)`).
pub(crate) fn is_devpts(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` points to writable memory of the right size; the kernel fills it on success.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstatfs returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Ok(st.f_type as libc::c_long == DEVPTS_SUPER_MAGIC)
}

/// Opens the very file an `O_PATH` fd refers to, read-write and without making it our
/// controlling terminal, through `/proc/thread-self/fd/N` (the kernel's own link to that
/// inode: no path the container controls is looked up again).
pub(crate) fn reopen_read_write(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/thread-self/fd/{}\0", fd.as_raw_fd());
    let path = CStr::from_bytes_with_nul(path.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    super::open(path, libc::O_RDWR | libc::O_NOCTTY)
}

/// `ioctl(TIOCSPTLCK, 0)`: unlocks a pty master's peer, so it can be opened.
pub(crate) fn unlock_peer(master: BorrowedFd<'_>) -> io::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which is valid for the call.
    check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } as libc::c_long)
        .map(drop)
}

/// `ioctl(TIOCGPTPEER)`: opens a pty master's peer from the master itself (Linux >= 4.13),
/// without looking `/dev/pts/N` up by name, close-on-exec and never our controlling terminal.
pub(crate) fn open_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its open flags as an integer argument and touches no memory.
    let fd = check(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) } as libc::c_long,
    )?;
    Ok(owned(fd))
}
