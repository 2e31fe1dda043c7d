//! Argument parsing, dispatch, and error reporting.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cmd;
use nsdebug_resolve::{ResolveOptions, RuntimeKind};

/// Debug containers from the host by entering their namespaces: the host's tools, the
/// container's view, nothing installed in the image.
#[derive(Parser, Debug)]
#[command(
    name = "nsdebug",
    version,
    // Not the package's description ("nsdebug: ..."): the man page's NAME is "nsdebug - ABOUT".
    about = "debug containers from the host by entering their namespaces",
    propagate_version = true,
    after_help = "Exit status: enter passes the command's own on (128+N if it died of signal N; \
                  126 it could not be run, 127 not found); 0 done; 1 flow could not write a flow \
                  (the others were written); 2 usage error; 3 audit --fail-on findings or \
                  unknown facts; 125 nsdebug itself failed (target not found, ambiguous, \
                  paused, refused, no permission).\n\
                  --json: every subcommand names its target with the same object; the README's \
                  \"JSON output\" has one row per command."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Say what nsdebug does: -v the steps (targets resolved, sockets tried, namespaces
    /// joined, trust mode), -vv with timings and details. RUST_LOG (e.g. nsdebug=debug) wins.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr: no notices.
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

/// Whether -q asked for no notices.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A notice on stderr (`nsdebug: ...`): what nsdebug is doing, not an error; -q hides it.
pub fn notice(message: std::fmt::Arguments<'_>) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("nsdebug: {message}");
    }
}

/// Logs on stderr, at the level -v/-q ask for (RUST_LOG overrides).
fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "nsdebug=info",
        (false, _) => "nsdebug=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// What each subcommand does: its line in `nsdebug --help` and the first of its own help.
/// Given twice, on the subcommand and on its arguments' type, since those are defined later
/// (deferred) and a flattened type's doc comment would otherwise take the description.
pub mod about {
    /// `enter`.
    pub const ENTER: &str = "\
        Run a command (default: $SHELL, else /bin/sh) inside a container's namespaces";
    /// `debug`.
    pub const DEBUG: &str = "\
        The host's tools with the container's view, for images without a shell: its network, \
        pid, uts, ipc and cgroup namespaces, its /proc, /sys, resolv.conf and hosts, and its \
        files at $CTR_ROOT (/run/nsdebug/ctr). A container that stopped gets its files only, \
        read-only from the runtime's storage, without being started";
    /// `ps`.
    pub const PS: &str = "\
        List the containers nsdebug can see, with runtime, pid and the isolating namespaces \
        (net, pid, ipc, uts, mnt) they share with the host (--json: every namespace)";
    /// `audit`.
    pub const AUDIT: &str = "What containers are really isolated from, read from the kernel";
    /// `flow`.
    pub const FLOW: &str = "\
        Capture inside a container's network namespace and reassemble its TCP streams";
    /// `mem`.
    pub const MEM: &str = "\
        A container's memory: usage, limit, peak, cache vs anonymous, OOM kills, top processes";
    /// `trace`.
    pub const TRACE: &str = "\
        The host's strace (or gdb, perf) on a container's process, by its host pid";
    /// `pid`.
    pub const PID: &str = "\
        The host pids of a container's processes, for the host's strace, perf, gdb";
    /// `veth`.
    pub const VETH: &str = "\
        Show a container's interfaces and their host-side veth peers; take the peers down or up";
    /// `why`.
    pub const WHY: &str = "\
        Why a container stopped or restarts: exit code or signal, OOM kill, times, restarts, \
        limits, the last lines of its log; for a pod the attempt shown and the one before";
    /// `completions`.
    pub const COMPLETIONS: &str = "\
        Print the shell completion script for bash, zsh, fish, elvish or powershell";
    /// `man`.
    pub const MAN: &str = "\
        Print the nsdebug(1) man page, or write every page (one per subcommand) into DIR";
}

