//! `NsGuard`: enter namespaces on the current thread, restore them on drop.

use std::cell::RefCell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::sys;
use crate::target::{Target, TargetId};

/// The calling thread's own namespaces of some kinds, kept open so that they can be
/// restored after entering a [`Target`]'s.
///
/// Saving opens `/proc/thread-self/ns/*` (a few microseconds each); keep one
/// `ThreadNamespaces` and call [`enter`](ThreadNamespaces::enter) repeatedly to enter
/// and leave a target at the cost of two `setns(2)` calls. The `&mut` borrow lets only
/// one guard use it at a time. Like the guard, it is bound to its thread (`!Send`).
pub struct ThreadNamespaces {
    kinds: NamespaceSet,
    saved: Vec<(Namespace, OwnedFd)>,
    _not_send: PhantomData<*const ()>,
}

/// The thread's root and working directory, which joining a mount namespace replaces.
struct SavedDirs {
    root: OwnedFd,
    cwd: OwnedFd,
}

impl ThreadNamespaces {
    /// Saves the calling thread's namespaces of the given kinds.
    ///
    /// User namespaces are refused ([`Error::SingleThreadedOnly`]): the kernel lets only a
    /// single-threaded process join one, and there would be no way back. Use
    /// [`Command`](crate::Command) to run a program in a user namespace.
    pub fn save(kinds: NamespaceSet) -> Result<ThreadNamespaces> {
        if kinds.contains(Namespace::User) {
            let target = TargetId::Pid(crate::Pid::this());
            return Err(Error::SingleThreadedOnly {
                target,
                namespace: Namespace::User,
            });
        }
        let mut saved = Vec::with_capacity(kinds.iter().count());
        for ns in kinds.iter() {
            let fd = open_own_namespace(ns.own_proc_name()).map_err(|source| {
                match source.raw_os_error() {
                    Some(libc::ENOENT) => Error::Unsupported { namespace: ns },
                    _ => Error::SaveOwn {
                        namespace: ns,
                        source,
                    },
                }
            })?;
            saved.push((ns, fd));
        }
        Ok(ThreadNamespaces {
            kinds,
            saved,
            _not_send: PhantomData,
        })
    }

    /// The kinds saved, which [`enter`](ThreadNamespaces::enter) enters.
    pub fn kinds(&self) -> NamespaceSet {
        self.kinds
    }

    /// Enters `target`'s namespaces of the saved kinds; the guard restores the saved ones.
    ///
    /// A single kind is entered through the target's namespace file (opened on first use and
    /// kept by the target), which the kernel switches to faster than a pidfd.
    pub fn enter<'h>(&'h mut self, target: &Target) -> Result<NsGuard<'h>> {
        NsGuard::enter_from(Home::Borrowed(self), target)
    }

    fn fd(&self, ns: Namespace) -> Option<BorrowedFd<'_>> {
        self.saved
            .iter()
            .find(|(kind, _)| *kind == ns)
            .map(|(_, fd)| fd.as_fd())
    }

    /// Returns the thread to the saved namespaces of `entered`, in reverse entering order,
    /// and to `dirs` after the mount namespace. A thread that cannot be restored must not
    /// run on: the process aborts.
    fn restore(&self, entered: NamespaceSet, dirs: Option<&SavedDirs>) {
        for ns in entered.iter().rev() {
            let Some(fd) = self.fd(ns) else {
                poisoned(ns, "namespace was not saved")
            };
            if let Err(e) = sys::setns(fd, ns.clone_flag()) {
                poisoned(ns, &e.to_string());
            }
            if ns == Namespace::Mnt {
                if let Some(dirs) = dirs {
                    if let Err(e) = dirs.restore() {
                        poisoned(ns, &format!("root/working directory: {e}"));
                    }
                }
            }
        }
    }
}

/// Opens the calling thread's namespace file `name` (`/proc/thread-self/ns/NAME`).
///
/// The thread's `/proc/thread-self/ns` directory is opened once per thread and kept: a
/// lookup relative to it costs about half of resolving the whole path, which is most of what
/// a cold enter + restore costs beyond the two `setns` calls. The directory names a task,
/// so it is reopened when the thread id differs (in a child forked by this thread).
fn open_own_namespace(name: &CStr) -> std::io::Result<OwnedFd> {
    thread_local! {
        static OWN_NS_DIR: RefCell<Option<(i32, OwnedFd)>> = const { RefCell::new(None) };
    }
    let cached = OWN_NS_DIR.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let tid = sys::gettid();
        if !matches!(&*slot, Some((owner, _)) if *owner == tid) {
            let dir = sys::open(c"/proc/thread-self/ns", libc::O_PATH | libc::O_DIRECTORY).ok()?;
            *slot = Some((tid, dir));
        }
        slot.as_ref()
            .map(|(_, dir)| sys::openat(dir.as_fd(), name, libc::O_RDONLY))
    });
    match cached {
        Ok(Some(result)) => result,
        // During thread teardown (or if the directory cannot be opened): the full path.
        _ => {
            let mut path = b"/proc/thread-self/ns/".to_vec();
            path.extend_from_slice(name.to_bytes_with_nul());
            let path = CStr::from_bytes_with_nul(&path)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            sys::open(path, libc::O_RDONLY)
        }
    }
}

