//! Run a program inside a target's namespaces: fork, join, set root, directory and
//! credentials, exec; report its exit status.

use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Output};

use crate::child::{self, ChildConfinement, Plan, Step, ToolboxPlan};
use crate::confine::{self, Confined, Confinement};
use crate::error::{Error, Result};
use crate::kind::{Namespace, NamespaceSet};
use crate::sys;
use crate::target::{NamespaceId, Target};
use crate::trust::Trust;

/// Which root directory the program gets.
#[derive(Clone, Debug)]
pub enum RootDir {
    /// The target's root directory (`/proc/PID/root`), like `nsenter --root`.
    Target,
    /// A directory, opened by the caller *before* entering (so in the caller's mount
    /// namespace), like `nsenter --root=DIR`.
    Path(PathBuf),
}

/// Which working directory the program gets.
#[derive(Clone, Debug)]
pub enum WorkDir {
    /// The target's working directory (`/proc/PID/cwd`), like `nsenter --wd`.
    Target,
    /// A path resolved *after* entering and changing root: a directory as the target sees it.
    Path(PathBuf),
}

/// Where one of the program's standard streams goes.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own stream.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// This open file (a pipe end, a file, a tty). It is closed in the caller after spawning.
    Fd(OwnedFd),
}

/// A program to run inside a target's namespaces, like util-linux `nsenter`.
///
/// The program is started by a forked child of the caller that, before `execve`:
/// makes itself non-dumpable (so the target's root cannot ptrace it and reach the
/// caller's memory and fds, CVE-2016-9962), joins every namespace in one
/// `setns(pidfd, flags)` call (user and time included: a forked child is
/// single-threaded), changes root and working directory, sets credentials, and closes
/// every fd above stderr (CVE-2024-21626). When the pid namespace is joined the child
/// forks once more, because only children created after joining are inside it: the
/// middle process relays SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH and
/// SIGCONT to the program and dies as the program died, so [`Child::wait`] reports the
/// program's own exit code or signal either way.
///
/// When the target is in the caller's own user namespace, `User` is dropped from the set
/// (the kernel refuses to "join" one's own user namespace). After joining another user
/// namespace the program runs as uid 0 and gid 0 of that namespace unless
/// [`preserve_credentials`](Command::preserve_credentials) or explicit ids say otherwise.
///
/// ```no_run
/// use nsenter_core::{Command, Namespace, NamespaceSet, Target};
/// let target = Target::open(1234)?;
/// let status = Command::new("ip").arg("addr").status_in(&target, Namespace::Net.into())?;
/// let all = Command::new("ps").status_in(&target, NamespaceSet::ALL)?;
/// # Ok::<(), nsenter_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    env: Vec<(OsString, Option<OsString>)>,
    root: Option<RootDir>,
    cwd: Option<WorkDir>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    preserve_credentials: bool,
    join_cgroup: bool,
    confinement: Confinement,
    new_session: bool,
    allow_reachable: bool,
    env_from_target: bool,
    toolbox: Option<PathBuf>,
    toolbox_writable: bool,
    stdio: [Stdio; 3],
}

/// The directory of a toolbox's scratch where the target's tree is attached.
const TOOLBOX_ROOT: &str = "ctr";