// Each subcommand's arguments are defined only when it is the one parsed (`defer`): defining
// all of them was a third of the start-up of `enter NAME --net -- true`. Deferred, they are
// defined after the attributes here: what changes one (`mut_arg`) is written on its
// arguments' type, and so is the description, last (see `about`).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
enum Command {
    #[command(about = about::ENTER)]
    Enter(cmd::enter::EnterArgs),
    #[command(about = about::DEBUG)]
    Debug(cmd::enter::DebugArgs),
    #[command(about = about::PS, visible_alias = "ls")]
    Ps(cmd::ps::PsArgs),
    #[command(about = about::AUDIT)]
    Audit(cmd::audit::AuditArgs),
    #[command(about = about::FLOW)]
    Flow(cmd::flow::FlowArgs),
    #[command(about = about::MEM)]
    Mem(cmd::mem::MemArgs),
    #[command(about = about::TRACE)]
    Trace(cmd::trace::TraceArgs),
    #[command(about = about::PID)]
    Pid(cmd::pid::PidArgs),
    #[command(about = about::VETH)]
    Veth(cmd::veth::VethArgs),
    #[command(about = about::WHY)]
    Why(cmd::why::WhyArgs),
    #[command(about = about::COMPLETIONS)]
    Completions(cmd::docs::CompletionsArgs),
    #[command(about = about::MAN)]
    Man(cmd::docs::ManArgs),
    /// The names a TARGET can be completed with, one a line (the completion scripts call it).
    #[command(name = "__complete-targets", hide = true)]
    CompleteTargets,
}

/// `-c` of the commands that work on a pod's network: all its containers share the sandbox's.
pub const CONTAINER_OR_SANDBOX: &str = "Container of a pod target (default: the pod's sandbox, \
    whose network namespace all its containers share)";

/// The clap definition of the whole command line, for tests of the generated documentation.
#[cfg(test)]
pub fn command() -> clap::Command {
    Cli::command()
}

/// How nsdebug ends: its own failures are 125 (like `docker run`), a command's exit status
/// is passed through.
pub const EXIT_NSDEBUG_FAILED: u8 = 125;

/// Parses the command line and runs it; errors print their whole chain on one line.
pub fn run() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(answer) = answered_without_parsing(&argv) {
        print!("{answer}");
        return ExitCode::SUCCESS;
    }
    // The definition of every subcommand's arguments is most of nsdebug's start-up: it is
    // built once, and both finds where enter's command starts and parses.
    let command = Cli::command();
    let argv = command_marked(&command, argv);
    let mut matches = command.get_matches_from(argv);
    let cli = Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    init_logging(cli.verbose, cli.quiet);
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    // Every command but these enters namespaces or asks runtimes' root-owned sockets.
    let needs_root = !matches!(
        cli.command,
        Command::Completions(_) | Command::Man(_) | Command::CompleteTargets
    );
    let result = match cli.command {
        Command::Enter(args) => cmd::enter::run(args),
        Command::Debug(cmd::enter::DebugArgs { enter: args }) => match args.unused_by_debug() {
            Some(flag) => Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "debug runs the host's tools and never joins the target's mount, user \
                         or time namespace: {flag} has no use there (nsdebug enter takes it)"
                    ),
                )
                .exit(),
            None => cmd::enter::run(args.toolbox()),
        },
        Command::Pid(args) => cmd::pid::run(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Mem(args) => cmd::mem::run(args),
        Command::Ps(args) => cmd::ps::run(args),
        Command::Veth(args) => cmd::veth::run(args),
        Command::Flow(args) => cmd::flow::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Why(args) => cmd::why::run(args),
        Command::Completions(args) => cmd::docs::completions(args, Cli::command()),
        Command::Man(args) => cmd::docs::man(args, Cli::command()),
        Command::CompleteTargets => cmd::docs::complete_targets(),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            // What to do comes first: without root, the error below is a consequence.
            if needs_root && !has_sys_admin() {
                eprintln!(
                    "nsdebug: nsdebug needs root (CAP_SYS_ADMIN, CAP_SYS_PTRACE) to enter \
                     containers and ask their runtimes; it runs as uid {} without them: \
                     try sudo nsdebug",
                    nix::unistd::geteuid()
                );
            }
            // An error may carry the container's bytes (a process name in a refusal): they
            // reach the terminal escaped, by the one function every command uses.
            eprintln!(
                "nsdebug: {}",
                crate::cmd::shown(&format!("{:#}", failure.error))
            );
            ExitCode::from(failure.exit_code)
        }
    }
}

/// `nsdebug --version` (or `-V`) alone: clap's answer, without building the definition of
/// every subcommand's arguments, which is most of the time it would take.
fn answered_without_parsing(argv: &[std::ffi::OsString]) -> Option<String> {
    match argv {
        [_, flag] if flag == "--version" || flag == "-V" => {
            Some(format!("nsdebug {}\n", env!("CARGO_PKG_VERSION")))
        }
        _ => None,
    }
}

