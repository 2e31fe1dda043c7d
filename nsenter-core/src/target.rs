//! A pinned target process: a pidfd plus its namespace files, safe against pid recycling.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::pid::Pid;
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
            _ => Error::SaveOwn {
                namespace: ns,
                source,
            },
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
    Ok(NamespaceId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// What a [`Target`] is, as errors and messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetId {
    /// A process: `pid 1234`.
    Pid(Pid),
    /// A namespace file, such as an `ip netns` name's `/run/netns/NAME`.
    File(PathBuf),
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetId::Pid(pid) => write!(f, "pid {pid}"),
            TargetId::File(path) => write!(f, "namespace file {}", path.display()),
        }
    }
}

/// How a [`Target`] is kept from being confused with a later process that reuses its pid.
enum Pin {
    /// A pidfd (Linux >= 5.8): refers to this very process until it is reaped.
    Pidfd(Pid, OwnedFd),
    /// No pidfd: the start time (clock ticks after boot) read when the target was opened,
    /// compared again after every namespace file is opened.
    StartTime(Pid, u64),
    /// Not a process but one namespace file, held open (it keeps the namespace alive).
    File(PathBuf, Namespace),
}

/// A process whose namespaces can be entered, pinned so that a recycled pid is never entered.
///
/// [`Target::open`] takes a pidfd; namespace files (`/proc/PID/ns/*`) are opened on first
/// use and kept, and after each open the pidfd is checked to still refer to a live
/// process, so every file held belongs to the process that was pinned. Entering uses
/// one `setns(pidfd, flags)` call, which the kernel applies atomically.
///
/// A target can also be a single namespace file ([`Target::from_namespace_file`]), such as
/// the network namespace of `ip netns add NAME` (`/run/netns/NAME`).
///
/// `Target` is `Send + Sync`: open it once, enter it from any thread, as often as needed.
pub struct Target {
    pin: Pin,
    files: [OnceLock<OwnedFd>; 8],
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pin = match self.pin {
            Pin::Pidfd(..) => "pidfd",
            Pin::StartTime(..) => "start-time",
            Pin::File(..) => "file",
        };
        f.debug_struct("Target")
            .field("id", &self.id())
            .field("pin", &pin)
            .finish()
    }
}

