//! What devices the devices cgroup lets the container open beyond the runtime's defaults, and
//! "the devices cgroup allows every device" weighed by what the kernel lets the container do
//! with it. In a user namespace not created by the host's root, mknod of a device needs
//! CAP_MKNOD in the host's user namespace, which no process there has, and every filesystem
//! it mounts is nodev: what it can reach is exactly the host device nodes already in its mount
//! tables. Rootless Podman on a cgroup v1 host leaves its containers in its user's cgroup,
//! whose devices cgroup is the root one: that is critical only if those nodes are.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::exposure::DeviceNode;
use super::process::Process;
use crate::cgroup::{parse_devices_list, CgroupDir, DeviceRule};
use crate::{sys, Finding, Record, Report, Severity, Unknown};

/// Lowers the `devices` finding to what the reachable device nodes justify when every
/// process and thread of the container is in a user namespace owned by a uid other than
/// the host's root. One whose namespace or its owner cannot be read keeps it critical.
pub(super) fn in_user_namespace(processes: &[Process], nodes: &[DeviceNode], report: &mut Report) {
    // Only "every device": a device named by its own rule keeps its severity.
    let Some(finding) = report
        .findings
        .iter_mut()
        .find(|f| f.id == "devices" && f.evidence.ends_with(&format!(": {EVERY_DEVICE}")))
    else {
        return;
    };
    let mut owners: Vec<u32> = Vec::new();
    for p in processes {
        let owner = p
            .own_userns
            .as_ref()
            .and_then(|_| sys::userns_owner(&p.dir).ok());
        match owner {
            Some(uid) if uid != 0 => {
                if !owners.contains(&uid) {
                    owners.push(uid);
                }
            }
            _ => return,
        }
    }
    if owners.is_empty() {
        return;
    }
    finding.severity = nodes
        .iter()
        .map(|n| n.severity)
        .max()
        .unwrap_or(Severity::Info);
    finding.title = "the devices cgroup allows every device, but no process can make a device node: only those mounted in are reachable".to_owned();
    let uids: Vec<String> = owners.iter().map(u32::to_string).collect();
    let reachable: Vec<&str> = nodes.iter().map(|n| n.described.as_str()).collect();
    finding.evidence = format!(
        "{}; user namespace owned by uid {}: mknod refused, its mounts nodev; reachable device nodes: {}",
        finding.evidence,
        uids.join(", uid "),
        if reachable.is_empty() {
            "none".to_owned()
        } else {
            reachable.join(", ")
        }
    );
}

/// The rule of a devices cgroup that allows every device.
const EVERY_DEVICE: &str = "a *:* rwm";

/// What runc (Docker's, Podman's and containerd's default) lets every container open: the
/// OCI default devices, `/dev/pts`, `/dev/ptmx` and `/dev/tty*` of its own (checked against
/// the `devices.list` of a default Docker container on this host). `b *:* m` and `c *:* m`
/// (mknod only) open nothing.
const RUNC_ALLOWED: [(char, Option<u64>, Option<u64>); 10] = [
    ('c', Some(1), Some(3)),    // null
    ('c', Some(1), Some(5)),    // zero
    ('c', Some(1), Some(7)),    // full
    ('c', Some(1), Some(8)),    // random
    ('c', Some(1), Some(9)),    // urandom
    ('c', Some(5), Some(0)),    // tty
    ('c', Some(5), Some(1)),    // console
    ('c', Some(5), Some(2)),    // ptmx
    ('c', Some(10), Some(200)), // net/tun
    ('c', Some(136), None),     // pts/*
];

/// What opening the devices of `rule` gives, and why: the host's disks are its filesystems
/// raw, `mem`/`kmem`/`port` its memory and I/O ports (each a way out of any container).
fn device_severity(rule: &DeviceRule) -> (Severity, &'static str) {
    match (rule.kind, rule.major, rule.minor) {
        ('a', ..) | ('c', None, _) => (Severity::Critical, "every device of the host"),
        ('b', ..) => (
            Severity::Critical,
            "a host block device: its filesystems read and written raw, past every mount",
        ),
        ('c', Some(1), None | Some(1) | Some(2) | Some(4)) => (
            Severity::Critical,
            "the host's physical or kernel memory or I/O ports",
        ),
        ('c', Some(1), Some(11)) => (
            Severity::High,
            "the host's kernel log: kernel addresses and every container's messages read, forged lines written",
        ),
        ('c', Some(4 | 7 | 13), _) => (
            Severity::High,
            "a host terminal, console screen or input device: what the host's users type or see",
        ),
        _ => (
            Severity::Medium,
            "a host device beyond the runtime's defaults: its driver is the container's to call",
        ),
    }
}

