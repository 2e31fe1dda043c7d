//! Files created and opened beneath a directory held open, never through a symbolic link:
//! a directory the capture writes into may be writable by whoever sends the traffic.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::{self, UnlinkatFlags};

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

    /// Opens the directory at `path`, refusing a symbolic link in its last component.
    pub fn open_nofollow(path: &Path) -> io::Result<Dir> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir { fd: file.into() })
    }

    /// The directory itself as a file (to read its metadata or change its mode).
    pub fn as_file(&self) -> io::Result<File> {
        Ok(File::from(self.fd.try_clone()?))
    }

    /// Renames `from` to `to`, both names in the directory (replacing `to`, never following
    /// it if it is a link).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (component(from)?, component(to)?);
        Ok(fcntl::renameat(
            &self.fd,
            from.as_c_str(),
            &self.fd,
            to.as_c_str(),
        )?)
    }

    /// Removes `name` from the directory (a link is removed, not followed).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let name = component(name)?;
        Ok(unistd::unlinkat(
            &self.fd,
            name.as_c_str(),
            UnlinkatFlags::NoRemoveDir,
        )?)
    }

    /// Opens `name`, a single path component, beneath the directory with `flags` (and
    /// `mode` when creating): openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or where
    /// the kernel lacks it (before 5.6) or a seccomp filter refuses it, openat with
    /// O_NOFOLLOW; O_CLOEXEC always.
    pub fn open_beneath(&self, name: &str, flags: i32, mode: u32) -> io::Result<File> {
        let name = component(name)?;
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(mode);
        let how = OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd: OwnedFd = match fcntl::openat2(&self.fd, name.as_c_str(), how) {
            // No openat2 (before 5.6), or a seccomp filter refusing it: openat on one path
            // component with O_NOFOLLOW cannot leave the directory or follow a link either.
            Err(Errno::ENOSYS | Errno::EPERM) => {
                fcntl::openat(&self.fd, name.as_c_str(), flags, mode)?
            }
            other => other?,
        };
        Ok(File::from(fd))
    }
}

/// `name` as a C string if it is one path component (not empty, `.`, `..`, nor with `/`).
fn component(name: &str) -> io::Result<CString> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn files_beneath_a_directory_never_go_through_a_link() {
        let root =
            std::env::temp_dir().join(format!("tcpflow-lite-beneath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let inside = root.join("inside");
        let outside = root.join("outside");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let dir = Dir::open(&inside).unwrap();
        let mut file = dir
            .open_beneath("a", libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
            .unwrap();
        file.write_all(b"kept").unwrap();
        dir.rename("a", "b").unwrap();
        let mut text = String::new();
        dir.open_beneath("b", libc::O_RDONLY, 0)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "kept");
        // A link planted in the directory is neither followed to read nor to create.
        std::os::unix::fs::symlink(outside.join("target"), inside.join("planted")).unwrap();
        assert!(dir.open_beneath("planted", libc::O_RDONLY, 0).is_err());
        assert!(dir
            .open_beneath("planted", libc::O_WRONLY | libc::O_CREAT, 0o600)
            .is_err());
        assert!(dir
            .open_beneath("../outside/x", libc::O_WRONLY | libc::O_CREAT, 0o600)
            .is_err());
        dir.remove("planted").unwrap();
        assert!(!outside.join("target").exists() && !outside.join("x").exists());
        // A directory given as a link is refused where that is asked.
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert!(Dir::open_nofollow(&root.join("link")).is_err());
        assert!(Dir::open_nofollow(&inside).is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
