//! Files created and opened beneath a directory held open, never through a symbolic link:
//! a directory the capture writes into may be writable by whoever sends the traffic.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{self, UnlinkatFlags};

/// A new file for writing, never one that exists (`O_EXCL`).
pub const CREATE_NEW: OFlag = OFlag::O_WRONLY.union(OFlag::O_CREAT).union(OFlag::O_EXCL);

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
            .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
            .open(path)?;
        Ok(Dir { fd: file.into() })
    }

    /// Opens the directory at `path`, refusing a symbolic link in its last component.
    pub fn open_nofollow(path: &Path) -> io::Result<Dir> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(path)?;
        Ok(Dir { fd: file.into() })
    }

    /// Opens the directory at `path` without following a symbolic link in any of its
    /// components, and creates its last component when missing and `create` says so (as
    /// tcpflow creates `-o DIR`). The path is walked one component at a time from `/` (or
    /// the working directory for a relative path), each opened `O_NOFOLLOW` beneath the one
    /// before: whoever can write some directory on the way (a container, through
    /// `/proc/PID/root/...`) cannot redirect the output elsewhere with a link.
    ///
    /// A path under `/proc/PID/root` is resolved inside that process's root: the magic link
    /// the user named is followed once, and what follows stays beneath it (`..` is refused).
    /// The error names the link found, or the component that could not be opened.
    pub fn open_without_links(path: &Path, create: bool) -> io::Result<Dir> {
        let (mut dir, rest, mut walked) = anchor(path)?;
        let count = rest.len();
        for (i, name) in rest.into_iter().enumerate() {
            walked.push(name);
            let last = i + 1 == count;
            let mut opened = dir.open_directory(name);
            if create && last && matches!(&opened, Err(e) if e.kind() == io::ErrorKind::NotFound) {
                let mode = Mode::from_bits_truncate(0o755);
                match nix::sys::stat::mkdirat(&dir.fd, name, mode) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(named(path, e.into())),
                }
                opened = dir.open_directory(name);
            }
            dir = match opened {
                Ok(next) => next,
                Err(_) if dir.is_link(name) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "{walked:?} is a symbolic link: output paths are never followed through links (name the directory it points to, if that is meant)"
                        ),
                    ))
                }
                Err(e) => return Err(named(path, e)),
            };
        }
        Ok(dir)
    }

    /// Creates the file at `path` (new, `O_EXCL`) with `mode`, no component of its path
    /// followed through a symbolic link ([`Dir::open_without_links`] for its directory).
    pub fn create_without_links(path: &Path, mode: u32) -> io::Result<File> {
        let name = path.file_name().and_then(OsStr::to_str).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path:?} does not end with a file name"),
            )
        })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::open_without_links(parent, false)?;
        match dir.open_beneath(name, CREATE_NEW, mode) {
            Err(_) if dir.is_link(OsStr::new(name)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path:?} is a symbolic link: it is never followed"),
            )),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(io::Error::new(
                e.kind(),
                format!("{path:?} already exists: it is never overwritten"),
            )),
            Err(e) => Err(named(path, e)),
            Ok(file) => Ok(file),
        }
    }

    /// Whether creating and removing a file here works: root passes every permission check,
    /// so only trying tells a read-only mount or /proc apart.
    pub fn check_writable(&self) -> io::Result<()> {
        let probe = format!(".tcpflow-lite-write-test-{}", std::process::id());
        self.open_beneath(&probe, CREATE_NEW, 0o600)?;
        self.remove(&probe)
    }

    fn open_directory(&self, name: &OsStr) -> io::Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, Mode::empty())?;
        Ok(Dir { fd })
    }

    fn is_link(&self, name: &OsStr) -> bool {
        nix::sys::stat::fstatat(&self.fd, name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
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
    pub fn open_beneath(&self, name: &str, flags: OFlag, mode: u32) -> io::Result<File> {
        let name = component(name)?;
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
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

/// Where `path` is resolved from, the components left to walk, and the path walked so far:
/// `/proc/PID/root` (the process's root, followed as the user named it), `/`, or the
/// working directory.
fn anchor(path: &Path) -> io::Result<(Dir, Vec<&OsStr>, PathBuf)> {
    let mut components = path.components().peekable();
    let mut walked = PathBuf::new();
    let mut start = Path::new(".");
    if components.peek() == Some(&Component::RootDir) {
        components.next();
        start = Path::new("/");
        let names: Vec<Component<'_>> = components.clone().take(3).collect();
        if let [Component::Normal(proc), Component::Normal(pid), Component::Normal(root)] =
            names.as_slice()
        {
            let digits = pid.as_bytes();
            if *proc == "proc"
                && *root == "root"
                && !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
            {
                components.nth(2);
                walked = Path::new("/proc").join(pid).join("root");
                let dir = Dir::open(&walked).map_err(|e| named(&walked, e))?;
                return Ok((dir, rest(path, components)?, walked));
            }
        }
        walked = PathBuf::from("/");
    }
    let dir = Dir::open(start).map_err(|e| named(start, e))?;
    Ok((dir, rest(path, components)?, walked))
}

/// The names left in `components`; `..` is refused (it could leave a container's root).
fn rest<'a>(
    path: &Path,
    components: impl Iterator<Item = Component<'a>>,
) -> io::Result<Vec<&'a OsStr>> {
    let mut names = Vec::new();
    for component in components {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{path:?}: \"..\" is not taken in an output path"),
                ))
            }
        }
    }
    Ok(names)
}

/// `error` with the path it is about.
fn named(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{path:?}: {error}"))
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
        let mut file = dir.open_beneath("a", CREATE_NEW, 0o600).unwrap();
        file.write_all(b"kept").unwrap();
        dir.rename("a", "b").unwrap();
        let mut text = String::new();
        dir.open_beneath("b", OFlag::O_RDONLY, 0)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "kept");
        // A link planted in the directory is neither followed to read nor to create.
        std::os::unix::fs::symlink(outside.join("target"), inside.join("planted")).unwrap();
        assert!(dir.open_beneath("planted", OFlag::O_RDONLY, 0).is_err());
        assert!(dir
            .open_beneath("planted", OFlag::O_WRONLY | OFlag::O_CREAT, 0o600)
            .is_err());
        assert!(dir
            .open_beneath("../outside/x", OFlag::O_WRONLY | OFlag::O_CREAT, 0o600)
            .is_err());
        dir.remove("planted").unwrap();
        // A directory given as a link is refused where that is asked.
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert!(Dir::open_nofollow(&root.join("link")).is_err());
        assert!(Dir::open_nofollow(&inside).is_ok());
        // A link anywhere on the path is refused and named; the directory is not created.
        let through = root.join("link").join("made");
        let error = Dir::open_without_links(&through, true).unwrap_err();
        assert!(
            error.to_string().contains("link\" is a symbolic link"),
            "{error}"
        );
        assert!(!outside.join("made").exists());
        let error =
            Dir::create_without_links(&root.join("link").join("raw.pcap"), 0o644).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(!outside.join("raw.pcap").exists());
        assert!(Dir::create_without_links(&inside.join("planted2"), 0o644).is_ok());
        assert!(Dir::create_without_links(&inside.join("planted2"), 0o644).is_err());
        let made = Dir::open_without_links(&inside.join("made"), true).unwrap();
        made.check_writable().unwrap();
        assert!(inside.join("made").is_dir());
        assert!(Dir::open_without_links(&inside.join("..").join("outside"), false).is_err());
        assert!(!outside.join("target").exists() && !outside.join("x").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