/// The host's name of a device (`vda`), from the host's sysfs (`/sys/dev/{block,char}/M:N`);
/// `mem`, `kmem` and `port` by their fixed numbers when the host's kernel has no node of them.
fn host_name(rule: &DeviceRule) -> Option<String> {
    let fixed = match (rule.kind, rule.major, rule.minor) {
        ('c', Some(1), Some(1)) => Some("/dev/mem"),
        ('c', Some(1), Some(2)) => Some("/dev/kmem"),
        ('c', Some(1), Some(4)) => Some("/dev/port"),
        _ => None,
    };
    let kind = match rule.kind {
        'b' => "block",
        'c' => "char",
        _ => return None,
    };
    std::fs::read_to_string(format!(
        "/sys/dev/{kind}/{}:{}/uevent",
        rule.major?, rule.minor?
    ))
    .ok()
    .and_then(|uevent| {
        uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .map(|name| format!("/dev/{name}"))
    })
    .or(fixed.map(str::to_owned))
}

/// The rule naming exactly the device node `meta` is (its kind and numbers) with `access`;
/// `None` when it is no block or char device.
fn node_rule(meta: &std::fs::Metadata, access: &str) -> Option<DeviceRule> {
    let kind = meta.file_type();
    let kind = if kind.is_block_device() {
        'b'
    } else if kind.is_char_device() {
        'c'
    } else {
        return None;
    };
    Some(DeviceRule {
        kind,
        major: Some(libc::major(meta.rdev()) as u64),
        minor: Some(libc::minor(meta.rdev()) as u64),
        access: access.to_owned(),
    })
}

/// Whether the node `meta` is a device `rule` allows.
fn matches(rule: &DeviceRule, meta: &std::fs::Metadata) -> bool {
    let kind = meta.file_type();
    let kind_ok = match rule.kind {
        'b' => kind.is_block_device(),
        'c' => kind.is_char_device(),
        _ => kind.is_block_device() || kind.is_char_device(),
    };
    let (major, minor) = (
        libc::major(meta.rdev()) as u64,
        libc::minor(meta.rdev()) as u64,
    );
    kind_ok && rule.major.is_none_or(|m| m == major) && rule.minor.is_none_or(|m| m == minor)
}

/// Whether `outer` allows everything `inner` does.
fn covers(outer: &DeviceRule, inner: &DeviceRule) -> bool {
    let number = |o: Option<u64>, i: Option<u64>| o.is_none() || o == i;
    (outer.kind == 'a' || outer.kind == inner.kind)
        && number(outer.major, inner.major)
        && number(outer.minor, inner.minor)
        && inner.access.chars().all(|c| outer.access.contains(c))
}

/// Whether runc lets every container open what `rule` allows.
fn runc_default(rule: &DeviceRule) -> bool {
    RUNC_ALLOWED.contains(&(rule.kind, rule.major, rule.minor))
}

/// Entries of the container's `/dev` looked at, at most: the container chooses how many.
const DEV_ENTRIES: usize = 4096;

/// The device nodes in the container's `/dev` (made there by the runtime's mknod, so no
/// mount table shows them), seen through its init's root, never followed; `true` when the
/// container filled it beyond [`DEV_ENTRIES`] and the rest was not looked at.
fn dev_nodes(processes: &[Process], pid: i32) -> (Vec<(String, std::fs::Metadata)>, bool) {
    let (entries, more) = processes
        .iter()
        .find(|p| p.pid == pid)
        .and_then(|p| sys::open_dir_at(&p.dir, "root").ok())
        .and_then(|root| sys::list_in_root_at_most(&root, "/dev", DEV_ENTRIES).ok())
        .unwrap_or_default();
    let nodes = entries
        .into_iter()
        .filter(|e| e.meta.file_type().is_block_device() || e.meta.file_type().is_char_device())
        .map(|e| (format!("/dev/{}", e.name), e.meta))
        .collect();
    (nodes, more)
}

/// Device nodes of a recorded directory looked at, at most (`--device /dev/snd`).
const RECORDED_NODES: usize = 1024;

