//! The container's cgroup limits (pids, memory, CPU quota), its own and its
//! ancestors', v1 or v2.

use std::io;
use std::path::PathBuf;

use crate::cgroup::{
    parse_cfs, parse_cpu_max, parse_limit, unmounted_controllers, CgroupDir, Limit,
};
use crate::{human_size, Finding, Report, Severity, Unknown};

/// The limit file of `controller` (`v1_file` in its v1 hierarchy, else `v2_file` in the
/// unified one) in the container's cgroup and in each ancestor below the hierarchy's root,
/// nearest first: a limit set on an ancestor holds the container too. `Ok(None)`: no level
/// has the file (no hierarchy with that controller for this cgroup).
fn limit_files(
    dirs: &[CgroupDir],
    membership: &str,
    controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> Result<Option<Vec<(PathBuf, String)>>, String> {
    if unmounted_controllers(membership, dirs)
        .iter()
        .any(|c| c == controller)
    {
        return Err(format!(
            "its {controller} hierarchy is not mounted where nsdebug can read it"
        ));
    }
    let v1 = dirs
        .iter()
        .filter(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
        .map(|d| (d, v1_file));
    for (dir, file) in v1.chain(dirs.iter().filter(|d| d.v2).map(|d| (d, v2_file))) {
        let mut levels = Vec::new();
        let mut level = dir.dir.clone();
        // The root cgroup has no limit files.
        while level != dir.mount && level.starts_with(&dir.mount) {
            let path = level.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) => levels.push((path, text)),
                // A v2 cgroup has the file only when the controller is enabled for it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
            if !level.pop() {
                break;
            }
        }
        if !levels.is_empty() {
            return Ok(Some(levels));
        }
    }
    Ok(None)
}

/// `PATH = VALUE`, and whether it is an ancestor's.
fn level_evidence(levels: &[(PathBuf, String)], index: usize) -> String {
    let (path, text) = &levels[index];
    let whose = if index > 0 {
        " (set on an ancestor of its cgroup)"
    } else {
        ""
    };
    format!("{} = {}{whose}", path.display(), text.trim())
}

/// `neighbours`: processes of its cgroups that are not the container's (the host's, in a
/// cgroup shared with it): none of its findings.
pub(super) fn cgroups(
    dirs: &[CgroupDir],
    membership: &str,
    neighbours: &[i32],
    report: &mut Report,
) {
    let pid = report.pid;
    let mut memory_limited = None;
    for (id, controller, v1, v2, what) in [
        ("cgroup.pids", "pids", "pids.max", "pids.max", "processes"),
        (
            "cgroup.memory",
            "memory",
            "memory.limit_in_bytes",
            "memory.max",
            "memory",
        ),
    ] {
        let read =
            limit_files(dirs, membership, controller, v1, v2).and_then(|levels| match levels {
                None => Ok(None),
                Some(levels) => {
                    let limits = levels
                        .iter()
                        .map(|(path, text)| {
                            parse_limit(text).map_err(|e| format!("{}: {e}", path.display()))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    // The tightest limit holds; none set: unlimited, as the container's own file says.
                    let tightest = limits
                        .iter()
                        .enumerate()
                        .filter_map(|(i, l)| match l {
                            Limit::Set(v) => Some((i, *v)),
                            Limit::Unlimited => None,
                        })
                        .min_by_key(|(_, v)| *v);
                    Ok(Some((tightest, levels)))
                }
            });
        if controller == "memory" {
            memory_limited = match &read {
                Ok(Some((tightest, _))) => Some(tightest.is_some()),
                Ok(None) => Some(false),
                Err(_) => None,
            };
        }
        match read {
            Ok(Some((None, levels))) => {
                let title = if controller == "pids" {
                    "no pids limit: a fork bomb takes the host"
                } else {
                    "no memory limit"
                };
                report.findings.push(Finding::new(
                    id,
                    Severity::Medium,
                    title,
                    level_evidence(&levels, 0),
                ));
            }
            Ok(Some((Some((index, value)), levels))) => {
                let shown = if controller == "memory" {
                    human_size(value)
                } else {
                    value.to_string()
                };
                // A memory limit above the host's RAM limits nothing: the host runs out first.
                let ram = if controller == "memory" {
                    // Unknown: whether the limit is above the host's RAM (no limit at all).
                    host_ram()
                        .map_err(|why| {
                            report.unknowns.push(Unknown::new(
                                id,
                                Some(report.pid),
                                format!("whether the limit exceeds the host's RAM: {why}"),
                            ))
                        })
                        .ok()
                } else {
                    None
                };
                let (severity, title) = match ram {
                    Some(ram) if value > ram => (
                        Severity::Medium,
                        format!("memory limited to {}, more than the host's RAM ({}): no limit in effect", human_size(value), human_size(ram)),
                    ),
                    _ => (Severity::Info, format!("{what} limited to {shown}")),
                };
                report.findings.push(Finding::new(
                    id,
                    severity,
                    title,
                    level_evidence(&levels, index),
                ));
            }
            Ok(None) => report.findings.push(Finding::new(
                id,
                Severity::Medium,
                format!("no {controller} controller: {what} not limited"),
                format!("no {v1} or {v2} in its cgroups or their ancestors"),
            )),
            Err(why) => report.unknowns.push(Unknown::new(id, Some(pid), why)),
        }
    }
    oom(dirs, memory_limited, neighbours, report);
    let cpu =
        limit_files(dirs, membership, "cpu", "cpu.cfs_quota_us", "cpu.max").and_then(|levels| {
            let Some(levels) = levels else {
                return Ok(None);
            };
            let mut quotas = Vec::new();
            for (path, text) in &levels {
                let quota = if path.ends_with("cpu.max") {
                    parse_cpu_max(text)
                        .map(|q| (q, format!("{} = {}", path.display(), text.trim())))
                } else {
                    let period_path = path.with_file_name("cpu.cfs_period_us");
                    let period = std::fs::read_to_string(&period_path)
                        .map_err(|e| format!("{}: {e}", period_path.display()))?;
                    parse_cfs(text, &period).map(|q| {
                        (
                            q,
                            format!(
                                "{} = {}, {} = {}",
                                path.display(),
                                text.trim(),
                                period_path.display(),
                                period.trim()
                            ),
                        )
                    })
                };
                quotas.push(quota.map_err(|e| format!("{}: {e}", path.display()))?);
            }
            Ok(Some(quotas))
        });
    match cpu {
        Ok(Some(quotas)) => {
            let tightest = quotas
                .iter()
                .enumerate()
                .filter_map(|(i, (q, _))| q.cpus().map(|cpus| (i, cpus)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match tightest {
                Some((index, cpus)) => {
                    let whose = if index > 0 {
                        " (set on an ancestor of its cgroup)"
                    } else {
                        ""
                    };
                    report.findings.push(Finding::new(
                        "cgroup.cpu",
                        Severity::Info,
                        format!("CPU limited to {cpus} CPUs"),
                        format!("{}{whose}", quotas[index].1),
                    ));
                }
                None => report.findings.push(Finding::new(
                    "cgroup.cpu",
                    Severity::Low,
                    "no CPU quota",
                    quotas[0].1.clone(),
                )),
            }
        }
        Ok(None) => report.findings.push(Finding::new(
            "cgroup.cpu",
            Severity::Low,
            "no cpu controller: CPU time not limited",
            "no cpu.cfs_quota_us or cpu.max in its cgroups or their ancestors",
        )),
        Err(why) => report
            .unknowns
            .push(Unknown::new("cgroup.cpu", Some(pid), why)),
    }
}

/// The OOM killer as the container's memory cgroup has it: disabled (v1 `oom_kill_disable 1`:
/// a leak then hangs instead of being killed; with no memory limit the whole host runs out),
/// and the kills so far (v1 `oom_kill`, v2 `memory.events`).
/// The host's RAM in bytes (`MemTotal` of `/proc/meminfo`).
fn host_ram() -> Result<u64, String> {
    let meminfo =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    parse_mem_total(&meminfo).ok_or_else(|| "/proc/meminfo: no MemTotal".to_owned())
}

/// `MemTotal:  24577584 kB` -> bytes.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    kib.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// Processes the OOM killer may never (or hardly) pick: `oom_score_adj` -1000 makes one
/// unkillable, so a leak in it takes everything else down first; below the container runtime's
/// own (-500 for dockerd and containerd) it is protected ahead of the host's services.
fn oom_protected(dirs: &[CgroupDir], neighbours: &[i32], report: &mut Report) {
    let memory = dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "memory"));
    let Some(dir) = memory.or_else(|| dirs.iter().find(|d| d.v2)) else {
        report.unknowns.push(Unknown::new(
            "memory.oom-unkillable",
            Some(report.pid),
            "no memory cgroup (v1) or unified cgroup (v2) of the container to list its processes",
        ));
        return;
    };
    let procs = match std::fs::read_to_string(dir.dir.join("cgroup.procs")) {
        Ok(procs) => procs,
        Err(e) => {
            report.unknowns.push(Unknown::new(
                "memory.oom-unkillable",
                Some(report.pid),
                format!("{}: {e}", dir.dir.join("cgroup.procs").display()),
            ));
            return;
        }
    };
    let mut unkillable = Vec::new();
    let mut protected = Vec::new();
    for line in procs.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(pid) = line.trim().parse::<i32>() else {
            report.unknowns.push(Unknown::new(
                "memory.oom-unkillable",
                Some(report.pid),
                format!(
                    "{}: line {line:?} is not a pid",
                    dir.dir.join("cgroup.procs").display()
                ),
            ));
            continue;
        };
        if neighbours.contains(&pid) {
            // The host's process in a cgroup shared with it: not the container's.
            continue;
        }
        let text = match std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")) {
            Ok(text) => text,
            // Exited since the cgroup was listed: it is no process any more.
            Err(e)
                if e.raw_os_error() == Some(libc::ESRCH) || e.kind() == io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => {
                report.unknowns.push(Unknown::new(
                    "memory.oom-unkillable",
                    Some(pid),
                    format!("/proc/{pid}/oom_score_adj: {e}"),
                ));
                continue;
            }
        };
        match text.trim().parse::<i32>() {
            Ok(-1000) => unkillable.push(pid),
            Ok(adj) if adj < -500 => protected.push((pid, adj)),
            Ok(_) => {}
            Err(_) => report.unknowns.push(Unknown::new(
                "memory.oom-unkillable",
                Some(pid),
                format!(
                    "/proc/{pid}/oom_score_adj: {:?} is not a number",
                    text.trim()
                ),
            )),
        }
    }
    if let Some(first) = unkillable.first() {
        report.findings.push(
            Finding::new(
                "memory.oom-unkillable",
                Severity::Medium,
                format!(
                    "{} process(es) the OOM killer can never pick",
                    unkillable.len()
                ),
                format!("/proc/{first}/oom_score_adj = -1000"),
            )
            .about(*first, unkillable.clone()),
        );
    }
    if let Some((first, adj)) = protected.first() {
        let pids: Vec<i32> = protected.iter().map(|(p, _)| *p).collect();
        report.findings.push(
            Finding::new(
                "memory.oom-protected",
                Severity::Low,
                "processes protected from the OOM killer ahead of the container runtime (oom_score_adj below -500)",
                format!("/proc/{first}/oom_score_adj = {adj}"),
            )
            .about(*first, pids),
        );
    }
}

fn oom(dirs: &[CgroupDir], memory_limited: Option<bool>, neighbours: &[i32], report: &mut Report) {
    oom_protected(dirs, neighbours, report);
    let pid = report.pid;
    let v1 = dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "memory"));
    let (path, key) = match (v1, dirs.iter().find(|d| d.v2)) {
        (Some(dir), _) => (dir.dir.join("memory.oom_control"), "oom_kill"),
        (None, Some(dir)) => (dir.dir.join("memory.events"), "oom_kill"),
        (None, None) => return,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // v2 without the memory controller enabled here: nothing to say.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            return report.unknowns.push(Unknown::new(
                "memory.oom",
                Some(pid),
                format!("{}: {e}", path.display()),
            ))
        }
    };
    let field = |key: &str| crate::cgroup::keyed_value(&text, key);
    if field("oom_kill_disable") == Some(1) {
        let (severity, title) = match memory_limited {
            Some(false) => (
                Severity::High,
                "OOM killer disabled and no memory limit: a leak can exhaust the host",
            ),
            Some(true) => (
                Severity::Medium,
                "OOM killer disabled: at its memory limit it hangs instead of being killed",
            ),
            None => (
                Severity::High,
                "OOM killer disabled (its memory limit could not be read)",
            ),
        };
        report.findings.push(Finding::new(
            "memory.oom-kill-disabled",
            severity,
            title,
            format!("{}: oom_kill_disable 1", path.display()),
        ));
    }
    match field(key) {
        Some(0) => {}
        Some(kills) => report.findings.push(Finding::new(
            "memory.oom-kills",
            Severity::Info,
            format!("the OOM killer has killed {kills} process(es) in it"),
            format!("{}: {key} {kills}", path.display()),
        )),
        // Kernels before 4.13 do not count kills: no claim either way.
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ram_from_meminfo() {
        assert_eq!(
            parse_mem_total("MemTotal:       24577584 kB\nMemFree: 1 kB\n"),
            Some(24577584 * 1024)
        );
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn garbled_or_unreadable_cgroup_files_are_unknown_and_absent_ones_are_no_controller() {
        let dir = std::env::temp_dir().join(format!("nsdebug-audit-{}-cgroup", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("c/memory.max")).unwrap();
        std::fs::write(dir.join("c/pids.max"), "12k\n").unwrap();
        std::fs::write(dir.join("c/cpu.max"), "50000\n").unwrap();
        let v2 = [CgroupDir {
            controllers: vec![],
            v2: true,
            dir: dir.join("c"),
            mount: dir.clone(),
        }];
        let mut report = Report {
            pid: 42,
            ..Report::default()
        };
        cgroups(&v2, "0::/c\n", &[], &mut report);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        let ids: Vec<&str> = report.unknowns.iter().map(|u| u.id.as_str()).collect();
        // No cgroup.procs either: which processes the OOM killer spares is unknown too.
        assert_eq!(
            ids,
            [
                "cgroup.pids",
                "cgroup.memory",
                "memory.oom-unkillable",
                "cgroup.cpu"
            ],
            "{:?}",
            report.unknowns
        );
        // A v2 cgroup without the files has no such controller enabled: nothing limits it.
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let mut report = Report::default();
        cgroups(
            &[CgroupDir {
                controllers: vec![],
                v2: true,
                dir: empty,
                mount: dir.clone(),
            }],
            "0::/empty\n",
            &[],
            &mut report,
        );
        let found: Vec<(&str, Severity)> = report
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("cgroup.pids", Severity::Medium),
                ("cgroup.memory", Severity::Medium),
                ("cgroup.cpu", Severity::Low)
            ]
        );
        // A v1 layout: the quota with its period.
        // A v1 layout: the quota with its period; a tighter one on an ancestor holds.
        let parent = dir.join("cpu/docker");
        let v1 = parent.join("a34d");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("cpu.cfs_quota_us"), "50000\n").unwrap();
        std::fs::write(v1.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let v1_dir = [CgroupDir {
            controllers: vec!["cpu".into()],
            v2: false,
            dir: v1.clone(),
            mount: dir.join("cpu"),
        }];
        let mut report = Report::default();
        cgroups(&v1_dir, "1:cpu:/docker/a34d\n", &[], &mut report);
        let cpu = report
            .findings
            .iter()
            .find(|f| f.id == "cgroup.cpu")
            .unwrap();
        assert_eq!(
            (cpu.severity, cpu.title.as_str()),
            (Severity::Info, "CPU limited to 0.5 CPUs")
        );
        std::fs::write(parent.join("cpu.cfs_quota_us"), "25000\n").unwrap();
        std::fs::write(parent.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let mut report = Report::default();
        cgroups(&v1_dir, "1:cpu:/docker/a34d\n", &[], &mut report);
        let cpu = report
            .findings
            .iter()
            .find(|f| f.id == "cgroup.cpu")
            .unwrap();
        assert_eq!(cpu.title, "CPU limited to 0.25 CPUs");
        assert!(
            cpu.evidence.contains("set on an ancestor"),
            "{}",
            cpu.evidence
        );
        // The hierarchy's root is never read as a limit (it has none), nor above it.
        std::fs::write(dir.join("cpu/cpu.cfs_quota_us"), "1000\n").unwrap();
        std::fs::write(dir.join("cpu/cpu.cfs_period_us"), "100000\n").unwrap();
        let mut report = Report::default();
        cgroups(&v1_dir, "1:cpu:/docker/a34d\n", &[], &mut report);
        assert_eq!(
            report
                .findings
                .iter()
                .find(|f| f.id == "cgroup.cpu")
                .unwrap()
                .title,
            "CPU limited to 0.25 CPUs"
        );
        // A controller whose hierarchy is not mounted here is unknown, not "no limit".
        let mut report = Report::default();
        cgroups(
            &v1_dir,
            "1:cpu:/docker/a34d\n2:pids:/docker/a34d\n",
            &[],
            &mut report,
        );
        let pids = report
            .unknowns
            .iter()
            .find(|u| u.id == "cgroup.pids")
            .unwrap();
        assert!(pids.reason.contains("not mounted"), "{pids:?}");
        assert!(
            !report.findings.iter().any(|f| f.id == "cgroup.pids"),
            "{:?}",
            report.findings
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
