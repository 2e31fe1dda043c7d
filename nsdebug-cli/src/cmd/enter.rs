//! `nsdebug enter TARGET [namespaces] [options] [-- COMMAND ARGS...]`

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use anyhow::Context;
use nsenter_core::{Command, Error, Namespace, NamespaceSet, RootDir, Target, WorkDir};

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::resolve;

/// Arguments of `nsdebug enter`.
#[derive(clap::Args, Debug)]
#[command(after_help = "TARGET is tried as: a PID; a namespace file path; pod/NAME (Kubernetes, \
    through containerd); a Docker container name, ID or unique ID prefix; the same in Podman; a \
    containerd container ID (namespaces moby, k8s.io, default); an `ip netns` name.\n\
    Without namespace flags, every namespace of the target that differs from ours is entered \
    (like --all).\nExit status: the command's, 128+N if it died of signal N, 125 if nsdebug \
    failed, 126 if the command could not be run, 127 if it was not found.")]
pub struct EnterArgs {
    /// The container, pod, pid, netns name or namespace file to enter.
    target: String,
    /// Enter the network namespace.
    #[arg(long)]
    net: bool,
    /// Enter the UTS namespace (hostname).
    #[arg(long)]
    uts: bool,
    /// Enter the IPC namespace.
    #[arg(long)]
    ipc: bool,
    /// Enter the PID namespace (the command sees the container's processes).
    #[arg(long)]
    pid: bool,
    /// Enter the mount namespace (the container's filesystem).
    #[arg(long, visible_alias = "mnt")]
    mount: bool,
    /// Enter the user namespace.
    #[arg(long)]
    user: bool,
    /// Enter the cgroup namespace.
    #[arg(long)]
    cgroup: bool,
    /// Enter the time namespace.
    #[arg(long)]
    time: bool,
    /// Enter every namespace of the target that differs from ours.
    #[arg(short = 'a', long)]
    all: bool,
    /// Root directory: the target's, or DIR (opened on the host, like nsenter --root=DIR).
    #[arg(short = 'r', long, value_name = "DIR", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    root: Option<String>,
    /// Working directory: the target's, or DIR as seen inside (util-linux's --wdns; its
    /// --wd=DIR opens DIR on the host).
    #[arg(short = 'w', long, value_name = "DIR", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    wd: Option<String>,
    /// Run the command with this uid.
    #[arg(short = 'S', long, value_name = "UID")]
    setuid: Option<u32>,
    /// Run the command with this gid.
    #[arg(short = 'G', long, value_name = "GID")]
    setgid: Option<u32>,
    /// Give the command the target's environment instead of ours.
    #[arg(short = 'e', long)]
    env: bool,
    /// Keep our uid/gid in the target's user namespace (default: become its root).
    #[arg(long)]
    preserve_credentials: bool,
    /// Join the target's cgroups, so the command is accounted and limited like the container.
    #[arg(short = 'c', long)]
    join_cgroup: bool,
    #[command(flatten)]
    lookup: LookupArgs,
    /// The command and its arguments (default: $SHELL, else /bin/sh).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

impl EnterArgs {
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

/// Runs `nsdebug enter`.
pub fn run(args: EnterArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let resolved = block_on(resolve(&args.target, &options))??;
    let target = &resolved.target;
    let what = &resolved.description;
    let requested = args.requested();
    let kinds = if args.all || requested.is_empty() {
        target.differing_from_current_thread().with_context(|| what.clone())?
    } else {
        requested
    };

    let explicit = args.command.first().cloned();
    let shell = std::env::var_os("SHELL").filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
    let program = explicit.clone().unwrap_or(shell);
    let mut command = build(&args, target, &program, kinds)?;
    // Like nsenter: without the pid namespace nothing needs a child, so become the command
    // (its signals, terminal and exit status are then simply ours). User and time namespaces
    // need a single-threaded process, which only a fresh child is sure to be; an interactive
    // shell keeps the child path for its fallback to /bin/sh.
    let needs_child = NamespaceSet::of(Namespace::Pid).with(Namespace::User).with(Namespace::Time);
    if explicit.is_some() && kinds.intersection(needs_child).is_empty() {
        let error = command.exec_in(target, kinds);
        return Err(failure(error, what));
    }
    // From here until the handlers are in place, a signal must wait rather than kill
    // nsdebug alone and orphan the command.
    let blocked = nsenter_core::SignalsBlocked::relayed();
    let spawned = match command.spawn_in(target, kinds) {
        // The host's $SHELL may not exist in the container: fall back to /bin/sh, as asked for.
        Err(Error::Spawn { step, .. }) if explicit.is_none() && step.starts_with("execve") && program != "/bin/sh" => {
            build(&args, target, &OsString::from("/bin/sh"), kinds)?.spawn_in(target, kinds)
        }
        other => other,
    };
    let mut child = spawned.map_err(|error| failure(error, what))?;
    let forwarding = child.forward_signals();
    drop(blocked); // signals that came while starting are relayed now
    let status = child.wait().with_context(|| what.clone())?;
    drop(forwarding);
    Ok(ExitCode::from(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => crate::cli::EXIT_NSDEBUG_FAILED,
    }))
}

/// The exit status for an error of starting the command: 127 not found, 126 not runnable,
/// 125 anything else (as `docker run` and `env` do).
fn failure(error: Error, what: &str) -> Failure {
    let exit_code = match &error {
        Error::Spawn { step, source, .. } if step.starts_with("execve") => {
            if source.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 }
        }
        _ => crate::cli::EXIT_NSDEBUG_FAILED,
    };
    Failure { error: anyhow::Error::new(error).context(what.to_owned()), exit_code }
}

/// Variables that make the host's loader or shell run code a container chose: never taken
/// from the target's environment while the program is a host program.
fn is_loader_variable(key: &std::ffi::OsStr) -> bool {
    let key = key.as_encoded_bytes();
    key.starts_with(b"LD_") || key.starts_with(b"GCONV_") || matches!(key, b"BASH_ENV" | b"ENV" | b"PATH" | b"IFS" | b"SHELLOPTS" | b"PS4" | b"PYTHONSTARTUP" | b"PERL5OPT" | b"PERL5LIB")
}

/// The command with every option applied.
fn build(args: &EnterArgs, target: &Target, program: &OsString, kinds: NamespaceSet) -> anyhow::Result<Command> {
    let mut command = Command::new(program);
    command.args(args.command.iter().skip(1));
    if args.env {
        // The program and its libraries come from the container's filesystem only with its
        // mount namespace or root; otherwise they are the host's, run as root, and the
        // container must not steer them (PATH to its own files, LD_PRELOAD, BASH_ENV...).
        let host_program = !kinds.contains(Namespace::Mnt) && args.root.as_deref() != Some("");
        command.env_clear();
        for (key, value) in target.environment().context("reading the target's environment")? {
            if !(host_program && is_loader_variable(&key)) {
                command.env(key, value);
            }
        }
        if host_program {
            if let Some(path) = std::env::var_os("PATH") {
                command.env("PATH", path);
            }
        }
    }
    match args.root.as_deref() {
        Some("") => {
            command.root(RootDir::Target);
        }
        Some(dir) => {
            command.root(RootDir::Path(dir.into()));
        }
        None => {}
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
    if let Some(uid) = args.setuid {
        command.uid(uid);
    }
    if let Some(gid) = args.setgid {
        command.gid(gid);
    }
    command.preserve_credentials(args.preserve_credentials).join_cgroup(args.join_cgroup);
    Ok(command)
}