/// What the runtime's record grants, as devices cgroup rules with how it was asked for
/// (`--device /dev/vda`): each host path recorded is looked at now (a directory gives
/// every node beneath it, as Docker does). `None`: the record does not say.
fn recorded_rules(record: &Record) -> Option<Vec<(String, DeviceRule)>> {
    let devices = record.devices.as_ref()?;
    let mut rules = Vec::new();
    for device in devices {
        // Podman records no permissions (`""`) for its default, `rwm`.
        let access: String = match device.permissions.as_str() {
            "" => "rwm".to_owned(),
            given => given.chars().filter(|c| "rwm".contains(*c)).collect(),
        };
        let mut pending = vec![std::path::PathBuf::from(&device.path_on_host)];
        while let Some(path) = pending.pop() {
            if rules.len() >= RECORDED_NODES {
                break;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                pending.extend(
                    std::fs::read_dir(&path)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .take(RECORDED_NODES)
                        .map(|e| e.path()),
                );
                continue;
            }
            if let Some(rule) = node_rule(&meta, &access) {
                rules.push((format!("--device {}", device.path_on_host), rule));
            }
        }
    }
    for rule in &record.device_cgroup_rules {
        if let Ok(parsed) = parse_devices_list(rule) {
            rules.extend(
                parsed
                    .into_iter()
                    .map(|r| (format!("--device-cgroup-rule '{rule}'"), r)),
            );
        }
    }
    Some(rules)
}

/// `/dev/vda (block 254:0)`, or the rule as the kernel spells it.
fn device_named(rule: &DeviceRule) -> String {
    let kind = if rule.kind == 'b' { "block" } else { "char" };
    match (host_name(rule), rule.major, rule.minor) {
        (Some(name), Some(major), Some(minor)) => format!("{name} ({kind} {major}:{minor})"),
        _ => format!("devices {}", rule.spelled()),
    }
}

/// The devices the container may open beyond runc's defaults (`dirs`: its cgroups), from
/// the kernel where it can be read, else from the runtime's record:
/// - cgroup v1: every rule of its `devices.list` that opens a device beyond the defaults is
///   a `devices` finding naming the host's device, with the nodes of it in the container's
///   `/dev` and whether the record grants it; `a *:* rwm` is one critical finding. A device
///   the record grants and the kernel does not allow is `record.grant-dropped`.
/// - cgroup v2: the allowlist is an eBPF program that cannot be read back. Each device the
///   record grants is a finding; a node in `/dev` beyond the defaults that the record does
///   not grant, or no record at all, is an unknown: never a pass.
pub(super) fn cgroup_allowed(
    dirs: &[CgroupDir],
    processes: &[Process],
    mounted: &[DeviceNode],
    record: &Record,
    report: &mut Report,
) {
    let pid = report.pid;
    let recorded = recorded_rules(record);
    let (nodes, more) = dev_nodes(processes, pid);
    let in_container = |rule: &DeviceRule| {
        let found: Vec<&str> = nodes
            .iter()
            .filter(|(_, meta)| matches(rule, meta))
            .map(|(name, _)| name.as_str())
            .collect();
        // Host nodes bound in (in its mount tables) are evidence too.
        let bound = mounted.iter().filter(|n| {
            n.numbers.is_some_and(|(kind, major, minor)| {
                covers(
                    rule,
                    &DeviceRule {
                        kind,
                        major: Some(major),
                        minor: Some(minor),
                        access: String::new(),
                    },
                )
            })
        });
        let found: Vec<&str> = found
            .into_iter()
            .chain(bound.map(|n| n.described.as_str()))
            .collect();
        let mut said = String::new();
        if !found.is_empty() {
            said = format!("; in the container: {}", found.join(", "));
        }
        if more {
            said.push_str(&format!(
                "; only the first {DEV_ENTRIES} entries of its /dev were looked at"
            ));
        }
        said
    };
    let Some(dir) = dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "devices"))
    else {
        if dirs.iter().any(|d| d.v2) {
            v2_allowed(
                recorded.as_deref(),
                (&nodes, more),
                &in_container,
                record,
                report,
            );
        }
        return;
    };
    let path = dir.dir.join("devices.list");
    let rules = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|list| parse_devices_list(&list))
    {
        Ok(rules) => rules,
        Err(why) => {
            report.unknowns.push(Unknown::new(
                "devices",
                Some(pid),
                format!("{}: {why}", path.display()),
            ));
            return;
        }
    };
    if rules.iter().any(|r| r.spelled() == EVERY_DEVICE) {
        report.findings.push(Finding::new(
            "devices",
            Severity::Critical,
            "access to every device of the host (devices cgroup allows all)",
            format!("{}: {EVERY_DEVICE}", path.display()),
        ));
        return;
    }
    for rule in rules.iter().filter(|r| r.opens() && !runc_default(r)) {
        let (severity, why) = device_severity(rule);
        // The kernel against the record: a device allowed that the runtime never granted
        // was allowed from outside it (devices.allow written on the host).
        let granted = match &recorded {
            Some(recorded) if !recorded.iter().any(|(_, r)| covers(r, rule)) => format!(
                "; not in {}'s record (HostConfig.Devices, DeviceCgroupRules): allowed from outside the runtime",
                record.runtime
            ),
            _ => String::new(),
        };
        report.findings.push(Finding::new(
            "devices",
            severity,
            format!(
                "the devices cgroup lets the container open {}: {why}",
                device_named(rule)
            ),
            format!(
                "{}: {}{}{granted}",
                path.display(),
                rule.spelled(),
                in_container(rule)
            ),
        ));
    }
    // The record against the kernel: granted, and no longer allowed.
    let gone: Vec<String> = recorded
        .iter()
        .flatten()
        .filter(|(_, r)| r.opens() && !rules.iter().any(|k| covers(k, r)))
        .map(|(asked, r)| format!("{asked} ({})", r.spelled()))
        .collect();
    if !gone.is_empty() {
        report.findings.push(
            Finding::new(
                "record.grant-dropped",
                Severity::Info,
                format!(
                    "{} recorded {}, which the devices cgroup does not allow now (a config reader still reports it)",
                    record.runtime,
                    gone.join(", ")
                ),
                format!("{} allows none of it", path.display()),
            )
            .about(pid, vec![pid]),
        );
    }
}

