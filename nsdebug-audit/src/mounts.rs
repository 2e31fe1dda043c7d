//! Mounts judged by what they expose: `/proc/PID/mountinfo` parsed, each mount's source
//! mapped to a host path (same device, mountinfo root beneath a host mount's root), and
//! how bad exposing that host path is.

use crate::Severity;

pub use nsenter_core::mountinfo::{parse_mountinfo, Mount};

/// What `/proc/PID/fdinfo/FD` says of an open file: the id of the mount it is on, and its
/// open flags (octal in the file).
pub fn parse_fdinfo(text: &str) -> Result<(u64, u32), String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| format!("no {name} in fdinfo"))
    };
    let mnt_id = field("mnt_id")?
        .parse()
        .map_err(|_| "mnt_id is not a number".to_owned())?;
    let flags =
        u32::from_str_radix(field("flags")?, 8).map_err(|_| "flags are not octal".to_owned())?;
    Ok((mnt_id, flags))
}

/// `path` relative to `base` when `base` is `path` or one of its directories (whole
/// components: `/run` is not a directory of `/running`): `""` or `rest` without a leading `/`.
pub fn beneath<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(base.trim_end_matches('/'))?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// Joins a mount point and a relative path.
pub fn join(point: &str, rest: &str) -> String {
    match (point.trim_end_matches('/'), rest) {
        ("", "") => "/".to_owned(),
        (p, "") => p.to_owned(),
        (p, r) => format!("{p}/{r}"),
    }
}

/// The host path a container's mount shows: a host mount of the same device whose root holds
/// the container mount's root (the deepest such root). `None` when the host does not mount
/// that filesystem (a container's own tmpfs, proc, overlay root...).
pub fn host_path(mount: &Mount, host: &[Mount]) -> Option<String> {
    host.iter()
        .filter(|h| h.device == mount.device)
        .filter_map(|h| beneath(&mount.root, &h.root).map(|rest| (h, rest)))
        .max_by_key(|(h, _)| h.root.len())
        .map(|(h, rest)| join(&h.point, rest))
}

/// The mount that `path` is on: the deepest mount point holding it, the last mounted of
/// those (a later mount on the same point hides the earlier ones).
pub fn covering<'a>(table: &'a [Mount], path: &str) -> Option<&'a Mount> {
    table
        .iter()
        .enumerate()
        .filter(|(_, m)| beneath(path, &m.point).is_some())
        .max_by_key(|(i, m)| (m.point.len(), *i))
        .map(|(_, m)| m)
}

/// Host paths whose exposure hands over the host (written) or its secrets (read).
const SENSITIVE: [&str; 20] = [
    "/",
    "/etc",
    "/root",
    "/home",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/lib/containers",
    "/run",
    "/var/run",
    "/proc",
    "/sys",
    "/dev",
    "/var/log",
];

/// How bad exposing host path `path` is: beneath (or holding) a sensitive directory,
/// critical written and high read; elsewhere medium written and low read.
pub fn exposure(path: &str, writable: bool) -> Severity {
    let sensitive = SENSITIVE
        .iter()
        .any(|s| beneath(path, s).is_some() && (*s != "/" || path == "/"));
    match (sensitive, writable) {
        (true, true) => Severity::Critical,
        (true, false) => Severity::High,
        (false, true) => Severity::Medium,
        (false, false) => Severity::Low,
    }
}

