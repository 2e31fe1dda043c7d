//! The one reader of `/proc/PID/mountinfo`: every mount of a mount namespace, its paths
//! unescaped (the kernel writes a space, tab, newline or backslash in a path as an octal
//! escape, `\040`...). Used to find cgroup hierarchies and, by the audit, to trace each mount
//! to the host path it shows.

/// One line of `/proc/PID/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id (unique on the system; `mnt_id` in `/proc/PID/fdinfo/FD`).
    pub id: u64,
    /// `MAJ:MIN` of the filesystem.
    pub device: String,
    /// The path within the filesystem that is mounted (`/` for its root).
    pub root: String,
    /// Where it is mounted, in the reader's view of that mount namespace.
    pub point: String,
    /// Per-mount options (`rw`/`ro`, `nosuid`...).
    pub options: String,
    /// Filesystem type.
    pub fstype: String,
    /// Per-superblock options.
    pub super_options: String,
}

impl Mount {
    /// Whether files beneath can be written: the mount and its superblock are both `rw`.
    pub fn writable(&self) -> bool {
        let rw = |options: &str| options.split(',').any(|o| o == "rw");
        rw(&self.options) && rw(&self.super_options)
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a mountinfo text; a line that does not have mountinfo's shape makes the whole
/// table unknown (a mount left out could be the one that matters).
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
            let bad = || {
                format!("mountinfo line {line:?} is not ID PARENT MAJ:MIN ROOT POINT OPTIONS ... - TYPE SOURCE OPTIONS")
            };
            let (before, after) = line.split_once(" - ").ok_or_else(bad)?;
            let before: Vec<&str> = before.split(' ').collect();
            let after: Vec<&str> = after.split(' ').collect();
            let (Some(device), Some(root), Some(point), Some(options)) =
                (before.get(2), before.get(3), before.get(4), before.get(5))
            else {
                return Err(bad());
            };
            let (Some(fstype), Some(super_options)) = (after.first(), after.get(2)) else { return Err(bad()) };
            let id = before.first().and_then(|id| id.parse().ok()).ok_or_else(bad)?;
            // ROOT is a path, or `net:[...]` for a namespace file bound somewhere (nsfs).
            if !device.contains(':') || root.is_empty() || !point.starts_with('/') {
                return Err(bad());
            }
            Ok(Mount {
                id,
                device: (*device).to_owned(),
                root: unescape(root),
                point: unescape(point),
                options: (*options).to_owned(),
                fstype: (*fstype).to_owned(),
                super_options: (*super_options).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octal_escape_is_undone() {
        let mounts = parse_mountinfo(
            "30 1 0:26 / /sys/fs/my\\040cgroup\\011x\\134y rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        assert_eq!(mounts[0].point, "/sys/fs/my cgroup\tx\\y");
        assert!(
            parse_mountinfo("1 2 3\n").is_err(),
            "a short line is an error"
        );
    }
}