impl Target {
    /// Pins process `pid` with a pidfd (or, on kernels before 5.8, by its start time).
    pub fn open(pid: Pid) -> Result<Target> {
        match sys::pidfd_open(pid.get()) {
            Ok(pidfd) => Ok(Target::with_pin(Pin::Pidfd(pid, pidfd))),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Target::open_without_pidfd(pid),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(Error::NotAProcess { pid }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(Error::NoSuchProcess { pid }),
            Err(source) => Err(Error::Pin { pid, source }),
        }
    }

    /// Pins process `pid` without a pidfd: by its start time, re-checked after each
    /// namespace file is opened, and entered one namespace file at a time. This is the
    /// fallback for kernels before 5.8; it is public so it can be chosen and tested.
    pub fn open_without_pidfd(pid: Pid) -> Result<Target> {
        let start = start_time(pid.get()).map_err(|_| Error::NoSuchProcess { pid })?;
        Ok(Target::with_pin(Pin::StartTime(pid, start)))
    }

    /// Opens a namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`, a bind mount of one)
    /// as a target that holds just that namespace; its kind is asked of the kernel
    /// (`NS_GET_NSTYPE`). The path is the caller's to name: it is opened as given.
    pub fn from_namespace_file(path: impl AsRef<Path>) -> Result<Target> {
        let path = path.as_ref().to_path_buf();
        let not_ns = |source| Error::NotANamespaceFile {
            path: path.clone(),
            source,
        };
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
            what: "namespace file path",
        })?;
        // Look before opening for real: a FIFO would block and a device could act on open.
        let handle = sys::open(&c_path, libc::O_PATH).map_err(not_ns)?;
        if !sys::is_nsfs(handle.as_fd()).map_err(not_ns)? {
            return Err(not_ns(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not on nsfs",
            )));
        }
        let reopen = CString::new(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&handle)
        ))
        .map_err(|_| Error::NulByte {
            what: "namespace file path",
        })?;
        let fd = sys::open(&reopen, libc::O_RDONLY).map_err(not_ns)?;
        let flag = sys::namespace_type(fd.as_fd()).map_err(not_ns)?;
        let kind = Namespace::ALL
            .into_iter()
            .find(|ns| ns.clone_flag() == flag)
            .ok_or_else(|| {
                not_ns(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unknown namespace type",
                ))
            })?;
        let target = Target::with_pin(Pin::File(path, kind));
        let _ = target.files[kind as usize].set(fd);
        Ok(target)
    }

    fn with_pin(pin: Pin) -> Target {
        Target {
            pin,
            files: Default::default(),
        }
    }

    /// The pid (in the caller's pid namespace); `None` for a namespace-file target.
    pub fn pid(&self) -> Option<Pid> {
        match self.pin {
            Pin::Pidfd(pid, _) | Pin::StartTime(pid, _) => Some(pid),
            Pin::File(..) => None,
        }
    }

    /// The pid as a number for `/proc` paths (0, which names no process, for a namespace
    /// file: those paths are built for process targets only).
    fn raw_pid(&self) -> i32 {
        self.pid().map_or(0, Pid::get)
    }

    /// What the target is, as messages name it.
    pub fn id(&self) -> TargetId {
        match &self.pin {
            Pin::Pidfd(pid, _) | Pin::StartTime(pid, _) => TargetId::Pid(*pid),
            Pin::File(path, _) => TargetId::File(path.clone()),
        }
    }

    /// The namespace kinds the target has: all the kernel supports for a process, one for a
    /// namespace file.
    pub fn kinds(&self) -> NamespaceSet {
        match &self.pin {
            Pin::File(_, kind) => NamespaceSet::of(*kind),
            _ => Namespace::ALL
                .into_iter()
                .filter(|ns| kernel_supports(*ns))
                .collect(),
        }
    }

    /// The pidfd, when the target was pinned with one.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        match &self.pin {
            Pin::Pidfd(_, fd) => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// Whether the pinned process still exists (it may be a zombie). A namespace file
    /// is always alive: the open file keeps its namespace.
    pub fn is_alive(&self) -> bool {
        match &self.pin {
            Pin::Pidfd(_, fd) => sys::pidfd_is_alive(fd.as_fd()),
            Pin::StartTime(_, start) => start_time(self.raw_pid()).is_ok_and(|now| now == *start),
            Pin::File(..) => true,
        }
    }

    /// Whether the process is in a frozen cgroup (`docker pause`: v1 `freezer.state`, v2
    /// `cgroup.events`): entering it, joining its cgroup or stopping it to read its state
    /// would wait until it is thawed. A namespace file is never frozen; an unreadable cgroup
    /// counts as not frozen (the kernel then refuses what follows by itself).
    pub fn is_frozen(&self) -> bool {
        match self.pin {
            Pin::File(..) => false,
            _ => crate::cgroup::is_frozen(self.raw_pid()).unwrap_or(false),
        }
    }

    pub(crate) fn ensure_alive(&self) -> Result<()> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(Error::TargetExited { target: self.id() })
        }
    }

    /// The pid of a process target, checked to be alive; `wanted` names what needs a
    /// process, for the error of a namespace-file target.
    pub(crate) fn live_pid(&self, wanted: NamespaceSet) -> Result<Pid> {
        match &self.pin {
            Pin::File(_, has) => Err(Error::NotInTarget {
                target: self.id(),
                has: *has,
                wanted,
            }),
            Pin::Pidfd(pid, _) | Pin::StartTime(pid, _) => {
                self.ensure_alive()?;
                Ok(*pid)
            }
        }
    }

    /// `/proc/PID/NAME` of a live process target (see [`live_pid`](Target::live_pid)).
    pub(crate) fn proc_path(&self, name: &str, wanted: NamespaceSet) -> Result<PathBuf> {
        Ok(PathBuf::from(format!(
            "/proc/{}/{name}",
            self.live_pid(wanted)?
        )))
    }

    /// The process's environment (`/proc/PID/environ`), read from the pinned process: what
    /// `nsdebug enter --env` gives the program. Entries without `=` are skipped.
    pub fn environment(&self) -> Result<Vec<(std::ffi::OsString, std::ffi::OsString)>> {
        use std::os::unix::ffi::OsStringExt;
        let path = self.proc_path("environ", NamespaceSet::EMPTY)?;
        let raw = std::fs::read(&path).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::TargetExited { target: self.id() },
            _ => Error::OpenPath { path, source },
        })?;
        self.ensure_alive()?;
        Ok(raw
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let eq = entry.iter().position(|b| *b == b'=')?;
                Some((
                    std::ffi::OsString::from_vec(entry[..eq].to_vec()),
                    std::ffi::OsString::from_vec(entry[eq + 1..].to_vec()),
                ))
            })
            .collect())
    }

    /// Reads a regular file of the target's filesystem (`/etc/passwd`, say), resolved inside
    /// its root as the target sees it (`openat2` `RESOLVE_IN_ROOT`: its `..` and symlinks never
    /// lead out, magic links are refused), at most `limit` bytes.
    pub fn read_file(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        use std::io::Read;
        let root_path = self.proc_path("root", NamespaceSet::of(Namespace::Mnt))?;
        let open_error = |source| Error::OpenPath {
            path: PathBuf::from(path),
            source,
        };
        let c_root = CString::new(root_path.as_os_str().as_bytes())
            .map_err(|_| Error::NulByte { what: "path" })?;
        let root = sys::open(&c_root, libc::O_PATH | libc::O_DIRECTORY).map_err(open_error)?;
        let c_path = CString::new(path).map_err(|_| Error::NulByte { what: "path" })?;
        let file = sys::open_in_root(root.as_fd(), &c_path).map_err(open_error)?;
        let mut file = std::fs::File::from(file);
        if !file.metadata().map_err(open_error)?.is_file() {
            return Err(open_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(open_error)?;
        self.ensure_alive()?;
        Ok(bytes)
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
            None => Err(Error::TargetExited { target: self.id() }),
        }
    }

    fn open_namespace_file(&self, ns: Namespace) -> Result<OwnedFd> {
        if let Pin::File(_, has) = &self.pin {
            return Err(Error::NotInTarget {
                target: self.id(),
                has: *has,
                wanted: ns.into(),
            });
        }
        let path = proc_ns_path(self.raw_pid(), ns.proc_name());
        let fd =
            sys::open(&path, libc::O_RDONLY).map_err(|source| match source.raw_os_error() {
                Some(libc::ENOENT) if !kernel_supports(ns) => Error::Unsupported { namespace: ns },
                // A zombie has no namespaces left; a reaped process has no /proc entry.
                Some(libc::ENOENT) | Some(libc::ESRCH) => Error::TargetExited { target: self.id() },
                Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                    target: self.id(),
                    namespaces: ns.into(),
                },
                _ => Error::OpenNamespace {
                    target: self.id(),
                    namespace: ns,
                    source,
                },
            })?;
        // The file was opened by pid: it belongs to the pinned process only if that process
        // still exists now (a pid is reused only after its process is reaped).
        self.ensure_alive()?;
        Ok(fd)
    }

    /// The identity of the target's namespace of kind `ns`.
    pub fn namespace_id(&self, ns: Namespace) -> Result<NamespaceId> {
        let file = self.namespace_file(ns)?;
        NamespaceId::of_file(file).map_err(|source| Error::OpenNamespace {
            target: self.id(),
            namespace: ns,
            source,
        })
    }

    /// The namespaces (among those both have) in which this target and `other` are the
    /// same, e.g. `Net` for a container run with `--net=host` compared to PID 1.
    pub fn shared_with(&self, other: &Target) -> Result<NamespaceSet> {
        let mut shared = NamespaceSet::EMPTY;
        for ns in self.kinds().intersection(other.kinds()).iter() {
            if self.namespace_id(ns)? == other.namespace_id(ns)? {
                shared = shared.with(ns);
            }
        }
        Ok(shared)
    }

    /// The namespaces (among those it has) in which this target differs from the calling
    /// thread: what `nsenter --all` enters.
    pub fn differing_from_current_thread(&self) -> Result<NamespaceSet> {
        let mut differ = NamespaceSet::EMPTY;
        for ns in self.kinds().iter() {
            if self.namespace_id(ns)? != NamespaceId::of_current_thread(ns)? {
                differ = differ.with(ns);
            }
        }
        Ok(differ)
    }
}

