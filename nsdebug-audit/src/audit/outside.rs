//! Rules: processes of the container's pid namespace outside its cgroups (`cgroup.outside`).

use std::path::PathBuf;

use nsenter_core::powers::Powers as Model;

use super::{vanished, Host};
use crate::cgroup::cgroup_dirs;
use crate::mounts::{beneath, Mount};
use crate::{Finding, Report, Severity, Unknown};

/// Processes of the container's pid namespace that are in none of its cgroups (checked
/// again, so a process forked while the cgroups were listed does not count): not limited by
/// them.
pub(super) fn outside_findings(model: &Model, host: &Host, report: &mut Report) {
    let dirs = match model.cgroups() {
        Ok(dirs) => dirs,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "cgroup.outside",
                None,
                format!("the container's cgroups: {why}"),
            ));
            return;
        }
    };
    let container_cgroups: Vec<PathBuf> = dirs.iter().map(|d| d.dir.clone()).collect();
    let mut outside: Vec<i32> = Vec::new();
    for (_, task) in model.processes() {
        let tgid = task.tgid.get();
        match outside_cgroups(tgid, &container_cgroups, host) {
            Ok(true) => outside.push(tgid),
            Ok(false) => {}
            Err(why) => report
                .unknowns
                .push(Unknown::new("cgroup.outside", Some(tgid), why)),
        }
    }
    if let Some(first) = outside.first() {
        let also = if outside.len() > 1 {
            format!(
                "; also pid {}",
                outside[1..]
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        let evidence = format!("pid {first} is in its pid namespace, but its /proc/{first}/cgroup is not beneath {} (or its other hierarchies){also}", container_cgroups[0].display());
        report.findings.push(
            Finding::new("cgroup.outside", Severity::High, "processes of the container outside its cgroups: its limits do not hold them (escaped, or a container sharing its pid namespace)", evidence)
                .about(*first, outside.clone()),
        );
    }
}

/// Whether process `pid` is in none of the container's cgroup directories (in a hierarchy
/// they cover). A process gone is not outside; one whose cgroups cannot be read is unknown.
fn outside_cgroups(pid: i32, container: &[PathBuf], host: &Host) -> Result<bool, String> {
    let mounts = host.own_mounts.as_ref().map_err(Clone::clone)?;
    let text = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Ok(text) => text,
        Err(e) if vanished(&e) => return Ok(false),
        Err(e) => return Err(format!("/proc/{pid}/cgroup: {e}")),
    };
    let dirs = cgroup_dirs(&text, mounts)?;
    // Compare in the hierarchies both have: same mount, the process's dir beneath the container's.
    Ok(dirs.iter().any(|dir| {
        container
            .iter()
            .any(|own| match (dir.dir.to_str(), own.to_str()) {
                (Some(a), Some(b)) => same_hierarchy(a, b, mounts) && beneath(a, b).is_none(),
                _ => false,
            })
    }))
}

/// Whether two cgroup directories are in the same mounted hierarchy.
fn same_hierarchy(a: &str, b: &str, mounts: &[Mount]) -> bool {
    let root_of = |path: &str| {
        mounts
            .iter()
            .filter(|m| {
                (m.fstype == "cgroup" || m.fstype == "cgroup2") && beneath(path, &m.point).is_some()
            })
            .max_by_key(|m| m.point.len())
            .map(|m| m.point.clone())
    };
    root_of(a).is_some_and(|root| Some(root) == root_of(b))
}
