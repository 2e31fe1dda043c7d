//! `nsdebug enter TARGET [namespaces] [options] [-- COMMAND ARGS...]`

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use anyhow::Context;
use std::io::IsTerminal;

use nsenter_core::user::ExecUser;
use nsenter_core::{
    Command, Confinement, Error, Namespace, NamespaceSet, RootDir, SpawnStep, Stdio, Target, Trust,
    WaitEvent, WorkDir,
};

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};
use crate::pty;
use crate::session::StopWatch;

// Arguments of `nsdebug debug`: enter's, shown as what they mean for the host's tools.
// The host program never joins the mount, user or time namespace: the options about those
// are not shown, and refused when given (see `unused_by_debug`).
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::DEBUG, long_about = None)]
#[command(
    mut_arg("rw", |a| a.hide(false)),
    mut_arg("mount", |a| a.hide(true)),
    mut_arg("user", |a| a.hide(true)),
    mut_arg("time", |a| a.hide(true)),
    mut_arg("privileged", |a| a.hide(true)),
    mut_arg("root", |a| a.hide(true)),
    mut_arg("preserve_credentials", |a| a.hide(true)),
    mut_arg("all", |a| a.help("Join every namespace of the target that differs from ours \
        (but mount, user and time: the host's tools keep the host's files and powers)")),
    mut_arg("command", |a| a.help("The host's command and its arguments (default: our $SHELL, \
        else /bin/sh), run with the container's view; everything after TARGET that is not \
        an option of nsdebug's is the command; `--` makes that explicit")),
)]
pub struct DebugArgs {
    /// enter's arguments.
    #[command(flatten)]
    pub enter: EnterArgs,
}

