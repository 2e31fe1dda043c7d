//! Argument parsing, dispatch, and error reporting.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::resolve::ResolveOptions;

/// Debug containers from the host by entering their namespaces: the host's tools, the
/// container's view, nothing installed in the image.
#[derive(Parser, Debug)]
#[command(
    name = "nsdebug",
    version,
    about,
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a command (default: $SHELL, else /bin/sh) inside a container's namespaces.
    Enter(cmd::enter::EnterArgs),
    /// The host's tools with the container's view, for images without a shell: its network,
    /// pid, uts, ipc and cgroup namespaces, its /proc, /sys, resolv.conf and hosts, and its
    /// files at $CTR_ROOT (/run/nsdebug/ctr).
    Debug(cmd::enter::EnterArgs),
    /// List the containers nsdebug can see, with runtime, pid and namespaces shared with the host.
    #[command(visible_alias = "ls")]
    Ps(cmd::ps::PsArgs),
    /// What containers are really isolated from, read from the kernel.
    Audit(cmd::audit::AuditArgs),
    /// Capture inside a container's network namespace and reassemble its TCP streams.
    // -c is tcpflow's console option here; the container of a pod is --container.
    #[command(mut_arg("container", |arg| arg.short(None)))]
    Flow(cmd::flow::FlowArgs),
    /// A container's memory: usage, limit, peak, cache vs anonymous, OOM kills, top processes.
    Mem(cmd::mem::MemArgs),
    /// The host's strace (or gdb, perf) on a container's process, by its host pid.
    Trace(cmd::trace::TraceArgs),
    /// The host pids of a container's processes, for the host's strace, perf, gdb.
    Pid(cmd::pid::PidArgs),
    /// Show a container's interfaces and their host-side veth peers; take the peers down or up.
    Veth(cmd::veth::VethArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(cmd::docs::CompletionsArgs),
    /// Print the nsdebug(1) man page, or write every page (one per subcommand) into DIR.
    Man(cmd::docs::ManArgs),
}

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
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    let result = match cli.command {
        Command::Enter(args) => cmd::enter::run(args),
        Command::Debug(args) => cmd::enter::run(args.toolbox()),
        Command::Pid(args) => cmd::pid::run(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Mem(args) => cmd::mem::run(args),
        Command::Ps(args) => cmd::ps::run(args),
        Command::Veth(args) => cmd::veth::run(args),
        Command::Flow(args) => cmd::flow::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Completions(args) => cmd::docs::completions(args, Cli::command()),
        Command::Man(args) => cmd::docs::man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
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
    #[arg(long, value_enum)]
    pub runtime: Option<crate::resolve::RuntimeKind>,
    /// Kubernetes namespace of a pod/NAME target.
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub k8s_namespace: Option<String>,
    /// Container of a pod target (default: the pod's default-container annotation, else its
    /// only or first container; veth and flow: the pod's sandbox).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// CRI socket for pod targets (default: $CONTAINER_RUNTIME_ENDPOINT, else the containerd,
    /// k3s/RKE2 and CRI-O sockets that exist).
    #[arg(long, value_name = "ENDPOINT")]
    pub cri_endpoint: Option<String>,
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
        }
    }
}

#[cfg(test)]
mod tests {
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
