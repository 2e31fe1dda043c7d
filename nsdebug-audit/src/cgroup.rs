//! cgroups, read from the host's cgroupfs: which cgroups a process is in (v1 and v2), their
//! limits (pids, memory, CPU quota) and, on v1, the devices allowed.

pub use nsenter_core::cgroup::{cgroup_dirs, CgroupDir};

/// The number after `key ` on its line of a flat-keyed cgroup file (`memory.stat`,
/// `memory.events`, `memory.oom_control`); `None` when the key is missing or not a number.
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(key)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A limit read from a cgroup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No limit (`max`, `-1`, or v1's page-rounded maximum).
    Unlimited,
    /// This value.
    Set(u64),
}

/// Parses a pids or memory limit: `max` (v2), `-1`, a number; v1's "no limit" is the
/// page-rounded maximum (>= 2^62).
pub fn parse_limit(text: &str) -> Result<Limit, String> {
    match text.trim() {
        "max" | "-1" => Ok(Limit::Unlimited),
        value => match value.parse::<u64>() {
            Ok(v) if v >= 1 << 62 => Ok(Limit::Unlimited),
            Ok(v) => Ok(Limit::Set(v)),
            Err(_) => Err(format!("{value:?} is not a limit")),
        },
    }
}

/// A CPU quota: `quota` microseconds of CPU time per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuQuota {
    /// Microseconds of CPU time per period, `None` for no quota.
    pub quota: Option<u64>,
    /// The period in microseconds.
    pub period: u64,
}

impl CpuQuota {
    /// The quota in CPUs (`--cpus`), e.g. 0.5.
    pub fn cpus(&self) -> Option<f64> {
        self.quota.map(|q| q as f64 / self.period as f64)
    }
}

fn micros(value: &str, what: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            format!(
                "{what} {:?} is not a positive number of microseconds",
                value.trim()
            )
        })
}

/// Parses cgroup v2 `cpu.max`: `QUOTA PERIOD` or `max PERIOD`.
pub fn parse_cpu_max(text: &str) -> Result<CpuQuota, String> {
    let mut fields = text.split_whitespace();
    let (Some(quota), Some(period), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(format!("cpu.max {:?} is not QUOTA PERIOD", text.trim()));
    };
    let period = micros(period, "cpu.max period")?;
    let quota = if quota == "max" {
        None
    } else {
        Some(micros(quota, "cpu.max quota")?)
    };
    Ok(CpuQuota { quota, period })
}

/// Parses cgroup v1 `cpu.cfs_quota_us` (`-1`: none) and `cpu.cfs_period_us`.
pub fn parse_cfs(quota: &str, period: &str) -> Result<CpuQuota, String> {
    let period = micros(period, "cpu.cfs_period_us")?;
    let quota = match quota.trim() {
        "-1" => None,
        value => Some(micros(value, "cpu.cfs_quota_us")?),
    };
    Ok(CpuQuota { quota, period })
}

/// The v1 controllers a `/proc/PID/cgroup` text names that are in none of `dirs`: their
/// hierarchies are not mounted where they can be read.
pub fn unmounted_controllers(membership: &str, dirs: &[CgroupDir]) -> Vec<String> {
    membership
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .flat_map(|controllers| controllers.split(',').filter(|c| !c.is_empty()))
        .filter(|c| {
            !dirs
                .iter()
                .any(|d| !d.v2 && d.controllers.iter().any(|have| have == c))
        })
        .map(str::to_owned)
        .collect()
}

/// Whether a v1 `devices.list` allows every device (`a *:* rwm`).
pub fn allows_all_devices(devices_list: &str) -> bool {
    devices_list.lines().any(|l| l.trim() == "a *:* rwm")
}

/// One line of a v1 `devices.list`: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// `a` (every device), `b` (block) or `c` (char).
    pub kind: char,
    /// The major number; `None` for `*`.
    pub major: Option<u64>,
    /// The minor number; `None` for `*`.
    pub minor: Option<u64>,
    /// What it allows: `r` read, `w` write, `m` mknod.
    pub access: String,
}

impl DeviceRule {
    /// Whether it lets a device be opened (read or written), not only made (`m`).
    pub fn opens(&self) -> bool {
        self.access.contains(['r', 'w'])
    }