// Arguments of `nsdebug enter`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::ENTER, long_about = None)]
#[command(
    after_help = "TARGET is tried as: a PID; a namespace file path; a Kubernetes pod \
    through the CRI (pod/NAME -n NS, NAME -n NS, NS/NAME or NS/POD/CONTAINER; -c picks the \
    container); a Docker container name, ID or unique ID prefix; the same in Podman; a \
    containerd container ID (namespaces moby, k8s.io, default); an `ip netns` name.\n\
    Without namespace flags, every namespace of the target that differs from ours is entered \
    (like --all).\nShort options are nsenter's (-m -u -p -U -C -T -r -t -S -G), except -n \
    (kubectl's namespace; nsenter's is --net), -i (docker exec's; nsenter's is --ipc) and -w DIR \
    (docker exec's working directory; nsenter's bare -w is --wd).\nExit status: the command's, 128+N if it died of signal N, 125 if nsdebug \
    failed, 126 if the command could not be run, 127 if it was not found."
)]
pub struct EnterArgs {
    /// The container, pod, pid, netns name or namespace file to enter.
    #[arg(required_unless_present = "target_option")]
    target: Option<String>,
    /// The target, as nsenter's -t PID takes it (then every word after the options is the
    /// command).
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    target_option: Option<String>,
    /// Accepted for docker exec's -i: nsdebug passes stdin on, and gives a terminal of its own
    /// when stdin is one (no -t needed).
    #[arg(short = 'i', long, hide = true)]
    interactive: bool,
    /// Enter the network namespace (nsenter's -n; here -n is kubectl's --namespace).
    #[arg(long)]
    net: bool,
    /// Enter the UTS namespace (hostname).
    #[arg(short = 'u', long)]
    uts: bool,
    /// Enter the IPC namespace (nsenter's -i; here -i is docker exec's, and needless).
    #[arg(long)]
    ipc: bool,
    /// Enter the PID namespace (the command sees the container's processes).
    #[arg(short = 'p', long)]
    pid: bool,
    /// Enter the mount namespace (the container's filesystem).
    #[arg(short = 'm', long, visible_alias = "mnt")]
    mount: bool,
    /// Enter the user namespace.
    #[arg(short = 'U', long)]
    user: bool,
    /// Enter the cgroup namespace.
    #[arg(short = 'C', long)]
    cgroup: bool,
    /// Enter the time namespace.
    #[arg(short = 'T', long)]
    time: bool,
    /// Enter every namespace of the target that differs from ours.
    #[arg(short = 'a', long)]
    all: bool,
    /// Root directory: the target's, or DIR (opened on the host, like nsenter --root=DIR).
    #[arg(short = 'r', long, value_name = "DIR", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    root: Option<String>,
    /// Working directory: the target's, or DIR as seen inside (util-linux's --wdns; its
    /// --wd=DIR opens DIR on the host).
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true, default_missing_value = "", conflicts_with = "workdir")]
    wd: Option<String>,
    /// Working directory DIR as seen inside, as docker exec's -w/--workdir (nsenter's bare -w,
    /// the target's own, is --wd).
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Run the command as this user: a uid, or a name from the container's /etc/passwd (its
    /// group too, unless -G), like `docker exec --user`.
    #[arg(short = 'S', long, visible_alias = "user-name", value_name = "USER")]
    setuid: Option<String>,
    /// Run the command with this group: a gid, or a name from the container's /etc/group.
    #[arg(short = 'G', long, value_name = "GROUP")]
    setgid: Option<String>,
    /// A host program keeps our environment; -e adds the target's LANG, LC_*, TZ, HOSTNAME,
    /// proxy and KUBERNETES_* variables (the container's own programs always run with the
    /// container's environment).
    #[arg(short = 'e', long)]
    env: bool,
    /// Keep our uid/gid in the target's user namespace (default: become its root).
    #[arg(long)]
    preserve_credentials: bool,
    /// Join the target's cgroups, so the command is accounted and limited like the container.
    #[arg(long)]
    join_cgroup: bool,
    /// Run a program from the container with host powers instead of the container's
    /// (capabilities, seccomp, LSM label, cgroups, ids), as `docker exec --privileged` does.
    #[arg(long)]
    privileged: bool,
    /// Start a host program in the container's pid namespace even where the container could
    /// ptrace it (CAP_SYS_PTRACE in the container, -S/--setuid, --user): only for containers
    /// you trust.
    #[arg(long)]
    expose_host_program: bool,
    /// Set by `nsdebug debug`: a host program with the target's view of the filesystem.
    #[arg(skip)]
    toolbox: bool,
    /// `nsdebug debug` only: the container's files at $CTR_ROOT may be written (they are
    /// read-only by default); their symlinks are never followed either way.
    // enter refuses it, so its help does not list it; debug's shows it (DebugArgs).
    #[arg(long, hide = true)]
    rw: bool,
    #[command(flatten)]
    lookup: LookupArgs,
    /// The command and its arguments (default: the container's $SHELL, else /bin/sh, for a
    /// program from the container; ours for a host program). As with nsenter and docker exec,
    /// everything after TARGET that is not an option of nsdebug's is the command; `--` makes
    /// that explicit.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

/// Where a toolbox session mounts its tmpfs (the container's files at `ctr` in it).
pub const TOOLBOX_SCRATCH: &str = "/run/nsdebug";

impl EnterArgs {
    /// These arguments for `nsdebug debug`.
    pub fn toolbox(mut self) -> EnterArgs {
        self.toolbox = true;
        self
    }

    fn requested(&self) -> NamespaceSet {
        [
            (self.user, Namespace::User),
            (self.cgroup, Namespace::Cgroup),
            (self.ipc, Namespace::Ipc),
            (self.uts, Namespace::Uts),
            (self.net, Namespace::Net),
            (self.pid, Namespace::Pid),
            (self.mount, Namespace::Mnt),
            (self.time, Namespace::Time),
        ]
        .into_iter()
        .filter_map(|(on, ns)| on.then_some(ns))
        .collect()
    }
}