/// The default search path when the environment has no `PATH` (util-linux's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Command {
    /// A program to run; without a `/` it is looked up in `PATH` *after* entering, so with
    /// the mount namespace it is found in the target's filesystem.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            root: None,
            cwd: None,
            uid: None,
            gid: None,
            groups: None,
            preserve_credentials: false,
            join_cgroup: false,
            confinement: Confinement::Auto,
            new_session: false,
            allow_reachable: false,
            env_from_target: false,
            toolbox: None,
            toolbox_writable: false,
            stdio: Default::default(),
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (on top of the inherited or cleared environment).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Gives a host program the target's variables that [`host_program_may_take`]
    /// allows, over the caller's (`nsenter -e` made safe). A program of the target's
    /// gets the target's whole environment anyway (see [`Trust::environment`]).
    ///
    /// [`host_program_may_take`]: crate::trust::host_program_may_take
    pub fn env_from_target(&mut self, take: bool) -> &mut Command {
        self.env_from_target = take;
        self
    }

    /// How this command would run a program in `kinds`: the container's program or a host
    /// program, confined or not, checked to be out of the target's reach or not. Decided by
    /// [`Trust::decide`] from the root, confinement and
    /// [`allow_reachable_host_program`](Command::allow_reachable_host_program) set here.
    pub fn trust(&self, kinds: NamespaceSet) -> Trust {
        Trust::decide(
            kinds,
            self.root.as_ref(),
            self.confinement,
            self.allow_reachable,
        )
    }

    /// Starts from an empty environment instead of the caller's.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Sets the root directory.
    pub fn root(&mut self, root: RootDir) -> &mut Command {
        self.root = Some(root);
        self
    }

    /// Sets the working directory (default: the root of the entered mount namespace when it
    /// is entered, else the caller's).
    pub fn current_dir(&mut self, dir: WorkDir) -> &mut Command {
        self.cwd = Some(dir);
        self
    }

    /// Runs the program as this user id (the group stays the caller's, root's 0, unless
    /// [`gid`](Command::gid) is set too, as with `nsenter --setuid`).
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// Runs the program with this group id (supplementary groups are cleared unless
    /// [`groups`](Command::groups) sets them).
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }

    /// Sets the supplementary groups.
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.groups = Some(groups.to_vec());
        self
    }

    /// Keeps the caller's uid and gid after joining a user namespace, like
    /// `nsenter --preserve-credentials` (by default they become 0 there).
    pub fn preserve_credentials(&mut self, keep: bool) -> &mut Command {
        self.preserve_credentials = keep;
        self
    }

    /// Moves the program into the target's cgroups (every hierarchy, v1 or v2) before it
    /// joins any namespace, so it is accounted and limited like the target, like
    /// `nsenter --join-cgroup`.
    pub fn join_cgroup(&mut self, join: bool) -> &mut Command {
        self.join_cgroup = join;
        self
    }

    /// How powerful the program is: by default ([`Confinement::Auto`]) a program taken from
    /// the target's filesystem runs as the container would run it (its capabilities,
    /// NoNewPrivs, seccomp filters, LSM label, cgroups, ids and environment, like `docker
    /// exec`), and a program from the caller's filesystem keeps the caller's powers.
    ///
    /// Threat model: the target's root may be hostile. Its code must never run with more
    /// than its own powers, and a program with the caller's powers must never be started
    /// where the target can reach it (ptrace, `/proc/PID/{mem,environ,fd,exe}`): such a start
    /// in the target's pid namespace fails with [`Error::HostProgramReachable`] unless
    /// [`allow_reachable_host_program`](Command::allow_reachable_host_program) says otherwise.
    pub fn confine(&mut self, confinement: Confinement) -> &mut Command {
        self.confinement = confinement;
        self
    }

    /// Starts a host-powered program in the target's pid namespace even where the target's
    /// processes could ptrace it (see [`confine`](Command::confine)). Only for targets
    /// that are trusted.
    pub fn allow_reachable_host_program(&mut self, allow: bool) -> &mut Command {
        self.allow_reachable = allow;
        self
    }

    /// Starts the program in a new session (`setsid`), with its standard input as its
    /// controlling terminal when that is a terminal: give it the slave side of a pty of its
    /// own, so it cannot push input into the caller's terminal (TIOCSTI) or stop its jobs.
    pub fn new_session(&mut self, new: bool) -> &mut Command {
        self.new_session = new;
        self
    }

    /// Runs a host program with the target's view of the filesystem, for images without
    /// tools (cntr's and `docker debug`'s mode): instead of joining the target's mount
    /// namespace, the program gets a private copy of the caller's (the host's tools, as they
    /// are) with a tmpfs on `scratch` (an existing directory of the caller's, left untouched
    /// outside the session), the target's whole mount tree at `scratch/ctr`
    /// ([`toolbox_root`](Command::toolbox_root): the caller names it to the program, in an
    /// environment variable of its choosing, for example), a fresh `/proc` of the target's pid namespace, `/sys` of its network
    /// namespace, and its `/etc/resolv.conf` and `/etc/hosts`. Nothing changes in the target's
    /// mount namespace and nothing remains when the program ends.
    ///
    /// The session cannot be turned against the caller: the target's files are mounted
    /// read-only (see [`toolbox_writable`](Command::toolbox_writable)) and no symlink on them
    /// is followed (an absolute link the container planted would lead to the host's files),
    /// and they are private (nothing mounted in the session propagates to the container or
    /// the host, nor back). A reaper of the session's (a child subreaper in the target's pid
    /// namespace, which the target sees as a process of its own) relays to the program and
    /// kills every process of the session, however deep, when the program ends or when the
    /// caller dies (SIGKILL included; spawn from a thread that lasts as long as the session,
    /// as the kernel's parent-death signal follows the forking thread). No process of the
    /// session can change its uid or gid (CAP_SETUID and CAP_SETGID are dropped from every
    /// set, NoNewPrivs is set): a program of another uid would be within reach of the
    /// target's processes of that uid.
    ///
    /// Needs Linux >= 5.12 (`open_tree`, `move_mount`, `mount_setattr` with
    /// `MOUNT_ATTR_NOSYMFOLLOW`); the mount namespace must not be in the set joined.
    pub fn toolbox(&mut self, scratch: impl Into<PathBuf>) -> &mut Command {
        self.toolbox = Some(scratch.into());
        self
    }

    /// Where a toolbox session's program finds the target's files (`scratch/ctr`), or `None`
    /// without [`toolbox`](Command::toolbox).
    pub fn toolbox_root(&self) -> Option<PathBuf> {
        self.toolbox
            .as_ref()
            .map(|scratch| scratch.join(TOOLBOX_ROOT))
    }

    /// Lets a toolbox session write to the target's files (they are read-only by default);
    /// symlinks on them are still never followed.
    pub fn toolbox_writable(&mut self, writable: bool) -> &mut Command {
        self.toolbox_writable = writable;
        self
    }

    /// Sets the program's standard input.
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[0] = stdio;
        self
    }

    /// Sets the program's standard output.
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[1] = stdio;
        self
    }

    /// Sets the program's standard error.
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[2] = stdio;
        self
    }

    /// Starts the program inside `target`'s namespaces of `kinds`. Streams given as
    /// [`Stdio::Fd`] are handed over (and reset to `Inherit` in this `Command`).
    pub fn spawn_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<Child> {
        let stdio = std::mem::take(&mut self.stdio);
        let kinds = without_own_user_namespace(target, kinds)?;
        let prepared = self.prepare(target, kinds, stdio)?;
        let (err_read, err_write) =
            sys::pipe().map_err(|source| self.spawn_error(Step::Pipe, source))?;
        // Above stderr, so that the child's dup2 onto 0-2 and close_range cannot hit it
        // (a daemon may run with 0-2 closed, and pipe() then returns one of them).
        let high = sys::dup_at_least(err_write.as_fd(), 3)
            .map_err(|source| self.spawn_error(Step::Dup, source))?;
        drop(err_write); // or the read end would never see EOF
        let err_write = high;
        // A host program waits in the pid namespace until it is checked again (below).
        let handshake = match prepared.recheck {
            true => {
                let pipes = (sys::pipe(), sys::pipe());
                let ((ready_read, ready_write), (go_read, go_write)) = match pipes {
                    (Ok(ready), Ok(go)) => (ready, go),
                    (Err(source), _) | (_, Err(source)) => {
                        return Err(self.spawn_error(Step::Pipe, source))
                    }
                };
                Some((ready_read, ready_write, go_read, go_write))
            }
            false => None,
        };
        let plan = prepared.plan(
            Some(err_write.as_raw_fd()),
            handshake
                .as_ref()
                .map(|(_, ready, go, _)| child::Handshake {
                    ready: ready.as_raw_fd(),
                    go: go.as_raw_fd(),
                }),
        );
        // No signal handler of the caller's may run in the child before it resets them.
        let blocked = crate::relay::SignalsBlocked::all();
        // SAFETY: in the child, `child::run` makes only async-signal-safe system calls on data
        // prepared above (no allocation, no locks) and never returns.
        let forked = unsafe { sys::fork() };
        if let Ok(0) = forked {
            child::run(&plan);
        }
        drop(blocked);
        let pid = forked.map_err(|source| self.spawn_error(Step::Fork, source))?;
        drop(err_write);
        drop(prepared);
        if let Some((ready_read, ready_write, go_read, go_write)) = handshake {
            drop((ready_write, go_read));
            // Ready: the program is in the pid namespace, about to exec. End of file: it
            // failed before, and says why on the error pipe.
            if sys::read_byte(ready_read.as_fd()).unwrap_or(false) {
                let refusal =
                    match confine::host_program_reachable(target, kinds, self.uid, Some(pid)) {
                        Ok(None) => None,
                        Ok(Some(why)) => Some(Error::HostProgramReachable {
                            target: target.id(),
                            why,
                        }),
                        Err(error) => Some(error),
                    };
                if let Some(error) = refusal {
                    drop(go_write); // the program exits without exec
                    let _ = Child { pid, status: None }.wait();
                    return Err(error);
                }
                sys::write_byte(go_write.as_fd())
                    .map_err(|source| self.spawn_error(Step::Pipe, source))?;
            }
        }
        match read_failure(err_read) {
            None => Ok(Child { pid, status: None }),
            Some(failure) => {
                // The child exited with 127 right after reporting; reap it.
                let _ = Child { pid, status: None }.wait();
                Err(self.failure_error(target, kinds, failure))
            }
        }
    }

    /// Replaces the calling process with the program, inside `target`'s namespaces of
    /// `kinds`: no fork, so the program keeps this process's pid, parent, signals and
    /// terminal, and its exit status is this process's (what `nsenter` does when it need not
    /// fork). Returns only on failure.
    ///
    /// The pid namespace cannot be joined this way (only children enter one):
    /// [`Error::NeedsFork`]. User and time namespaces, and the mount namespace of a process
    /// whose threads share their filesystem attributes, need a single-threaded caller; the
    /// kernel's refusal is reported as for [`spawn_in`](Command::spawn_in).
    ///
    /// As in the forked child, the process becomes non-dumpable, every signal disposition is
    /// reset to the default and fds above stderr are marked close-on-exec: on failure the
    /// caller is left so (and possibly inside some of the namespaces), fit only to report
    /// the error and exit.
    pub fn exec_in(&mut self, target: &Target, kinds: NamespaceSet) -> Error {
        if kinds.contains(Namespace::Pid) {
            return Error::NeedsFork {
                namespace: Namespace::Pid,
            };
        }
        if self.toolbox.is_some() {
            // Its mount namespace is made by unshare, which a threaded process cannot do.
            return Error::NeedsFork {
                namespace: Namespace::Mnt,
            };
        }
        let stdio = std::mem::take(&mut self.stdio);
        let kinds = match without_own_user_namespace(target, kinds) {
            Ok(kinds) => kinds,
            Err(error) => return error,
        };
        let prepared = match self.prepare(target, kinds, stdio) {
            Ok(prepared) => prepared,
            Err(error) => return error,
        };
        if kinds.contains(Namespace::Mnt) {
            // setns(CLONE_NEWNS) needs an unshared fs struct even in a single thread's process
            // if a runtime started threads that are gone; harmless otherwise.
            if let Err(e) = sys::unshare_fs() {
                return Error::from_setns(target.id(), kinds, e);
            }
        }
        let plan = prepared.plan(None, None);
        child::reset_signals();
        let failure = match child::setup(&plan) {
            Ok(()) => child::exec(&plan),
            Err(failure) => failure,
        };
        self.failure_error(target, kinds, failure)
    }

    /// The typed error for a failed step of the child (or of `exec_in`).
    fn failure_error(
        &self,
        target: &Target,
        kinds: NamespaceSet,
        (step, errno): child::Failure,
    ) -> Error {
        let source = std::io::Error::from_raw_os_error(errno);
        match step {
            Step::Setns => Error::from_setns(target.id(), kinds, source),
            Step::Cgroup => Error::Cgroup {
                target: target.id(),
                source,
            },
            Step::Exec if errno == libc::ENOENT => Error::ProgramNotFound {
                program: self.program_name(),
                searched_path: !self.program.as_bytes().contains(&b'/'),
            },
            other => self.spawn_error(other, source),
        }
    }

    /// Runs the program inside the namespaces and waits for it.
    pub fn status_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<ExitStatus> {
        self.spawn_in(target, kinds)?.wait()
    }

    /// Runs the program inside the namespaces, capturing its standard output and error.
    pub fn output_in(&mut self, target: &Target, kinds: NamespaceSet) -> Result<Output> {
        let pipe =
            |cmd: &Command| sys::pipe().map_err(|source| cmd.spawn_error(Step::Pipe, source));
        let (out_read, out_write) = pipe(self)?;
        let (err_read, err_write) = pipe(self)?;
        self.stdout(Stdio::Fd(out_write))
            .stderr(Stdio::Fd(err_write));
        let mut child = self.spawn_in(target, kinds)?;
        let stderr_reader = std::thread::spawn(move || read_all(err_read));
        let stdout = read_all(out_read);
        let stderr = stderr_reader.join().unwrap_or_default();
        let status = child.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    fn spawn_error(&self, step: Step, source: std::io::Error) -> Error {
        Error::Spawn {
            program: self.program_name(),
            step,
            source,
        }
    }

    /// Everything the child needs, made before fork: the child may not allocate.
    fn prepare(&self, target: &Target, kinds: NamespaceSet, stdio: [Stdio; 3]) -> Result<Prepared> {
        let cstring =
            |s: &OsStr, what| CString::new(s.as_bytes()).map_err(|_| Error::NulByte { what });
        let mut argv = vec![cstring(&self.program, "program")?];
        for arg in &self.args {
            argv.push(cstring(arg, "argument")?);
        }
        let mut confined = self.confinement_for(target, kinds)?;
        let env = self.environment(target, kinds)?;
        let mut envp = Vec::with_capacity(env.len());
        for (key, value) in &env {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            envp.push(CString::new(pair).map_err(|_| Error::NulByte {
                what: "environment",
            })?);
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let candidates = exec_candidates(&self.program, path.as_deref())?;

        let mut namespace_fds = Vec::new();
        let pidfd = target.pidfd().map(|fd| fd.as_raw_fd());
        if pidfd.is_none() {
            // No pidfd: open every namespace file before the child enters any.
            for ns in kinds.iter() {
                namespace_fds.push((target.namespace_file(ns)?.as_raw_fd(), ns.clone_flag()));
            }
        }
        let open_dir = |path: PathBuf| {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| Error::NulByte { what: "path" })?;
            sys::open(&c, libc::O_PATH | libc::O_DIRECTORY).map_err(|source| {
                match source.raw_os_error() {
                    Some(libc::ENOENT) if !target.is_alive() => Error::TargetExited {
                        target: target.id(),
                    },
                    _ => Error::OpenPath { path, source },
                }
            })
        };
        let mnt = NamespaceSet::of(Namespace::Mnt);
        let root = match &self.root {
            None => None,
            Some(RootDir::Target) => Some(open_dir(target.proc_path("root", mnt)?)?),
            Some(RootDir::Path(path)) => Some(open_dir(path.clone())?),
        };
        let (cwd_fd, cwd_path) = match &self.cwd {
            None => (None, None),
            Some(WorkDir::Target) => (Some(open_dir(target.proc_path("cwd", mnt)?)?), None),
            Some(WorkDir::Path(path)) => {
                (None, Some(cstring(path.as_os_str(), "working directory")?))
            }
        };
        let cgroup_procs = match self.join_cgroup || confined.is_some() {
            true if confined.is_none() && target.is_frozen() => {
                return Err(Error::Frozen {
                    target: target.id(),
                })
            }
            true => open_cgroup_procs(target)?,
            false => Vec::new(),
        };
        target.ensure_alive()?;
        let joins_user = kinds.contains(Namespace::User) && !self.preserve_credentials;
        let (uid, gid) = match (&confined, joins_user) {
            (Some(c), _) => (
                Some(self.uid.unwrap_or(c.uid)),
                Some(self.gid.unwrap_or(c.gid)),
            ),
            (None, true) => (Some(self.uid.unwrap_or(0)), Some(self.gid.unwrap_or(0))),
            (None, false) => (self.uid, self.gid),
        };
        if let Some(c) = confined.as_mut() {
            // What `docker exec` gives the uid the program runs as, whatever the target's
            // process raised or dropped (its inheritable and ambient sets above all).
            c.caps = confine::exec_caps(c.caps.bounding, uid == Some(0));
        }
        let explicit_ids = self.uid.is_some() || self.gid.is_some();
        let groups = match (&self.groups, &confined, uid.or(gid)) {
            (Some(groups), _, _) => Some(groups.iter().map(|g| *g as libc::gid_t).collect()),
            // The same groups as ours need no setgroups (which a user namespace may deny).
            (None, Some(c), _)
                if !explicit_ids && Some(&c.groups) == confine::own_groups().as_ref() =>
            {
                None
            }
            (None, Some(c), _) if !explicit_ids => {
                Some(c.groups.iter().map(|g| *g as libc::gid_t).collect())
            }
            (None, _, Some(_)) => Some(Vec::new()),
            (None, _, None) => None,
        };
        let mut stdio_fds = [None, None, None];
        let mut held = Vec::new();
        for (i, stream) in stdio.into_iter().enumerate() {
            let fd = match stream {
                Stdio::Inherit => continue,
                Stdio::Null => {
                    sys::open(c"/dev/null", libc::O_RDWR).map_err(|source| Error::OpenPath {
                        path: "/dev/null".into(),
                        source,
                    })?
                }
                Stdio::Fd(fd) => fd,
            };
            // Above stderr, so that dup2 onto 0-2 in the child cannot overwrite another source.
            let high = sys::dup_at_least(fd.as_fd(), 3)
                .map_err(|source| self.spawn_error(Step::Dup, source))?;
            drop(fd);
            let fd = high;
            stdio_fds[i] = Some(fd.as_raw_fd());
            held.push(fd);
        }
        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        let candidate_ptrs = candidates.iter().map(|c| c.as_ptr()).collect();
        let toolbox = match &self.toolbox {
            None => None,
            Some(_) if kinds.contains(Namespace::Mnt) => {
                let why = "a toolbox keeps a mount namespace of its own: do not join the target's";
                return Err(self.spawn_error(
                    Step::Toolbox,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
                ));
            }
            Some(scratch) => {
                let target_mnt = match target.pidfd() {
                    Some(pidfd) => pidfd.as_raw_fd(),
                    None => target.namespace_file(Namespace::Mnt)?.as_raw_fd(),
                };
                let own_mnt =
                    sys::open(c"/proc/thread-self/ns/mnt", libc::O_RDONLY).map_err(|source| {
                        Error::SaveOwn {
                            namespace: Namespace::Mnt,
                            source,
                        }
                    })?;
                let path = |p: PathBuf| {
                    CString::new(p.into_os_string().into_vec()).map_err(|_| Error::NulByte {
                        what: "toolbox path",
                    })
                };
                Some(PreparedToolbox {
                    target_mnt,
                    own_mnt,
                    scratch: path(scratch.clone())?,
                    root_at: path(scratch.join(TOOLBOX_ROOT))?,
                    writable: self.toolbox_writable,
                })
            }
        };
        let seccomp_programs = confined
            .as_ref()
            .map(|c| {
                c.seccomp
                    .iter()
                    .map(|program| libc::sock_fprog {
                        len: program.len() as libc::c_ushort,
                        filter: program.as_ptr() as *mut libc::sock_filter,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let recheck = confined.is_none()
            && self.trust(kinds).checks_reach()
            && kinds.contains(Namespace::Pid)
            && !kinds.contains(Namespace::User)
            && target.pid().is_some();
        Ok(Prepared {
            toolbox,
            confined,
            seccomp_programs,
            new_session: self.new_session,
            _strings: (argv, envp, candidates, cwd_path.clone()),
            argv_ptrs,
            envp_ptrs,
            candidate_ptrs,
            pidfd,
            flags: kinds.clone_flags(),
            namespace_fds,
            root,
            cwd_fd,
            cwd_path,
            uid,
            gid,
            groups,
            stdio_fds,
            _held: held,
            cgroup_fds: cgroup_procs.iter().map(|fd| fd.as_raw_fd()).collect(),
            _cgroup_procs: cgroup_procs,
            fork_for_pid: kinds.contains(Namespace::Pid),
            joins_user: kinds.contains(Namespace::User),
            recheck,
        })
    }

    /// The environment, as the trust decision gives it (see [`Trust::environment`]), or
    /// none after [`env_clear`](Command::env_clear); then the variables set or removed here.
    fn environment(
        &self,
        target: &Target,
        kinds: NamespaceSet,
    ) -> Result<Vec<(OsString, OsString)>> {
        let mut env: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            self.trust(kinds)
                .environment(std::env::vars_os(), self.env_from_target, || {
                    match target.pid() {
                        Some(_) => target.environment(),
                        // A namespace file has no environment: the caller's stays.
                        None => Ok(std::env::vars_os().collect()),
                    }
                })?
        };
        for (key, value) in &self.env {
            env.retain(|(k, _)| k != key);
            if let Some(value) = value {
                env.push((key.clone(), value.clone()));
            }
        }
        Ok(env)
    }

    /// Whether the program is confined like the target, and how, by [`Confinement`]; checks
    /// that a program with the caller's powers cannot be reached by the target.
    fn confinement_for(&self, target: &Target, kinds: NamespaceSet) -> Result<Option<Confined>> {
        let trust = self.trust(kinds);
        if trust.confined() {
            if target.pid().is_none() {
                return Err(Error::Confine {
                    target: target.id(),
                    what: "process",
                    source: std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "a namespace file has no process to take capabilities, seccomp filters and ids from",
                    ),
                });
            }
            // Reading its seccomp filters stops it, and its cgroup is joined: both would wait
            // for a frozen target to thaw.
            if target.is_frozen() {
                return Err(Error::Frozen {
                    target: target.id(),
                });
            }
            return confine::read(target, kinds.contains(Namespace::User)).map(Some);
        }
        // Joining the user namespace is refused here; the container's processes are read
        // right before exec, once the pid namespace is joined (spawn_in's handshake).
        if trust.checks_reach() && kinds.contains(Namespace::User) {
            if let Some(why) = confine::host_program_reachable(target, kinds, self.uid, None)? {
                return Err(Error::HostProgramReachable {
                    target: target.id(),
                    why,
                });
            }
        }
        Ok(None)
    }
}

/// Opens (for writing, in the caller) the `cgroup.procs` file of each of the target's cgroups.
fn open_cgroup_procs(target: &Target) -> Result<Vec<OwnedFd>> {
    let pid = target.live_pid(NamespaceSet::of(Namespace::Cgroup))?;
    let cgroup_error = |source| Error::Cgroup {
        target: target.id(),
        source,
    };
    // Already in the same cgroups (one namespace of ours, or a target that is no container):
    // nothing to move, and no write to cgroupfs that an unprivileged caller could not make.
    let membership = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
    if membership(&pid.to_string()).map_err(cgroup_error)?
        == membership("self").map_err(cgroup_error)?
    {
        return Ok(Vec::new());
    }
    let files = crate::cgroup::procs_files(pid).map_err(cgroup_error)?;
    files
        .into_iter()
        .map(|file| {
            let c = CString::new(file.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
                what: "cgroup path",
            })?;
            sys::open(&c, libc::O_WRONLY).map_err(cgroup_error)
        })
        .collect()
}

/// The kernel refuses `setns` into one's own user namespace (EINVAL): drop it from the set.
fn without_own_user_namespace(target: &Target, kinds: NamespaceSet) -> Result<NamespaceSet> {
    if kinds.contains(Namespace::User)
        && target.namespace_id(Namespace::User)? == NamespaceId::of_current_thread(Namespace::User)?
    {
        return Ok(kinds.without(Namespace::User));
    }
    Ok(kinds)
}

/// The paths to try with `execve`, in order: the program itself if it has a `/`, else
/// each `PATH` directory joined with it.
fn exec_candidates(program: &OsStr, path: Option<&OsStr>) -> Result<Vec<CString>> {
    let nul = |_| Error::NulByte { what: "program" };
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![CString::new(program.as_bytes()).map_err(nul)?]);
    }
    let path = path.map(OsStr::as_bytes).unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            CString::new(full).map_err(nul)
        })
        .collect()
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Owns what the raw pointers and fds of a [`Plan`] point to until the child has exec'd.
struct Prepared {
    toolbox: Option<PreparedToolbox>,
    confined: Option<Confined>,
    /// Points into `confined`'s filters.
    seccomp_programs: Vec<libc::sock_fprog>,
    new_session: bool,
    _strings: (Vec<CString>, Vec<CString>, Vec<CString>, Option<CString>),
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    candidate_ptrs: Vec<*const libc::c_char>,
    pidfd: Option<RawFd>,
    flags: libc::c_int,
    namespace_fds: Vec<(RawFd, libc::c_int)>,
    root: Option<OwnedFd>,
    cwd_fd: Option<OwnedFd>,
    cwd_path: Option<CString>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<libc::gid_t>>,
    stdio_fds: [Option<RawFd>; 3],
    _held: Vec<OwnedFd>,
    cgroup_fds: Vec<RawFd>,
    _cgroup_procs: Vec<OwnedFd>,
    fork_for_pid: bool,
    joins_user: bool,
    /// A host program in the target's pid namespace: checked again before exec.
    recheck: bool,
}

