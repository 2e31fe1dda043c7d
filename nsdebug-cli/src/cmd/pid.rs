//! `nsdebug pid TARGET [CONTAINER-PID|NAME]`: the host pids of a container's processes, so
//! the host's tracers attach to them (`strace -fp $(nsdebug pid web 1)`).

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsenter_core::powers::Powers;
use nsenter_core::{Namespace, NamespaceId, Target};
use serde::Serialize;

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::resolve;

/// Arguments of `nsdebug pid`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each pid printed is pinned with a pidfd and checked to be in the container's pid \
    namespace after it was found, so a pid recycled meanwhile is never printed."
)]
pub struct PidArgs {
    /// The container, pod or pid whose processes to list.
    target: String,
    /// A process as the container knows it: its pid there, or its command name (all matches).
    /// Without it: every process of the container.
    process: Option<String>,
    /// JSON: container pid, host pid and command of each process.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    lookup: LookupArgs,
}

/// One process of the container.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    pub container_pid: i32,
    pub host_pid: i32,
    pub command: String,
    /// Its resident size in KiB, when the kernel says.
    #[serde(skip)]
    pub rss_kib: Option<u64>,
}

/// Runs `nsdebug pid`.
pub fn run(args: PidArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let resolved = block_on(resolve(&args.target, &options))??;
    let what = &resolved.description;
    let target = &resolved.target;
    let pid_ns = target
        .namespace_id(Namespace::Pid)
        .with_context(|| what.clone())?;
    if pid_ns == NamespaceId::of_current_thread(Namespace::Pid)? {
        return Err(anyhow!(
            "{what} shares our pid namespace (--pid=host): its pids are host pids already"
        )
        .into());
    }
    let mut processes = processes_of(target).with_context(|| what.clone())?;
    if let Some(wanted) = &args.process {
        processes.retain(|p| match wanted.parse::<i32>() {
            Ok(pid) => p.container_pid == pid,
            Err(_) => &p.command == wanted,
        });
        if processes.is_empty() {
            return Err(anyhow!("{what} has no process {wanted}").into());
        }
    }
    if args.json {
        let listing =
            serde_json::json!({ "target": super::target_json(&resolved), "processes": processes });
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else if args.process.is_some() {
        for p in &processes {
            println!("{}", p.host_pid);
        }
    } else {
        println!("{:>8} {:>8}  COMMAND", "CTR-PID", "HOST-PID");
        for p in &processes {
            println!(
                "{:>8} {:>8}  {}",
                p.container_pid,
                p.host_pid,
                super::shown(&p.command)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every process of the target's pid namespace and of the pid namespaces nested in it, by
/// pid in the container (from nsenter-core's model of the container, read through each
/// process's `/proc` directory fd), each checked again to be alive after all were read.
pub(crate) fn processes_of(target: &Target) -> anyhow::Result<Vec<Process>> {
    use std::os::fd::AsRawFd;
    let model = Powers::read(target)?;
    let mut found: Vec<Process> = model
        .processes()
        // Read through the fd of its own directory: gone (or reused) means not listed.
        .filter(|(_, task)| {
            std::fs::metadata(format!("/proc/self/fd/{}/stat", task.dir.as_raw_fd())).is_ok()
        })
        .map(|(container_pid, task)| Process {
            container_pid,
            host_pid: task.tgid,
            command: task.status.name.clone().unwrap_or_else(|_| "?".to_owned()),
            rss_kib: task.status.vm_rss_kib.clone().ok(),
        })
        .collect();
    found.sort_by_key(|p| p.container_pid);
    Ok(found)
}