impl EnterArgs {
    /// `-t TARGET` makes a positional word the first word of the command.
    fn settle_target(mut self) -> anyhow::Result<EnterArgs> {
        if let Some(target) = self.target_option.take() {
            if let Some(word) = self.target.replace(target) {
                self.command.insert(0, word.into());
            }
        }
        // `enter web --nett ip a`: a mistyped option, not a program named --nett (one that
        // is comes after --).
        if let Some(first) = self.command.first().and_then(|w| w.to_str()) {
            let after_dashes = std::env::args_os()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|pair| pair[0] == "--" && pair[1] == first);
            if first.starts_with('-') && !after_dashes {
                let subcommand = if self.toolbox { "debug" } else { "enter" };
                crate::cli::unknown_option(subcommand, first);
            }
        }
        if let Some(dir) = self.workdir.take() {
            self.wd = Some(dir);
        }
        let target = self.target.as_deref().unwrap_or_default();
        // nsenter's -i is --ipc; here it is docker exec's: with a pid (nsenter's habit) it
        // would silently leave the IPC namespace out.
        if self.interactive && is_pid_spec(target) {
            anyhow::bail!(
                "-i is docker exec's -i here (not needed), and {target} is a pid; for nsenter's -i say --ipc"
            );
        }
        if self.interactive {
            crate::cli::notice(format_args!(
                "-i is not needed: stdin is passed on, and a terminal of its own comes when stdin is one"
            ));
        }
        if self.rw && !self.toolbox {
            anyhow::bail!("--rw is for nsdebug debug (a writable $CTR_ROOT)");
        }
        let target = self.target.as_deref().unwrap_or_default();
        // nsenter's -n is --net; here -n is a Kubernetes namespace, meaningless for a pid.
        if let (Some(ns), true) = (&self.lookup.k8s_namespace, is_pid_spec(target)) {
            anyhow::bail!(
                "-n {ns:?} is a Kubernetes namespace here, and {target} is a pid; for nsenter's -n say --net"
            );
        }
        Ok(self)
    }

    /// The first option given that `nsdebug debug` has no use for: it runs a host program and
    /// never joins the target's mount, user or time namespace.
    pub fn unused_by_debug(&self) -> Option<&'static str> {
        [
            (self.mount, "--mount"),
            (self.user, "--user"),
            (self.time, "--time"),
            (self.privileged, "--privileged"),
            (self.root.is_some(), "--root"),
            (self.preserve_credentials, "--preserve-credentials"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn target(&self) -> &str {
        self.target.as_deref().unwrap_or_default()
    }
}

/// A pid as TARGET: digits, or `pid:` and digits.
fn is_pid_spec(target: &str) -> bool {
    let digits = target.strip_prefix("pid:").unwrap_or(target);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Runs `nsdebug enter`.
pub fn run(args: EnterArgs) -> Result<ExitCode, Failure> {
    let args = args.settle_target()?;
    let mut options = args.lookup.options();
    options.frozen_ok = waits_on_nothing(&args);
    let started = std::time::Instant::now();
    let resolved = match block_on(resolve(args.target(), &options))? {
        Ok(resolved) => resolved,
        // `debug` on a container that is not running: its files from the runtime's storage.
        Err(error) if args.toolbox => {
            return super::stopped::when_stopped(args.target(), &args.command, &options, error)
        }
        Err(error) => return Err(error.into()),
    };
    let target = &resolved.target;
    let what = &resolved.description;
    // (-v: resolve has said what the target is and which runtimes it asked.)
    tracing::debug!(
        "resolved in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let requested = args.requested();
    let mut kinds = if args.all || requested.is_empty() {
        target
            .differing_from_current_thread()
            .with_context(|| what.clone())?
    } else {
        requested
    };
    if args.toolbox {
        // The host's tools in a mount namespace of their own; never the container's user
        // namespace (its root would have every capability over the session).
        kinds = kinds
            .without(Namespace::Mnt)
            .without(Namespace::User)
            .without(Namespace::Time);
    }
    // nsenter-core decides whether the program is the container's code or a host program,
    // and how it runs; we say what it decided.
    let trust = Trust::decide(
        kinds,
        root_dir(&args).as_ref(),
        confinement(&args),
        args.expose_host_program,
    );
    let from_container = trust.from_target();
    let plural = if kinds.iter().count() == 1 { "" } else { "s" };
    tracing::info!("joining the {kinds} namespace{plural}; {trust}");
    let explicit = args.command.first().cloned();
    let program = match &explicit {
        Some(program) => program.clone(),
        None => default_shell(target, from_container),
    };
    let terminals = pty::Terminals::of_stdio();
    // A program of the container's never shares the operator's terminal (TIOCSTI, job control).
    let use_pty = from_container && terminals.any();
    let needs_fork = args.toolbox;
    let interactive = terminals.0[0] && terminals.0[2];
    if interactive {
        // nsenter-core's decision, as it made it: `sh: the container's program, confined
        // like the container, on a terminal of its own`.
        let where_ = if from_container {
            "on a terminal of its own".to_owned()
        } else {
            format!("in the {kinds} namespaces of {what}")
        };
        crate::cli::notice(format_args!(
            "{}: {trust}, {where_}",
            program.to_string_lossy()
        ));
        if args.toolbox {
            crate::cli::notice(format_args!(
                "its files are at $CTR_ROOT ({}, symlinks not followed); the container sees                  this session's command lines and can signal it; no uid change (su, sudo -u,                  setpriv) works in it",
                if args.rw { "writable" } else { "read-only, --rw to write" }
            ));
        }
    }
    let mut command = build(&args, target, &program, from_container)?;
    if args.toolbox {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(TOOLBOX_SCRATCH)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(anyhow::Error::new(e)
                    .context(format!("creating {TOOLBOX_SCRATCH}"))
                    .into());
            }
            _ => {}
        }
        command.toolbox(TOOLBOX_SCRATCH).toolbox_writable(args.rw);
        // The program's way to the container's files: the name is nsdebug's to choose.
        if let Some(root) = command.toolbox_root() {
            command.env("CTR_ROOT", root);
        }
    }
    let name = resolved
        .container
        .as_ref()
        .map_or(args.target(), |c| c.name.as_str());
    if explicit.is_none() {
        // A shell shows where it is: `[nsdebug web] /app # `.
        command.env("PS1", format!("[nsdebug {}] \\w \\$ ", printable(name)));
    }
    if !from_container {
        // A host program (its rc files may set their own PS1) can still tell where it runs:
        // a prompt can show $NSDEBUG_TARGET. The container's programs get its environment only.
        command.env("NSDEBUG_TARGET", printable(name));
    }
    // Like nsenter: without the pid namespace nothing needs a child, so become the command
    // (its signals, terminal and exit status are then simply ours). User and time namespaces
    // need a single-threaded process, which only a fresh child is sure to be; an interactive
    // shell keeps the child path for its fallback to /bin/sh; a pty needs nsdebug to relay it.
    let needs_child = NamespaceSet::of(Namespace::Pid)
        .with(Namespace::User)
        .with(Namespace::Time);
    if explicit.is_some() && kinds.intersection(needs_child).is_empty() && !use_pty && !needs_fork {
        tracing::debug!("becoming {} (no child needed)", program.to_string_lossy());
        let error = command.exec_in(target, kinds);
        return Err(failure(error, what));
    }
    tracing::debug!(
        "starting {} in a child{}",
        program.to_string_lossy(),
        if use_pty { ", on a pty of its own" } else { "" }
    );
    let rebuild = |program: &OsString| build(&args, target, program, from_container);
    let spawn = |streams: &dyn Fn(&mut Command) -> std::io::Result<()>| {
        let is_default_shell = explicit.is_none();
        spawn_with_fallback(
            target,
            kinds,
            &program,
            is_default_shell,
            command,
            rebuild,
            streams,
        )
        .map_err(|error| start_failure(error, what, is_default_shell && from_container))
    };
    let status = if use_pty {
        let terminal = pty::open_in(target, terminals)?;
        let blocked = pty::Blocked::now()?;
        let mut child = spawn(&|command: &mut Command| {
            for (index, on) in terminals.0.iter().enumerate() {
                if *on {
                    let slave = terminal.slave.try_clone()?;
                    match index {
                        0 => command.stdin(Stdio::Fd(slave)),
                        1 => command.stdout(Stdio::Fd(slave)),
                        _ => command.stderr(Stdio::Fd(slave)),
                    };
                }
            }
            command.new_session(true);
            Ok(())
        })?;
        drop(terminal.slave);
        let _stops = args.toolbox.then(|| StopWatch::start(child.id().get()));
        pty::relay(terminal.master, &mut child, terminals, blocked).with_context(|| what.clone())?
    } else {
        // From here until the handlers are in place, a signal must wait rather than kill
        // nsdebug alone and orphan the command.
        let blocked = nsenter_core::SignalsBlocked::relayed();
        let mut child = spawn(&|_: &mut Command| Ok(()))?;
        let forwarding = child.forward_signals();
        drop(blocked); // signals that came while starting are relayed now
        let _stops = args.toolbox.then(|| StopWatch::start(child.id().get()));
        let status = wait_following_stops(&mut child).with_context(|| what.clone())?;
        drop(forwarding);
        status
    };
    Ok(ExitCode::from(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => crate::cli::EXIT_NSDEBUG_FAILED,
    }))
}