/// What a toolbox session's child needs (see [`Command::toolbox`]).
struct PreparedToolbox {
    target_mnt: RawFd,
    own_mnt: OwnedFd,
    scratch: CString,
    root_at: CString,
    writable: bool,
}

impl Prepared {
    fn plan(&self, err_fd: Option<RawFd>, handshake: Option<child::Handshake>) -> Plan<'_> {
        Plan {
            argv: &self.argv_ptrs,
            envp: &self.envp_ptrs,
            candidates: &self.candidate_ptrs,
            pidfd: self.pidfd,
            flags: self.flags,
            namespace_fds: &self.namespace_fds,
            root: self.root.as_ref().map(|fd| fd.as_raw_fd()),
            cwd_fd: self.cwd_fd.as_ref().map(|fd| fd.as_raw_fd()),
            cwd_path: self.cwd_path.as_deref(),
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.as_deref(),
            stdio: self.stdio_fds,
            err_fd,
            cgroup_fds: &self.cgroup_fds,
            fork_for_pid: self.fork_for_pid,
            joins_user: self.joins_user,
            new_session: self.new_session,
            confine: self.confined.as_ref().map(|c| ChildConfinement {
                caps: c.caps,
                no_new_privs: c.no_new_privs,
                seccomp: &self.seccomp_programs,
                lsm_exec: c
                    .lsm_exec
                    .as_ref()
                    .map(|(path, label)| (path.as_c_str(), label.as_slice())),
            }),
            toolbox: self.toolbox.as_ref().map(|t| ToolboxPlan {
                target_mnt: t.target_mnt,
                own_mnt: t.own_mnt.as_raw_fd(),
                scratch: &t.scratch,
                root_at: &t.root_at,
                writable: t.writable,
                parent: std::process::id() as libc::pid_t,
            }),
            cloexec_only: err_fd.is_none(),
            handshake,
        }
    }
}

