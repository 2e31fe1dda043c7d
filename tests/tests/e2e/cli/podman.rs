//! Podman containers by name, through Podman's Docker-compatible API socket
//! (`podman system service`, scripts/podman-service).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nsdebug_tests::{nsdebug, require_podman, PodmanContainer, RootlessPodman, PODMAN_SOCKET};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn podman_nsdebug() -> Command {
    let mut command = nsdebug();
    command.env("CONTAINER_HOST", format!("unix://{PODMAN_SOCKET}"));
    command
}

fn run(args: &[&str]) -> Output {
    podman_nsdebug().args(args).output().unwrap()
}

#[test]
fn enter_a_podman_container_by_name() {
    require_podman!();
    let c = PodmanContainer::start(&[]);
    let out = run(&["enter", &c.name, "--net", "--", "ip", "-o", "-4", "addr"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("inet {}/", c.ip())),
        "{out:?}"
    );
    let out = run(&[
        "enter",
        &c.name,
        "--",
        "sh",
        "-c",
        "cat /etc/nsdebug-image; tr '\\0' ' ' </proc/1/cmdline",
    ]);
    assert_eq!(
        text(&out.stdout),
        "nsdebug test image\n/bin/httpd -f -p 80 -h /www ",
        "{out:?}"
    );
    // The process entered is the one Podman reports.
    let out = run(&[
        "enter",
        &c.name,
        "--runtime",
        "podman",
        "--net",
        "--",
        "readlink",
        "/proc/self/ns/net",
    ]);
    let theirs = std::fs::read_link(format!("/proc/{}/ns/net", c.pid)).unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        theirs.to_string_lossy(),
        "{out:?}"
    );
}

#[test]
fn veth_of_a_podman_container_finds_its_host_peer() {
    require_podman!();
    let c = PodmanContainer::start(&[]);
    let inside = Command::new("/usr/bin/nsenter")
        .args([
            "-t",
            &c.pid.to_string(),
            "-n",
            "ip",
            "-o",
            "link",
            "show",
            "eth0",
        ])
        .output()
        .unwrap();
    let inside = text(&inside.stdout);
    let index = inside
        .split("@if")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{inside}"));
    let host = text(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    );
    let peer = host
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{index}: ")))
        .and_then(|rest| rest.split(['@', ':']).next())
        .unwrap_or_else(|| panic!("{host}"))
        .to_owned();
    let out = run(&["veth", &c.name, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let listing = text(&out.stdout);
    assert!(
        listing.contains(&format!("\"name\": \"{peer}\"")) && listing.contains(&c.ip()),
        "{listing}"
    );
}

#[test]
fn flow_captures_a_podman_containers_http() {
    require_podman!();
    let c = PodmanContainer::start(&[]);
    let capture = podman_nsdebug()
        .args(["flow", &c.name, "-c", "--duration", "4", "port", "80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let got = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://{}/index.html", c.ip())])
        .output()
        .unwrap();
    assert!(text(&got.stdout).contains("nsdebug test page"), "{got:?}");
    let out = capture.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let console = text(&out.stdout);
    let get = console
        .find("GET /index.html")
        .unwrap_or_else(|| panic!("{out:?}"));
    let reply = console
        .find("nsdebug test page")
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(get < reply, "{console}");
}

#[test]
fn audit_a_podman_container_by_name() {
    require_podman!();
    let c = PodmanContainer::start(&[]);
    let privileged = PodmanContainer::start(&["--privileged"]);
    let audit = |name: &str| -> serde_json::Value {
        let out = run(&["audit", name, "--json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
        let entry = doc["containers"][0].clone();
        assert!(
            entry["target"]["description"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("podman container {name} ("))),
            "{doc:#}"
        );
        assert!(entry["error"].is_null(), "{entry:#}");
        entry
    };
    let ids = |entry: &serde_json::Value| -> Vec<String> {
        entry["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // What a user checks: the privileged one is reported for capabilities the plain one lacks.
    let plain = ids(&audit(&c.name));
    let wide = ids(&audit(&privileged.name));
    assert!(
        wide.len() > plain.len(),
        "plain {plain:?}, privileged {wide:?}"
    );
}

#[test]
fn a_rootless_podman_container_is_entered_and_audited_by_name() {
    require_podman!();
    let c = match RootlessPodman::start() {
        Ok(c) => c,
        Err(why) if nsdebug_tests::in_ci() => {
            panic!("rootless podman: {why}; CI=true, so this is a failure")
        }
        Err(why) => return eprintln!("SKIP rootless podman: {why}"),
    };
    let run = |args: &[&str]| {
        nsdebug()
            .env("CONTAINER_HOST", format!("unix://{}", c.socket))
            .args(args)
            .output()
            .unwrap()
    };
    // Every namespace, the user namespace included: root inside is the container's root.
    let out = run(&[
        "enter",
        &c.name,
        "--",
        "sh",
        "-c",
        "cat /etc/nsdebug-image; id -u; cat /proc/self/uid_map",
    ]);
    assert!(out.status.success(), "{out:?}");
    let said = text(&out.stdout);
    let mut lines = said.lines();
    assert_eq!(
        (lines.next(), lines.next()),
        (Some("nsdebug test image"), Some("0")),
        "{said}"
    );
    let host_uid = lines
        .next()
        .and_then(|map| map.split_whitespace().nth(1))
        .unwrap_or_default();
    let user_uid = String::from_utf8_lossy(
        &Command::new("id")
            .args(["-u", nsdebug_tests::ROOTLESS_USER])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    assert_eq!(
        host_uid, user_uid,
        "container root is the rootless user on the host: {said}"
    );
    let out = run(&["audit", &c.name, "--json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let entry = &doc["containers"][0];
    assert!(
        entry["target"]["description"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("podman container {} (", c.name))),
        "{doc:#}"
    );
    assert!(entry["error"].is_null(), "{entry:#}");
}

/// Podman as Docker: `--device /dev/kmsg` is a high `devices` finding that its record grants
/// (Podman records the permissions empty), and `--ipc=host` one high `namespace.ipc`, not a
/// host-path finding for the host's `/dev/shm`.
#[test]
fn a_podman_device_and_ipc_host_are_found_as_with_docker() {
    require_podman!();
    let c = PodmanContainer::start(&["--device", "/dev/kmsg", "--ipc=host"]);
    let out = run(&["audit", &c.name, "--json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let found: Vec<(String, String, String)> = doc["containers"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"))
        .iter()
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (field("id"), field("severity"), field("evidence"))
        })
        .collect();
    if std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        assert!(
            found.iter().any(|(id, s, e)| id == "devices"
                && s == "high"
                && e.contains("c 1:11 rwm")
                && !e.contains("not in podman's record")),
            "{found:?}"
        );
    }
    assert!(
        found
            .iter()
            .any(|(id, s, e)| id == "namespace.ipc" && s == "high" && e.contains("/dev/shm")),
        "{found:?}"
    );
    assert!(
        !found.iter().any(|(id, _, _)| id == "mount.host-path"),
        "{found:?}"
    );
}
