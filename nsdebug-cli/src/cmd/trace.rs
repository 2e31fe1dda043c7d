//! `nsdebug trace TARGET [-p PID|NAME] [--with strace|gdb|perf] [-- ARGS]`: the host's tracer
//! on a container's processes, by their host pids (what `nsdebug pid` prints). The tracer runs
//! on the host, in the host's namespaces: it needs nothing in the image, and the container
//! cannot see it.

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsenter_core::{Pid, Target};

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

// Arguments of `nsdebug trace`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::TRACE, long_about = None)]
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

/// The largest file of the container copied for gdb, and all of them together.
const MAX_COPIED_FILE: u64 = 1 << 30;
const MAX_COPIED_TOTAL: u64 = 2 << 30;

/// A private directory of copies of the container's files that gdb reads as root: removed
/// when dropped.
struct Sysroot(PathBuf);

impl Drop for Sysroot {
    fn drop(&mut self) {
        // Our own directory, holding only files we made: nothing in it is followed.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files process `pid` has mapped (`/proc/PID/maps`), as paths inside its root.
fn mapped_files(pid: i32) -> anyhow::Result<Vec<String>> {
    use std::io::Read;
    let mut maps = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/maps"))
        .and_then(|f| f.take(16 << 20).read_to_end(&mut maps))
        .with_context(|| format!("reading /proc/{pid}/maps"))?;
    let mut paths: Vec<String> = String::from_utf8_lossy(&maps)
        .lines()
        // ADDRESS PERMS OFFSET DEV INODE PATH: the path is the line's first '/' on.
        .filter_map(|line| line.find('/').map(|at| line[at..].to_owned()))
        .filter(|path| !path.ends_with(" (deleted)") && !path.split('/').any(|part| part == ".."))
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// Copies the regular files process `pid` has mapped, read inside its root (`openat2`
/// `RESOLVE_IN_ROOT`: no link leads out; a fifo or device is never opened for reading), into
/// a private directory for gdb's sysroot: gdb then parses only copies of regular files of
/// the container's, never a path the container controls.
fn gdb_sysroot(pid: i32) -> anyhow::Result<(Sysroot, Vec<String>)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let process = Pid::try_from(pid)
        .and_then(Target::open)
        .with_context(|| format!("pid {pid}"))?;
    let mut base = std::fs::DirBuilder::new();
    base.mode(0o700).recursive(true);
    base.create(crate::cmd::enter::TOOLBOX_SCRATCH)
        .context("creating /run/nsdebug")?;
    let dir = PathBuf::from(format!(
        "{}/gdb-{pid}-{}",
        crate::cmd::enter::TOOLBOX_SCRATCH,
        std::process::id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let sysroot = Sysroot(dir.clone());
    let (mut total, mut skipped) = (0u64, Vec::new());
    for path in mapped_files(pid)? {
        let bytes = match process.read_file(&path, MAX_COPIED_FILE + 1) {
            Ok(bytes) if bytes.len() as u64 <= MAX_COPIED_FILE => bytes,
            _ => {
                skipped.push(path);
                continue;
            }
        };
        total += bytes.len() as u64;
        if total > MAX_COPIED_TOTAL {
            skipped.push(path);
            continue;
        }
        let copy = dir.join(path.trim_start_matches('/'));
        if let Some(parent) = copy.parent() {
            base.create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&copy)
            .and_then(|mut file| file.write_all(&bytes))
            .with_context(|| format!("copying {}", copy.display()))?;
    }
    Ok((sysroot, skipped))
}

/// Runs the host's gdb on process `pid` with a sysroot of copies of its mapped files (see
/// [`gdb_sysroot`]), gdb's auto-loading of scripts off and `libthread_db` only from the
/// host's directories: no code or script of the container's is loaded into a root gdb.
fn run_gdb(pid: i32, what: &str, extra: &[OsString]) -> Result<ExitCode, Failure> {
    let (sysroot, skipped) = gdb_sysroot(pid).with_context(|| what.to_owned())?;
    if !skipped.is_empty() {
        crate::cli::notice(format_args!(
            "not given to gdb (not a regular file in the container, or too large): {}",
            super::shown(&skipped.join(", "))
        ));
    }
    let mut command = std::process::Command::new("gdb");
    command
        .args(["-iex", "set auto-load off"])
        .args(["-iex", "set libthread-db-search-path $sdir"])
        .arg("-iex")
        .arg(format!("set sysroot {}", sysroot.0.display()))
        .args(["-p", &pid.to_string()])
        .args(extra);
    crate::cli::notice(format_args!("gdb on {what}: host pid {pid}"));
    // gdb handles ^C itself; we wait for it, then remove the copies.
    let ignored = crate::waiting::TerminalSignalsIgnored::new();
    let status = command.status();
    drop(ignored);
    drop(sysroot);
    match status {
        Ok(status) => Ok(ExitCode::from(
            status.code().unwrap_or(128 + status.signal().unwrap_or(0)) as u8,
        )),
        Err(error) => Err(Failure {
            exit_code: if error.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            },
            error: anyhow!(error).context("cannot run the host's gdb (is it installed?)"),
        }),
    }
}

/// Runs `nsdebug trace`: becomes the tracer.
pub fn run(args: TraceArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let resolved = block_on(resolve(&args.target, &options))??;
    let what = &resolved.description;
    tracing::info!("{} is {what}", super::shown(&args.target));
    // Under --pid=host the container's processes are its cgroup's, and its "1" is its init.
    let (listed, host_pids) = super::pid::processes_of(&resolved.target, what)?;
    let init = resolved.target.pid().map(Pid::get);
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
        Tracer::Gdb => return run_gdb(processes[0], what, &args.args),
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
