//! What each process and thread holds of the host past its mounts: open files, its working
//! directory, its root and its memory-mapped files. A mount that is in no mount table of the
//! container is not judged by the mount audit, so every object held is placed here:
//!
//! - on a mount of one of the container's mount tables: judged with that mount (`mounts`);
//! - on a mount of the host's table: a host object passed or leaked in (`fd.host`; a
//!   directory's `..` leads to the host's `/`, runc's CVE-2024-21626);
//! - on a mount in no table (lazily unmounted, `umount -l`, or never attached): placed by its
//!   device and inode against the host's mounts; a host filesystem is a hidden host mount
//!   (`mount.detached`), a kernel-internal one (pipes, sockets, memfd...) holds nothing of
//!   the host, and anything else is an unknown with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use nix::fcntl::OFlag;
use nix::sys::stat;

use super::process::Process;
use super::{vanished, Host};
use crate::mounts::{exposure, parse_fdinfo, parse_mountinfo, Mount};
use crate::{sys, Finding, Report, Severity, Unknown};

/// Filesystems of the kernel's own, never mounted by anyone: what lives there (a pipe, a
/// socket, an eventfd, a namespace file, a pidfd, a memfd or SysV segment) is no host file.
const KERNEL_INTERNAL: [(i64, &str); 8] = [
    (0x5049_5045, "pipefs"),
    (0x534F_434B, "sockfs"),
    (0x0904_1934, "anon_inodefs"),
    (0x6e73_6673, "nsfs"),
    (0x5049_4446, "pidfs"),
    (0x444d_4142, "dmabuf"),
    (0x5345_434d, "secretmem"),
    (0x4249_4e4d, "binfmt_misc"),
];

/// tmpfs: on no host mount it is the kernel's internal shmem mount (memfd, SysV shared
/// memory) or a tmpfs the container mounted itself: either way not the host's files.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// How a process holds an object: `fd 7`, `cwd`, `root`, `mapped 7f00-7f10`.
struct Held {
    how: String,
    /// The entry beneath the process's `/proc/PID/task/TID` directory.
    entry: String,
    /// Open flags, for an fd (its fdinfo), to tell a writable file.
    flags: Option<u32>,
}

/// One object and everything known about it, for a finding.
struct Object {
    file: File,
    meta: std::fs::Metadata,
    mnt_id: u64,
    /// The path the kernel shows for it (relative to its mount when detached).
    shown: String,
}

pub(super) fn held_objects(processes: &[Process], host: &Host, report: &mut Report) {
    let host_mounts = match &host.mounts {
        Ok(mounts) => mounts,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "fd.host",
                Some(report.pid),
                format!("files held by the container's processes cannot be placed without the host's mounts: {why}"),
            ));
            return;
        }
    };
    // Every mount table of the container (one per mount namespace).
    let mut tables: BTreeMap<String, Result<BTreeSet<u64>, String>> = BTreeMap::new();
    for p in processes {
        let key = ns_key(p);
        tables.entry(key).or_insert_with(|| {
            sys::read_at(&p.dir, "mountinfo")
                .map_err(|e| format!("/proc/{}/mountinfo: {e}", p.pid))
                .and_then(|text| parse_mountinfo(&text))
                .map(|table| table.iter().map(|m| m.id).collect())
        });
    }
    let container_ids: BTreeSet<u64> = tables
        .values()
        .filter_map(|t| t.as_ref().ok())
        .flatten()
        .copied()
        .collect();
    // Each object once per process, with every way it is held: threads share their
    // process's memory and usually its files, cwd and root, but each thread is read (a
    // thread can unshare its files and fs).
    let mut objects: Vec<(&Process, Vec<Held>, Object)> = Vec::new();
    let mut index: BTreeMap<(i32, u64, u64, u64), usize> = BTreeMap::new();
    let mut mapped_read: BTreeSet<i32> = BTreeSet::new();
    for p in processes {
        let own = match tables.get(&ns_key(p)) {
            Some(Ok(ids)) => ids,
            Some(Err(why)) => {
                report
                    .unknowns
                    .push(Unknown::new("fd.host", Some(p.pid), why.clone()));
                continue;
            }
            None => {
                report.unknowns.push(Unknown::new(
                    "fd.host",
                    Some(p.pid),
                    "its mount table was not read",
                ));
                continue;
            }
        };
        let mut held = vec![
            Held {
                how: "cwd".to_owned(),
                entry: "cwd".to_owned(),
                flags: None,
            },
            Held {
                how: "root".to_owned(),
                entry: "root".to_owned(),
                flags: None,
            },
        ];
        list(p, "fd", report, &mut held);
        // Memory is the process's, shared by every thread: read once.
        if mapped_read.insert(p.tgid) {
            list(p, "map_files", report, &mut held);
        }
        for h in held {
            let object = match open_object(p, &h) {
                Ok(object) => object,
                // Closed, unmapped or exited meanwhile: nothing is held any more.
                Err(e) if vanished(&e) => continue,
                Err(e) => {
                    report.unknowns.push(Unknown::new(
                        "fd.host",
                        Some(p.pid),
                        format!("/proc/{}/{}: {e}", p.pid, h.entry),
                    ));
                    continue;
                }
            };
            if own.contains(&object.mnt_id) || container_ids.contains(&object.mnt_id) {
                // On a mount of the container: the mount audit judges it.
                continue;
            }
            let key = (p.tgid, object.mnt_id, object.meta.dev(), object.meta.ino());
            match index.get(&key) {
                Some(&i) => objects[i].1.push(h),
                None => {
                    index.insert(key, objects.len());
                    objects.push((p, vec![h], object));
                }
            }
        }
    }
    for (p, held, object) in &objects {
        match host_mounts.iter().find(|m| m.id == object.mnt_id) {
            Some(mount) => outside(p, held, object, mount, report),
            None => detached(p, held, object, host, host_mounts, report),
        }
    }
}