/// cgroup v2 (see [`cgroup_allowed`]): the record, and the nodes in `/dev`, are all there is.
fn v2_allowed(
    recorded: Option<&[(String, DeviceRule)]>,
    (nodes, more): (&[(String, std::fs::Metadata)], bool),
    in_container: &dyn Fn(&DeviceRule) -> String,
    record: &Record,
    report: &mut Report,
) {
    const UNREAD: &str = "cgroup v2 allows devices by an eBPF program, which cannot be read back";
    let pid = report.pid;
    let Some(recorded) = recorded else {
        report.unknowns.push(Unknown::new(
            "devices",
            Some(pid),
            format!(
                "{UNREAD}, and no runtime record says which host devices the container may open"
            ),
        ));
        return;
    };
    for (asked, rule) in recorded
        .iter()
        .filter(|(_, r)| r.opens() && !runc_default(r))
    {
        let (severity, why) = device_severity(rule);
        report.findings.push(Finding::new(
            "devices",
            severity,
            format!(
                "{} granted the container {}: {why}",
                record.runtime,
                device_named(rule)
            ),
            format!(
                "{} HostConfig: {asked} ({}); {UNREAD}{}",
                record.runtime,
                rule.spelled(),
                in_container(rule)
            ),
        ));
    }
    // A node the runtime made that its record does not account for: whether it opens is
    // the eBPF program's to say.
    let mut unaccounted = Vec::new();
    for (name, meta) in nodes {
        let Some(rule) = node_rule(meta, "rw") else {
            continue;
        };
        if runc_default(&rule) || recorded.iter().any(|(_, r)| covers(r, &rule)) {
            continue;
        }
        unaccounted.push(format!("{name} ({})", rule.spelled()));
    }
    if more {
        unaccounted.push(format!(
            "entries of its /dev beyond the first {DEV_ENTRIES}, not looked at"
        ));
    }
    if !unaccounted.is_empty() {
        report.unknowns.push(Unknown::new(
            "devices",
            Some(pid),
            format!(
                "device nodes in the container beyond the runtime's defaults and its record: {}; {UNREAD}",
                unaccounted.join(", ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordedDevice;

    /// The `devices.list` of a default Docker container on this host (runc's allowlist).
    const DEFAULT: &str = "b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:1 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 136:* rwm\n";

    fn rule(line: &str) -> DeviceRule {
        parse_devices_list(line).unwrap().remove(0)
    }

    #[test]
    fn runcs_allowlist_opens_nothing_beyond_the_defaults_and_each_extra_is_weighed() {
        let extra: Vec<DeviceRule> = parse_devices_list(DEFAULT)
            .unwrap()
            .into_iter()
            .filter(|r| r.opens() && !runc_default(r))
            .collect();
        assert!(extra.is_empty(), "{extra:?}");
        let severity = |line: &str| device_severity(&rule(line)).0;
        assert_eq!(severity("b 254:0 rwm"), Severity::Critical, "a disk");
        assert_eq!(
            severity("b 8:1 r"),
            Severity::Critical,
            "a partition, read only"
        );
        assert_eq!(severity("c 1:1 rw"), Severity::Critical, "mem");
        assert_eq!(severity("c 1:2 rw"), Severity::Critical, "kmem");
        assert_eq!(severity("c 1:4 rw"), Severity::Critical, "port");
        assert_eq!(severity("c *:* rw"), Severity::Critical);
        assert_eq!(severity("c 1:11 rwm"), Severity::High, "kmsg");
        assert_eq!(severity("c 13:64 rw"), Severity::High, "input");
        assert_eq!(severity("c 10:229 rwm"), Severity::Medium, "fuse");
    }

    #[test]
    fn a_rule_covers_what_it_allows_no_more() {
        assert!(covers(&rule("c 1:11 rwm"), &rule("c 1:11 rw")));
        assert!(covers(&rule("c 136:* rwm"), &rule("c 136:4 rw")));
        assert!(covers(&rule("a *:* rwm"), &rule("b 254:0 rwm")));
        assert!(!covers(&rule("c 1:11 r"), &rule("c 1:11 rw")));
        assert!(!covers(&rule("c 254:0 rwm"), &rule("b 254:0 rwm")));
        assert!(!covers(&rule("c 1:3 rwm"), &rule("c 1:* rwm")));
    }

    #[test]
    fn the_record_is_read_as_rules_paths_looked_at_now() {
        assert_eq!(recorded_rules(&Record::default()), None);
        let record = Record {
            devices: Some(vec![
                RecordedDevice {
                    path_on_host: "/dev/null".into(),
                    permissions: "rw".into(),
                },
                RecordedDevice {
                    path_on_host: "/nonexistent-device".into(),
                    permissions: "rwm".into(),
                },
                // Podman's record of `--device /dev/zero`.
                RecordedDevice {
                    path_on_host: "/dev/zero".into(),
                    permissions: "".into(),
                },
            ]),
            device_cgroup_rules: vec!["b 254:0 rwm".into()],
            ..Record::default()
        };
        let rules = recorded_rules(&record).unwrap();
        assert_eq!(
            rules,
            vec![
                ("--device /dev/null".to_owned(), rule("c 1:3 rw")),
                ("--device /dev/zero".to_owned(), rule("c 1:5 rwm")),
                (
                    "--device-cgroup-rule 'b 254:0 rwm'".to_owned(),
                    rule("b 254:0 rwm")
                ),
            ]
        );
    }

    /// cgroup v2: the record's devices are findings; no record is an unknown, never a pass.
    #[test]
    fn on_cgroup_v2_the_record_answers_or_it_is_unknown() {
        let mut report = Report::default();
        v2_allowed(
            None,
            (&[], false),
            &|_| String::new(),
            &Record::default(),
            &mut report,
        );
        assert!(report.findings.is_empty());
        assert!(
            report
                .unknowns
                .iter()
                .any(|u| u.id == "devices" && u.reason.contains("eBPF")),
            "{:?}",
            report.unknowns
        );
        let record = Record {
            runtime: "docker".into(),
            devices: Some(vec![]),
            device_cgroup_rules: vec!["b 254:0 rwm".into()],
            ..Record::default()
        };
        let recorded = recorded_rules(&record).unwrap();
        let mut report = Report::default();
        v2_allowed(
            Some(&recorded),
            (&[], false),
            &|_| String::new(),
            &record,
            &mut report,
        );
        assert!(report.unknowns.is_empty(), "{:?}", report.unknowns);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.id == "devices" && f.severity == Severity::Critical),
            "{:?}",
            report.findings
        );
        // The record of a default container: nothing beyond the defaults, nothing unknown.
        let record = Record {
            devices: Some(vec![]),
            ..Record::default()
        };
        let mut report = Report::default();
        v2_allowed(
            Some(&recorded_rules(&record).unwrap()),
            (&[], false),
            &|_| String::new(),
            &record,
            &mut report,
        );
        assert!(report.findings.is_empty() && report.unknowns.is_empty());
    }
}