impl SavedDirs {
    fn save() -> Result<SavedDirs> {
        let open_dir = |path: &std::ffi::CStr| {
            sys::open(path, libc::O_PATH | libc::O_DIRECTORY).map_err(|source| Error::SaveOwn {
                namespace: Namespace::Mnt,
                source,
            })
        };
        Ok(SavedDirs {
            root: open_dir(c"/")?,
            cwd: open_dir(c".")?,
        })
    }

    fn restore(&self) -> std::io::Result<()> {
        sys::fchdir(self.root.as_fd())?;
        sys::chroot_to_cwd()?;
        sys::fchdir(self.cwd.as_fd())
    }
}

enum Home<'h> {
    Owned(ThreadNamespaces),
    Borrowed(&'h mut ThreadNamespaces),
}

impl Home<'_> {
    fn get(&self) -> &ThreadNamespaces {
        match self {
            Home::Owned(home) => home,
            Home::Borrowed(home) => home,
        }
    }
}

/// While alive, the current thread is inside a target's namespaces; on drop (also during
/// a panic's unwinding) the thread's own namespaces are restored in reverse order.
///
/// ```no_run
/// use nsenter_core::{Namespace, NsGuard, Pid, Target};
/// let target = Target::open(Pid::try_from(1234)?)?;
/// {
///     let _inside = NsGuard::enter(&target, Namespace::Net | Namespace::Uts)?;
///     // netlink sockets opened here belong to the target's network namespace
/// } // back in our own namespaces
/// # Ok::<(), nsenter_core::Error>(())
/// ```
///
/// What each kind means for the thread inside:
/// - **net, uts, ipc, cgroup**: everything the thread does (sockets it opens, `gethostname`,
///   IPC objects, `/proc/self/cgroup`) is in the target's namespace. Sockets keep their
///   namespace after the guard is dropped.
/// - **pid**: the thread's own pid does not change; joining sets only where the thread's
///   *children* are created. A `std::process::Command` spawned inside the guard runs in
///   the target's pid namespace (its `getpid()` is small, it sees the target's `/proc` only
///   if the mount namespace is entered too).
/// - **mnt**: the thread first stops sharing its filesystem attributes with the other
///   threads (`unshare(CLONE_FS)`, which the kernel requires); from then on, for the rest
///   of the thread's life, its working directory is its own. Root and working directory are
///   saved and restored with the namespace.
/// - **time**: the kernel accepts it only while the process has one thread (EUSERS otherwise),
///   and the same holds for the way back: do not start threads while inside, or restoring
///   fails and the process aborts.
/// - **user**: refused, see [`ThreadNamespaces::save`].
///
/// Threads started while inside inherit the namespaces the thread is in.
///
/// The guard is bound to the thread that entered (`!Send`, `!Sync`), because `setns(2)`
/// changes only the calling thread. So it cannot be held across an `.await` in a
/// multi-threaded async runtime, whose tasks move between threads. This does not compile:
///
/// ```compile_fail
/// fn must_be_send<T: Send>() {}
/// must_be_send::<nsenter_core::NsGuard<'static>>();
/// ```
///
/// ```compile_fail
/// fn must_be_sync<T: Sync>() {}
/// must_be_sync::<nsenter_core::NsGuard<'static>>();
/// ```
///
/// Guards nest: drop them in reverse order of creation (as scopes do). If restoring fails,
/// or a guard is dropped while a guard created after it on the same thread is alive, the
/// thread would run on in the wrong namespaces: the process aborts instead.
#[must_use = "the namespaces are left as soon as the guard is dropped"]
pub struct NsGuard<'h> {
    home: Home<'h>,
    entered: NamespaceSet,
    /// Root and working directory at entry, when the mount namespace was entered.
    dirs: Option<SavedDirs>,
    /// This guard's place in the thread's stack of guards (1 = outermost).
    depth: u32,
    _not_send: PhantomData<*const ()>,
}

thread_local! {
    /// How many guards are alive on this thread: a guard must be the innermost when it is
    /// dropped, or restoring would return the thread to the wrong namespaces.
    static GUARD_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl NsGuard<'static> {
    /// Saves the current thread's namespaces of `kinds`, then enters `target`'s.
    pub fn enter(target: &Target, kinds: NamespaceSet) -> Result<NsGuard<'static>> {
        if kinds.contains(Namespace::User) {
            return Err(Error::SingleThreadedOnly {
                target: target.id(),
                namespace: Namespace::User,
            });
        }
        let home = ThreadNamespaces::save(kinds)?;
        NsGuard::enter_from(Home::Owned(home), target)
    }
}

