//! The eight Linux namespace kinds and sets of them.

use std::fmt;

/// One kind of Linux namespace.
///
/// The declaration order is the order in which namespaces are entered one by one
/// (util-linux nsenter's order): user first, so that a caller gaining privilege through
/// the user namespace has it for the others; mount late, because it changes the root
/// and working directory; time last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// User namespace (`CLONE_NEWUSER`): uid/gid mappings and capabilities.
    User,
    /// Cgroup namespace (`CLONE_NEWCGROUP`): the cgroup root seen in `/proc/self/cgroup`.
    Cgroup,
    /// IPC namespace (`CLONE_NEWIPC`): System V IPC and POSIX message queues.
    Ipc,
    /// UTS namespace (`CLONE_NEWUTS`): hostname and NIS domain name.
    Uts,
    /// Network namespace (`CLONE_NEWNET`): links, addresses, routes, sockets.
    Net,
    /// PID namespace (`CLONE_NEWPID`): joining it affects only children created afterwards.
    Pid,
    /// Mount namespace (`CLONE_NEWNS`): the mount table, root and working directory.
    Mnt,
    /// Time namespace (`CLONE_NEWTIME`, Linux >= 5.6): monotonic and boot-time clock offsets.
    Time,
}

/// `CLONE_NEWTIME`, spelled out because older libc crates lack it.
const CLONE_NEWTIME: libc::c_int = 0x0000_0080;

impl Namespace {
    /// Every kind, in entering order.
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Mnt,
        Namespace::Time,
    ];

    /// The file name under `/proc/PID/ns/`.
    pub const fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Mnt => "mnt",
            Namespace::Time => "time",
        }
    }

    /// The `CLONE_NEW*` flag that names this kind to `setns(2)`, `unshare(2)` and `clone(2)`
    /// (the kernel's `int`).
    pub const fn clone_flag(self) -> i32 {
        match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Mnt => libc::CLONE_NEWNS,
            Namespace::Time => CLONE_NEWTIME,
        }
    }

    /// Parses a `/proc/PID/ns` name (`"net"`, `"mnt"`, ...); `"mount"` is accepted too.
    pub fn from_proc_name(name: &str) -> Option<Namespace> {
        match name {
            "mount" => Some(Namespace::Mnt),
            _ => Namespace::ALL.into_iter().find(|ns| ns.proc_name() == name),
        }
    }

    /// Whether the kernel lets only a single-threaded process join this kind
    /// (`setns(2)`: EINVAL for user, EUSERS for time). Such kinds cannot be entered by a
    /// guard or the closure runner; the command runner joins them in its forked child.
    pub const fn needs_single_thread(self) -> bool {
        matches!(self, Namespace::User | Namespace::Time)
    }

    /// The name under `/proc/thread-self/ns/` of the namespace that `setns(2)` of this
    /// kind replaces, i.e. what must be saved to restore it. For pid that is
    /// `pid_for_children`: joining a pid namespace changes only where children go.
    pub(crate) const fn own_proc_name(self) -> &'static std::ffi::CStr {
        match self {
            Namespace::User => c"user",
            Namespace::Cgroup => c"cgroup",
            Namespace::Ipc => c"ipc",
            Namespace::Uts => c"uts",
            Namespace::Net => c"net",
            Namespace::Pid => c"pid_for_children",
            Namespace::Mnt => c"mnt",
            Namespace::Time => c"time",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// A set of namespace kinds; iterates in entering order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// No namespace.
    pub const EMPTY: NamespaceSet = NamespaceSet(0);
    /// All eight kinds.
    pub const ALL: NamespaceSet = NamespaceSet(u8::MAX);

    /// A set holding exactly `ns`.
    pub const fn of(ns: Namespace) -> NamespaceSet {
        NamespaceSet(ns.bit())
    }

    /// This set plus `ns`.
    #[must_use]
    pub const fn with(self, ns: Namespace) -> NamespaceSet {
        NamespaceSet(self.0 | ns.bit())
    }

    /// This set minus `ns`.
    #[must_use]
    pub const fn without(self, ns: Namespace) -> NamespaceSet {
        NamespaceSet(self.0 & !ns.bit())
    }

    /// Whether `ns` is in the set.
    pub const fn contains(self, ns: Namespace) -> bool {
        self.0 & ns.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in entering order.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |ns| self.contains(*ns))
    }

    /// The union of the sets' `CLONE_NEW*` flags, as `setns(pidfd, flags)` takes them.
    pub fn clone_flags(self) -> i32 {
        self.iter().fold(0, |flags, ns| flags | ns.clone_flag())
    }

    /// The kinds in both sets.
    #[must_use]
    pub const fn intersection(self, other: NamespaceSet) -> NamespaceSet {
        NamespaceSet(self.0 & other.0)
    }

    /// The kinds in this set and not in `other`.
    #[must_use]
    pub const fn difference(self, other: NamespaceSet) -> NamespaceSet {
        NamespaceSet(self.0 & !other.0)
    }
}

impl From<Namespace> for NamespaceSet {
    fn from(ns: Namespace) -> Self {
        NamespaceSet::of(ns)
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        iter.into_iter()
            .fold(NamespaceSet::EMPTY, NamespaceSet::with)
    }
}

impl std::ops::BitOr<Namespace> for NamespaceSet {
    type Output = NamespaceSet;
    fn bitor(self, rhs: Namespace) -> NamespaceSet {
        self.with(rhs)
    }
}

impl std::ops::BitOr for Namespace {
    type Output = NamespaceSet;
    fn bitor(self, rhs: Namespace) -> NamespaceSet {
        NamespaceSet::of(self).with(rhs)
    }
}

impl std::ops::BitOr for NamespaceSet {
    type Output = NamespaceSet;
    fn bitor(self, rhs: NamespaceSet) -> NamespaceSet {
        NamespaceSet(self.0 | rhs.0)
    }
}

/// Formats as `net+uts`, or `none` for the empty set.
impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, ns) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(ns.proc_name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamespaceSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_flags_are_distinct() {
        let mut seen = 0;
        for ns in Namespace::ALL {
            assert_eq!(Namespace::from_proc_name(ns.proc_name()), Some(ns));
            assert_eq!(seen & ns.clone_flag(), 0, "{ns} flag overlaps another");
            seen |= ns.clone_flag();
        }
        assert_eq!(Namespace::from_proc_name("mount"), Some(Namespace::Mnt));
        assert_eq!(Namespace::from_proc_name("bogus"), None);
    }

    #[test]
    fn set_iterates_in_entering_order_and_displays() {
        let set = Namespace::Mnt | Namespace::User;
        let set = set | Namespace::Net;
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Namespace::User, Namespace::Net, Namespace::Mnt]
        );
        assert_eq!(set.to_string(), "user+net+mnt");
        assert_eq!(
            set.clone_flags(),
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS
        );
        assert_eq!(set.without(Namespace::User).to_string(), "net+mnt");
        assert_eq!(NamespaceSet::EMPTY.to_string(), "none");
        assert_eq!(NamespaceSet::ALL.iter().count(), 8);
    }
}
