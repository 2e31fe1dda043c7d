//! A pinned target process: a pidfd plus its namespace files, safe against pid recycling.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::sys;

/// The identity of one namespace: the device and inode of its nsfs file.
///
/// Two processes are in the same namespace exactly when these are equal; this is what
/// `lsns` and `ls -l /proc/PID/ns` show (the inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceId {
    /// `st_dev` of the namespace file (the nsfs device).
    pub dev: u64,
    /// `st_ino` of the namespace file: the number shown in `net:[4026531840]`.
    pub ino: u64,
}

impl NamespaceId {
    /// The namespace of kind `ns` that the calling thread is in now
    /// (from `/proc/thread-self/ns`, not `/proc/self`, which names the main thread).
    pub fn of_current_thread(ns: Namespace) -> Result<NamespaceId> {
        let path = format!("/proc/thread-self/ns/{}", ns.proc_name());
        stat_identity(&path).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => Error::Unsupported { namespace: ns },
            _ => Error::SaveOwn { namespace: ns, source },
        })
    }

    /// Reads the identity of an already opened namespace file.
    pub fn of_file(file: BorrowedFd<'_>) -> io::Result<NamespaceId> {
        let (dev, ino) = sys::fstat_identity(file)?;
        Ok(NamespaceId { dev, ino })
    }
}

impl fmt::Display for NamespaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ino)
    }
}

fn stat_identity(path: &str) -> io::Result<NamespaceId> {
    let meta = std::fs::metadata(path)?;
    use std::os::unix::fs::MetadataExt;
    Ok(NamespaceId { dev: meta.dev(), ino: meta.ino() })
}

/// How a [`Target`] is kept from being confused with a later process that reuses its pid.
enum Pin {
    /// A pidfd (Linux >= 5.8): refers to this very process until it is reaped.
    Pidfd(OwnedFd),
    /// No pidfd: the start time (clock ticks after boot) read when the target was opened,
    /// compared again after every namespace file is opened.
    StartTime(u64),
}

/// A process whose namespaces can be entered, pinned so that a recycled pid is never entered.
///
/// [`Target::open`] takes a pidfd; namespace files (`/proc/PID/ns/*`) are opened on first
/// use and kept, and after each open the pidfd is checked to still refer to a live
/// process, so every file held belongs to the process that was pinned. Entering uses
/// one `setns(pidfd, flags)` call, which the kernel applies atomically.
///
/// `Target` is `Send + Sync`: open it once, enter it from any thread, as often as needed.
pub struct Target {
    pid: i32,
    pin: Pin,
    files: [OnceLock<OwnedFd>; 8],
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pin = match self.pin {
            Pin::Pidfd(_) => "pidfd",
            Pin::StartTime(_) => "start-time",
        };
        f.debug_struct("Target").field("pid", &self.pid).field("pin", &pin).finish()
    }
}

