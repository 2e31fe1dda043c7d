//! Where a process's cgroups are on the host: the `cgroup.procs` file of each hierarchy,
//! for joining them (cgroup v1 and v2).

use std::io;
use std::path::PathBuf;

/// The `cgroup.procs` files, as host paths, of the cgroups process `pid` is in: one per
/// mounted hierarchy (one on a pure cgroup v2 host, one per controller set on v1 or hybrid).
pub(crate) fn procs_files(pid: i32) -> io::Result<Vec<PathBuf>> {
    Ok(cgroup_dirs(pid)?
        .into_iter()
        .map(|d| d.dir.join("cgroup.procs"))
        .collect())
}

/// One cgroup a process is in, in one hierarchy.
#[derive(Clone, Debug)]
pub struct CgroupDir {
    /// The hierarchy's controllers (v1), or empty for the v2 unified hierarchy.
    pub controllers: Vec<String>,
    /// Whether this is the v2 unified hierarchy.
    pub v2: bool,
    /// The cgroup's directory on the host.
    pub dir: PathBuf,
}

/// The cgroups (host directories) process `pid` is in, one per mounted hierarchy.
pub fn cgroup_dirs(pid: i32) -> io::Result<Vec<CgroupDir>> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mounts = cgroup_mounts(&mountinfo);
    let mut files = Vec::new();
    for line in membership.lines() {
        // "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        let mount = mounts.iter().find(|m| {
            if wanted.is_empty() {
                m.v2
            } else {
                !m.v2 && wanted.iter().all(|c| m.controllers.contains(c))
            }
        });
        // A hierarchy not mounted here (v1 "misc" on some hosts) cannot be joined.
        let Some(mount) = mount else { continue };
        let relative = path.trim_start_matches('/');
        if relative.split('/').any(|part| part == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "cgroup path with '..'",
            ));
        }
        files.push(CgroupDir {
            controllers: wanted.iter().map(|c| (*c).to_owned()).collect(),
            v2: mount.v2,
            dir: PathBuf::from(&mount.mount_point).join(relative),
        });
    }
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no mounted cgroup hierarchy",
        ));
    }
    Ok(files)
}

/// Whether process `pid` is in a frozen (or freezing) cgroup: v1 `freezer.state` FROZEN or
/// FREEZING, v2 `cgroup.events` "frozen 1".
pub(crate) fn is_frozen(pid: i32) -> io::Result<bool> {
    for cgroup in cgroup_dirs(pid)? {
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

struct CgroupMount<'a> {
    mount_point: String,
    v2: bool,
    controllers: Vec<&'a str>,
}

/// The host-root mounts of cgroup hierarchies, from `/proc/self/mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount<'_>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
            let (before, after) = line.split_once(" - ")?;
            let before: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            let fstype = after.next()?;
            let super_options = after.nth(1).unwrap_or("");
            let (root, mount_point) = (*before.get(3)?, *before.get(4)?);
            // Only mounts of a hierarchy's root give host paths for /proc/PID/cgroup's paths.
            if root != "/" {
                return None;
            }
            let mount_point = mount_point.replace("\\040", " ");
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    mount_point,
                    v2: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(CgroupMount {
                    mount_point,
                    v2: false,
                    controllers: super_options.split(',').collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_and_v2_hierarchies() {
        let mountinfo = "\
30 1 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 30 0:30 /docker /mnt/elsewhere rw - cgroup cgroup rw,pids";
        let mounts = cgroup_mounts(mountinfo);
        assert_eq!(mounts.len(), 3, "the non-root pids mount is not usable");
        assert!(mounts[0].controllers.contains(&"cpuacct") && !mounts[0].v2);
        assert!(mounts[2].v2 && mounts[2].mount_point == "/sys/fs/cgroup/unified");
    }

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
