//! `nsdebug mem TARGET`: a container's memory as its cgroup accounts it (usage, limit, peak,
//! page cache vs anonymous), its OOM history (kills so far, under OOM now, OOM killer
//! disabled), and its processes by resident size. Read from the kernel, for any runtime.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsdebug_audit::cgroup::keyed_value as field;
use nsdebug_audit::human_size as human;
use nsenter_core::Pid;
use serde::Serialize;

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};

// Arguments of `nsdebug mem`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::MEM, long_about = None)]
pub struct MemArgs {
    /// The container, pod or pid.
    target: String,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// How many processes to list, largest first.
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    lookup: LookupArgs,
}

/// What the memory controller says about one cgroup (bytes; `None`: the kernel does not say).
#[derive(Serialize, Debug, Default, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `v1` or `v2`.
    pub cgroup: &'static str,
    pub usage: Option<u64>,
    /// `None`: no limit.
    pub limit: Option<u64>,
    pub peak: Option<u64>,
    pub page_cache: Option<u64>,
    pub anonymous: Option<u64>,
    pub oom_kills: Option<u64>,
    pub oom_group_kills: Option<u64>,
    pub under_oom: Option<bool>,
    pub oom_kill_disabled: Option<bool>,
}

/// A v1 limit: the kernel's "no limit" is the largest page-aligned value (over 2^62).
fn v1_limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|v| *v < 1 << 62)
}

/// Reads a cgroup v1 memory directory.
pub(crate) fn read_v1(dir: &Path) -> Memory {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let stat = read("memory.stat").unwrap_or_default();
    let oom = read("memory.oom_control").unwrap_or_default();
    Memory {
        cgroup: "v1",
        usage: read("memory.usage_in_bytes").and_then(|t| t.trim().parse().ok()),
        limit: read("memory.limit_in_bytes").as_deref().and_then(v1_limit),
        peak: read("memory.max_usage_in_bytes").and_then(|t| t.trim().parse().ok()),
        page_cache: field(&stat, "total_cache").or_else(|| field(&stat, "cache")),
        anonymous: field(&stat, "total_rss").or_else(|| field(&stat, "rss")),
        oom_kills: field(&oom, "oom_kill"),
        oom_group_kills: None,
        under_oom: field(&oom, "under_oom").map(|v| v != 0),
        oom_kill_disabled: field(&oom, "oom_kill_disable").map(|v| v != 0),
    }
}

/// Reads a cgroup v2 directory.
pub(crate) fn read_v2(dir: &Path) -> Memory {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let stat = read("memory.stat").unwrap_or_default();
    let events = read("memory.events").unwrap_or_default();
    Memory {
        cgroup: "v2",
        usage: read("memory.current").and_then(|t| t.trim().parse().ok()),
        limit: read("memory.max").and_then(|t| t.trim().parse().ok()),
        peak: read("memory.peak").and_then(|t| t.trim().parse().ok()),
        page_cache: field(&stat, "file"),
        anonymous: field(&stat, "anon"),
        oom_kills: field(&events, "oom_kill"),
        oom_group_kills: field(&events, "oom_group_kill"),
        // v2 has no "under OOM now" flag nor a way to disable the OOM killer.
        under_oom: None,
        oom_kill_disabled: Some(false),
    }
}

/// The memory cgroup of process `pid`, read.
pub(crate) fn memory_of(pid: i32) -> anyhow::Result<Memory> {
    let membership =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).context("reading its cgroups")?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading our mounts")?;
    let mounts = nsenter_core::mountinfo::parse_mountinfo(&mountinfo).map_err(|e| anyhow!(e))?;
    let dirs = nsenter_core::cgroup::cgroup_dirs(&membership, &mounts).map_err(|e| anyhow!(e))?;
    if let Some(v1) = dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "memory"))
    {
        return Ok(read_v1(&v1.dir));
    }
    match dirs.iter().find(|d| d.v2) {
        Some(v2) if v2.dir.join("memory.current").exists() => Ok(read_v2(&v2.dir)),
        _ => Err(anyhow!("no memory controller is mounted for its cgroup")),
    }
}

#[derive(Serialize)]
struct Top {
    container_pid: i32,
    host_pid: i32,
    command: String,
    rss: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    target: serde_json::Value,
    memory: &'a Memory,
    processes: &'a [Top],
}

