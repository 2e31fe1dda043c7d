//! `nsdebug mem TARGET`: a container's memory as its cgroup accounts it (usage, limit, peak,
//! page cache vs anonymous), its OOM history (kills so far, under OOM now, OOM killer
//! disabled), and its processes by resident size. Read from the kernel, for any runtime.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsdebug_audit::cgroup::keyed_value as field;
use serde::Serialize;

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::resolve;

/// Arguments of `nsdebug mem`.
#[derive(clap::Args, Debug)]
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
    let resolved = block_on(resolve(&args.target, &options))??;
    let what = &resolved.description;
    let pid = resolved
        .target
        .pid()
        .ok_or_else(|| anyhow!("{what}: a namespace file has no cgroup"))?;
    let memory = memory_of(pid).with_context(|| what.clone())?;
    let mut top: Vec<Top> = super::pid::processes_of(&resolved.target)
        .with_context(|| what.clone())?
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

/// `12.3 MiB`.
fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
