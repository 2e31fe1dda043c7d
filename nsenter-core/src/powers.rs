//! One model of what a container can do: every process *and every thread* of the target's
//! pid namespace, of the pid namespaces nested in it, and of its cgroups, each with its
//! credentials, capability sets, NoNewPrivs, seccomp mode and user namespace.
//!
//! A hostile container splits its powers between a harmless-looking pid 1 and a helper (a
//! process, a thread that kept what its main thread dropped, a process in a nested pid
//! namespace), so a decision about what it can do reads all of them, never one. What cannot
//! be read is kept as [`Unreadable`] and counts as the most powerful. The same model serves
//! the refusal to expose a host program ([`Powers::host_program_reach`]), the audit's
//! process walk, and the listings of a container's processes.
//!
//! ```no_run
//! use nsenter_core::{powers::Powers, Pid, Target};
//! let model = Powers::read(&Target::open(Pid::try_from(4242)?)?)?;
//! for task in model.tasks() {
//!     println!("{}: effective caps {:?}", task.label(), task.status.cap_eff);
//! }
//! if let Some(reach) = model.host_program_reach(None, None) {
//!     println!("a host program there would be reachable: {reach}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::cgroup::{cgroup_dirs, CgroupDir};
use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::mountinfo::parse_mountinfo;
use crate::pid::Pid;
use crate::status::{Fact, Status, CAP_SETUID, CAP_SYS_PTRACE};
use crate::sys;
use crate::target::{NamespaceId, Target};

/// The most processes one container's cgroups may list before the listing gives up.
const MAX_PROCESSES: usize = 100_000;
/// The most bytes read of one status file (the kernel's is about 1.5 KiB).
const MAX_STATUS: u64 = 64 * 1024;

/// One thread (the main thread of a process included) of the container, as read.
#[derive(Debug)]
pub struct Task {
    /// The thread id (the pid, for the main thread), as the host sees it.
    pub tid: Pid,
    /// The process (thread group) it belongs to.
    pub tgid: Pid,
    /// Its `/proc/TGID/task/TID` directory: later reads are of this thread, even if its
    /// id is reused.
    pub dir: File,
    /// Its status, field by field.
    pub status: Status,
    /// Its user namespace.
    pub user_ns: Fact<NamespaceId>,
    /// Its pid namespace (the target's, or one nested in it).
    pub pid_ns: Fact<NamespaceId>,
}

impl Task {
    /// `pid 42 (httpd)`, or `thread 43 of pid 42 (worker)`: host ids and the name the
    /// process gave itself (the container's bytes: escape them before they reach a terminal).
    pub fn label(&self) -> String {
        let name = self.status.name.as_deref().unwrap_or("?");
        format!("{} ({name})", self.who())
    }

    /// `pid 42`, or `thread 43 of pid 42`.
    pub fn who(&self) -> String {
        if self.tid == self.tgid {
            format!("pid {}", self.tid)
        } else {
            format!("thread {} of pid {}", self.tid, self.tgid)
        }
    }

    /// Whether this is the main thread of its process.
    pub fn is_main_thread(&self) -> bool {
        self.tid == self.tgid
    }
}

/// A process of the container that could not be read: it counts as the most powerful.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// Its host pid (or thread id).
    pub pid: Pid,
    /// The process it is (a thread) of.
    pub tgid: Pid,
    /// Why, with the path.
    pub why: String,
}

/// How a program started with the caller's powers in the container's pid namespace could be
/// reached by the container, and by which of its processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// The process: `pid 4242 (helper)`, `thread 43 of pid 42 (x)`, or what could not be read.
    pub who: String,
    /// What it holds: `holds CAP_SYS_PTRACE`, `runs as uid 1000`, `cannot be read: ...`.
    pub power: String,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.who, self.power)
    }
}

/// Every process and thread of a container, read once (see the [module](self) docs).
#[derive(Debug)]
pub struct Powers {
    pid: Pid,
    tasks: Vec<Task>,
    unreadable: Vec<Unreadable>,
    cgroups: std::result::Result<Vec<CgroupDir>, String>,
    unlisted: Option<String>,
    pid_ns: Fact<NamespaceId>,
    shares_our_pid_ns: bool,
    /// The processes found in its pid namespace or one nested in it.
    in_pid_ns: BTreeSet<Pid>,
    /// Why its pid namespace could not be listed (then `in_pid_ns` is not complete).
    pid_ns_unlisted: Option<String>,
    /// How deep its pid namespace is below ours (0: ours), from its `NSpid:`.
    level: Option<usize>,
    /// Processes of its cgroups that are not its own: outside its pid namespace and in none
    /// of its namespaces (the host's processes sharing the cgroup, see
    /// [`Powers::cgroup_neighbours`]).
    neighbours: Vec<Pid>,
}