    /// `b 254:0 rwm`, as the kernel writes it.
    pub fn spelled(&self) -> String {
        let n = |v: Option<u64>| v.map_or("*".to_owned(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// The rules of a v1 `devices.list`; a line that is not one is an error naming it.
pub fn parse_devices_list(text: &str) -> Result<Vec<DeviceRule>, String> {
    let number = |s: &str| -> Result<Option<u64>, ()> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| ())
        }
    };
    let mut rules = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = (|| {
            let mut words = line.split_whitespace();
            let kind = match words.next()? {
                "a" => 'a',
                "b" => 'b',
                "c" => 'c',
                _ => return None,
            };
            let (major, minor) = words.next()?.split_once(':')?;
            let access = words.next()?;
            if words.next().is_some() || !access.chars().all(|c| "rwm".contains(c)) {
                return None;
            }
            Some(DeviceRule {
                kind,
                major: number(major).ok()?,
                minor: number(minor).ok()?,
                access: access.to_owned(),
            })
        })();
        rules.push(parsed.ok_or_else(|| format!("not a devices.list line: {line:?}"))?);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::parse_mountinfo;
    use std::path::PathBuf;

    /// This host (cgroup v1 with a unified hierarchy beside, Docker's cgroupfs driver).
    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 31 0:40 /docker /mnt/elsewhere rw - cgroup cgroup rw,blkio";
    const V1_CGROUP: &str = "\
8:pids:/docker/a34d2678a8b2
7:blkio:/docker/a34d2678a8b2
4:memory:/docker/a34d2678a8b2
2:cpuacct:/docker/a34d2678a8b2
1:cpu:/docker/a34d2678a8b2
0::/docker/a34d2678a8b2";

    /// A systemd host on pure cgroup v2 (Docker's systemd driver).
    const V2_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
35 23 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
    const V2_CGROUP: &str = "0::/system.slice/docker-a34d2678a8b2.scope\n";

    #[test]
    fn v1_hierarchies_each_give_a_directory_and_an_unmounted_one_is_left_out() {
        let mounts = parse_mountinfo(V1_MOUNTINFO).unwrap();
        let dirs = cgroup_dirs(V1_CGROUP, &mounts).unwrap();
        let paths: Vec<_> = dirs.iter().map(|d| d.dir.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/sys/fs/cgroup/pids/docker/a34d2678a8b2",
                "/sys/fs/cgroup/memory/docker/a34d2678a8b2",
                "/sys/fs/cgroup/cpuacct/docker/a34d2678a8b2",
                "/sys/fs/cgroup/cpu/docker/a34d2678a8b2",
                "/sys/fs/cgroup/unified/docker/a34d2678a8b2",
            ]
        );
        assert!(dirs[4].v2 && !dirs[0].v2 && dirs[0].controllers == ["pids"]);
        assert_eq!(dirs[0].mount, PathBuf::from("/sys/fs/cgroup/pids"));
        assert_eq!(
            unmounted_controllers(V1_CGROUP, &dirs),
            ["blkio"],
            "blkio is mounted only below its root"
        );
    }

    #[test]
    fn v2_unified_hierarchy_gives_the_scope_directory() {
        let mounts = parse_mountinfo(V2_MOUNTINFO).unwrap();
        let dirs = cgroup_dirs(V2_CGROUP, &mounts).unwrap();
        assert_eq!(
            dirs,
            [CgroupDir {
                controllers: vec![],
                v2: true,
                dir: "/sys/fs/cgroup/system.slice/docker-a34d2678a8b2.scope".into(),
                mount: "/sys/fs/cgroup".into()
            }]
        );
        assert!(
            cgroup_dirs("0::/../../etc\n", &mounts).is_err(),
            "'..' must not escape the hierarchy"
        );
        assert!(cgroup_dirs("garbage\n", &mounts).is_err());
        assert!(
            cgroup_dirs(
                V1_CGROUP.replace("0::/docker/a34d2678a8b2", "").trim(),
                &mounts
            )
            .is_err(),
            "no v1 hierarchy mounted"
        );
    }

    #[test]
    fn limits_of_both_versions() {
        assert_eq!(parse_limit("max\n"), Ok(Limit::Unlimited));
        assert_eq!(
            parse_limit("9223372036854771712\n"),
            Ok(Limit::Unlimited),
            "v1 memory.limit_in_bytes default"
        );
        assert_eq!(parse_limit("100\n"), Ok(Limit::Set(100)));
        assert!(parse_limit("").is_err() && parse_limit("12k").is_err());
    }

    #[test]
    fn cpu_quota_v2_and_v1() {
        // `docker run --cpus 0.5` on each version.
        assert_eq!(parse_cpu_max("50000 100000\n").unwrap().cpus(), Some(0.5));
        assert_eq!(
            parse_cpu_max("max 100000\n").unwrap(),
            CpuQuota {
                quota: None,
                period: 100000
            }
        );
        assert!(
            parse_cpu_max("50000").is_err()
                && parse_cpu_max("x 100000").is_err()
                && parse_cpu_max("1 0").is_err()
        );
        assert_eq!(parse_cfs("50000\n", "100000\n").unwrap().cpus(), Some(0.5));
        assert_eq!(parse_cfs("150000\n", "100000\n").unwrap().cpus(), Some(1.5));
        assert_eq!(parse_cfs("-1\n", "100000\n").unwrap().quota, None);
        assert!(parse_cfs("50000", "").is_err() && parse_cfs("-5", "100000").is_err());
    }

    #[test]
    fn devices_list() {
        assert!(allows_all_devices("a *:* rwm\n"));
        assert!(!allows_all_devices("c 1:3 rwm\nc 1:5 rwm\nc *:* m\n"));
    }

    /// Recorded from a Docker container run `--device /dev/vda --device /dev/kmsg` on this
    /// cgroup v1 host (runc's default allowlist, then the two devices).
    #[test]
    fn a_devices_list_is_read_rule_by_rule() {
        let list = "b *:* m\nc *:* m\nc 1:3 rwm\nc 1:11 rwm\nc 136:* rwm\nb 254:0 rwm\n";
        let rules = parse_devices_list(list).unwrap();
        assert_eq!(rules.len(), 6);
        assert_eq!(
            rules[5],
            DeviceRule {
                kind: 'b',
                major: Some(254),
                minor: Some(0),
                access: "rwm".to_owned()
            }
        );
        assert!(!rules[0].opens() && rules[2].opens());
        assert_eq!(rules[4].spelled(), "c 136:* rwm");
        assert!(parse_devices_list("x 1:3 rwm").is_err());
        assert!(parse_devices_list("c 1:3 rwz").is_err());
        assert!(parse_devices_list("c 1 rwm").is_err());
    }
}