/// Reads the child's failure report: `None` when the pipe closed without one (the exec
/// succeeded and close-on-exec closed it).
fn read_failure(pipe: OwnedFd) -> Option<child::Failure> {
    let mut file = std::fs::File::from(pipe);
    let mut report = [0u8; 8];
    let mut got = 0;
    while got < report.len() {
        match file.read(&mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if got < report.len() {
        return None;
    }
    let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
    let step = Step::from_code(u32::from_ne_bytes([s0, s1, s2, s3]));
    Some((step, i32::from_ne_bytes([e0, e1, e2, e3])))
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = std::fs::File::from(fd).read_to_end(&mut bytes);
    bytes
}

/// Signals passed on to a started program; see [`Child::forward_signals`].
pub struct SignalForwarding {
    previous: crate::relay::Previous,
}

impl Drop for SignalForwarding {
    fn drop(&mut self) {
        crate::relay::uninstall(&self.previous);
    }
}

impl std::fmt::Debug for SignalForwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalForwarding")
    }
}

/// A program started by [`Command::spawn_in`].
#[derive(Debug)]
pub struct Child {
    pid: i32,
    status: Option<ExitStatus>,
}

impl Child {
    /// The pid of the started process, in the caller's pid namespace. When the pid
    /// namespace was joined this is the relaying middle process, which forwards signals.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// Sends signal `signal` (e.g. `libc::SIGTERM`) to the program.
    pub fn signal(&self, signal: i32) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // The pid is our unreaped child: it cannot have been recycled.
        sys::kill(self.pid, signal).map_err(|source| Error::Child {
            action: "signal",
            pid: self.pid,
            source,
        })
    }

    /// Passes `signal` on as [`Child::forward_signals`] does: a signal that asks the program
    /// to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT) is followed by SIGCONT, so a stopped program
    /// still receives it. For callers that relay signals themselves (from a signalfd, say).
    pub fn relay_signal(&self, signal: i32) -> Result<()> {
        self.signal(signal)?;
        if crate::relay::is_meant_to_end(signal) {
            self.signal(libc::SIGCONT)?;
        }
        Ok(())
    }

    /// Until the returned value is dropped, every catchable signal sent to this process
    /// (SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGALRM, real-time signals...; not faults, job
    /// control stops, SIGCHLD or SIGPIPE) is passed on to the program instead of acting on
    /// this process; those the terminal sends (Ctrl-C) are not, since the program, in the same
    /// foreground process group, gets them anyway. The handlers are process-wide: use this in
    /// a tool that runs one program at a time, as `nsenter` does. Block signals with
    /// [`SignalsBlocked`](crate::SignalsBlocked) before spawning to lose none in between.
    pub fn forward_signals(&self) -> SignalForwarding {
        SignalForwarding {
            previous: crate::relay::install(self.pid),
        }
    }

    /// Waits for the program to end: `code()` is its exit code, `signal()` the signal that
    /// killed it. Stops of the program are waited through.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        loop {
            if let WaitEvent::Exited(status) = self.wait_event()? {
                return Ok(status);
            }
        }
    }

    /// Waits until the program ends or is stopped (SIGSTOP, SIGTSTP...), so that a caller can
    /// follow its job control, as a shell or `sudo` does: a program stopped by someone else
    /// must not leave the caller hanging unaware.
    pub fn wait_event(&mut self) -> Result<WaitEvent> {
        self.wait_with(0)
            .map(|event| event.unwrap_or(WaitEvent::Stopped(0)))
    }

    /// [`wait_event`](Child::wait_event) without blocking: `None` while the program runs.
    pub fn try_wait_event(&mut self) -> Result<Option<WaitEvent>> {
        self.wait_with(libc::WNOHANG)
    }

    fn wait_with(&mut self, flags: libc::c_int) -> Result<Option<WaitEvent>> {
        if let Some(status) = self.status {
            return Ok(Some(WaitEvent::Exited(status)));
        }
        let raw = loop {
            match sys::waitpid(self.pid, libc::WUNTRACED | flags) {
                Ok((0, _)) => return Ok(None),
                Ok((_, raw)) => break raw,
                Err(source) if source.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Child {
                        action: "wait for",
                        pid: self.pid,
                        source,
                    })
                }
            }
        };
        if libc::WIFSTOPPED(raw) {
            return Ok(Some(WaitEvent::Stopped(libc::WSTOPSIG(raw))));
        }
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(Some(WaitEvent::Exited(status)))
    }
}

/// What [`Child::wait_event`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    /// The program ended.
    Exited(ExitStatus),
    /// The program was stopped by this signal; it continues on SIGCONT.
    Stopped(i32),
}