/// `fd 7 and cwd`, and the open flags of the first writable fd (else the first fd).
fn ways(held: &[Held]) -> (String, Option<u32>) {
    let how = held
        .iter()
        .map(|h| h.how.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let flags = held
        .iter()
        .find(|h| writable_fd(h))
        .or_else(|| held.iter().find(|h| h.flags.is_some()))
        .and_then(|h| h.flags);
    (how, flags)
}

/// The mount namespace a process's mounts are read for (its pid, when that is unknown).
fn ns_key(p: &Process) -> String {
    match p.ns("mnt") {
        Some(Ok(ns)) => ns.clone(),
        _ => format!("pid {}", p.pid),
    }
}

/// Adds the entries of `/proc/PID/task/TID/{fd,map_files}`.
fn list(p: &Process, dir: &str, report: &mut Report, held: &mut Vec<Held>) {
    let path = format!("/proc/self/fd/{}/{dir}", p.dir.as_raw_fd());
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        // The thread exited: it holds nothing.
        Err(e) if vanished(&e) => return,
        Err(e) => {
            report.unknowns.push(Unknown::new(
                "fd.host",
                Some(p.pid),
                format!("/proc/{}/{dir}: {e}", p.pid),
            ));
            return;
        }
    };
    for entry in entries {
        let name = match entry {
            Ok(entry) => entry.file_name().to_string_lossy().into_owned(),
            Err(e) => {
                report.unknowns.push(Unknown::new(
                    "fd.host",
                    Some(p.pid),
                    format!("/proc/{}/{dir}: {e}", p.pid),
                ));
                continue;
            }
        };
        let (how, flags) = if dir == "fd" {
            let flags = match sys::read_at(&p.dir, &format!("fdinfo/{name}")) {
                Ok(info) => parse_fdinfo(&info).map(|(_, flags)| flags).ok(),
                // Closed meanwhile: nothing is held.
                Err(e) if vanished(&e) => continue,
                Err(_) => None,
            }
            // Flags that cannot be read count as writable (the worse).
            .or(Some(OFlag::O_RDWR.bits() as u32));
            (format!("fd {name}"), flags)
        } else {
            (format!("mapped {name}"), None)
        };
        held.push(Held {
            how,
            entry: format!("{dir}/{name}"),
            flags,
        });
    }
}

/// Opens the object `h` of process `p` (the magic link followed, `O_PATH`: nothing of it is
/// read) and learns its mount, device and inode.
fn open_object(p: &Process, h: &Held) -> std::io::Result<Object> {
    let file = sys::open_path_at(&p.dir, &h.entry)?;
    let meta = file.metadata()?;
    let mnt_id = sys::mount_id(&file)?;
    let shown = sys::readlink_at(&p.dir, &h.entry)?;
    Ok(Object {
        file,
        meta,
        mnt_id,
        shown,
    })
}

fn writable_fd(h: &Held) -> bool {
    h.flags.is_some_and(writable_flags)
}

fn writable_flags(flags: u32) -> bool {
    flags & OFlag::O_ACCMODE.bits() as u32 != OFlag::O_RDONLY.bits() as u32
}