/// Starts the command; an interactive shell that is not there falls back to /bin/sh.
fn spawn_with_fallback(
    target: &Target,
    kinds: NamespaceSet,
    program: &OsString,
    is_default_shell: bool,
    mut command: Command,
    rebuild: impl Fn(&OsString) -> anyhow::Result<Command>,
    streams: &dyn Fn(&mut Command) -> std::io::Result<()>,
) -> Result<nsenter_core::Child, Error> {
    let io = |source| Error::Spawn {
        program: program.to_string_lossy().into_owned(),
        step: SpawnStep::Dup,
        source,
    };
    streams(&mut command).map_err(io)?;
    match command.spawn_in(target, kinds) {
        Err(
            Error::ProgramNotFound { .. }
            | Error::Spawn {
                step: SpawnStep::Exec,
                ..
            },
        ) if is_default_shell && program != "/bin/sh" => {
            let sh = OsString::from("/bin/sh");
            let mut again = rebuild(&sh).map_err(|e| Error::Spawn {
                program: "/bin/sh".into(),
                step: SpawnStep::Exec,
                source: std::io::Error::other(e.to_string()),
            })?;
            streams(&mut again).map_err(io)?;
            again.spawn_in(target, kinds)
        }
        other => other,
    }
}

/// Waits for the program; when someone stops it (the container can send it SIGSTOP) nsdebug
/// says so instead of hanging silently, and SIGINT/SIGTERM still end it (the relay continues
/// a stopped program after passing them on).
fn wait_following_stops(
    child: &mut nsenter_core::Child,
) -> nsenter_core::Result<std::process::ExitStatus> {
    let mut told = false;
    loop {
        match child.wait_event()? {
            WaitEvent::Exited(status) => return Ok(status),
            WaitEvent::Stopped(signal) if !told => {
                told = true;
                crate::cli::notice(format_args!(
                    "the command was stopped (signal {signal}); waiting for it to continue \
                     (SIGINT/SIGTERM to nsdebug still end it)"
                ));
            }
            WaitEvent::Stopped(_) => {}
        }
    }
}