impl Target {
    /// Pins process `pid` with a pidfd (or, on kernels before 5.8, by its start time).
    pub fn open(pid: i32) -> Result<Target> {
        if pid <= 0 {
            return Err(Error::NoSuchProcess { pid });
        }
        match sys::pidfd_open(pid) {
            Ok(pidfd) => Ok(Target::with_pin(pid, Pin::Pidfd(pidfd))),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Target::open_without_pidfd(pid),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(Error::NotAProcess { pid }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(Error::NoSuchProcess { pid }),
            Err(source) => Err(Error::Pin { pid, source }),
        }
    }

    /// Pins process `pid` without a pidfd: by its start time, re-checked after each
    /// namespace file is opened, and entered one namespace file at a time. This is the
    /// fallback for kernels before 5.8; it is public so it can be chosen and tested.
    pub fn open_without_pidfd(pid: i32) -> Result<Target> {
        if pid <= 0 {
            return Err(Error::NoSuchProcess { pid });
        }
        let start = start_time(pid).map_err(|_| Error::NoSuchProcess { pid })?;
        Ok(Target::with_pin(pid, Pin::StartTime(start)))
    }

    fn with_pin(pid: i32, pin: Pin) -> Target {
        Target { pid, pin, files: Default::default() }
    }

    /// The pid (in the caller's pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd, when the target was pinned with one.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        match &self.pin {
            Pin::Pidfd(fd) => Some(fd.as_fd()),
            Pin::StartTime(_) => None,
        }
    }

    /// Whether the pinned process still exists (it may be a zombie).
    pub fn is_alive(&self) -> bool {
        match &self.pin {
            Pin::Pidfd(fd) => sys::pidfd_is_alive(fd.as_fd()),
            Pin::StartTime(start) => start_time(self.pid).is_ok_and(|now| now == *start),
        }
    }

    /// The process's start time in clock ticks after boot (`/proc/PID/stat` field 22),
    /// checked to belong to the pinned process.
    pub fn start_time(&self) -> Result<u64> {
        let start = start_time(self.pid).map_err(|_| Error::TargetExited { pid: self.pid })?;
        self.ensure_alive()?;
        Ok(start)
    }

    fn ensure_alive(&self) -> Result<()> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(Error::TargetExited { pid: self.pid })
        }
    }

    /// The target's namespace file of kind `ns` (`/proc/PID/ns/NAME`), opened on first use
    /// and kept for the life of the `Target`.
    pub fn namespace_file(&self, ns: Namespace) -> Result<BorrowedFd<'_>> {
        let slot = &self.files[ns as usize];
        if let Some(fd) = slot.get() {
            return Ok(fd.as_fd());
        }
        let fd = self.open_namespace_file(ns)?;
        // Another thread may have won the race; either file is as good, keep the first.
        let _ = slot.set(fd);
        match slot.get() {
            Some(fd) => Ok(fd.as_fd()),
            None => Err(Error::TargetExited { pid: self.pid }),
        }
    }

    fn open_namespace_file(&self, ns: Namespace) -> Result<OwnedFd> {
        let path = proc_ns_path(self.pid, ns.proc_name());
        let fd = sys::open(&path, libc::O_RDONLY).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) if !kernel_supports(ns) => Error::Unsupported { namespace: ns },
            // A zombie has no namespaces left; a reaped process has no /proc entry.
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::TargetExited { pid: self.pid },
            Some(libc::EACCES) | Some(libc::EPERM) => {
                Error::PermissionDenied { pid: self.pid, namespaces: ns.into() }
            }
            _ => Error::OpenNamespace { pid: self.pid, namespace: ns, source },
        })?;
        // The file was opened by pid: it belongs to the pinned process only if that process
        // still exists now (a pid is reused only after its process is reaped).
        self.ensure_alive()?;
        Ok(fd)
    }

    /// The identity of the target's namespace of kind `ns`.
    pub fn namespace_id(&self, ns: Namespace) -> Result<NamespaceId> {
        let file = self.namespace_file(ns)?;
        NamespaceId::of_file(file)
            .map_err(|source| Error::OpenNamespace { pid: self.pid, namespace: ns, source })
    }

    /// The namespaces (among those the kernel supports) in which this target and `other`
    /// are the same, e.g. `Net` for a container run with `--net=host` compared to PID 1.
    pub fn shared_with(&self, other: &Target) -> Result<NamespaceSet> {
        let mut shared = NamespaceSet::EMPTY;
        for ns in Namespace::ALL.into_iter().filter(|ns| kernel_supports(*ns)) {
            if self.namespace_id(ns)? == other.namespace_id(ns)? {
                shared = shared.with(ns);
            }
        }
        Ok(shared)
    }

    /// The namespaces (among those the kernel supports) in which this target differs from
    /// the calling thread: what `nsenter --all` enters.
    pub fn differing_from_current_thread(&self) -> Result<NamespaceSet> {
        let mut differ = NamespaceSet::EMPTY;
        for ns in Namespace::ALL.into_iter().filter(|ns| kernel_supports(*ns)) {
            if self.namespace_id(ns)? != NamespaceId::of_current_thread(ns)? {
                differ = differ.with(ns);
            }
        }
        Ok(differ)
    }
}

/// Whether the running kernel has namespaces of kind `ns`.
pub fn kernel_supports(ns: Namespace) -> bool {
    std::path::Path::new("/proc/self/ns").join(ns.proc_name()).exists()
}

fn proc_ns_path(pid: i32, name: &str) -> CString {
    // Digits and a fixed name: no NUL byte can occur.
    CString::new(format!("/proc/{pid}/ns/{name}")).unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat`: start time in clock ticks after boot.
fn start_time(pid: i32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/PID/stat");
    let after_comm = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    after_comm
        .split_whitespace()
        .nth(19)
        .and_then(|field| field.parse().ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_shares_every_namespace_with_itself() {
        let me = Target::open(std::process::id() as i32).expect("open self");
        let again = Target::open_without_pidfd(std::process::id() as i32).expect("open self");
        let supported: NamespaceSet = Namespace::ALL.into_iter().filter(|ns| kernel_supports(*ns)).collect();
        assert_eq!(me.shared_with(&again).expect("compare"), supported);
        assert!(me.start_time().expect("start time") > 0);
    }

    #[test]
    fn bad_pids_are_typed_errors() {
        assert!(matches!(Target::open(0), Err(Error::NoSuchProcess { pid: 0 })));
        assert!(matches!(Target::open(-5), Err(Error::NoSuchProcess { pid: -5 })));
        // Above the largest pid the kernel can hand out: never existed.
        assert!(matches!(Target::open(i32::MAX), Err(Error::NoSuchProcess { .. })));
        assert!(matches!(Target::open_without_pidfd(i32::MAX), Err(Error::NoSuchProcess { .. })));
    }

    #[test]
    fn a_reaped_child_is_reported_as_exited() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let target = Target::open(child.id() as i32).expect("open child");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(!target.is_alive());
        assert!(matches!(target.namespace_id(Namespace::Net), Err(Error::TargetExited { .. })));
    }
}
