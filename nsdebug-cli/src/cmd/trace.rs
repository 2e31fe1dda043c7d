//! `nsdebug trace TARGET [-p PID|NAME] [--with strace|gdb|perf] [-- ARGS]`: the host's tracer
//! on a container's processes, by their host pids (what `nsdebug pid` prints). The tracer runs
//! on the host, in the host's namespaces: it needs nothing in the image, and the container
//! cannot see it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsenter_core::{Namespace, NamespaceId};

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::resolve;

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
    let pid_ns = resolved
        .target
        .namespace_id(Namespace::Pid)
        .with_context(|| what.clone())?;
    let processes = if pid_ns == NamespaceId::of_current_thread(Namespace::Pid)? {
        // The host's pid namespace: its pids are host pids.
        let pid: i32 = args
            .process
            .parse()
            .map_err(|_| anyhow!("{what} shares the host's pid namespace: give a pid"))?;
        vec![pid]
    } else {
        super::pid::processes_of(&resolved.target)
            .with_context(|| what.clone())?
            .into_iter()
            .filter(|p| match args.process.parse::<i32>() {
                Ok(pid) => p.container_pid == pid,
                Err(_) => p.command == args.process,
            })
            .map(|p| p.host_pid)
            .collect()
    };
    if processes.is_empty() {
        return Err(anyhow!("{what} has no process {}", args.process).into());
    }
    let pids: Vec<String> = processes.iter().map(i32::to_string).collect();
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