/// The shell to start when no command is given: the container's `$SHELL` (else /bin/sh) for
/// a program from the container, ours (else /bin/sh) for a host program.
fn default_shell(target: &Target, from_container: bool) -> OsString {
    let shell = if from_container {
        target
            .environment()
            .ok()
            .and_then(|env| env.into_iter().find(|(k, _)| k == "SHELL").map(|(_, v)| v))
    } else {
        std::env::var_os("SHELL")
    };
    shell
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

/// The exit status for an error of starting the command: 127 not found, 126 not runnable,
/// 125 anything else (as `docker run` and `env` do).
fn failure(error: Error, what: &str) -> Failure {
    let exit_code = match &error {
        Error::ProgramNotFound { .. } => 127,
        Error::Spawn {
            step: SpawnStep::Exec,
            ..
        } => 126,
        _ => crate::cli::EXIT_NSDEBUG_FAILED,
    };
    Failure {
        error: anyhow::Error::new(error).context(what.to_owned()),
        exit_code,
    }
}

/// Who `-S USER` and `-G GROUP` are, as `docker exec --user USER[:GROUP]` decides it
/// ([`nsenter_core::user::exec_user`]), from the container's `/etc/passwd` and `/etc/group`
/// (read inside its root as data: its links never lead out; a file the image lacks is empty).
fn exec_user(target: &Target, user: &str, group: Option<&str>) -> anyhow::Result<ExecUser> {
    let read = |file: &str| -> anyhow::Result<String> {
        match target.read_file(file, 1 << 20) {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(Error::OpenPath { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(String::new())
            }
            Err(e) => Err(e).with_context(|| format!("reading the container's {file}")),
        }
    };
    nsenter_core::user::exec_user(&read("/etc/passwd")?, &read("/etc/group")?, user, group)
        .map_err(anyhow::Error::msg)
}

/// `name` without control characters (it goes into a prompt).
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The failure of starting the command; `default_shell_of_container`: the shell nsdebug
/// picked in the container's filesystem, whose absence means an image without one.
fn start_failure(error: Error, what: &str, default_shell_of_container: bool) -> Failure {
    match error {
        Error::ProgramNotFound { .. } if default_shell_of_container => no_shell(error, what),
        error => failure(error, what),
    }
}

/// A shell that is not there: most likely an image without one (distroless, scratch).
fn no_shell(error: Error, what: &str) -> Failure {
    let mut failure = failure(error, what);
    failure.error = failure.error.context(
        "the container has no shell: name a program it has (-- /path/to/tool), or use the host's \
         tools without its filesystem (--net --pid --uts --ipc)",
    );
    failure
}

/// The root directory asked for: the target's (`--root`), or one of ours (`--root=DIR`).
fn root_dir(args: &EnterArgs) -> Option<RootDir> {
    match args.root.as_deref() {
        Some("") => Some(RootDir::Target),
        Some(dir) => Some(RootDir::Path(dir.into())),
        None => None,
    }
}

/// Whether the command waits on nothing of the target's, so that a paused (frozen) target is
/// fine: a host program in the namespaces named on the command line, joining no cgroup, as
/// `nsenter -t PID -n` does; a paused container's network is worth a look. A program confined
/// like the target (its seccomp filters are read by stopping it, its cgroup is joined) or
/// `--join-cgroup` would wait until it is thawed: the lookup refuses those, with the
/// container's name, and nsenter-core again just before.
fn waits_on_nothing(args: &EnterArgs) -> bool {
    let requested = args.requested();
    let trust = Trust::decide(
        requested,
        root_dir(args).as_ref(),
        confinement(args),
        args.expose_host_program,
    );
    !args.toolbox && !args.all && !requested.is_empty() && !args.join_cgroup && !trust.confined()
}

/// `--privileged`: the caller's powers; otherwise nsenter-core's choice by origin.
fn confinement(args: &EnterArgs) -> Confinement {
    if args.privileged {
        Confinement::Caller
    } else {
        Confinement::Auto
    }
}

/// The command with every option applied.
fn build(
    args: &EnterArgs,
    target: &Target,
    program: &OsString,
    from_container: bool,
) -> anyhow::Result<Command> {
    let mut command = Command::new(program);
    command.args(args.command.iter().skip(1));
    let on_terminal = std::io::stdin().is_terminal();
    // The environment is nsenter-core's decision (the container's for its code, ours plus
    // the target's harmless settings with -e for a host program); only TERM is added here,
    // for a program of the container's on a terminal whose environment has none.
    if from_container && on_terminal {
        let has_term = target
            .environment()
            .is_ok_and(|env| env.iter().any(|(k, _)| k == "TERM"));
        if !has_term {
            command.env(
                "TERM",
                std::env::var_os("TERM").unwrap_or_else(|| "xterm".into()),
            );
        }
    }
    command
        .env_from_target(args.env)
        .confine(confinement(args))
        .allow_reachable_host_program(args.expose_host_program);
    if let Some(root) = root_dir(args) {
        command.root(root);
    }
    match args.wd.as_deref() {
        Some("") => {
            command.current_dir(WorkDir::Target);
        }
        Some(dir) => {
            command.current_dir(WorkDir::Path(dir.into()));
        }
        None => {}
    }
    match (&args.setuid, &args.setgid) {
        (Some(user), group) => {
            let who = exec_user(target, user, group.as_deref())?;
            command.uid(who.uid).gid(who.gid).groups(&who.groups);
        }
        (None, Some(group)) => {
            // The target's user, in this group alone (as `docker exec --user :GROUP`).
            let who = exec_user(target, "0", Some(group))?;
            command.gid(who.gid).groups(&who.groups);
        }
        (None, None) => {}
    }
    command
        .preserve_credentials(args.preserve_credentials)
        .join_cgroup(args.join_cgroup);
    Ok(command)
}