/// An object on a mount of the host that is not in its mount namespace.
fn outside(p: &Process, held: &[Held], object: &Object, mount: &Mount, report: &mut Report) {
    let path = &object.shown;
    let (how, flags) = ways(held);
    let writable = flags.is_some_and(writable_flags);
    let (severity, what) = if object.meta.is_dir() {
        (Severity::Critical, "a directory")
    } else if object.meta.is_file() {
        (
            exposure(path, writable),
            if writable {
                "a file, writable,"
            } else {
                "a file"
            },
        )
    } else {
        (Severity::High, "a file")
    };
    let flags = flags.map(|f| format!(" (flags {f:o})")).unwrap_or_default();
    let evidence = format!(
        "{} {how} -> {path}{flags}: mount {} ({} {} on {}) is the host's, not in its mount namespace",
        p.label, object.mnt_id, mount.device, mount.root, mount.point
    );
    let title = format!(
        "{} holds {what} of the host ({path}, its {how}), outside its mounts",
        p.who(),
    );
    report
        .findings
        .push(Finding::new("fd.host", severity, title, evidence).about(p.pid, vec![p.pid]));
}

/// An object on a mount in no table: placed by device against the host's mounts.
fn detached(
    p: &Process,
    held: &[Held],
    object: &Object,
    host: &Host,
    host_mounts: &[Mount],
    report: &mut Report,
) {
    let (how, flags) = ways(held);
    let fs_type = match sys::fs_type(&object.file) {
        Ok(fs_type) => fs_type,
        Err(e) => {
            report.unknowns.push(Unknown::new(
                "mount.detached",
                Some(p.pid),
                format!(
                    "{} {how} -> {}: on mount {}, in no mount table; its filesystem: {e}",
                    p.label, object.shown, object.mnt_id
                ),
            ));
            return;
        }
    };
    if KERNEL_INTERNAL.iter().any(|(magic, _)| *magic == fs_type) {
        // A pipe, socket, eventfd...: the kernel's, no file of the host.
        return;
    }
    let dev = object.meta.dev();
    let device = format!("{}:{}", stat::major(dev), stat::minor(dev));
    let on_host: Vec<&Mount> = host_mounts.iter().filter(|m| m.device == device).collect();
    if on_host.is_empty() {
        if fs_type == TMPFS_MAGIC {
            // The kernel's shmem (memfd, SysV) or the container's own detached tmpfs.
            return;
        }
        report.unknowns.push(Unknown::new(
            "mount.detached",
            Some(p.pid),
            format!(
                "{} {how} -> {}: on mount {} (device {device}, filesystem type {fs_type:#x}), in no mount table the audit can see and on no filesystem the host mounts: cannot be placed",
                p.label, object.shown, object.mnt_id
            ),
        ));
        return;
    }
    let writable = match sys::read_only(&object.file) {
        Ok(read_only) => !read_only,
        // Unknown: taken as writable (the worse).
        Err(_) => true,
    };
    let placed = host_path(object, host, &on_host);
    let is_dir = object.meta.is_dir();
    let severity = match (&placed, is_dir) {
        (Ok(path), true) => exposure(path, writable),
        (Ok(path), false) => exposure(path, writable && flags.is_some_and(writable_flags)),
        (Err(_), true) if writable => Severity::Critical,
        (Err(_), _) => Severity::High,
    };
    let what = if is_dir { "a directory" } else { "a file" };
    let (title_path, placed_evidence) = match &placed {
        Ok(path) => (
            format!("the host's {path}"),
            format!("it is the host's {path}"),
        ),
        Err(why) => (
            format!("inode {} of the host's device {device}", object.meta.ino()),
            format!("its host path is unknown ({why})"),
        ),
    };
    let title = format!(
        "{} holds {what} of a hidden host mount ({title_path}, its {how}, {}): the mount was detached from every mount table",
        p.who(),
        if writable { "writable" } else { "read-only" },
    );
    let evidence = format!(
        "{} {how} -> {}: mount {} is in no mount table; device {device} inode {} is the host's (mounted on the host at {}); {placed_evidence}",
        p.label,
        object.shown,
        object.mnt_id,
        object.meta.ino(),
        on_host
            .iter()
            .map(|m| m.point.as_str())
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    report
        .findings
        .push(Finding::new("mount.detached", severity, title, evidence).about(p.pid, vec![p.pid]));
}

/// The host path of `object`, found by its file handle through a host mount of its
/// filesystem (`open_by_handle_at`), and checked to be the same device and inode.
fn host_path(object: &Object, host: &Host, on_host: &[&Mount]) -> Result<String, String> {
    let root = sys::open_dir(std::path::Path::new(&format!("/proc/{}/root", host.pid)))
        .map_err(|e| format!("/proc/{}/root: {e}", host.pid))?;
    // A mount of the filesystem's root shows every file of it; else the widest one.
    let mut candidates: Vec<&&Mount> = on_host.iter().collect();
    candidates.sort_by_key(|m| (m.root != "/", m.root.len()));
    let mut failures = Vec::new();
    for mount in candidates {
        match sys::path_by_handle(&object.file, &root, &mount.point) {
            Ok((path, dev, ino)) if dev == object.meta.dev() && ino == object.meta.ino() => {
                return Ok(path)
            }
            Ok((path, _, _)) => failures.push(format!("{path} is another file")),
            Err(e) => failures.push(format!("through {}: {e}", mount.point)),
        }
    }
    Err(failures.join("; "))
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;

    use nsenter_core::Target;

    use crate::{audit, Host, Report};

    /// A new mount, attached nowhere: `open_tree(OPEN_TREE_CLONE)` of `path`, or a fresh
    /// filesystem of type `fstype` (`fsopen` + `fsmount`).
    fn detached(path: Option<&str>, fstype: &str) -> OwnedFd {
        use rustix::mount::{
            fsconfig_create, fsmount, fsopen, open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags,
            OpenTreeFlags,
        };
        match path {
            None => {
                let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
                    .unwrap_or_else(|e| panic!("fsopen {fstype}: {e}"));
                fsconfig_create(&fs).unwrap_or_else(|e| panic!("fsconfig: {e}"));
                fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
                    .unwrap_or_else(|e| panic!("fsmount: {e}"))
            }
            Some(path) => open_tree(
                rustix::fs::CWD,
                path,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .unwrap_or_else(|e| panic!("open_tree {path}: {e}")),
        }
    }

    fn about<'a>(
        report: &'a Report,
        fd: &OwnedFd,
    ) -> (Vec<&'a crate::Finding>, Vec<&'a crate::Unknown>) {
        use std::os::fd::AsRawFd;
        let needle = format!(" fd {} ", fd.as_raw_fd());
        let needle_and = format!(" fd {} and", fd.as_raw_fd());
        let hit = |text: &str| {
            text.contains(&needle)
                || text.contains(&needle_and)
                || text.contains(&format!("and fd {} ", fd.as_raw_fd()))
        };
        (
            report
                .findings
                .iter()
                .filter(|f| hit(&f.evidence))
                .collect(),
            report.unknowns.iter().filter(|u| hit(&u.reason)).collect(),
        )
    }

    /// Every branch an object held on a mount in no table takes: a host filesystem is a
    /// finding with its host path, what cannot be placed is an unknown, and only the
    /// kernel's own files (pipes, sockets, memfd, a tmpfs no one else has) are nothing.
    #[test]
    fn every_object_held_on_no_mount_becomes_a_finding_an_unknown_or_is_the_kernels() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: creating detached mounts needs root");
            return;
        }
        let me = std::process::id() as i32;
        let etc = detached(Some("/etc"), "");
        let ramfs = detached(None, "ramfs");
        let tmpfs = detached(None, "tmpfs");
        let (pipe_r, _pipe_w) = nix::unistd::pipe().unwrap();
        let memfd =
            nix::sys::memfd::memfd_create(c"held-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        let report = audit(
            &Target::open(nsenter_core::Pid::this()).unwrap(),
            &Host::read(me),
        )
        .unwrap();
        let (findings, unknowns) = about(&report, &etc);
        assert!(
            findings.iter().any(|f| f.id == "mount.detached"
                && f.severity == crate::Severity::Critical
                && f.title.contains("the host's /etc")),
            "a detached bind of the host's /etc: {findings:?} {unknowns:?}"
        );
        let (findings, unknowns) = about(&report, &ramfs);
        assert!(findings.is_empty(), "{findings:?}");
        assert!(
            unknowns
                .iter()
                .any(|u| u.id == "mount.detached" && u.reason.contains("cannot be placed")),
            "a filesystem the host does not mount: {unknowns:?}"
        );
        for kernels in [&tmpfs, &pipe_r, &memfd] {
            let (findings, unknowns) = about(&report, kernels);
            assert!(
                findings.is_empty() && unknowns.is_empty(),
                "{findings:?} {unknowns:?}"
            );
        }
    }
}
