//! A pseudo-terminal from the target's own devpts, as runc gives `docker exec -t` one: the
//! program's terminal is then a `/dev/pts/N` of the container, so `tty` names it there and
//! the container's `/dev/pts` lists it.
//!
//! The container controls its `/dev`: its `ptmx` may be a symbolic link to a host path, a FIFO
//! (opening one for reading blocks), a regular file or another device. So the file is looked
//! up beneath the target's root with no link followed (`openat2` `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`) and opened `O_PATH` (no driver is called, no
//! FIFO blocks); only a character device 5:2 on a devpts file system is then opened for real,
//! through the fd itself. The peer comes from the master (`TIOCGPTPEER`), never by looking
//! `/dev/pts/N` up, so the container cannot swap it for something else in between.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::kind::{Namespace, NamespaceSet};
use crate::sys;
use crate::target::Target;

/// The paths tried, in order, inside the target's root: devpts' own node first (Docker,
/// Podman and runc make `/dev/ptmx` a link to it, which is not followed).
const PTMX_PATHS: [&CStr; 2] = [c"dev/pts/ptmx", c"dev/ptmx"];

/// Major and minor device numbers of the pty multiplexer.
const PTMX_DEVICE: (u32, u32) = (5, 2);

/// A new pty of the target's devpts.
#[derive(Debug)]
pub struct TargetPty {
    /// The caller's side: what the program writes is read here.
    pub master: OwnedFd,
    /// The program's terminal (`/dev/pts/N` in the target), close-on-exec.
    pub peer: OwnedFd,
}

/// Why the target's devpts could not give a pty (then use one of the caller's own).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PtyError {
    /// The target could not be reached (it exited, or it is a namespace file, which has no
    /// root directory).
    #[error(transparent)]
    Target(#[from] crate::Error),
    /// The target's root directory could not be opened.
    #[error("cannot open the target's root directory: {0}")]
    Root(#[source] io::Error),
    /// Nothing usable at the path: absent, or the lookup would leave the root.
    #[error("/{path}: {source}", path = path.display())]
    Open {
        /// The path inside the target's root.
        path: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },
    /// The path is there but is not devpts' pty multiplexer.
    #[error("/{path} is {what}, not a devpts ptmx: not opened", path = path.display())]
    NotPtmx {
        /// The path inside the target's root.
        path: PathBuf,
        /// What it is instead ("a symbolic link (not followed)", "a FIFO", "character
        /// device 1:3 on devpts"...).
        what: String,
    },
    /// The multiplexer was opened but gave no usable pty (devpts full, old kernel...).
    #[error("/{path}: {step}: {source}", path = path.display())]
    Allocate {
        /// The path inside the target's root.
        path: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Opens a new pty on the target's devpts, found beneath its root directory as the target
/// sees it. The first path that fails stops nothing: the next is tried, and the error of the
/// first (devpts' own `pts/ptmx`) is returned when none works.
///
/// ```no_run
/// use nsenter_core::{pty, Pid, Target};
/// let target = Target::open(Pid::try_from(4242)?)?;
/// match pty::open_in_target(&target) {
///     // Give `peer` to a program started in the target, relay `master`.
///     Ok(pty) => println!("a terminal of the container's: {:?}", pty.peer),
///     Err(why) => eprintln!("no terminal of the container's ({why}): use one of ours"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_in_target(target: &Target) -> Result<TargetPty, PtyError> {
    let root_path = target.proc_path("root", NamespaceSet::of(Namespace::Mnt))?;
    let c_root = std::ffi::CString::new(root_path.as_os_str().as_bytes())
        .map_err(|_| crate::Error::NulByte { what: "path" })?;
    let root = sys::open(&c_root, libc::O_PATH | libc::O_DIRECTORY).map_err(PtyError::Root)?;
    // The root opened is the pinned process's, not a process that took its pid since.
    target.ensure_alive()?;
    let mut first_error = None;
    for path in PTMX_PATHS {
        match open_ptmx(root.as_fd(), path) {
            Ok(pty) => return Ok(pty),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| PtyError::Root(io::ErrorKind::NotFound.into())))
}

/// One path: look it up without following anything, check it, open it, take the peer.
fn open_ptmx(root: std::os::fd::BorrowedFd<'_>, path: &CStr) -> Result<TargetPty, PtyError> {
    let shown = || PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes()));
    let open_error = |source| PtyError::Open {
        path: shown(),
        source,
    };
    let found = match sys::tty::open_path_beneath(root, path) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(PtyError::NotPtmx {
                path: shown(),
                what: "a symbolic link (not followed)".to_owned(),
            })
        }
        other => other.map_err(open_error)?,
    };
    let (mode, rdev) = sys::tty::mode_and_rdev(found.as_fd()).map_err(open_error)?;
    let on_devpts = sys::tty::is_devpts(found.as_fd()).map_err(open_error)?;
    let device = (libc::major(rdev), libc::minor(rdev));
    let is_char = mode & libc::S_IFMT == libc::S_IFCHR;
    if !(is_char && on_devpts && device == PTMX_DEVICE) {
        return Err(PtyError::NotPtmx {
            path: shown(),
            what: describe(mode, device, on_devpts),
        });
    }
    let allocate = |step| {
        move |source| PtyError::Allocate {
            path: shown(),
            step,
            source,
        }
    };
    let master = sys::tty::reopen_read_write(found.as_fd()).map_err(allocate("open"))?;
    sys::tty::unlock_peer(master.as_fd()).map_err(allocate("unlock (TIOCSPTLCK)"))?;
    let peer = sys::tty::open_peer(master.as_fd()).map_err(allocate("peer (TIOCGPTPEER)"))?;
    Ok(TargetPty { master, peer })
}

/// What a file that is not the multiplexer is, for the error.
fn describe(mode: libc::mode_t, (major, minor): (u32, u32), on_devpts: bool) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFIFO => return "a FIFO".to_owned(),
        libc::S_IFREG => return "a regular file".to_owned(),
        libc::S_IFDIR => return "a directory".to_owned(),
        libc::S_IFSOCK => return "a socket".to_owned(),
        libc::S_IFLNK => return "a symbolic link".to_owned(),
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        _ => "a file of unknown type",
    };
    let fs = if on_devpts {
        "on devpts"
    } else {
        "outside devpts"
    };
    format!("{kind} {major}:{minor} {fs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_the_multiplexer_are_named() {
        assert_eq!(describe(libc::S_IFIFO | 0o644, (0, 0), false), "a FIFO");
        assert_eq!(
            describe(libc::S_IFCHR | 0o666, (5, 2), false),
            "character device 5:2 outside devpts"
        );
        assert_eq!(
            describe(libc::S_IFCHR | 0o666, (1, 3), true),
            "character device 1:3 on devpts"
        );
    }

    #[test]
    fn our_own_devpts_gives_a_pty_whose_peer_is_a_terminal() {
        // The test's own process as the target: its /dev/pts is the host's, a real devpts.
        let pid = crate::Pid::try_from(std::process::id() as i32).expect("our own pid");
        let target = Target::open(pid).expect("our own process opens as a target");
        match open_in_target(&target) {
            Ok(pty) => {
                use std::io::IsTerminal;
                assert!(pty.peer.is_terminal() && pty.master.is_terminal());
            }
            // No devpts mounted (a minimal build sandbox): a clear error, never a hang.
            Err(error) => eprintln!("skipped: {error}"),
        }
    }
}