impl<'h> NsGuard<'h> {
    fn enter_from(home: Home<'h>, target: &Target) -> Result<NsGuard<'h>> {
        let kinds = home.get().kinds;
        let via = match (&home, kinds.iter().count()) {
            (Home::Borrowed(_), 1) => Via::NamespaceFiles,
            _ => Via::PidfdIfPinned,
        };
        // Saved now, not with the namespaces: the thread may have changed directory since.
        let dirs = if kinds.contains(Namespace::Mnt) {
            Some(SavedDirs::save()?)
        } else {
            None
        };
        match enter_thread(target, kinds, via) {
            Ok(()) => {
                let depth = GUARD_DEPTH.with(|d| {
                    d.set(d.get() + 1);
                    d.get()
                });
                Ok(NsGuard {
                    home,
                    entered: kinds,
                    dirs,
                    depth,
                    _not_send: PhantomData,
                })
            }
            Err((entered, error)) => {
                home.get().restore(entered, dirs.as_ref());
                Err(error)
            }
        }
    }

    /// The namespaces entered.
    pub fn entered(&self) -> NamespaceSet {
        self.entered
    }
}

impl Drop for NsGuard<'_> {
    fn drop(&mut self) {
        let innermost = GUARD_DEPTH
            .try_with(|d| d.get() == self.depth)
            .unwrap_or(true);
        if !innermost {
            let first = self.entered.iter().next().unwrap_or(Namespace::Net);
            poisoned(first, "guards on this thread were dropped out of order");
        }
        self.home.get().restore(self.entered, self.dirs.as_ref());
        let _ = GUARD_DEPTH.try_with(|d| d.set(self.depth - 1));
    }
}

/// How [`enter_thread`] joins the namespaces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// One `setns(pidfd, flags)` when the target has a pidfd (atomic for several kinds).
    PidfdIfPinned,
    /// The target's namespace files, one `setns` each: cheaper when the files are kept open
    /// and reused.
    NamespaceFiles,
}

/// Enters `target`'s namespaces of `kinds` on the calling thread, without saving anything.
/// On failure returns what was already entered, so the caller can restore it.
pub(crate) fn enter_thread(
    target: &Target,
    kinds: NamespaceSet,
    via: Via,
) -> std::result::Result<(), (NamespaceSet, Error)> {
    let id = || target.id();
    if kinds.contains(Namespace::User) {
        let error = Error::SingleThreadedOnly {
            target: id(),
            namespace: Namespace::User,
        };
        return Err((NamespaceSet::EMPTY, error));
    }
    if kinds.is_empty() {
        return Ok(());
    }
    if kinds.contains(Namespace::Mnt) {
        // setns(CLONE_NEWNS) fails with EINVAL while the fs struct is shared with other threads.
        sys::unshare_fs().map_err(|e| {
            (
                NamespaceSet::EMPTY,
                Error::from_setns(id(), Namespace::Mnt.into(), e),
            )
        })?;
    }
    if let (Some(pidfd), Via::PidfdIfPinned) = (target.pidfd(), via) {
        // The kernel answers ESRCH when the process is gone.
        // One call, applied atomically by the kernel: nothing is half entered on failure.
        return sys::setns(pidfd, kinds.clone_flags())
            .map_err(|e| (NamespaceSet::EMPTY, Error::from_setns(id(), kinds, e)));
    }
    // Files: open every one before entering any, so that the target cannot change under us
    // half-way. Files kept from earlier use would still enter the namespaces of a process
    // that has exited since: say so instead, as the pidfd path does.
    target
        .ensure_alive()
        .map_err(|e| (NamespaceSet::EMPTY, e))?;
    let mut files = Vec::with_capacity(8);
    for ns in kinds.iter() {
        files.push((
            ns,
            target
                .namespace_file(ns)
                .map_err(|e| (NamespaceSet::EMPTY, e))?,
        ));
    }
    let mut entered = NamespaceSet::EMPTY;
    for (ns, file) in files {
        sys::setns(file, ns.clone_flag())
            .map_err(|e| (entered, Error::from_setns(id(), ns.into(), e)))?;
        entered = entered.with(ns);
    }
    Ok(())
}

/// The thread cannot return to its namespaces: running on would do the caller's work in a
/// container's namespaces. Say why on stderr (the one time this library writes there) and
/// abort.
fn poisoned(ns: Namespace, why: &str) -> ! {
    eprintln!(
        "nsenter-core: cannot restore this thread's {ns} namespace ({why}); \
         aborting rather than running on inside another namespace"
    );
    std::process::abort()
}