impl Powers {
    /// Reads every process and thread of `target`'s container: those in its cgroups
    /// (sub-cgroups included) and in its pid namespace and the pid namespaces nested in it
    /// (unless that is the caller's). Zombies hold no power and are left out.
    ///
    /// Fails only when the target itself is gone or is a namespace file; anything else that
    /// cannot be read is in [`unreadable`](Powers::unreadable) or
    /// [`unlisted`](Powers::unlisted).
    pub fn read(target: &Target) -> Result<Powers> {
        let pid = target.live_pid(NamespaceSet::EMPTY)?;
        let failed = |source: io::Error| {
            if vanished(&source) {
                Error::TargetExited {
                    target: target.id(),
                }
            } else {
                Error::Processes {
                    target: target.id(),
                    source,
                }
            }
        };
        let init_dir = open_dir(&format!("/proc/{pid}")).map_err(failed)?;
        // The directory is of the pinned process only if it is still alive now.
        target.ensure_alive()?;
        // Its cgroups and pid namespace are read from a live thread: a main thread that
        // exited (a zombie) has left both.
        let anchor = live_thread(&init_dir)
            .map_err(failed)?
            .ok_or_else(|| failed(io::Error::from_raw_os_error(libc::ESRCH)))?;
        let mut model = Powers {
            pid,
            tasks: Vec::new(),
            unreadable: Vec::new(),
            cgroups: Err(String::new()),
            unlisted: None,
            pid_ns: namespace_at(&anchor, Namespace::Pid)
                .map_err(|e| format!("/proc/{pid}/ns/pid: {e}")),
            shares_our_pid_ns: false,
            in_pid_ns: BTreeSet::new(),
            pid_ns_unlisted: None,
            level: read_at(&anchor, "status")
                .ok()
                .and_then(|text| Some(Status::parse(&text).ns_pid.ok()?.len() - 1)),
            neighbours: Vec::new(),
        };
        let pids = model.members(pid, &anchor);
        for member in pids {
            let dir = if member == pid {
                init_dir.try_clone()
            } else {
                open_dir(&format!("/proc/{member}"))
            };
            match dir.and_then(|dir| threads_of(&dir)) {
                Ok(threads) => model.read_threads(member, threads),
                Err(e) if vanished(&e) && member != pid => {}
                Err(e) if vanished(&e) => {
                    return Err(Error::TargetExited {
                        target: target.id(),
                    })
                }
                Err(e) => model.unreadable.push(Unreadable {
                    pid: member,
                    tgid: member,
                    why: format!("/proc/{member}/task: {e}"),
                }),
            }
        }
        // Everything read above is of the container only if its process is still the same.
        target.ensure_alive()?;
        Ok(model)
    }

    /// The host pid of the target process the model was read from.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Every live thread read, by process then thread id.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The processes and threads that could not be read.
    pub fn unreadable(&self) -> &[Unreadable] {
        &self.unreadable
    }

    /// Why processes of the container may be missing: neither its cgroups nor its pid
    /// namespace could be listed (only the target process was read). `None`: listed.
    pub fn unlisted(&self) -> Option<&str> {
        self.unlisted.as_deref()
    }

    /// Processes found in the target's cgroups that are not the container's: outside its
    /// pid namespace (which was listed in full) and in none of its mount, network, IPC and
    /// UTS namespaces. A cgroup holding them is shared with the host (rootless Podman
    /// without a cgroup of its own leaves a container in its user's cgroup, beside host
    /// processes), not the container's alone. A process whose namespaces cannot be read is
    /// not among them: it is read as the container's.
    pub fn cgroup_neighbours(&self) -> &[Pid] {
        &self.neighbours
    }

    /// The target's cgroups, or why they could not be found.
    pub fn cgroups(&self) -> std::result::Result<&[CgroupDir], &str> {
        self.cgroups.as_deref().map_err(String::as_str)
    }

    /// The target's pid namespace.
    pub fn pid_namespace(&self) -> Fact<NamespaceId> {
        self.pid_ns.clone()
    }

    /// The processes (main threads) of the target's pid namespace and of the pid namespaces
    /// nested in it, with their pid as the target's pid namespace sees them:
    /// `(pid in the container, task)`. Empty when its pid namespace is ours.
    pub fn processes(&self) -> impl Iterator<Item = (Pid, &Task)> {
        self.tasks.iter().filter_map(|t| {
            if !t.is_main_thread() || !self.in_pid_ns.contains(&t.tgid) {
                return None;
            }
            Some((*t.status.ns_pid.as_ref().ok()?.get(self.level?)?, t))
        })
    }

    /// `started` and every process descended from it (the caller's session: a relay, a
    /// reaper in the pid namespace, the program, its children), by host pid. A container's
    /// process cannot become one of them: fork makes children of the caller only, and an
    /// orphan is re-parented to a subreaper among its own ancestors.
    fn descendants_of(&self, started: Option<Pid>) -> std::collections::HashSet<Pid> {
        let mut ours = std::collections::HashSet::new();
        let Some(started) = started else { return ours };
        ours.insert(started);
        loop {
            let before = ours.len();
            for task in self.tasks.iter().filter(|t| t.is_main_thread()) {
                if matches!(task.status.ppid, Ok(Some(parent)) if ours.contains(&parent)) {
                    ours.insert(task.tgid);
                }
            }
            if ours.len() == before {
                return ours;
            }
        }
    }

