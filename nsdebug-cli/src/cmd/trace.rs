//! `nsdebug trace TARGET [-p PID|NAME] [--with strace|gdb|perf] [-- ARGS]`: the host's tracer
//! on a container's processes, by their host pids (what `nsdebug pid` prints). The tracer runs
//! on the host, in the host's namespaces: it needs nothing in the image, and the container
//! cannot see it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::anyhow;

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};

/// The tracers `trace` knows how to point at pids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tracer {
    /// `strace -f -p PID...`: system calls.
    Strace,
    /// `gdb -p PID`: a debugger on one process.
    Gdb,
    /// `perf top -p PID,...`: where the CPU time goes.
    Perf,
}

/// Arguments of `nsdebug trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The container, pod or pid.
    target: String,
    /// Which process: its pid in the container, or its command name (default: pid 1).
    #[arg(
        short = 'p',
        long = "process",
        value_name = "PID|NAME",
        default_value = "1"
    )]
    process: String,
    /// The host's tool to run.
    #[arg(long = "with", value_enum, default_value = "strace")]
    tracer: Tracer,
    #[command(flatten)]
    lookup: LookupArgs,
    /// More arguments for the tool (after --), e.g. `-- -e trace=accept4`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

/// Runs `nsdebug trace`: becomes the tracer.
pub fn run(args: TraceArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let resolved = block_on(resolve(&args.target, &options))??;
    let what = &resolved.description;
    tracing::info!("{} is {what}", super::shown(&args.target));
    // Under --pid=host the container's processes are its cgroup's, and its "1" is its init.
    let (listed, host_pids) = super::pid::processes_of(&resolved.target, what)?;
    let init = resolved.target.pid();
    let processes: Vec<i32> = listed
        .into_iter()
        .filter(|p| match args.process.parse::<i32>() {
            Ok(1) if host_pids => Some(p.host_pid) == init,
            Ok(pid) => p.container_pid == pid,
            Err(_) => p.command == args.process,
        })
        .map(|p| p.host_pid)
        .collect();
    if processes.is_empty() {
        return Err(anyhow!("{what} has no process {}", super::shown(&args.process)).into());
    }
    let pids: Vec<String> = processes.iter().map(i32::to_string).collect();
    tracing::info!(
        "process {} of {what} is host pid {}",
        super::shown(&args.process),
        pids.join(" ")
    );
    let mut command = match args.tracer {
        Tracer::Strace => {
            let mut c = std::process::Command::new("strace");
            c.arg("-f");
            for pid in &pids {
                c.args(["-p", pid]);
            }
            c
        }
        Tracer::Gdb => {
            let mut c = std::process::Command::new("gdb");
            // Symbols and libraries from the container's files (through the kernel's link
            // to its root), not the host's: the binary in the image is what runs.
            c.args([
                "-ex",
                &format!("set sysroot /proc/{}/root", pids[0]),
                "-p",
                &pids[0],
            ]);
            c
        }
        Tracer::Perf => {
            let mut c = std::process::Command::new("perf");
            c.args(["top", "-p", &pids.join(",")]);
            c
        }
    };
    command.args(&args.args);
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| super::shown(&a.to_string_lossy()))
        .collect();
    tracing::info!("running {}", line.join(" "));
    crate::cli::notice(format_args!(
        "{} on {what}: host pid(s) {}",
        command.get_program().to_string_lossy(),
        pids.join(" ")
    ));
    let error = command.exec();
    let exit_code = if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let tool = command.get_program().to_string_lossy().into_owned();
    Err(Failure {
        error: anyhow!(error).context(format!("cannot run the host's {tool} (is it installed?)")),
        exit_code,
    })
}
