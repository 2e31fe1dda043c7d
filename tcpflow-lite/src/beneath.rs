//! Files created and opened beneath a directory held open, never through a symbolic link:
//! a directory the capture writes into may be writable by whoever sends the traffic.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// A directory opened once: what it is does not change if its path is later replaced.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens the directory at `path` (a symbolic link the user named is followed here, once).
    pub fn open(path: &Path) -> io::Result<Dir> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir { fd: file.into() })
    }

    /// Opens `name`, a single path component, beneath the directory with `flags` (and
    /// `mode` when creating): openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or where
    /// the kernel lacks it (before 5.6) openat with O_NOFOLLOW; O_CLOEXEC always.
    pub fn open_beneath(&self, name: &str, flags: i32, mode: u32) -> io::Result<File> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a file name")));
        }
        let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let how = OpenHow {
            flags: u64::from(flags as u32),
            mode: u64::from(mode),
            resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        };
        let fd = openat2(&self.fd, &name, &how);
        let fd = match fd {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => openat(&self.fd, &name, flags, mode)?,
            other => other?,
        };
        Ok(File::from(fd))
    }
}

fn openat2(dir: &OwnedFd, name: &CString, how: &OpenHow) -> io::Result<OwnedFd> {
    // SAFETY: openat2(2) reads the NUL-terminated name and `how` (of the size passed), both
    // alive for the call, and returns a new descriptor that nothing else owns.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), name.as_ptr(), how as *const OpenHow, std::mem::size_of::<OpenHow>())
    };
    owned(fd)
}

fn openat(dir: &OwnedFd, name: &CString, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: openat(2) reads the NUL-terminated name, alive for the call, and returns a new
    // descriptor that nothing else owns.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    owned(fd.into())
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("descriptor out of range"))?;
    // SAFETY: `fd` was just returned by the kernel for us, is open, and has no other owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
