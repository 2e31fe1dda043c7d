//! The one reader of `/proc/PID/cgroup`: where a process's cgroups are on the host (cgroup
//! v1 and v2), for joining them, listing their processes and reading their limits.

use std::io;
use std::path::PathBuf;

use crate::mountinfo::{parse_mountinfo, Mount};

/// The `cgroup.procs` files, as host paths, of the cgroups process `pid` is in: one per
/// mounted hierarchy (one on a pure cgroup v2 host, one per controller set on v1 or hybrid).
pub(crate) fn procs_files(pid: i32) -> io::Result<Vec<PathBuf>> {
    Ok(cgroup_dirs_of(pid)?
        .into_iter()
        .map(|d| d.dir.join("cgroup.procs"))
        .collect())
}

/// One cgroup a process is in, in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupDir {
    /// The hierarchy's controllers (v1), or empty for the v2 unified hierarchy.
    pub controllers: Vec<String>,
    /// Whether this is the v2 unified hierarchy.
    pub v2: bool,
    /// The cgroup's directory on the host.
    pub dir: PathBuf,
    /// Where its hierarchy is mounted (the root cgroup's directory).
    pub mount: PathBuf,
}

/// One line of `/proc/PID/cgroup`, "ID:CONTROLLERS:PATH" (v2: "0::PATH"): its controllers
/// (none for v2) and its path, or `None` when the line is not of that form. Every reader of
/// the file goes through this, so that none splits it its own way.
pub fn membership_line(line: &str) -> Option<(Vec<&str>, &str)> {
    let mut fields = line.splitn(3, ':');
    let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let controllers = controllers.split(',').filter(|c| !c.is_empty()).collect();
    Some((controllers, path))
}

/// The cgroups (host directories) of a process, from its `/proc/PID/cgroup` text and the
/// reader's mounts (`/proc/self/mountinfo`, parsed by [`parse_mountinfo`]): one per mounted
/// hierarchy. A hierarchy that is not mounted, or only a sub-tree of it, is left out: its
/// paths cannot be found. A malformed line or a path with `..` is an error.
pub fn cgroup_dirs(membership: &str, mounts: &[Mount]) -> Result<Vec<CgroupDir>, String> {
    let mut dirs = Vec::new();
    for line in membership.lines() {
        let Some((wanted, path)) = membership_line(line) else {
            return Err(format!("cgroup line {line:?} is not ID:CONTROLLERS:PATH"));
        };
        // Only mounts of a hierarchy's root give host paths for /proc/PID/cgroup's paths.
        let mount = mounts
            .iter()
            .filter(|m| m.root == "/")
            .find(|m| match m.fstype.as_str() {
                "cgroup2" => wanted.is_empty(),
                "cgroup" => {
                    !wanted.is_empty()
                        && wanted
                            .iter()
                            .all(|c| m.super_options.split(',').any(|o| o == *c))
                }
                _ => false,
            });
        // A hierarchy not mounted here (v1 "misc" on some hosts) cannot be found.
        let Some(mount) = mount else { continue };
        let relative = path.trim_start_matches('/');
        if relative.split('/').any(|part| part == "..") {
            return Err(format!("cgroup path {path:?} contains '..'"));
        }
        dirs.push(CgroupDir {
            controllers: wanted.iter().map(|c| (*c).to_owned()).collect(),
            v2: mount.fstype == "cgroup2",
            dir: PathBuf::from(&mount.point).join(relative),
            mount: PathBuf::from(&mount.point),
        });
    }
    if dirs.is_empty() {
        return Err("none of its cgroup hierarchies is mounted on the host".to_owned());
    }
    Ok(dirs)
}

/// The cgroups of process `pid`, read from `/proc/PID/cgroup` and our mounts.
pub(crate) fn cgroup_dirs_of(pid: i32) -> io::Result<Vec<CgroupDir>> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mounts = parse_mountinfo(&mountinfo).map_err(invalid)?;
    cgroup_dirs(&membership, &mounts).map_err(invalid)
}

/// Whether process `pid` is in a frozen (or freezing) cgroup: v1 `freezer.state` FROZEN or
/// FREEZING, v2 `cgroup.events` "frozen 1".
pub(crate) fn is_frozen(pid: i32) -> io::Result<bool> {
    for cgroup in cgroup_dirs_of(pid)? {
        if cgroup.v2 {
            let events =
                std::fs::read_to_string(cgroup.dir.join("cgroup.events")).unwrap_or_default();
            if events.lines().any(|line| line.trim() == "frozen 1") {
                return Ok(true);
            }
        } else if cgroup.controllers.iter().any(|c| c == "freezer") {
            let state =
                std::fs::read_to_string(cgroup.dir.join("freezer.state")).unwrap_or_default();
            if matches!(state.trim(), "FROZEN" | "FREEZING") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroups_are_found() {
        let files = procs_files(std::process::id() as i32).expect("own cgroups");
        assert!(
            files
                .iter()
                .all(|f| f.ends_with("cgroup.procs") && f.exists()),
            "{files:?}"
        );
    }
}