/// `nsenter -t PID sh -c CMD` habit: with `-t`, the first word after `enter`'s (or
/// `debug`'s) options is the command, but clap would fill TARGET with it and go on reading
/// `-c` as nsdebug's --container. A `--` is put before that word (unless one is there), found
/// with the very option definitions clap parses with (which options take a value).
fn command_marked(
    command: &clap::Command,
    mut argv: Vec<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    // The subcommand is the first word that is not an option (the global ones take no value).
    let Some(at) = argv
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1)
        .filter(|i| argv[*i] == "enter" || argv[*i] == "debug")
    else {
        return argv;
    };
    // Only -t/--target makes a difference: without a word that could be one, enter's options
    // need not be defined to be skipped.
    let may_be_target = |word: &std::ffi::OsString| {
        let word = word.to_string_lossy();
        word.starts_with("--target")
            || (!word.starts_with("--") && word.starts_with('-') && word.contains('t'))
    };
    if !argv[at + 1..]
        .iter()
        .take_while(|word| *word != "--")
        .any(may_be_target)
    {
        return argv;
    }
    let Some(sub) = argv[at]
        .to_str()
        .and_then(|name| defined_subcommand(command, name))
    else {
        return argv;
    };
    let takes_value =
        |arg: &clap::Arg| arg.get_action().takes_values() && !arg.is_require_equals_set();
    let long = |name: &str| sub.get_arguments().find(|a| a.get_long() == Some(name));
    let short = |c: char| sub.get_arguments().find(|a| a.get_short() == Some(c));
    let mut target_option = false;
    let mut i = at + 1;
    while i < argv.len() {
        let Some(word) = argv[i].to_str() else { break };
        if word == "--" {
            return argv;
        }
        if let Some(name) = word.strip_prefix("--") {
            let (name, attached) = name
                .split_once('=')
                .map_or((name, false), |(n, _)| (n, true));
            target_option |= name == "target";
            if !attached && long(name).is_some_and(takes_value) {
                i += 1;
            }
        } else if let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (n, c) in cluster.char_indices() {
                target_option |= c == 't';
                if short(c).is_some_and(takes_value) {
                    // The value is the rest of the cluster, or the next word.
                    if n + c.len_utf8() == cluster.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            if target_option {
                argv.insert(i, "--".into());
            }
            return argv;
        }
        i += 1;
    }
    argv
}

/// Subcommand `name` with its arguments defined (they are deferred until it is parsed).
fn defined_subcommand(command: &clap::Command, name: &str) -> Option<clap::Command> {
    let mut sub = command.find_subcommand(name)?.clone();
    sub.build();
    Some(sub)
}