/// Whose own mount a container mount is, when it is a runtime's and exposes nothing of the
/// host: recognised by where it comes from (its source, as a host path, in the runtime's
/// layout for this container), never by where it is mounted. `ids` are the container's own
/// ids as its runtime recorded them (container, pod sandbox); when none is known, any id of
/// the runtime's shape is accepted.
///
/// - the root filesystem and the container's cgroups;
/// - Docker: `.../containers/ID/{hosts,hostname,resolv.conf,mounts/shm}`, named volumes;
/// - Podman and CRI-O: `.../DRIVER-containers/ID/userdata/{shm,.containerenv,hosts,hostname,
///   resolv.conf,run/secrets...}`, named volumes;
/// - containerd's CRI: `.../io.containerd.grpc.v1.cri/sandboxes/SANDBOX-ID/{shm,hosts,
///   hostname,resolv.conf}`;
/// - the kubelet: `/var/lib/kubelet/pods/UID/{etc-hosts,containers/NAME/...}` and its
///   emptyDir, configMap, secret, projected and downwardAPI volumes.
pub fn runtime_managed(mount: &Mount, host_path: &str, ids: &[String]) -> Option<&'static str> {
    if mount.point == "/" {
        return Some("root filesystem");
    }
    if mount.fstype == "cgroup" || mount.fstype == "cgroup2" {
        return Some("cgroups");
    }
    let own_id = |id: &str| {
        if ids.is_empty() {
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
        } else {
            ids.iter().any(|own| own == id)
        }
    };
    // The component after `marker` is the id, the rest the runtime's file for it.
    let after = |marker: &str| -> Option<(&str, &str)> {
        let at = host_path.find(marker)?;
        let rest = &host_path[at + marker.len()..];
        Some(rest.split_once('/').unwrap_or((rest, "")))
    };
    if let Some((id, file)) = after("/containers/") {
        if own_id(id)
            && ["hosts", "hostname", "resolv.conf", "mounts/shm"].contains(&file)
            && host_path.contains("docker")
        {
            return Some("Docker");
        }
    }
    // containers/storage names the directory after its driver: overlay-containers,
    // vfs-containers (rootless without fuse-overlayfs), btrfs-containers...
    let storage = host_path
        .split('/')
        .position(|part| part.ends_with("-containers"))
        .map(|at| {
            let rest: Vec<&str> = host_path.split('/').skip(at + 1).collect();
            (
                rest.first().copied().unwrap_or(""),
                rest.get(1..).map(|r| r.join("/")).unwrap_or_default(),
            )
        });
    if let Some((id, file)) = storage {
        let file = file.strip_prefix("userdata/").unwrap_or("");
        if own_id(id)
            && (["shm", ".containerenv", "hosts", "hostname", "resolv.conf"].contains(&file)
                || beneath(file, "run/secrets").is_some())
        {
            return Some("Podman");
        }
    }
    if let Some((id, file)) = after("/io.containerd.grpc.v1.cri/sandboxes/") {
        // Named after the pod's sandbox (the record's second id).
        if own_id(id) && ["shm", "hosts", "hostname", "resolv.conf"].contains(&file) {
            return Some("containerd (CRI)");
        }
    }
    if let Some(rest) = host_path.strip_prefix("/var/lib/kubelet/pods/") {
        let (uid, file) = rest.split_once('/').unwrap_or((rest, ""));
        let uid_shape = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        let volume = [
            "empty-dir",
            "configmap",
            "secret",
            "projected",
            "downward-api",
        ]
        .iter()
        .any(|kind| {
            beneath(file, &format!("volumes/kubernetes.io~{kind}"))
                .is_some_and(|name| !name.is_empty())
        });
        let own_file = file == "etc-hosts"
            || beneath(file, "containers").is_some_and(|rest| rest.contains('/'));
        if uid_shape && (volume || own_file) {
            return Some("kubelet");
        }
    }
    [
        "/var/lib/docker/volumes/",
        "/var/lib/containers/storage/volumes/",
    ]
    .iter()
    .any(|v| host_path.starts_with(v))
    .then_some("named volume")
}

/// Whether a mount is a Kubernetes service-account token (a projected `kube-api-access-*`
/// volume, or a `*-token-*` secret, from the kubelet's pod directory).
pub fn service_account_token(host_path: &str) -> bool {
    let Some(rest) = host_path.strip_prefix("/var/lib/kubelet/pods/") else {
        return false;
    };
    let name = |kind: &str| {
        rest.split_once('/')
            .and_then(|(_, file)| beneath(file, &format!("volumes/kubernetes.io~{kind}")))
            .map(|n| n.split('/').next().unwrap_or(""))
    };
    name("projected").is_some_and(|n| n.starts_with("kube-api-access-"))
        || name("secret").is_some_and(|n| n.contains("-token-"))
}