/// Runs `nsdebug mem`.
pub fn run(args: MemArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let resolved = match block_on(resolve(&args.target, &options))? {
        Ok(resolved) => resolved,
        // `docker inspect -f {{.State.OOMKilled}}` is asked of exited containers: say what
        // is known of one instead of refusing.
        Err(error) => match block_on(stopped_container(&args.target, &options))? {
            Some(info) => return exited(&info, args.json),
            None => return Err(error.into()),
        },
    };
    let what = &resolved.description;
    let pid = resolved
        .target
        .pid()
        .map(Pid::get)
        .ok_or_else(|| anyhow!("{what}: a namespace file has no cgroup"))?;
    let memory = memory_of(pid).with_context(|| what.clone())?;
    let (processes, _) = super::pid::processes_of(&resolved.target, what)?;
    let mut top: Vec<Top> = processes
        .into_iter()
        .filter_map(|p| {
            let kib = p.rss_kib?;
            Some(Top {
                container_pid: p.container_pid,
                host_pid: p.host_pid,
                command: p.command,
                rss: kib * 1024,
            })
        })
        .collect();
    top.sort_by_key(|p| std::cmp::Reverse(p.rss));
    top.truncate(args.top);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                target: super::target_json(&resolved),
                memory: &memory,
                processes: &top
            })?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), human);
    println!("{what} (cgroup {})", memory.cgroup);
    println!("  usage       {}", bytes(memory.usage));
    println!(
        "  limit       {}",
        memory.limit.map_or_else(|| "none".to_owned(), human)
    );
    println!("  peak        {}", bytes(memory.peak));
    println!("  page cache  {}", bytes(memory.page_cache));
    println!("  anonymous   {}", bytes(memory.anonymous));
    let count = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
    println!("  OOM kills   {}", count(memory.oom_kills));
    if memory.oom_group_kills.is_some() {
        println!("  group kills {}", count(memory.oom_group_kills));
    }
    if let Some(under) = memory.under_oom {
        println!("  under OOM   {}", if under { "yes, now" } else { "no" });
    }
    if memory.oom_kill_disabled == Some(true) {
        println!("  OOM killer  DISABLED for this cgroup (a leak waits instead of being killed)");
    }
    println!(
        "  {:>8} {:>8} {:>10}  COMMAND",
        "CTR-PID", "HOST-PID", "RSS"
    );
    for p in &top {
        println!(
            "  {:>8} {:>8} {:>10}  {}",
            p.container_pid,
            p.host_pid,
            human(p.rss),
            super::shown(&p.command)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The container `spec` names when Docker or Podman knows it and it is not running.
async fn stopped_container(
    spec: &str,
    options: &nsdebug_resolve::ResolveOptions,
) -> Option<nsdebug_resolve::ContainerInfo> {
    use nsdebug_resolve::{docker::Engine, Lookup, RuntimeKind};
    // Pods, paths and pids are not containers a Docker-style engine keeps after they exit.
    if spec.contains('/') || spec.parse::<i32>().is_ok() {
        return None;
    }
    for (kind, engine) in [
        (RuntimeKind::Docker, Engine::docker()),
        (RuntimeKind::Podman, Engine::podman()),
    ] {
        if options.runtime.is_some_and(|only| only != kind) {
            continue;
        }
        if let Ok(Lookup::Found(info)) = engine.lookup(spec).await {
            return info.pid.is_none().then_some(info);
        }
    }
    None
}

/// The memory cgroup a Docker or Podman container had, while it still exists (the runtime
/// removes it soon after the container stops; a parent cgroup's may keep it longer).
fn cgroup_left(info: &nsdebug_resolve::ContainerInfo) -> Option<Memory> {
    let id = &info.id;
    let prefix = if info.runtime == "podman" {
        "libpod"
    } else {
        "docker"
    };
    let root = Path::new("/sys/fs/cgroup");
    let candidates = [
        root.join(format!("memory/{prefix}/{id}")),
        root.join(format!("memory/system.slice/{prefix}-{id}.scope")),
        root.join(format!("{prefix}/{id}")),
        root.join(format!("system.slice/{prefix}-{id}.scope")),
        root.join(format!("machine.slice/{prefix}-{id}.scope")),
    ];
    let dir = candidates.iter().find(|d| d.is_dir())?;
    if dir.join("memory.limit_in_bytes").exists() {
        Some(read_v1(dir))
    } else if dir.join("memory.current").exists() {
        Some(read_v2(dir))
    } else {
        None
    }
}

#[derive(Serialize)]
struct Exited<'a> {
    target: serde_json::Value,
    running: bool,
    /// The kernel's counters, while the cgroup still exists.
    memory: Option<&'a Memory>,
    /// The kernel log's `oom-kill` records of its tasks (since boot, as far as the log reaches
    /// back); absent when the log cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_oom_kills: Option<u64>,
}

/// `mem` of a container that is not running: its exit, whether the OOM killer ended it (the
/// runtime's word and the kernel's counter while its cgroup exists), when, and its limit.
fn exited(info: &nsdebug_resolve::ContainerInfo, json: bool) -> Result<ExitCode, Failure> {
    let what = info.describe();
    let memory = cgroup_left(info);
    let kernel_oom_kills = crate::kernel_log::oom_kills(&info.id);
    if json {
        let report = Exited {
            target: super::unresolved_target_json(&what, Some(info)),
            running: false,
            memory: memory.as_ref(),
            kernel_oom_kills,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let details = &info.details;
    println!(
        "{what} is not running (status: {}): what is known of it",
        super::shown(&info.status)
    );
    let exit = details
        .exit_code
        .map_or_else(|| "?".to_owned(), |c| c.to_string());
    let signal = details
        .exit_code
        .filter(|c| (129..=159).contains(c))
        .map(|c| format!(" (killed by signal {})", c - 128))
        .unwrap_or_default();
    println!("  exit code   {exit}{signal}");
    println!(
        "  OOM killed  {}",
        oom_verdict(details.oom_killed, kernel_oom_kills)
    );
    if let Some(finished) = details
        .finished_at
        .as_deref()
        .filter(|f| !f.starts_with("0001-"))
    {
        println!("  finished    {}", super::shown(finished));
    }
    let limit = details
        .memory_limit
        .and_then(|l| u64::try_from(l).ok())
        .map_or_else(|| "none".to_owned(), human);
    println!("  limit       {limit}");
    match &memory {
        Some(m) => println!(
            "  OOM kills   {} (the kernel's counter, its cgroup is still there)",
            m.oom_kills
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        ),
        None => {
            println!("  OOM kills   ? (its cgroup went with it: only the runtime's word is left)")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the OOM killer ended the container: the runtime's record, or the kernel log's
/// records where the runtime says no or nothing (it can miss the event).
fn oom_verdict(runtime: Option<bool>, kernel_log: Option<u64>) -> String {
    let records = |n: u64| {
        let s = if n == 1 { "" } else { "s" };
        format!("the kernel log records {n} OOM kill{s} of its tasks")
    };
    match (runtime, kernel_log) {
        (Some(true), _) => "yes: the kernel's OOM killer ended it (runtime's OOMKilled)".into(),
        (Some(false), Some(n)) if n > 0 => {
            format!("yes: {} (the runtime's OOMKilled says no)", records(n))
        }
        (None, Some(n)) if n > 0 => format!("yes: {}", records(n)),
        (Some(false), _) => "no (runtime's OOMKilled)".into(),
        (None, _) => "? (the runtime does not say)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_log_answers_where_the_runtime_missed_the_oom_kill() {
        assert!(oom_verdict(Some(true), Some(0)).starts_with("yes: the kernel's OOM killer"));
        assert_eq!(
            oom_verdict(Some(false), Some(1)),
            "yes: the kernel log records 1 OOM kill of its tasks (the runtime's OOMKilled says no)"
        );
        assert!(oom_verdict(None, Some(2)).starts_with("yes: the kernel log records 2 OOM kills"));
        assert_eq!(
            oom_verdict(Some(false), Some(0)),
            "no (runtime's OOMKilled)"
        );
        assert_eq!(oom_verdict(Some(false), None), "no (runtime's OOMKilled)");
        assert_eq!(oom_verdict(None, None), "? (the runtime does not say)");
    }

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nsdebug-mem-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn cgroup_v1_as_recorded() {
        let dir = dir_with(&[
            ("memory.usage_in_bytes", "33554432\n"),
            ("memory.limit_in_bytes", "33554432\n"),
            ("memory.max_usage_in_bytes", "33558528\n"),
            (
                "memory.stat",
                "cache 4096\nrss 30000000\ntotal_cache 8192\ntotal_rss 31000000\n",
            ),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n",
            ),
        ]);
        let m = read_v1(&dir);
        assert_eq!(
            (m.usage, m.limit, m.peak),
            (Some(33554432), Some(33554432), Some(33558528))
        );
        assert_eq!(
            (m.page_cache, m.anonymous),
            (Some(8192), Some(31000000)),
            "the hierarchy's totals"
        );
        assert_eq!(
            (m.oom_kills, m.under_oom, m.oom_kill_disabled),
            (Some(3), Some(true), Some(false))
        );
        let unlimited = dir_with(&[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.oom_control", "oom_kill_disable 1\n"),
        ]);
        let m = read_v1(&unlimited);
        assert_eq!(
            (m.limit, m.oom_kill_disabled, m.oom_kills),
            (None, Some(true), None),
            "no limit, and unknown stays unknown"
        );
    }

    #[test]
    fn cgroup_v2_as_recorded() {
        let dir = dir_with(&[
            ("memory.current", "1048576\n"),
            ("memory.max", "max\n"),
            ("memory.peak", "2097152\n"),
            ("memory.stat", "anon 700000\nfile 300000\nkernel 1000\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 1\n",
            ),
        ]);
        let m = read_v2(&dir);
        assert_eq!(
            (m.usage, m.limit, m.peak),
            (Some(1048576), None, Some(2097152))
        );
        assert_eq!((m.anonymous, m.page_cache), (Some(700000), Some(300000)));
        assert_eq!((m.oom_kills, m.oom_group_kills), (Some(2), Some(1)));
    }
}
