//! `nsdebug pid TARGET [CONTAINER-PID|NAME]`: the host pids of a container's processes, so
//! the host's tracers attach to them (`strace -fp $(nsdebug pid web 1)`).

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsenter_core::cgroup::membership_line;
use nsenter_core::powers::Powers;
use nsenter_core::status::Status;
use nsenter_core::{Namespace, NamespaceId, Pid, Target};
use serde::Serialize;

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};

// Arguments of `nsdebug pid`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::PID, long_about = None)]
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
    let (mut processes, host_pids) = processes_of(target, what)?;
    if let Some(wanted) = &args.process {
        // Under --pid=host the container's "1" is its init, whatever host pid it has.
        let init = target.pid().map(Pid::get);
        processes.retain(|p| match wanted.parse::<i32>() {
            Ok(1) if host_pids => Some(p.host_pid) == init,
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

/// The processes of a target: those of its pid namespace, or, when it shares the host's
/// (`--pid=host`), those of its cgroup, whose pids are host pids (the flag says which).
pub(crate) fn processes_of(target: &Target, what: &str) -> anyhow::Result<(Vec<Process>, bool)> {
    let pid_ns = target
        .namespace_id(Namespace::Pid)
        .with_context(|| what.to_owned())?;
    if pid_ns != NamespaceId::of_current_thread(Namespace::Pid)? {
        return Ok((
            processes_in_model(target).with_context(|| what.to_owned())?,
            false,
        ));
    }
    let Some(pid) = target.pid() else {
        return Err(anyhow!(
            "{what} is in our pid namespace and has no cgroup to list"
        ));
    };
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("{what}: reading its cgroups"))?;
    let Some(cgroup) = cgroup_path(&membership).filter(|path| *path != "/") else {
        return Err(anyhow!(
            "{what} shares the host's pid namespace and cgroup: it has no processes of its own"
        ));
    };
    crate::cli::notice(format_args!(
        "{what} shares the host's pid namespace (--pid=host): its processes are those of its cgroup {}, by host pid",
        super::shown(cgroup)
    ));
    Ok((processes_in_cgroup(cgroup)?, true))
}

/// The cgroup that decides membership: the memory controller's (v1), else the unified one.
fn cgroup_path(membership: &str) -> Option<&str> {
    let mut unified = None;
    for (controllers, path) in membership.lines().filter_map(membership_line) {
        if controllers.contains(&"memory") {
            return Some(path);
        }
        if controllers.is_empty() {
            unified = Some(path);
        }
    }
    unified
}

/// Every process in cgroup `path` or beneath it (pids are host pids).
fn processes_in_cgroup(path: &str) -> anyhow::Result<Vec<Process>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .context("listing /proc")?
        .flatten()
    {
        let Some(host_pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(process) = Pid::try_from(host_pid).and_then(Target::open) else {
            continue;
        };
        let Ok(membership) = std::fs::read_to_string(format!("/proc/{host_pid}/cgroup")) else {
            continue;
        };
        let inside = cgroup_path(&membership).is_some_and(|p| {
            p == path
                || p.strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        let Ok(status) = std::fs::read_to_string(format!("/proc/{host_pid}/status")) else {
            continue;
        };
        let status = Status::parse(&status);
        if inside && process.is_alive() {
            found.push(Process {
                container_pid: host_pid,
                host_pid,
                command: status.name.clone().unwrap_or_else(|_| "?".to_owned()),
                rss_kib: status.vm_rss_kib.clone().ok(),
            });
        }
    }
    found.sort_by_key(|p| p.host_pid);
    Ok(found)
}

/// Every process of the target's pid namespace and of the pid namespaces nested in it, by
/// pid in the container (from nsenter-core's model of the container, read through each
/// process's `/proc` directory fd), each checked again to be alive after all were read.
fn processes_in_model(target: &Target) -> anyhow::Result<Vec<Process>> {
    use std::os::fd::AsRawFd;
    let model = Powers::read(target)?;
    let mut found: Vec<Process> = model
        .processes()
        // Read through the fd of its own directory: gone (or reused) means not listed.
        .filter(|(_, task)| {
            std::fs::metadata(format!("/proc/self/fd/{}/stat", task.dir.as_raw_fd())).is_ok()
        })
        .map(|(container_pid, task)| Process {
            container_pid: container_pid.get(),
            host_pid: task.tgid.get(),
            command: task.status.name.clone().unwrap_or_else(|_| "?".to_owned()),
            rss_kib: task.status.vm_rss_kib.clone().ok(),
        })
        .collect();
    found.sort_by_key(|p| p.container_pid);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::cgroup_path;

    #[test]
    fn the_memory_cgroup_decides_else_the_unified_one() {
        let v1 = "12:cpu,cpuacct:/docker/abc\n9:memory:/docker/abc\n0::/system.slice/x\n";
        assert_eq!(cgroup_path(v1), Some("/docker/abc"));
        assert_eq!(
            cgroup_path("0::/system.slice/docker-abc.scope\n"),
            Some("/system.slice/docker-abc.scope")
        );
        assert_eq!(cgroup_path("1:name=systemd:/\n"), None);
    }
}