    /// Which process of the container could reach a program started with the caller's
    /// powers in its pid namespace, running as the caller's uid or as `uid`. Only the
    /// processes of its pid namespace and of those nested in it see the program; one of its
    /// cgroups in another pid namespace either cannot see it, or is in an ancestor of it
    /// (ours) and reaches everything of ours already. Of those, one that holds
    /// (or may take back) CAP_SYS_PTRACE in the caller's user namespace or one above it; for
    /// a non-root `uid`, one that runs as that uid or holds CAP_SETUID there. A process or
    /// thread that cannot be read, or processes that cannot be listed, count as reaching it.
    /// `None`: the kernel's ptrace checks keep every process of the container out.
    ///
    /// `started`: the pid of a process the caller forked to start the program; it and its
    /// descendants (the program itself, waiting in the pid namespace to be checked again, and
    /// a session's reaper) are the caller's, not the container's.
    pub fn host_program_reach(&self, uid: Option<u32>, started: Option<Pid>) -> Option<Reach> {
        if self.shares_our_pid_ns {
            // Its processes see ours already: joining its pid namespace exposes nothing new.
            return None;
        }
        let sees = |tgid: Pid| self.in_pid_ns.contains(&tgid);
        if let Some(first) = self.unreadable.iter().find(|u| sees(u.tgid)) {
            return Some(Reach {
                who: format!("pid {}", first.pid),
                power: format!(
                    "cannot be read ({}), so it counts as able to ptrace",
                    first.why
                ),
            });
        }
        if let Some(why) = self.unlisted.as_ref().or(self.pid_ns_unlisted.as_ref()) {
            return Some(Reach {
                who: format!("the processes of pid {}", self.pid),
                power: format!("cannot all be listed ({why}), so they count as able to ptrace"),
            });
        }
        let ours = match caller_user_namespaces() {
            Ok(ours) => ours,
            Err(e) => {
                return Some(Reach {
                    who: "our user namespace".to_owned(),
                    power: format!("cannot be read ({e}), so every process counts"),
                })
            }
        };
        let ours_started = self.descendants_of(started);
        let non_root = uid.filter(|uid| *uid != 0);
        // A process holding the power is named before one that only runs as the uid.
        let mut by_uid = None;
        for task in &self.tasks {
            if !sees(task.tgid) || ours_started.contains(&task.tgid) {
                continue;
            }
            // Capabilities act in their own user namespace and those below it: a process of
            // a user namespace beneath ours cannot ptrace a process of ours, whatever it holds
            // and whatever its uid (the kernel wants the same user namespace or
            // CAP_SYS_PTRACE over the tracee's).
            match &task.user_ns {
                Ok(ns) if !ours.contains(ns) => continue,
                Ok(_) => {}
                Err(why) => {
                    return Some(Reach {
                        who: task.label(),
                        power: format!(
                            "has a user namespace that cannot be read ({why}), so it counts as ours"
                        ),
                    })
                }
            }
            if task.status.may_use(CAP_SYS_PTRACE) {
                return Some(Reach {
                    who: task.label(),
                    power: power("CAP_SYS_PTRACE", &task.status),
                });
            }
            let Some(uid) = non_root else { continue };
            if task.status.may_use(CAP_SETUID) {
                return Some(Reach {
                    who: task.label(),
                    power: power("CAP_SETUID", &task.status),
                });
            }
            match &task.status.uids {
                Ok(uids) if uids.contains(&uid) && by_uid.is_none() => {
                    by_uid = Some(Reach {
                        who: task.label(),
                        power: format!("runs as uid {uid}"),
                    });
                }
                Ok(_) => {}
                Err(why) => {
                    return Some(Reach {
                        who: task.label(),
                        power: format!("has uids that cannot be read ({why})"),
                    })
                }
            }
        }
        by_uid
    }

