//! The public [`Command`]: a program to run inside a target's namespaces and its options
//! (a builder, nothing happens until `spawn_in`/`exec_in`).
//!
//! The work is split by when it happens: [`prepare`] computes, before fork, everything the
//! child will do (its [`Plan`](crate::child::Plan)); [`spawn`] forks, hands the plan to the
//! child and reads its report; [`process`] is the started program ([`Child`]: wait, signals).

mod ids;
mod prepare;
mod process;
mod spawn;

pub use process::{Child, SignalForwarding, WaitEvent};

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::child::Step;
use crate::confine::Confinement;
use crate::error::Error;
use crate::kind::NamespaceSet;
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
/// use nsenter_core::{Command, Namespace, NamespaceSet, Pid, Target};
/// let target = Target::open(Pid::try_from(1234)?)?;
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
pub(super) const TOOLBOX_ROOT: &str = "ctr";

/// The default search path when the environment has no `PATH` (util-linux's).
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    pub(crate) fn spawn_error(&self, step: Step, source: std::io::Error) -> Error {
        Error::Spawn {
            program: self.program_name(),
            step,
            source,
        }
    }
}