/// Ends with a usage error (exit 2) for `word`, an option `subcommand` does not have, found
/// where the command would start: with the nearest option it has, if one is close.
pub fn unknown_option(subcommand: &str, word: &str) -> ! {
    let command = Cli::command();
    let name = word.split('=').next().unwrap_or(word);
    let sub = defined_subcommand(&command, subcommand);
    let nearest = sub
        .iter()
        .flat_map(|sub| sub.get_arguments().filter_map(|a| a.get_long()))
        .map(|long| {
            (
                nsdebug_resolve::edit_distance(&format!("--{long}"), name),
                long,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min();
    let hint = nearest.map_or(String::new(), |(_, long)| {
        format!(" (did you mean --{long}?)")
    });
    let mut command = command;
    command
        .error(
            clap::error::ErrorKind::UnknownArgument,
            format!(
                "{subcommand} has no option {}{hint}; a command that begins with - goes after --",
                cmd::shown(name)
            ),
        )
        .exit()
}

/// Whether we have CAP_SYS_ADMIN in our effective set (setns into another user's namespaces
/// needs it; the docker group alone does not give it).
fn has_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// An error with the exit status it should produce.
pub struct Failure {
    /// What went wrong, with its chain of causes.
    pub error: anyhow::Error,
    /// The process exit status.
    pub exit_code: u8,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            error: error.into(),
            exit_code: EXIT_NSDEBUG_FAILED,
        }
    }
}

/// Runs `future` on a current-thread tokio runtime: only the runtime APIs are async; the
/// runtime is gone before any namespace is entered.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// How a TARGET is looked up: options shared by every subcommand that takes one.
#[derive(clap::Args, Debug, Clone)]
pub struct LookupArgs {
    /// Look TARGET up with this runtime only.
    #[arg(long, value_parser = runtime_kind())]
    pub runtime: Option<RuntimeKind>,
    /// Kubernetes namespace of a pod/NAME target.
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub k8s_namespace: Option<String>,
    /// Container of a pod target (default: the pod's default-container annotation, else its
    /// only or first container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// CRI socket for pod targets (default: $CONTAINER_RUNTIME_ENDPOINT, else the containerd,
    /// k3s/RKE2 and CRI-O sockets that exist).
    #[arg(long, value_name = "ENDPOINT")]
    pub cri_endpoint: Option<String>,
}

/// `--runtime`'s values: nsdebug-resolve's runtimes by their names, with its words for each.
fn runtime_kind() -> impl clap::builder::TypedValueParser<Value = RuntimeKind> {
    use clap::builder::TypedValueParser as _;
    let names = RuntimeKind::ALL
        .map(|kind| clap::builder::PossibleValue::new(kind.name()).help(kind.about()));
    clap::builder::PossibleValuesParser::new(names)
        .try_map(|name: String| RuntimeKind::from_name(&name).ok_or("not a runtime"))
}

impl LookupArgs {
    /// The resolver's options.
    pub fn options(&self) -> ResolveOptions {
        ResolveOptions {
            runtime: self.runtime,
            k8s_namespace: self.k8s_namespace.clone(),
            k8s_container: self.container.clone(),
            cri_endpoint: self.cri_endpoint.clone(),
            pod_sandbox: false,
            frozen_ok: false,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_without_parsing_is_clap_s_own_answer_and_only_for_version_alone() {
        use clap::CommandFactory;
        let argv = |words: &[&str]| words.iter().map(Into::into).collect::<Vec<_>>();
        let clap_says = super::Cli::command().render_version();
        for flag in ["--version", "-V"] {
            let answer = super::answered_without_parsing(&argv(&["nsdebug", flag]));
            assert_eq!(answer.as_deref(), Some(clap_says.as_str()));
        }
        for words in [
            &["nsdebug"][..],
            &["nsdebug", "--help"],
            &["nsdebug", "ps", "--version"],
            &["nsdebug", "--version", "ps"],
        ] {
            assert_eq!(
                super::answered_without_parsing(&argv(words)),
                None,
                "{words:?}"
            );
        }
    }

    fn marked(words: &[&str]) -> Vec<String> {
        let argv = std::iter::once("nsdebug")
            .chain(words.iter().copied())
            .map(std::ffi::OsString::from)
            .collect();
        super::command_marked(&super::command(), argv)
            .into_iter()
            .skip(1)
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    /// With -t the first word after enter's options is the command: `--` goes before it,
    /// skipping option values (-S USER) but not attached ones (-r=DIR, -t42).
    #[test]
    fn with_t_the_first_word_after_the_options_starts_the_command() {
        assert_eq!(
            marked(&["enter", "-t", "42", "-u", "sh", "-c", "x"]),
            ["enter", "-t", "42", "-u", "--", "sh", "-c", "x"]
        );
        assert_eq!(
            marked(&["-v", "enter", "-t42", "-S", "nobody", "--root=/", "id"]),
            ["-v", "enter", "-t42", "-S", "nobody", "--root=/", "--", "id"]
        );
        assert_eq!(
            marked(&["enter", "--target", "web", "--", "sh"]),
            ["enter", "--target", "web", "--", "sh"]
        );
        // Without -t the first word is TARGET; other subcommands are left alone.
        assert_eq!(
            marked(&["enter", "web", "sh", "-c", "x"]),
            ["enter", "web", "sh", "-c", "x"]
        );
        assert_eq!(marked(&["ps", "enter"]), ["ps", "enter"]);
    }

    /// `nsdebug --help` is where a script writer looks for exit statuses: each one nsdebug
    /// itself gives is there, with the number the code uses.
    #[test]
    fn help_lists_every_exit_status_nsdebug_gives() {
        let help = super::command().render_long_help().to_string();
        for status in [
            "128+N",
            "126",
            "127",
            "0 done",
            "1 flow",
            "2 usage",
            &format!("{} audit --fail-on", crate::cmd::audit::EXIT_FAIL_ON),
            &format!("{} nsdebug itself failed", super::EXIT_NSDEBUG_FAILED),
        ] {
            assert!(help.contains(status), "{status:?} missing from:\n{help}");
        }
    }
}