    /// The container's processes: every process in its cgroups and in its pid namespace or
    /// one nested in it.
    fn members(&mut self, pid: Pid, anchor: &File) -> BTreeSet<Pid> {
        let mut pids = BTreeSet::from([pid]);
        let mut failures = Vec::new();
        let mut listed = false;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))
            .and_then(|text| parse_mountinfo(&text));
        self.cgroups = read_at(anchor, "cgroup")
            .map_err(|e| format!("/proc/{pid}/cgroup: {e}"))
            .and_then(|text| cgroup_dirs(&text, mounts.as_ref().map_err(Clone::clone)?));
        match &self.cgroups {
            Ok(dirs) => {
                for dir in dirs {
                    // The root of a hierarchy holds every process of the host: not the
                    // container's.
                    if dir.dir == dir.mount {
                        failures.push(format!(
                            "{} is the root of its hierarchy",
                            dir.dir.display()
                        ));
                        continue;
                    }
                    match procs_beneath(&dir.dir, &mut pids, 0) {
                        Ok(()) => listed = true,
                        Err(e) => failures.push(format!("{}: {e}", dir.dir.display())),
                    }
                }
            }
            Err(why) => failures.push(why.clone()),
        }
        let ours = NamespaceId::of_current_thread(Namespace::Pid);
        match (&self.pid_ns, ours) {
            (Ok(own), Ok(ours)) if *own != ours => match std::fs::read_dir("/proc") {
                Ok(entries) => {
                    listed = true;
                    for entry in entries.flatten() {
                        let Some(other) = entry
                            .file_name()
                            .to_str()
                            .and_then(|n| Pid::new(n.parse().ok()?))
                        else {
                            continue;
                        };
                        match in_pid_namespace(&entry.path(), *own, ours, self.level) {
                            Ok(true) => {
                                pids.insert(other);
                                self.in_pid_ns.insert(other);
                            }
                            Ok(false) => {}
                            // Not placed: it counts as the container's (read, or unreadable).
                            Err(why) => {
                                pids.insert(other);
                                self.in_pid_ns.insert(other);
                                self.unreadable.push(Unreadable {
                                    pid: other,
                                    tgid: other,
                                    why,
                                });
                            }
                        }
                    }
                }
                Err(e) => {
                    self.pid_ns_unlisted = Some(format!("/proc: {e}"));
                    failures.push(format!("/proc: {e}"));
                }
            },
            (Ok(_), Ok(_)) => {
                self.shares_our_pid_ns = true;
                failures.push("its pid namespace is ours".to_owned());
            }
            (Err(why), _) => {
                self.pid_ns_unlisted = Some(why.clone());
                failures.push(why.clone());
            }
            (_, Err(e)) => {
                self.pid_ns_unlisted = Some(format!("our pid namespace: {e}"));
                failures.push(format!("our pid namespace: {e}"));
            }
        }
        if !listed {
            self.unlisted = Some(failures.join("; "));
        }
        self.set_neighbours_apart(pid, anchor, &mut pids);
        pids
    }

    /// Takes out of `pids` the host's processes that share the container's cgroups (see
    /// [`Powers::cgroup_neighbours`]). Only when the container's own pid namespace was listed
    /// in full: then every process the container started is in it, and one outside it that
    /// shares none of those namespaces was put in the cgroup from the host.
    fn set_neighbours_apart(&mut self, pid: Pid, anchor: &File, pids: &mut BTreeSet<Pid>) {
        if self.shares_our_pid_ns || self.pid_ns_unlisted.is_some() || self.pid_ns.is_err() {
            return;
        }
        let theirs: Vec<NamespaceId> = match NEIGHBOUR_KINDS
            .iter()
            .map(|kind| namespace_at(anchor, *kind))
            .collect()
        {
            Ok(ids) => ids,
            // The container's own cannot be read: nothing can be set apart.
            Err(_) => return,
        };
        let outside: Vec<Pid> = pids
            .iter()
            .copied()
            .filter(|p| *p != pid && !self.in_pid_ns.contains(p))
            .collect();
        for other in outside {
            match against(other, &theirs) {
                Standing::SharesNone => {
                    pids.remove(&other);
                    self.neighbours.push(other);
                }
                // Every thread is exiting or gone: it runs no code and holds no power.
                Standing::Finished => {
                    pids.remove(&other);
                }
                Standing::MayShare => {}
            }
        }
    }

    /// Reads the threads of process `member`.
    fn read_threads(&mut self, member: Pid, threads: Vec<(Pid, File)>) {
        for (tid, dir) in threads {
            let status = match read_at(&dir, "status") {
                Ok(text) => Status::parse(&text),
                Err(e) if vanished(&e) => continue,
                Err(e) => {
                    self.unreadable.push(Unreadable {
                        pid: tid,
                        tgid: member,
                        why: format!("/proc/{member}/task/{tid}/status: {e}"),
                    });
                    continue;
                }
            };
            // A zombie runs no code and holds no power (its other threads may, and are read).
            if status.state == Ok('Z') {
                continue;
            }
            let ns = |kind: Namespace| {
                namespace_at(&dir, kind)
                    .map_err(|e| format!("/proc/{member}/task/{tid}/ns/{}: {e}", kind.proc_name()))
            };
            let (user_ns, pid_ns) = (ns(Namespace::User), ns(Namespace::Pid));
            // An exiting thread has let its namespaces go (they read as missing) and never
            // returns to user space: it holds no power, as a zombie.
            if (user_ns.is_err() || pid_ns.is_err()) && finished(&dir) {
                continue;
            }
            self.tasks.push(Task {
                tid,
                tgid: member,
                dir,
                status,
                user_ns,
                pid_ns,
            });
        }
    }
}

/// `holds CAP_X`, or `may take back CAP_X` when it is only in the bounding set.
fn power(name: &str, status: &Status) -> String {
    let cap = if name == "CAP_SETUID" {
        CAP_SETUID
    } else {
        CAP_SYS_PTRACE
    };
    let bit = 1u64 << cap;
    let in_use = [&status.cap_prm, &status.cap_eff, &status.cap_amb]
        .iter()
        .any(|set| set.as_ref().map_or(true, |mask| mask & bit != 0));
    if in_use {
        format!("holds {name}")
    } else {
        format!("holds {name} in its bounding set without NoNewPrivs (it comes back at exec)")
    }
}