/// Whether the running kernel has namespaces of kind `ns`.
pub fn kernel_supports(ns: Namespace) -> bool {
    std::path::Path::new("/proc/self/ns")
        .join(ns.proc_name())
        .exists()
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
        let me = Target::open(Pid::this()).expect("open self");
        let again = Target::open_without_pidfd(Pid::this()).expect("open self");
        let supported: NamespaceSet = Namespace::ALL
            .into_iter()
            .filter(|ns| kernel_supports(*ns))
            .collect();
        assert_eq!(me.shared_with(&again).expect("compare"), supported);
        assert!(me
            .differing_from_current_thread()
            .expect("compare")
            .is_empty());
    }

    #[test]
    fn bad_pids_are_typed_errors() {
        assert!(matches!(
            Pid::try_from(0),
            Err(Error::InvalidPid { raw: 0 })
        ));
        assert!(matches!(
            Pid::try_from(-5),
            Err(Error::InvalidPid { raw: -5 })
        ));
        // Above the largest pid the kernel can hand out: never existed.
        let never = Pid::try_from(i32::MAX).expect("a pid");
        assert!(matches!(
            Target::open(never),
            Err(Error::NoSuchProcess { .. })
        ));
        assert!(matches!(
            Target::open_without_pidfd(never),
            Err(Error::NoSuchProcess { .. })
        ));
    }

    #[test]
    fn a_reaped_child_is_reported_as_exited() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let target =
            Target::open(Pid::try_from(child.id() as i32).expect("a pid")).expect("open child");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(!target.is_alive());
        assert!(matches!(
            target.namespace_id(Namespace::Net),
            Err(Error::TargetExited { .. })
        ));
    }

    #[test]
    fn a_namespace_file_is_a_target_of_its_own_kind_only() {
        let target = Target::from_namespace_file("/proc/self/ns/uts").expect("open ns file");
        assert_eq!(target.kinds(), NamespaceSet::of(Namespace::Uts));
        assert_eq!(target.pid(), None);
        let error = target.namespace_file(Namespace::Net).unwrap_err();
        assert_eq!(
            error.to_string(),
            "namespace file /proc/self/ns/uts is a uts namespace: it has no net namespace"
        );
        let not_ns = Target::from_namespace_file("/etc/hostname").unwrap_err();
        assert!(
            matches!(not_ns, Error::NotANamespaceFile { .. }),
            "{not_ns:?}"
        );
        assert!(Target::from_namespace_file("/no/such/file").is_err());
    }
}