/// Sockets of container runtimes, as host paths: whoever can connect to one owns the host.
pub const RUNTIME_SOCKETS: [(&str, &str); 10] = [
    ("docker", "/run/docker.sock"),
    ("docker", "/var/run/docker.sock"),
    ("containerd", "/run/containerd/containerd.sock"),
    ("containerd", "/run/docker/containerd/containerd.sock"),
    ("containerd", "/run/k3s/containerd/containerd.sock"),
    ("CRI-O", "/run/crio/crio.sock"),
    ("podman", "/run/podman/podman.sock"),
    ("kubelet", "/var/lib/kubelet/pod-resources/kubelet.sock"),
    ("kubelet", "/var/lib/kubelet/device-plugins/kubelet.sock"),
    ("dockershim", "/run/dockershim.sock"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's root filesystem and /var/lib/docker bound onto itself (this test host).
    const HOST: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw,discard
50 27 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw";

    /// `docker run -v /var/run:/hostrun -v /usr:/hostusr:ro` (recorded, shortened).
    const CONTAINER: &str = "\
72 48 0:39 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/Y
73 72 0:42 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
76 72 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
78 77 0:29 /docker/a34d /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
89 72 254:0 /run /hostrun rw,relatime - ext4 /dev/vda rw,discard
90 72 254:0 /usr /hostusr ro,relatime - ext4 /dev/vda rw,discard
93 72 254:0 /var/lib/docker/containers/a34d2678a8b2df68546c19d2a0952cc27673e5c8fbf797a959f6b01043ba2f0c/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
94 72 0:50 /x /data rw - tmpfs tmpfs rw
52 73 0:42 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let host = parse_mountinfo(HOST).unwrap();
        assert_eq!(host[3].point, "/mnt/with space");
        assert_eq!(
            (
                host[2].root.as_str(),
                host[2].point.as_str(),
                host[2].fstype.as_str()
            ),
            ("/var/lib/docker", "/var/lib/docker", "ext4")
        );
        assert!(
            parse_mountinfo("1 2 3\n").is_err(),
            "a malformed line makes the table unknown"
        );
        assert!(
            parse_mountinfo("72 48 0:39 / / rw - overlay\n").is_err(),
            "no super options"
        );
        let nsfs = parse_mountinfo(
            "92 27 0:4 net:[4026532184] /run/docker/netns/f0dc7e5f8411 rw - nsfs nsfs rw\n",
        )
        .unwrap();
        assert_eq!(
            nsfs[0].root, "net:[4026532184]",
            "a bound namespace file is a mount like any other"
        );
    }

    #[test]
    fn each_mount_is_traced_to_the_host_path_it_shows() {
        let host = parse_mountinfo(HOST).unwrap();
        let container = parse_mountinfo(CONTAINER).unwrap();
        let traced: Vec<(String, Option<String>)> = container
            .iter()
            .map(|m| (m.point.clone(), host_path(m, &host)))
            .collect();
        let of = |point: &str| {
            traced
                .iter()
                .find(|(p, _)| p == point)
                .and_then(|(_, h)| h.clone())
        };
        assert_eq!(of("/hostrun").as_deref(), Some("/run"));
        assert_eq!(of("/hostusr").as_deref(), Some("/usr"));
        assert_eq!(of("/data").as_deref(), Some("/mnt/with space/x"));
        assert_eq!(
            of("/etc/hosts").as_deref(),
            Some("/var/lib/docker/containers/a34d2678a8b2df68546c19d2a0952cc27673e5c8fbf797a959f6b01043ba2f0c/hosts")
        );
        assert_eq!(of("/"), None, "the overlay root is not mounted on the host");
        assert_eq!(of("/proc"), None, "the container's own procfs");
        let hostrun = container.iter().find(|m| m.point == "/hostrun").unwrap();
        assert!(
            hostrun.writable()
                && !container
                    .iter()
                    .find(|m| m.point == "/hostusr")
                    .unwrap()
                    .writable()
        );
    }

    #[test]
    fn what_a_host_path_exposes() {
        assert_eq!(exposure("/run", true), Severity::Critical);
        assert_eq!(exposure("/usr", false), Severity::High);
        assert_eq!(exposure("/etc/shadow", false), Severity::High);
        assert_eq!(exposure("/srv/data", true), Severity::Medium);
        assert_eq!(exposure("/srv/data", false), Severity::Low);
        assert_eq!(exposure("/", false), Severity::High);
        assert_eq!(
            exposure("/running", true),
            Severity::Medium,
            "a name that starts like /run is not /run"
        );
        let host = parse_mountinfo(HOST).unwrap();
        let container = parse_mountinfo(CONTAINER).unwrap();
        let hosts = container.iter().find(|m| m.point == "/etc/hosts").unwrap();
        assert_eq!(
            runtime_managed(hosts, &host_path(hosts, &host).unwrap(), &[]),
            Some("Docker")
        );
        let hostrun = container.iter().find(|m| m.point == "/hostrun").unwrap();
        assert!(runtime_managed(hostrun, "/run", &[]).is_none());
        let mut disguised = hostrun.clone();
        disguised.point = "/etc/hosts".to_owned();
        assert!(
            runtime_managed(&disguised, "/run", &[]).is_none(),
            "/etc/hosts that is the host's /run is not the runtime's file"
        );
    }

    #[test]
    fn runtime_mounts_are_known_by_their_source_never_by_their_point() {
        let m = |point: &str| Mount {
            id: 1,
            device: "254:0".into(),
            root: "/".into(),
            point: point.into(),
            options: "rw".into(),
            fstype: "ext4".into(),
            super_options: "rw".into(),
        };
        let podman = "53933cf9d31dda5db85cbc8e9b5a9008259506a08f8bd12a3ae46ec8834d8435";
        let ids = [podman.to_owned()];
        for (point, source) in [
            (
                "/dev/shm",
                format!("/var/lib/containers/storage/overlay-containers/{podman}/userdata/shm"),
            ),
            (
                "/run/.containerenv",
                format!(
                    "/run/containers/storage/overlay-containers/{podman}/userdata/.containerenv"
                ),
            ),
            (
                "/etc/hosts",
                format!("/run/containers/storage/overlay-containers/{podman}/userdata/hosts"),
            ),
            (
                "/run/secrets",
                format!("/run/containers/storage/overlay-containers/{podman}/userdata/run/secrets"),
            ),
            (
                "/etc/hosts",
                format!("/run/user/1001/containers/vfs-containers/{podman}/userdata/hosts"),
            ),
        ] {
            assert_eq!(
                runtime_managed(&m(point), &source, &ids),
                Some("Podman"),
                "{source}"
            );
        }
        let other = format!(
            "/var/lib/containers/storage/overlay-containers/{}/userdata/shm",
            "f".repeat(64)
        );
        assert_eq!(
            runtime_managed(&m("/dev/shm"), &other, &ids),
            None,
            "another container's shm"
        );
        let sandbox = format!(
            "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{}/shm",
            "a".repeat(64)
        );
        assert_eq!(
            runtime_managed(&m("/dev/shm"), &sandbox, &[]),
            Some("containerd (CRI)")
        );
        let pod_ids = ["c".repeat(64), "a".repeat(64)];
        assert_eq!(
            runtime_managed(&m("/dev/shm"), &sandbox, &pod_ids),
            Some("containerd (CRI)")
        );
        assert_eq!(
            runtime_managed(&m("/dev/shm"), &sandbox, &ids),
            None,
            "another pod's sandbox"
        );
        let pod = "/var/lib/kubelet/pods/0b6c2d4e-1f3a-4b5c-8d7e-9f0a1b2c3d4e";
        for file in [
            "etc-hosts",
            "containers/app/6e3f1a2b",
            "volumes/kubernetes.io~empty-dir/cache",
            "volumes/kubernetes.io~configmap/config",
            "volumes/kubernetes.io~secret/creds",
            "volumes/kubernetes.io~projected/kube-api-access-x7k2p",
        ] {
            assert_eq!(
                runtime_managed(&m("/x"), &format!("{pod}/{file}"), &[]),
                Some("kubelet"),
                "{file}"
            );
        }
        assert!(service_account_token(&format!(
            "{pod}/volumes/kubernetes.io~projected/kube-api-access-x7k2p"
        )));
        assert!(!service_account_token(&format!(
            "{pod}/volumes/kubernetes.io~configmap/config"
        )));
        // Host paths stay host paths, whatever the mount point.
        for (point, source) in [
            ("/dev/shm", "/dev/shm"),
            ("/etc/hosts", "/etc"),
            ("/run/.containerenv", "/etc/shadow"),
            ("/x", "/var/lib/kubelet/pods"),
            (
                "/x",
                "/var/lib/kubelet/pods/0b6c2d4e-1f3a-4b5c-8d7e-9f0a1b2c3d4e/volumes",
            ),
            ("/x", "/srv/data/containers/abc/hosts"),
        ] {
            assert_eq!(
                runtime_managed(&m(point), source, &[]),
                None,
                "{source} at {point}"
            );
        }
    }

    #[test]
    fn the_mount_covering_a_path_decides_for_it() {
        let recorded = parse_mountinfo(CONTAINER).unwrap();
        assert_eq!(
            covering(&recorded, "/proc/sys").map(|m| (m.root.as_str(), m.writable())),
            Some(("/sys", false))
        );
        assert_eq!(
            covering(&recorded, "/sys").map(|m| m.fstype.as_str()),
            Some("sysfs")
        );
        // `--security-opt systempaths=unconfined`: no /proc/sys mount, /proc (rw) covers it.
        let unmasked: Vec<Mount> = recorded
            .iter()
            .filter(|m| m.point != "/proc/sys")
            .cloned()
            .collect();
        assert_eq!(
            covering(&unmasked, "/proc/sys").map(|m| (m.point.as_str(), m.writable())),
            Some(("/proc", true))
        );
        // A later mount on the same point hides the earlier one.
        let mut again = recorded.clone();
        let mut rw = again.iter().find(|m| m.point == "/sys").unwrap().clone();
        rw.options = "rw".to_owned();
        rw.super_options = "rw".to_owned();
        again.push(rw);
        assert!(covering(&again, "/sys/kernel").unwrap().writable());
    }

    #[test]
    fn fdinfo_gives_the_mount_and_the_flags() {
        let recorded = "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t2\n";
        assert_eq!(parse_fdinfo(recorded), Ok((27, 0o2100002)));
        assert_eq!(parse_fdinfo(recorded).unwrap().1 & 0o3, 2, "O_RDWR");
        assert!(
            parse_fdinfo("pos:\t0\nflags:\t0100000\n").is_err(),
            "no mnt_id is unknown, not mount 0"
        );
        assert_eq!(parse_mountinfo(HOST).unwrap()[1].id, 27);
    }

    #[test]
    fn beneath_compares_whole_components() {
        assert_eq!(beneath("/run/docker.sock", "/run"), Some("docker.sock"));
        assert_eq!(beneath("/run", "/run"), Some(""));
        assert_eq!(beneath("/running", "/run"), None);
        assert_eq!(beneath("/etc", "/"), Some("etc"));
        assert_eq!(join("/hostrun", "docker.sock"), "/hostrun/docker.sock");
        assert_eq!(join("/", "run"), "/run");
    }
}