/// The caller's user namespace and every one above it (as far as the kernel shows them).
fn caller_user_namespaces() -> io::Result<Vec<NamespaceId>> {
    let own = File::open("/proc/thread-self/ns/user")?;
    let mut found = vec![NamespaceId::of_file(own.as_fd())?];
    found.extend(parents(own)?);
    Ok(found)
}

/// The namespaces above the namespace file `file`, nearest first (`NS_GET_PARENT`, at most
/// 32 levels: the kernel's limit), up to the caller's own.
fn parents(mut current: File) -> io::Result<Vec<NamespaceId>> {
    /// `_IO(0xb7, 0x2)` of linux/nsfs.h.
    const NS_GET_PARENT: libc::c_ulong = 0xb702;
    let mut found = Vec::new();
    for _ in 0..32 {
        // SAFETY: NS_GET_PARENT takes no argument and returns a new fd (or -1) for the
        // parent namespace of the open namespace file `current`.
        let fd = unsafe { libc::ioctl(current.as_raw_fd(), NS_GET_PARENT as _) };
        if fd < 0 {
            // EPERM: the parent is outside our view (we reached the top we may see).
            break;
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        current = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        found.push(NamespaceId::of_file(current.as_fd())?);
    }
    Ok(found)
}

/// Whether the process at `/proc/N` is in pid namespace `own` or one nested in it (`ours`:
/// the caller's, which holds the host's processes and is not nested in `own`). A zombie main
/// thread has no namespaces: its live threads are asked. A process gone is not in it; one
/// whose pid namespace cannot be read is placed by its depth (`level`: the container's, from
/// its `NSpid:`) if it can be, else an error with the reason (never a quiet "no").
fn in_pid_namespace(
    proc_entry: &Path,
    own: NamespaceId,
    ours: NamespaceId,
    level: Option<usize>,
) -> std::result::Result<bool, String> {
    use std::os::unix::fs::MetadataExt;
    let main = proc_entry.join("ns/pid");
    let links = match std::fs::metadata(&main) {
        Ok(_) => vec![main],
        Err(_) => match std::fs::read_dir(proc_entry.join("task")) {
            Ok(threads) => threads.flatten().map(|t| t.path().join("ns/pid")).collect(),
            Err(e) if vanished(&e) => return Ok(false),
            Err(e) => return Err(format!("{}/task: {e}", proc_entry.display())),
        },
    };
    let mut failure = None;
    for link in links {
        // A stat first: most processes are ours or the container's, no parent to look up.
        let meta = match std::fs::metadata(&link) {
            Ok(meta) => meta,
            Err(e) if vanished(&e) => continue,
            Err(e) => {
                failure = Some(format!("{}: {e}", link.display()));
                continue;
            }
        };
        let ns = NamespaceId {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        if ns == own || ns == ours {
            return Ok(ns == own);
        }
        return match File::open(&link) {
            Ok(file) => match parents(file) {
                Ok(up) => Ok(up.contains(&own)),
                Err(e) => Err(format!("{}: its parents: {e}", link.display())),
            },
            Err(e) if vanished(&e) => Ok(false),
            Err(e) => Err(format!("{}: {e}", link.display())),
        };
    }
    // Every thread gone: not there any more. One whose link cannot be read (the kernel's
    // ptrace check, a process mid-exec) is placed by its status, which has no such check:
    // a process fewer pid namespaces deep than the container's is in none of its own.
    match failure {
        None => Ok(false),
        Some(why) => match (pid_ns_depth(proc_entry), level) {
            (Some(depth), Some(level)) if depth < level => Ok(false),
            _ => Err(why),
        },
    }
}

/// How many pid namespaces below ours the process at `proc_entry` is (its `NSpid:` count
/// less one), if its status can be read.
fn pid_ns_depth(proc_entry: &Path) -> Option<usize> {
    let status = std::fs::read_to_string(proc_entry.join("status")).ok()?;
    Status::parse(&status).ns_pid.ok()?.len().checked_sub(1)
}

/// The namespaces a process of a container's cgroup is compared in: sharing one of them
/// makes it the container's. Not its cgroup and time namespaces (often the host's), nor its
/// user namespace: rootless Podman runs all of a user's containers and its own service in
/// one, and a container without one is in the host's.
const NEIGHBOUR_KINDS: [Namespace; 4] = [
    Namespace::Mnt,
    Namespace::Net,
    Namespace::Ipc,
    Namespace::Uts,
];

/// How a process of the container's cgroups stands against the container's namespaces.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// Every live thread is, positively, in none of them: a host process.
    SharesNone,
    /// Some thread shares one, or could not be read: it may be the container's.
    MayShare,
    /// Every thread is exiting, a zombie or gone.
    Finished,
}

/// Compares every thread of process `pid` with the namespaces `theirs` (of
/// [`NEIGHBOUR_KINDS`]), thread by thread since a thread can join namespaces of its own.
/// A thread is only left out when the kernel shows it finished: one that cannot be read
/// otherwise may be the container's.
fn against(pid: Pid, theirs: &[NamespaceId]) -> Standing {
    let threads = match open_dir(&format!("/proc/{pid}")).and_then(|dir| threads_of(&dir)) {
        Ok(threads) => threads,
        Err(e) if vanished(&e) => return Standing::Finished,
        Err(_) => return Standing::MayShare,
    };
    let mut live = false;
    for (_, thread) in threads {
        if finished(&thread) {
            continue;
        }
        let shares_none = NEIGHBOUR_KINDS
            .iter()
            .zip(theirs)
            .all(|(kind, id)| namespace_at(&thread, *kind).is_ok_and(|ns| ns != *id));
        // A thread that began to exit while being read let its namespaces go on the way.
        if !shares_none && !finished(&thread) {
            return Standing::MayShare;
        }
        live |= shares_none;
    }
    if live {
        Standing::SharesNone
    } else {
        Standing::Finished
    }
}

/// `PF_EXITING` of `/proc/PID/stat`'s flags: the task is in `do_exit` and never returns to
/// user space.
const PF_EXITING: u64 = 0x4;

/// Whether the thread or process whose `/proc` directory is `dir` is gone, a zombie or
/// exiting. Unreadable for another reason: `false` (it may still run).
fn finished(dir: &File) -> bool {
    match read_at(dir, "stat") {
        Ok(stat) => stat_says_finished(&stat),
        Err(e) => vanished(&e),
    }
}

/// Whether a `/proc/PID/stat` line shows a zombie or a task in `do_exit`.
fn stat_says_finished(stat: &str) -> bool {
    // After the command name, which may hold anything, up to its last `)`: state, ppid,
    // pgrp, session, tty_nr, tpgid, flags.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x"));
    let exiting = fields
        .get(6)
        .and_then(|flags| flags.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0);
    zombie || exiting
}

/// A process that is not there any more.
fn vanished(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

fn c_path(path: &str) -> io::Result<CString> {
    CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// Opens a directory (`/proc/PID`).
fn open_dir(path: &str) -> io::Result<File> {
    Ok(File::from(sys::open(
        &c_path(path)?,
        libc::O_RDONLY | libc::O_DIRECTORY,
    )?))
}

/// Opens `name` beneath directory `dir`, no symlink followed at the end.
fn open_at(dir: &File, name: &str, flags: libc::c_int) -> io::Result<File> {
    Ok(File::from(sys::openat(dir.as_fd(), &c_path(name)?, flags)?))
}

/// Reads `name` beneath `dir` as text (bounded; bytes that are not UTF-8 replaced).
fn read_at(dir: &File, name: &str) -> io::Result<String> {
    let mut bytes = Vec::new();
    open_at(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW)?
        .take(MAX_STATUS)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The namespace of kind `kind` of the thread or process whose `/proc` directory is `dir`.
fn namespace_at(dir: &File, kind: Namespace) -> io::Result<NamespaceId> {
    let file = open_at(dir, &format!("ns/{}", kind.proc_name()), libc::O_RDONLY)?;
    NamespaceId::of_file(file.as_fd())
}

/// The `task/TID` directory of a thread of `dir`'s process that is not a zombie, if any.
fn live_thread(dir: &File) -> io::Result<Option<File>> {
    for (_, thread) in threads_of(dir)? {
        match read_at(&thread, "status") {
            Ok(status) if Status::parse(&status).state != Ok('Z') => return Ok(Some(thread)),
            Ok(_) => {}
            Err(e) if vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The threads of the process whose `/proc/PID` is `dir`: (tid, its `task/TID` directory).
fn threads_of(dir: &File) -> io::Result<Vec<(Pid, File)>> {
    let task = open_at(dir, "task", libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", task.as_raw_fd()))? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| Pid::new(name.parse().ok()?))
        else {
            continue;
        };
        match open_at(&task, &tid.to_string(), libc::O_RDONLY | libc::O_DIRECTORY) {
            Ok(thread) => threads.push((tid, thread)),
            Err(e) if vanished(&e) => {}
            Err(e) => return Err(e),
        }
    }
    threads.sort_by_key(|(tid, _)| *tid);
    Ok(threads)
}

/// Adds the processes of cgroup `dir` and its sub-cgroups (bounded in depth and count).
fn procs_beneath(dir: &Path, pids: &mut BTreeSet<Pid>, depth: usize) -> io::Result<()> {
    if depth > 32 || pids.len() > MAX_PROCESSES {
        return Err(io::Error::other("cgroup tree too deep or too large"));
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    for line in procs.lines() {
        let pid = line.trim().parse().ok().and_then(Pid::new).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cgroup.procs line {line:?}"),
            )
        })?;
        pids.insert(pid);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            match procs_beneath(&entry.path(), pids, depth + 1) {
                // A sub-cgroup removed meanwhile has no processes.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::new(n).expect("a pid")
    }

    #[test]
    fn our_own_process_is_read_with_every_thread() {
        let me = Pid::this();
        let _thread = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(2)));
        let model = Powers::read(&Target::open(me).expect("open self")).expect("read");
        let ours: Vec<&Task> = model.tasks().iter().filter(|t| t.tgid == me).collect();
        assert!(ours.len() >= 2, "{ours:?}");
        assert!(ours
            .iter()
            .all(|t| t.status.caps().is_ok() && t.user_ns.is_ok()));
        // Our own pid namespace: nothing new is exposed by joining it.
        assert_eq!(model.host_program_reach(None, None), None);
    }

    /// A model of a container in pid namespace `CTR`, its tasks given as status texts.
    fn model(tasks: &[(i32, &str, NamespaceId)]) -> Powers {
        let ctr = NamespaceId { dev: 4, ino: 99 };
        Powers {
            pid: pid(10),
            tasks: tasks
                .iter()
                .map(|(n, status, user_ns)| Task {
                    tid: pid(*n),
                    tgid: pid(*n),
                    dir: File::open("/").unwrap(),
                    status: Status::parse(status),
                    user_ns: Ok(*user_ns),
                    pid_ns: Ok(ctr),
                })
                .collect(),
            unreadable: Vec::new(),
            cgroups: Err(String::new()),
            unlisted: None,
            pid_ns: Ok(ctr),
            shares_our_pid_ns: false,
            in_pid_ns: tasks.iter().map(|(n, _, _)| pid(*n)).collect(),
            pid_ns_unlisted: None,
            level: Some(1),
            neighbours: Vec::new(),
        }
    }

    const DROPPED: &str = "Name:\tinit\nPPid:\t1\nUid:\t0\t0\t0\t0\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\nNoNewPrivs:\t0\n";
    const HELPER: &str = "Name:\thelper\nPPid:\t10\nUid:\t0\t0\t0\t0\nCapInh:\t0\nCapPrm:\t80000\nCapEff:\t80000\nCapBnd:\t80000\nCapAmb:\t0\nNoNewPrivs:\t0\n";
    const USER: &str = "Name:\tapp\nPPid:\t10\nUid:\t1000\t1000\t1000\t1000\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t80\nCapAmb:\t0\nNoNewPrivs:\t1\n";

    #[test]
    fn every_task_decides_and_what_cannot_be_read_reaches() {
        let ours = caller_user_namespaces().unwrap()[0];
        let theirs = NamespaceId { dev: 4, ino: 12345 };
        let split = model(&[(10, DROPPED, ours), (11, HELPER, ours)]);
        let reach = split
            .host_program_reach(None, None)
            .expect("the helper reaches");
        assert_eq!(reach.to_string(), "pid 11 (helper) holds CAP_SYS_PTRACE");
        // The process we started (a child of our pid 11) is ours, not the container's.
        assert_eq!(split.host_program_reach(None, Some(pid(10))), None);
        // So are its children's children (a session's reaper, then its program); a
        // container process with the power beside them still reaches.
        let session = |n: i32| {
            format!("Name:\treaper\nPPid:\t{n}\nUid:\t0\t0\t0\t0\nCapInh:\t0\nCapPrm:\t80000\nCapEff:\t80000\nCapBnd:\t80000\nCapAmb:\t0\nNoNewPrivs:\t0\n")
        };
        let (reaper, program) = (session(20), session(21));
        let deep = model(&[
            (10, DROPPED, ours),
            (21, &reaper, ours),
            (22, &program, ours),
        ]);
        assert_eq!(deep.host_program_reach(None, Some(pid(20))), None);
        assert_eq!(deep.host_program_reach(None, Some(pid(21))), None);
        let beside = model(&[
            (21, &reaper, ours),
            (22, &program, ours),
            (11, HELPER, ours),
        ]);
        assert_eq!(
            beside
                .host_program_reach(None, Some(pid(20)))
                .map(|r| r.to_string()),
            Some("pid 11 (helper) holds CAP_SYS_PTRACE".to_owned())
        );
        // In a user namespace of its own, CAP_SYS_PTRACE acts on that namespace only.
        assert_eq!(
            model(&[(10, DROPPED, ours), (11, HELPER, theirs)]).host_program_reach(None, None),
            None
        );
        // -S 1000: a process running as 1000 reaches it; CAP_SETUID only in a NoNewPrivs
        // process's bounding set does not come back.
        let users = model(&[(10, DROPPED, ours), (12, USER, ours)]);
        assert_eq!(users.host_program_reach(None, None), None);
        assert_eq!(
            users
                .host_program_reach(Some(1000), None)
                .map(|r| r.to_string()),
            Some("pid 12 (app) runs as uid 1000".to_owned())
        );
        // Unreadable counts as able to ptrace.
        let mut hidden = model(&[(10, DROPPED, ours)]);
        hidden.unreadable.push(Unreadable {
            pid: pid(13),
            tgid: pid(13),
            why: "/proc/13/task: EACCES".into(),
        });
        hidden.in_pid_ns.insert(pid(13));
        assert!(hidden
            .host_program_reach(None, None)
            .is_some_and(|r| r.who == "pid 13" && r.power.contains("cannot be read")));
        let garbled = model(&[(10, &HELPER.replace("CapPrm:\t80000\n", ""), ours)]);
        assert!(
            garbled.host_program_reach(None, None).is_some(),
            "a missing set counts as held"
        );
    }

    /// Every branch of placing a `/proc` entry in a pid namespace: gone is not in it, and
    /// what cannot be read is an error with the path (counted as the container's by
    /// `members`), never a quiet "not in it".
    #[test]
    fn a_process_whose_pid_namespace_cannot_be_read_is_not_quietly_left_out() {
        let own = NamespaceId { dev: 4, ino: 1 };
        let ours = NamespaceId::of_current_thread(Namespace::Pid).unwrap();
        let dir = std::env::temp_dir().join(format!("nsdbg-inpidns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Gone: no ns/pid, no task directory.
        std::fs::create_dir_all(dir.join("gone")).unwrap();
        assert_eq!(
            in_pid_namespace(&dir.join("gone"), own, ours, Some(1)),
            Ok(false)
        );
        // Its threads cannot be listed (task is no directory).
        std::fs::create_dir_all(dir.join("nolist")).unwrap();
        std::fs::write(dir.join("nolist/task"), "").unwrap();
        let why = in_pid_namespace(&dir.join("nolist"), own, ours, Some(1)).unwrap_err();
        assert!(why.contains("nolist/task"), "{why}");
        // A zombie main thread whose live thread's link cannot be followed.
        std::fs::create_dir_all(dir.join("odd/task/2/ns")).unwrap();
        let link = dir.join("odd/task/2/ns/pid");
        std::os::unix::fs::symlink(&link, &link).unwrap();
        let why = in_pid_namespace(&dir.join("odd"), own, ours, Some(1)).unwrap_err();
        assert!(why.contains("odd/task/2/ns/pid: "), "{why}");
        // The same, with a status saying it is in our pid namespace (depth 0): it is placed
        // outside a container one level down, and still unknown for one at depth 0.
        std::fs::write(dir.join("odd/status"), "Name:\tx\nNSpid:\t77\n").unwrap();
        assert_eq!(
            in_pid_namespace(&dir.join("odd"), own, ours, Some(1)),
            Ok(false)
        );
        assert!(in_pid_namespace(&dir.join("odd"), own, ours, Some(0)).is_err());
        assert!(in_pid_namespace(&dir.join("odd"), own, ours, None).is_err());
        // A real process: ours is not `own`.
        assert_eq!(
            in_pid_namespace(Path::new("/proc/self"), own, ours, Some(1)),
            Ok(false)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_a_process_positively_in_none_of_the_namespaces_is_a_neighbour() {
        let me = Pid::this();
        let dir = open_dir("/proc/self").unwrap();
        let ours: Vec<NamespaceId> = NEIGHBOUR_KINDS
            .iter()
            .map(|kind| namespace_at(&dir, *kind).unwrap())
            .collect();
        assert_eq!(
            against(me, &ours),
            Standing::MayShare,
            "we share all of ours"
        );
        let others = vec![NamespaceId { dev: 4, ino: 1 }; NEIGHBOUR_KINDS.len()];
        assert_eq!(against(me, &others), Standing::SharesNone);
        // A process that is gone holds nothing: neither the container's nor a neighbour.
        assert_eq!(against(pid(i32::MAX), &others), Standing::Finished);
        // A zombie child of ours: finished, though its /proc directory is still there.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let zombie = pid(child.id() as i32);
        let dir = open_dir(&format!("/proc/{zombie}")).unwrap();
        for _ in 0..200 {
            if finished(&dir) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(finished(&dir), "an exited, unreaped child is finished");
        assert_eq!(against(zombie, &others), Standing::Finished);
        child.wait().unwrap();
        assert!(!finished(&open_dir("/proc/self").unwrap()), "we run");
    }

    #[test]
    fn a_task_in_do_exit_or_a_zombie_is_finished_whatever_its_name() {
        let stat = |comm: &str, state: &str, flags: u64| {
            format!("42 ({comm}) {state} 1 42 42 0 -1 {flags} 100 0 0 0 1 2 0 0 20 0 1 0 5")
        };
        assert!(!stat_says_finished(&stat("sh", "S", 0x400100)));
        assert!(stat_says_finished(&stat("sh", "S", 0x400104)), "PF_EXITING");
        assert!(stat_says_finished(&stat("sh", "Z", 0x400100)));
        // A name that imitates the fields: only what follows the last ')' counts.
        assert!(!stat_says_finished(&stat("x) Z 1 1 1 0 -1 4 (", "R", 0)));
        assert!(!stat_says_finished("garbage"));
    }
}
