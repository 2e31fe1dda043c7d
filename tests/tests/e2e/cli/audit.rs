//! `nsdebug audit` on real containers: each finding appears exactly where Docker was asked
//! for the weakening, never in the default container, with the kernel's values; and on
//! containers built to mislead it (a privilege-dropping init, a directory holding a runtime
//! socket, a restart loop), it still finds what they hide.

use std::path::Path;
use std::process::Output;

use nsdebug_tests::{
    docker, first_child, ns_inode, require_root_and_docker, run_nsdebug, unique_name, Container,
};
use serde_json::Value;

/// `nsdebug audit ARGS --json`, parsed.
fn audit_json(args: &[&str]) -> (Value, Output) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = run_nsdebug(&all);
    let doc =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    (doc, out)
}

/// The entry of container `name` in an audit document.
fn container<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let needle = format!(" {name} (");
    doc["containers"]
        .as_array()
        .expect("containers array")
        .iter()
        .find(|c| {
            c["target"]["description"]
                .as_str()
                .is_some_and(|t| t.contains(&needle))
        })
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

/// (finding id, severity, evidence) of one container, from `nsdebug audit NAME --json`.
fn findings(name: &str) -> Vec<(String, String, String)> {
    let (doc, out) = audit_json(&[name]);
    assert!(out.status.success(), "{out:?}");
    let entry = container(&doc, name);
    assert!(entry["error"].is_null(), "{entry:#}");
    entry["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let field = |key: &str| {
                f[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("finding without {key}: {f}"))
                    .to_owned()
            };
            (field("id"), field("severity"), field("evidence"))
        })
        .collect()
}

fn has(found: &[(String, String, String)], id: &str, severity: &str) -> bool {
    found.iter().any(|(i, s, _)| i == id && s == severity)
}

fn inspect(name: &str, format: &str) -> String {
    String::from_utf8_lossy(&docker(&["inspect", "-f", format, name]).stdout)
        .trim()
        .to_owned()
}

/// A field of `/proc/PID/status`, read by the test as its oracle.
fn status_field(pid: i32, name: &str) -> String {
    let status =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/status")).unwrap_or_default())
            .into_owned();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[test]
fn each_weakening_shows_where_it_was_asked_for_and_not_in_the_default() {
    require_root_and_docker!();
    let default = Container::start(&[]);
    let base = findings(&default.name);
    for (args, id, severity) in [
        (&["--net=host"][..], "namespace.net", "high"),
        (&["--pid=host"][..], "namespace.pid", "high"),
        (&["--cap-add", "SYS_ADMIN"][..], "caps.extra", "critical"),
        (
            &["--security-opt", "seccomp=unconfined"][..],
            "seccomp",
            "high",
        ),
        (
            &["-v", "/var/run/docker.sock:/var/run/docker.sock"][..],
            "mount.runtime-socket",
            "critical",
        ),
        (
            &["--device-cgroup-rule", "a *:* rwm"][..],
            "devices",
            "critical",
        ),
        (&["-v", "/etc:/hostetc"][..], "mount.host-path", "critical"),
        (&["--ipc=host"][..], "namespace.ipc", "high"),
        (&["-v", "/sys:/sys"][..], "mount.sys-rw", "high"),
        (
            &["--security-opt", "systempaths=unconfined"][..],
            "mount.proc-sys-rw",
            "high",
        ),
    ] {
        assert!(
            !base.iter().any(|(i, _, _)| i == id),
            "{id} in the default container: {base:?}"
        );
        let weakened = Container::start(args);
        let found = findings(&weakened.name);
        assert!(
            has(&found, id, severity),
            "{args:?}: no {severity} {id} in {found:?}"
        );
    }
    // --uts=host conflicts with the --hostname Container::start sets: started here.
    let name = unique_name("uts");
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--uts=host",
        nsdebug_tests::IMAGE,
    ]);
    let uts = Container {
        pid: inspect(&name, "{{.State.Pid}}").parse().unwrap_or(0),
        name,
        hostname: String::new(),
    };
    assert!(run.status.success(), "{run:?}");
    let found = findings(&uts.name);
    assert!(
        has(&found, "namespace.uts", "low") && !base.iter().any(|(i, _, _)| i == "namespace.uts"),
        "{found:?}"
    );
    // Present in the default container too: Docker's defaults are what they are.
    assert!(
        has(&base, "cgroup.pids", "medium") && has(&base, "cgroup.memory", "medium"),
        "{base:?}"
    );
    assert!(
        has(&base, "root", "high") && has(&base, "no-new-privs", "low"),
        "{base:?}"
    );
    // Without userns-remap, its user namespace is the host's (the kernel as the oracle).
    let shared_user =
        ns_inode(&format!("/proc/{}/ns/user", default.pid)) == ns_inode("/proc/self/ns/user");
    assert_eq!(
        has(&base, "namespace.user", "medium"),
        shared_user,
        "{base:?}"
    );
}

#[test]
fn limits_user_and_no_new_privileges_remove_their_findings_with_dockers_values() {
    require_root_and_docker!();
    let limited = Container::start(&[
        "--pids-limit",
        "100",
        "--memory",
        "64m",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "1000",
    ]);
    let found = findings(&limited.name);
    let pids = found.iter().find(|(i, _, _)| i == "cgroup.pids").unwrap();
    assert_eq!(pids.1, "info");
    assert!(
        pids.2.ends_with(&format!(
            "= {}",
            inspect(&limited.name, "{{.HostConfig.PidsLimit}}")
        )),
        "{pids:?}"
    );
    let memory = found.iter().find(|(i, _, _)| i == "cgroup.memory").unwrap();
    assert_eq!(memory.1, "info");
    assert!(
        memory.2.ends_with(&format!(
            "= {}",
            inspect(&limited.name, "{{.HostConfig.Memory}}")
        )),
        "{memory:?}"
    );
    // The title says it in the units `nsdebug mem` uses; the evidence keeps the bytes.
    let table =
        String::from_utf8_lossy(&run_nsdebug(&["audit", &limited.name]).stdout).into_owned();
    assert!(table.contains("memory limited to 64.0 MiB"), "{table}");
    assert!(
        !found
            .iter()
            .any(|(i, _, _)| i == "no-new-privs" || i == "root"),
        "{found:?}"
    );
    // The capability list read from the kernel is Docker's default set, nothing more.
    assert!(
        !found
            .iter()
            .any(|(i, _, _)| i == "caps.extra" || i == "caps.bounding"),
        "{found:?}"
    );
}

#[test]
fn fail_on_gates_the_exit_status() {
    require_root_and_docker!();
    let c = Container::start(&["--net=host"]);
    assert_eq!(
        run_nsdebug(&["audit", &c.name, "--fail-on", "high"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        run_nsdebug(&["audit", &c.name, "--fail-on", "critical"])
            .status
            .code(),
        Some(0)
    );
    let table = String::from_utf8_lossy(&run_nsdebug(&["audit", &c.name]).stdout).into_owned();
    assert!(
        table.contains("namespace.net") && table.contains("--net=host"),
        "{table}"
    );
    let all = run_nsdebug(&["audit", "--json"]);
    assert!(
        String::from_utf8_lossy(&all.stdout).contains(&c.name),
        "every container when none is named"
    );
}

/// pid 1 forks a helper that keeps what Docker gave (SYS_ADMIN, SYS_PTRACE, no seccomp, uid 0,
/// no NoNewPrivs) and names itself with bytes that are not UTF-8 (its status is then no valid
/// UTF-8 text), then empties its own bounding set, sets NoNewPrivs and a seccomp filter and
/// becomes uid 1000: an audit of pid 1 alone sees a harmless container.
const MISLEADER: &str = r#"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
    if (fork() == 0) {
        prctl(PR_SET_NAME, "\xff\xfehelper", 0, 0, 0);
        for (;;) pause();
    }
    for (int cap = 0; cap < 64; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 1;
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog program = { 1, allow };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0)) return 2;
    if (setgid(1000) || setuid(1000)) return 3;
    for (;;) pause();
}
"#;

/// A fresh directory under the temporary directory, removed (with its files) when dropped:
/// declared before the container that mounts from it, it outlives the container.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(suffix: &str) -> Scratch {
        Scratch::at(std::env::temp_dir().join(unique_name(suffix)))
    }

    fn at(dir: std::path::PathBuf) -> Scratch {
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles C `source` statically into a fresh directory; returns (directory, binary).
fn build_misleader(source: &str) -> (Scratch, String) {
    let dir = Scratch::new("misleader");
    std::fs::write(dir.join("misleader.c"), source).expect("write source");
    let binary = dir.join("misleader");
    let cc = std::process::Command::new("gcc")
        .args(["-static", "-pthread", "-O2", "-o"])
        .arg(&binary)
        .arg(dir.join("misleader.c"))
        .output()
        .expect("gcc");
    assert!(
        cc.status.success(),
        "gcc -static: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    (dir, binary.display().to_string())
}

#[test]
fn a_helper_keeping_powers_behind_a_privilege_dropping_init_is_the_one_reported() {
    require_root_and_docker!();
    let (dir, binary) = build_misleader(MISLEADER);
    let mount = format!("{binary}:/misleader:ro");
    let c = Container::start_with(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &mount,
            "--entrypoint",
            "/misleader",
        ],
        &[],
    );
    // Wait until the init has dropped everything: that is the state that misleads.
    let mut dropped = false;
    for _ in 0..100 {
        dropped =
            status_field(c.pid, "Seccomp") == "2" && status_field(c.pid, "Uid").starts_with("1000");
        if dropped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(dropped, "the init did not drop its powers");
    let helper = first_child(c.pid as u32);
    // The kernel's view, as the oracle: the init holds nothing, the helper what Docker gave.
    assert_eq!(status_field(c.pid, "CapBnd"), "0000000000000000");
    assert_eq!(
        status_field(helper, "Seccomp"),
        "0",
        "status read lossily by the oracle too"
    );
    assert!(
        std::fs::read(format!("/proc/{helper}/status"))
            .is_ok_and(|s| String::from_utf8(s).is_err()),
        "the helper's status is not UTF-8"
    );
    let cap_eff = status_field(helper, "CapEff");

    let (doc, out) = audit_json(&[&c.name, "--fail-on", "high"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let entry = container(&doc, &c.name);
    let processes: Vec<i64> = entry["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(
        processes.contains(&i64::from(c.pid)) && processes.contains(&i64::from(helper)),
        "{entry:#}"
    );
    let most = &entry["most_powerful"];
    assert_eq!(most["pid"].as_i64(), Some(i64::from(helper)), "{entry:#}");
    let powers: Vec<&str> = most["powers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for power in [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "seccomp off",
        "uid 0",
        "no NoNewPrivs",
    ] {
        assert!(powers.contains(&power), "{power} not in {powers:?}");
    }
    let finding = |id: &str| {
        entry["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {entry:#}"))
            .clone()
    };
    let caps = finding("caps.extra");
    assert_eq!(caps["severity"], "critical");
    assert_eq!(caps["pid"].as_i64(), Some(i64::from(helper)));
    let evidence = caps["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("SYS_ADMIN")
            && evidence.contains("SYS_PTRACE")
            && evidence.contains(&cap_eff),
        "{evidence}"
    );
    for id in ["seccomp", "root", "no-new-privs"] {
        let f = finding(id);
        assert_eq!(
            f["pid"].as_i64(),
            Some(i64::from(helper)),
            "{id} is about the helper: {f}"
        );
        let pids: Vec<i64> = f["pids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        assert!(
            !pids.contains(&i64::from(c.pid)),
            "{id}: the init dropped it: {f}"
        );
    }
    // A process started by `docker exec` gets what the helper has, not what the init has.
    let exec = docker(&["exec", &c.name, "cat", "/proc/self/status"]);
    let exec_status = String::from_utf8_lossy(&exec.stdout);
    assert!(
        exec_status
            .lines()
            .any(|l| l.starts_with("CapEff:") && l.ends_with(&cap_eff)),
        "{exec_status}"
    );
    drop(c);
    drop(dir);
}

#[test]
fn a_runtime_socket_beneath_a_directory_mount_and_host_directories_are_found() {
    require_root_and_docker!();
    // The oracle: Docker's socket really is in the host's /var/run.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/var/run/docker.sock")
        .expect("docker.sock")
        .file_type()
        .is_socket());
    let c = Container::start(&["-v", "/var/run:/hostrun", "-v", "/usr:/hostusr:ro"]);
    let found = findings(&c.name);
    let socket = found
        .iter()
        .find(|(id, _, e)| id == "mount.runtime-socket" && e.contains("/hostrun/docker.sock"));
    let socket = socket.unwrap_or_else(|| panic!("no runtime socket beneath /hostrun: {found:?}"));
    assert_eq!(socket.1, "critical");
    // Judged by what the mount shows (the host's /run, which /var/run links to), writable or not.
    let real_run = std::fs::canonicalize("/var/run")
        .unwrap()
        .display()
        .to_string();
    assert!(
        found.iter().any(|(id, s, e)| id == "mount.host-path"
            && s == "critical"
            && e.contains(" on /hostrun (rw")),
        "{found:?}"
    );
    let table = String::from_utf8_lossy(&run_nsdebug(&["audit", &c.name]).stdout).into_owned();
    assert!(
        table.contains(&format!(
            "the host's {real_run} is mounted writable at /hostrun"
        )),
        "{table}"
    );
    assert!(
        found.iter().any(|(id, s, e)| id == "mount.host-path"
            && s == "high"
            && e.contains(" on /hostusr (ro")),
        "{found:?}"
    );
    // A rootless Docker's socket, one directory deeper in a per-user directory.
    let uid = 40000 + std::process::id() % 20000;
    let user_dir = std::path::PathBuf::from(format!("/run/user/{uid}"));
    assert!(!user_dir.exists(), "{} is someone's", user_dir.display());
    let user_dir = Scratch::at(user_dir);
    let listener = std::os::unix::net::UnixListener::bind(user_dir.join("docker.sock"))
        .expect("bind a socket");
    let rootless = Container::start(&["-v", "/run/user:/users:ro"]);
    let found = findings(&rootless.name);
    let inside = format!("/users/{uid}/docker.sock");
    // The oracle: through the container's read-only mount, the socket still takes a connection.
    let connected =
        std::os::unix::net::UnixStream::connect(format!("/proc/{}/root{inside}", rootless.pid));
    drop(listener);
    drop(user_dir);
    assert!(connected.is_ok(), "{connected:?}");
    assert!(
        found.iter().any(|(id, s, e)| id == "mount.runtime-socket"
            && s == "critical"
            && e.contains(&inside)
            && e.contains(", ro)")),
        "{found:?}"
    );
    let default = Container::start(&[]);
    let base = findings(&default.name);
    assert!(
        !base
            .iter()
            .any(|(id, _, _)| id.starts_with("mount.") && id != "mount.root-rw"),
        "the default container's own mounts are not exposures: {base:?}"
    );
    // Its root filesystem is writable (no --read-only): docker-bench 5.13, low.
    assert!(has(&base, "mount.root-rw", "low"), "{base:?}");
    let read_only = Container::start(&["--read-only"]);
    let found = findings(&read_only.name);
    assert!(
        !found.iter().any(|(id, _, _)| id == "mount.root-rw"),
        "{found:?}"
    );
}

#[test]
fn a_restart_loop_is_reported_as_not_audited_never_left_out() {
    require_root_and_docker!();
    let healthy = Container::start(&[]);
    let looping = Container::start_with(&["--restart", "always", "--entrypoint", "false"], &[]);
    let mut not_audited = 0;
    for _ in 0..6 {
        // Catch it between two starts (Docker's back-off doubles from 100 ms).
        let mut restarting = false;
        for _ in 0..200 {
            restarting = inspect(&looping.name, "{{.State.Restarting}}") == "true";
            if restarting {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(restarting, "{} never restarting", looping.name);
        for named in [true, false] {
            let mut args = vec!["audit", "--fail-on", "critical"];
            if named {
                args.extend([healthy.name.as_str(), looping.name.as_str()]);
            }
            let out = run_nsdebug(&args);
            let text = String::from_utf8_lossy(&out.stdout);
            let missing = text
                .lines()
                .find(|l| l.starts_with("could not audit ") && l.contains(&looping.name));
            let audited = text
                .lines()
                .any(|l| l.starts_with(&format!("docker container {} (", looping.name)));
            assert!(
                missing.is_some() || audited,
                "{} left out of: {text}",
                looping.name
            );
            // Partial results: the healthy container is audited either way.
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("docker container {} (", healthy.name))),
                "{text}"
            );
            if missing.is_some() {
                not_audited += 1;
                assert_eq!(
                    out.status.code(),
                    Some(3),
                    "not audited fails --fail-on: {text}"
                );
                let verdict = text.lines().last().unwrap_or("");
                assert!(
                    verdict.contains("not audited")
                        && verdict.contains("exit 3 because of --fail-on critical"),
                    "{verdict}"
                );
            }
        }
    }
    assert!(
        not_audited > 0,
        "the restarting container was never caught between starts"
    );
    // Without --fail-on, a target that could not be audited is still a failure of nsdebug.
    let out = run_nsdebug(&["audit", &healthy.name, &unique_name("gone")]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("docker container {} (", healthy.name)),
        "{out:?}"
    );
}

#[test]
fn a_cpu_quota_is_reported_with_its_value() {
    require_root_and_docker!();
    let limited = Container::start(&["--cpus", "0.5"]);
    let unlimited = Container::start(&[]);
    let nano: f64 = inspect(&limited.name, "{{.HostConfig.NanoCpus}}")
        .parse()
        .expect("NanoCpus");
    let found = findings(&limited.name);
    let cpu = found
        .iter()
        .find(|(id, _, _)| id == "cgroup.cpu")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(cpu.1, "info", "{cpu:?}");
    let (doc, _) = audit_json(&[&limited.name]);
    let title = container(&doc, &limited.name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cgroup.cpu")
        .unwrap()["title"]
        .clone();
    assert_eq!(title, format!("CPU limited to {} CPUs", nano / 1e9));
    let base = findings(&unlimited.name);
    assert!(
        base.iter()
            .any(|(id, s, _)| id == "cgroup.cpu" && s == "low"),
        "{base:?}"
    );
}

#[test]
fn host_facts_once_ignore_list_verdict_and_json_schema() {
    require_root_and_docker!();
    let a = Container::start(&[]);
    let b = Container::start(&[]);
    let (doc, out) = audit_json(&[&a.name, &b.name]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(doc["schema"], 2);
    // No LSM labels processes here exactly when the kernel refuses /proc/self/attr/current.
    let no_lsm = std::fs::read("/proc/self/attr/current")
        .is_err_and(|e| e.raw_os_error() == Some(libc::EINVAL));
    let host_ids: Vec<&str> = doc["host"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(host_ids.contains(&"lsm"), no_lsm, "{doc:#}");
    for name in [&a.name, &b.name] {
        let entry = container(&doc, name);
        for f in entry["findings"].as_array().unwrap() {
            assert_ne!(f["id"], "lsm", "host facts are not repeated per container");
            for key in ["id", "severity", "title", "evidence", "pid", "pids"] {
                assert!(f.get(key).is_some(), "finding without {key}: {f}");
            }
        }
        assert_eq!(
            entry["unknowns"].as_array().map(Vec::len),
            Some(0),
            "{entry:#}"
        );
    }
    let verdict = &doc["verdict"];
    assert_eq!(
        (
            verdict["containers"].as_u64(),
            verdict["not_audited"].as_u64()
        ),
        (Some(2), Some(0))
    );

    // The default container's worst finding is "root" (high): --fail-on high fails, and
    // passes once it is ignored, from the command line or from a file.
    let out = run_nsdebug(&["audit", &a.name, "--fail-on", "high"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}");
    let last = text.lines().last().unwrap_or("");
    assert!(
        last.starts_with("1 container, 0 critical, 1 high,")
            && last.ends_with("exit 3 because of --fail-on high (a high finding)"),
        "{last}"
    );
    let out = run_nsdebug(&[
        "audit",
        &a.name,
        "--fail-on",
        "high",
        "--ignore",
        "root,no-new-privs",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines().last().unwrap_or("").contains(" 0 high,") && text.contains("2 ignored"),
        "{text}"
    );
    let file = std::env::temp_dir().join(unique_name("ignore"));
    std::fs::write(
        &file,
        "# accepted: Docker's default user\nroot\nno-new-privs, cgroup.pids # and two more\n",
    )
    .unwrap();
    let (doc, out) = audit_json(&[
        &a.name,
        "--fail-on",
        "high",
        "--ignore-file",
        file.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    let entry = container(&doc, &a.name);
    for id in ["root", "no-new-privs", "cgroup.pids"] {
        assert!(
            entry["ignored"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == id),
            "{id}: {entry:#}"
        );
        assert!(
            !entry["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["id"] == id),
            "{id}: {entry:#}"
        );
    }
    assert_eq!(doc["verdict"]["ignored"].as_u64(), Some(3), "{doc:#}");
}

#[test]
fn what_a_process_could_regain_the_bounding_set_and_setuid_programs() {
    require_root_and_docker!();
    // uid 1000 holds no capability, but SYS_ADMIN stays in its bounding set and nothing
    // stops a setuid-root program from giving it back.
    let open = Container::start(&["--cap-add", "SYS_ADMIN", "--user", "1000"]);
    assert_eq!(status_field(open.pid, "CapEff"), "0000000000000000");
    let bounding = u64::from_str_radix(&status_field(open.pid, "CapBnd"), 16).expect("CapBnd");
    assert_ne!(
        bounding & 1 << 21,
        0,
        "the oracle: CAP_SYS_ADMIN (21) in the bounding set"
    );
    let found = findings(&open.name);
    assert!(
        !found.iter().any(|(id, _, _)| id == "caps.extra"),
        "held by nobody: {found:?}"
    );
    assert!(
        found.iter().any(|(id, s, e)| id == "caps.bounding"
            && s == "critical"
            && e.contains("SYS_ADMIN")
            && e.contains("NoNewPrivs 0")),
        "{found:?}"
    );
    // With NoNewPrivs the kernel refuses to give it back on exec.
    let closed = Container::start(&[
        "--cap-add",
        "SYS_ADMIN",
        "--user",
        "1000",
        "--security-opt",
        "no-new-privileges",
    ]);
    let found = findings(&closed.name);
    assert!(
        found
            .iter()
            .any(|(id, s, _)| id == "caps.bounding" && s == "low"),
        "{found:?}"
    );

    // No NoNewPrivs is low while no setuid program is there, medium once one is.
    let c = Container::start(&[]);
    let before = findings(&c.name);
    assert!(
        before
            .iter()
            .any(|(id, s, _)| id == "no-new-privs" && s == "low"),
        "{before:?}"
    );
    let chmod = docker(&[
        "exec",
        &c.name,
        "sh",
        "-c",
        "cp /bin/busybox /bin/sux && chmod u+s /bin/sux",
    ]);
    assert!(chmod.status.success(), "{chmod:?}");
    let after = findings(&c.name);
    assert!(
        after
            .iter()
            .any(|(id, s, e)| id == "no-new-privs" && s == "medium" && e.contains("/bin/sux")),
        "{after:?}"
    );

    // A program with file capabilities (no setuid bit) counts too.
    let f = Container::start(&[]);
    let copy = docker(&["exec", &f.name, "cp", "/bin/busybox", "/bin/capx"]);
    assert!(copy.status.success(), "{copy:?}");
    // vfs_cap_data revision 2, effective, permitted CAP_NET_RAW (13): what `setcap cap_net_raw+ep` writes.
    let mut blob = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        blob.extend_from_slice(&word.to_le_bytes());
    }
    let path = std::ffi::CString::new(format!("/proc/{}/root/bin/capx", f.pid)).unwrap();
    // SAFETY: NUL-terminated strings and a buffer of the length passed, all alive during the call.
    let set = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            blob.as_ptr().cast(),
            blob.len(),
            0,
        )
    };
    assert_eq!(set, 0, "setxattr: {}", std::io::Error::last_os_error());
    let found = findings(&f.name);
    assert!(
        found.iter().any(|(id, s, e)| id == "no-new-privs"
            && s == "medium"
            && e.contains("/bin/capx (file capabilities)")),
        "{found:?}"
    );
}

/// The same trick one level down: credentials, capabilities, NoNewPrivs and seccomp belong to
/// each thread. The main thread empties its bounding set and capabilities, sets NoNewPrivs
/// and a seccomp filter (without TSYNC) for itself only; a thread it started first keeps
/// everything. `/proc/PID/status` shows the main thread. With an argument, the main thread
/// then exits (`pthread_exit`): the process lives on in its other thread behind a zombie
/// main thread.
const MISLEADING_THREAD: &str = r#"
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *keep(void *unused) {
    prctl(PR_SET_NAME, "keeper", 0, 0, 0);
    for (;;) pause();
    return unused;
}
int main(int argc, char **argv) {
    (void)argv;
    pthread_t thread;
    if (pthread_create(&thread, 0, keep, 0)) return 1;
    for (int cap = 0; cap < 64; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
    if (syscall(SYS_capset, &header, none)) return 2;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 3;
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog program = { 1, allow };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program)) return 4;
    if (argc > 1)
        pthread_exit(0);
    for (;;) pause();
}
"#;

#[test]
fn a_thread_keeping_powers_its_main_thread_dropped_is_the_one_reported() {
    require_root_and_docker!();
    let (dir, binary) = build_misleader(MISLEADING_THREAD);
    thread_keeps_powers(&binary, false);
    thread_keeps_powers(&binary, true);
    drop(dir);
}

/// Kills a process (all its threads) when dropped.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) touches no memory; the pid is the test's own container's init.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn thread_keeps_powers(binary: &str, main_thread_exits: bool) {
    let mount = format!("{binary}:/misleader:ro");
    let command: &[&str] = if main_thread_exits { &["exit"] } else { &[] };
    let c = Container::start_with(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &mount,
            "--entrypoint",
            "/misleader",
        ],
        command,
    );
    // `docker rm -f` does not kill a process whose main thread has exited (Docker then forgets
    // a task containerd still runs): killed here first, before the container is removed.
    let _kill = KillOnDrop(c.pid);
    let mut dropped = false;
    for _ in 0..100 {
        dropped = if main_thread_exits {
            status_field(c.pid, "State").starts_with('Z')
        } else {
            status_field(c.pid, "Seccomp") == "2"
                && status_field(c.pid, "CapEff") == "0000000000000000"
        };
        if dropped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        dropped,
        "the main thread did not drop its powers (or exit: {main_thread_exits})"
    );
    // The oracle: the process's status is clean, its other thread's is not.
    let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", c.pid))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let keeper = *tids.iter().find(|t| **t != c.pid).expect("a second thread");
    let keeper_status = String::from_utf8_lossy(
        &std::fs::read(format!("/proc/{}/task/{keeper}/status", c.pid)).unwrap(),
    )
    .into_owned();
    assert!(
        keeper_status.contains("Seccomp:\t0") && keeper_status.contains("NoNewPrivs:\t0"),
        "{keeper_status}"
    );

    let (doc, out) = audit_json(&[&c.name, "--fail-on", "high"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let entry = container(&doc, &c.name);
    assert_eq!(
        entry["processes"],
        serde_json::json!([c.pid]),
        "threads are not processes: {entry:#}"
    );
    let most = &entry["most_powerful"];
    assert_eq!(
        (most["pid"].as_i64(), most["thread_of"].as_i64()),
        (Some(i64::from(keeper)), Some(i64::from(c.pid))),
        "{entry:#}"
    );
    let find = |id: &str| {
        entry["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {entry:#}"))
            .clone()
    };
    let caps = find("caps.extra");
    assert_eq!(
        (caps["severity"].as_str(), caps["pid"].as_i64()),
        (Some("critical"), Some(i64::from(keeper))),
        "{caps}"
    );
    assert!(
        caps["evidence"]
            .as_str()
            .unwrap()
            .contains(&format!("thread {keeper} of pid {}", c.pid)),
        "{caps}"
    );
    for id in ["seccomp", "no-new-privs"] {
        let f = find(id);
        assert_eq!(
            f["pids"],
            serde_json::json!([keeper]),
            "only the thread: {f}"
        );
    }
}

/// Run by a container with SYS_ADMIN: mounts every cgroup hierarchy it is in, then starts a
/// process in a new pid namespace that moves itself to the root cgroup of each: out of the
/// container's cgroups and out of its pid namespace (nested in it).
const ESCAPE: &str = r#"
i=0
for line in $(cat /proc/self/cgroup); do
  controllers=$(echo "$line" | cut -d: -f2); i=$((i+1)); mkdir -p /tmp/cg$i
  if [ -z "$controllers" ]; then mount -t cgroup2 none /tmp/cg$i || exit 10
  else mount -t cgroup -o "$controllers" none /tmp/cg$i || exit 11; fi
done
unshare --pid --fork sh -c 'for d in /tmp/cg*; do echo 1 > $d/cgroup.procs || exit 12; done; exec sleep 1000' &
exec sleep 1000
"#;

#[test]
fn a_process_that_left_the_containers_cgroups_and_pid_namespace_is_still_audited() {
    require_root_and_docker!();
    let dir = Scratch::new("escape");
    std::fs::write(dir.join("escape.sh"), ESCAPE).unwrap();
    let mount = format!("{}:/escape.sh:ro", dir.join("escape.sh").display());
    let c = Container::start_with(
        &["--cap-add", "SYS_ADMIN", "-v", &mount],
        &["sh", "/escape.sh"],
    );
    // The oracle: a process whose cgroups are all the hierarchies' roots, in a pid namespace
    // other than the container's.
    let own_ns = std::fs::read_link(format!("/proc/{}/ns/pid", c.pid)).unwrap();
    let mut escaped = None;
    for _ in 0..100 {
        escaped = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|p| {
                let cgroup =
                    std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                comm.trim() == "sleep"
                    && !cgroup.is_empty()
                    && cgroup.lines().all(|l| l.ends_with(":/"))
                    && std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|ns| ns != own_ns)
                    && String::from_utf8_lossy(
                        &std::fs::read(format!("/proc/{p}/status")).unwrap_or_default(),
                    )
                    .lines()
                    .any(|l| l.starts_with("NSpid:") && l.split_whitespace().count() == 4)
            });
        if escaped.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let escaped = escaped.expect("the escaping process never appeared");
    let (doc, _) = audit_json(&[&c.name]);
    let entry = container(&doc, &c.name);
    let processes: Vec<i64> = entry["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(
        processes.contains(&i64::from(escaped)),
        "pid {escaped} not audited: {entry:#}"
    );
    let outside = entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "cgroup.outside")
        .unwrap_or_else(|| panic!("{entry:#}"));
    assert_eq!(
        (outside["severity"].as_str(), outside["pids"].clone()),
        (Some("high"), serde_json::json!([escaped])),
        "{outside}"
    );
    let root = entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "root")
        .unwrap();
    assert!(
        root["pids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_i64() == Some(i64::from(escaped))),
        "{root}"
    );
    drop(c);
    drop(dir);
}

#[test]
fn capabilities_in_a_user_namespace_of_its_own_are_not_the_hosts() {
    require_root_and_docker!();
    // uid 1000 makes a user namespace of its own: every capability, but only over what that
    // namespace owns.
    let c = Container::start_with(
        &["--cap-add", "SYS_ADMIN", "--user", "1000"],
        &["sh", "-c", "unshare -U -r sleep 1000 & exec sleep 1000"],
    );
    let mut nested = None;
    for _ in 0..100 {
        let children = std::fs::read_to_string(format!("/proc/{}/task/{}/children", c.pid, c.pid))
            .unwrap_or_default();
        nested = children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|p| {
                std::fs::read_link(format!("/proc/{p}/ns/user")).ok()
                    != std::fs::read_link("/proc/self/ns/user").ok()
                    && status_field(*p, "CapEff") == "000001ffffffffff"
            });
        if nested.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let nested = nested.expect("no process in a user namespace of its own");
    let (doc, _) = audit_json(&[&c.name]);
    let entry = container(&doc, &c.name);
    let all = entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "caps.all")
        .unwrap_or_else(|| panic!("{entry:#}"));
    assert_eq!(
        (all["severity"].as_str(), all["pid"].as_i64()),
        (Some("medium"), Some(i64::from(nested))),
        "{all}"
    );
    let userns = std::fs::read_link(format!("/proc/{nested}/ns/user"))
        .unwrap()
        .display()
        .to_string();
    assert!(all["evidence"].as_str().unwrap().contains(&userns), "{all}");
    // The init (host user namespace, SYS_ADMIN left in its bounding set, no NoNewPrivs) is
    // still what makes the container critical.
    let bounding = entry["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "caps.bounding")
        .unwrap();
    assert_eq!(
        (bounding["severity"].as_str(), bounding["pid"].as_i64()),
        (Some("critical"), Some(i64::from(c.pid))),
        "{bounding}"
    );
}

#[test]
fn a_host_directory_held_open_by_a_process_in_the_container_is_found() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let clean = findings(&c.name);
    assert!(!clean.iter().any(|(id, _, _)| id == "fd.host"), "{clean:?}");
    // A process that opened the host's /etc, then joined the container's namespaces (as a
    // careless debugging tool would): fd 7 leads out of every mount of the container.
    let script = format!(
        "exec 7</etc; exec nsenter -t {} -m -u -i -n -p -- sleep 1000",
        c.pid
    );
    let joined = nsdebug_tests::Spawned(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .spawn()
            .expect("sh"),
    );
    let inside = first_child(joined.0.id());
    for _ in 0..100 {
        if std::fs::read_to_string(format!("/proc/{inside}/comm"))
            .is_ok_and(|c| c.trim() == "sleep")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let fd7 = std::fs::read_link(format!("/proc/{inside}/fd/7"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    assert_eq!(fd7, "/etc", "the oracle: fd 7 of the joined process");
    let found = findings(&c.name);
    let leak = found
        .iter()
        .find(|(id, _, _)| id == "fd.host")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(leak.1, "critical", "{leak:?}");
    assert!(
        leak.2
            .contains(&format!("pid {inside} (sleep) fd 7 -> /etc")),
        "{leak:?}"
    );
    drop(joined);
}

/// A container given the host's /etc that opens it, moves into it and lazily unmounts it
/// (`umount -l`): the mount is in no mount table any more, but the process still holds the
/// host's writable /etc (its cwd and fd 7). The audit places the directory by its device and
/// inode and fails `--fail-on critical`, naming the pid and the host path. (`caps.extra` for
/// the SYS_ADMIN that `umount` needed is accepted, as if it had been dropped afterwards.)
#[test]
fn a_lazily_unmounted_host_directory_still_held_is_found() {
    require_root_and_docker!();
    let c = Container::start_with(
        &["-v", "/etc:/hostetc", "--cap-add", "SYS_ADMIN"],
        &[
            "sh",
            "-c",
            "exec 7</hostetc; cd /hostetc; umount -l /hostetc; touch /tmp/ready; exec sleep 1000",
        ],
    );
    for _ in 0..100 {
        if docker(&["exec", &c.name, "test", "-e", "/tmp/ready"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The oracle: no mount table of the container has it, yet its cwd is the host's /etc.
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid)).unwrap();
    assert!(!mountinfo.contains("/hostetc"), "{mountinfo}");
    let cwd = std::fs::metadata(format!("/proc/{}/cwd", c.pid)).unwrap();
    let etc = std::fs::metadata("/etc").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((cwd.dev(), cwd.ino()), (etc.dev(), etc.ino()));
    let out = run_nsdebug(&[
        "audit",
        &c.name,
        "--fail-on",
        "critical",
        "--ignore",
        "caps.extra",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let line = text
        .lines()
        .find(|l| l.contains("mount.detached"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("critical")
            && line.contains(&format!("pid {}", c.pid))
            && line.contains("the host's /etc")
            && line.contains("cwd"),
        "{line}"
    );
}

/// A process whose name is `ESC[2K CR ESC[8m` (erase the line, return, hide what follows):
/// `audit` run on a terminal (a pty, as an operator would) shows the name escaped, and not
/// one raw ESC byte or lone CR reaches the terminal.
#[test]
fn a_process_name_with_terminal_controls_never_reaches_the_terminal_raw() {
    require_root_and_docker!();
    let c = Container::start_with(
        &[],
        &[
            "sh",
            "-c",
            // One process only (the shell blocks opening a FIFO): with a child such as
            // `sleep`, a wrapped pid counter could make the child the lowest pid, and the
            // audit names the lowest pid among the equally powerful.
            "mkfifo /hold && printf '\\033[2K\\r\\033[8m' > /proc/self/comm && read x < /hold",
        ],
    );
    let comm = std::fs::read(format!("/proc/{}/comm", c.pid)).unwrap();
    assert_eq!(
        comm, b"\x1b[2K\r\x1b[8m\n",
        "the oracle: the name the kernel keeps"
    );
    let command = format!(
        "{} audit {}",
        nsdebug_tests::nsdebug_path().display(),
        c.name
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .output()
        .expect("script (util-linux) runs audit on a pty");
    let bytes = &out.stdout;
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains(&format!("pid {} (\\x1b[2K\\x0d\\x1b[8m)", c.pid)),
        "{text}"
    );
    assert!(
        !bytes.contains(&0x1b),
        "a raw ESC reached the terminal: {text:?}"
    );
    // The pty turns each newline into CR LF; any other CR is the container's.
    let lone_cr = bytes.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n');
    assert!(!lone_cr, "a raw CR reached the terminal: {text:?}");
}

/// The critical (and high host-mount) findings of `audit ARGS --fail-on critical --json` (run by `command`), and
/// its exit status.
fn criticals(mut command: std::process::Command, args: &[&str]) -> (Vec<String>, Option<i32>) {
    let out = command
        .args(["audit", "--json", "--fail-on", "critical"])
        .args(args)
        .output()
        .expect("nsdebug runs");
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let found = doc["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
        // Every critical, and every high finding about what a mount shows of the host (a
        // CRI pod made without kubelet's security context has no seccomp filter and a
        // writable /proc/sys: true, and not about the runtime's own mounts).
        .filter(|f| {
            let host_mount = [
                "mount.host-path",
                "mount.runtime-socket",
                "mount.detached",
                "mount.hidden",
                "fd.host",
            ]
            .iter()
            .any(|id| f["id"] == *id);
            f["severity"] == "critical" || (f["severity"] == "high" && host_mount)
        })
        .map(|f| format!("{} {} {}", f["severity"], f["id"], f["title"]))
        .collect();
    (found, out.status.code())
}

/// A default Docker container: none of Docker's own mounts (hosts, hostname, resolv.conf,
/// its root) is a finding, and `--fail-on critical` passes; the same with `-v /etc:/x` is the
/// critical `mount.host-path`.
#[test]
fn dockers_own_mounts_are_no_finding_and_a_host_path_is() {
    require_root_and_docker!();
    let plain = Container::start(&[]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&plain.name]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(code, Some(0));
    let etc = Container::start(&["-v", "/etc:/x"]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&etc.name]);
    assert!(
        found
            .iter()
            .any(|f| f.contains("mount.host-path") && f.contains("/etc")),
        "{found:?}"
    );
    assert_eq!(code, Some(3));
}

/// A default Podman container: its `userdata/shm` at /dev/shm, `.containerenv`, hosts,
/// hostname and resolv.conf are Podman's own (recognised by their source, in Podman's
/// directory for this container), no finding; with `-v /etc:/x` the critical is there.
#[test]
fn podmans_own_mounts_are_no_finding_and_a_host_path_is() {
    nsdebug_tests::require_podman!();
    let podman_nsdebug = || {
        let mut command = nsdebug_tests::nsdebug();
        command.env(
            "CONTAINER_HOST",
            format!("unix://{}", nsdebug_tests::PODMAN_SOCKET),
        );
        command
    };
    let plain = nsdebug_tests::PodmanContainer::start(&[]);
    // The oracle: Podman's shm and .containerenv are mounted from its container directory.
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", plain.pid)).unwrap();
    assert!(
        mountinfo.contains("/userdata/.containerenv /run/.containerenv"),
        "{mountinfo}"
    );
    let (found, code) = criticals(podman_nsdebug(), &[&plain.name]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(code, Some(0));
    let etc = nsdebug_tests::PodmanContainer::start(&["-v", "/etc:/x"]);
    let (found, code) = criticals(podman_nsdebug(), &[&etc.name]);
    assert!(
        found
            .iter()
            .any(|f| f.contains("mount.host-path") && f.contains("/etc")),
        "{found:?}"
    );
    assert_eq!(code, Some(3));
}

/// A default pod through the CRI: the sandbox's shm at /dev/shm and its hosts, hostname and
/// resolv.conf are containerd's own, no finding; a hostPath volume of /etc is the critical,
/// named as a hostPath volume.
#[test]
fn a_cri_pods_own_mounts_are_no_finding_and_a_host_path_volume_is() {
    nsdebug_tests::require_cri!();
    let cri_nsdebug = || {
        let mut command = nsdebug_tests::nsdebug();
        command.env(
            "CONTAINER_RUNTIME_ENDPOINT",
            format!("unix://{}", nsdebug_tests::CRI_SOCKET),
        );
        command
    };
    let pod = nsdebug_tests::CriPod::start("audit", "plain", &["app"], &[]);
    let spec = format!("pod/{}", pod.name);
    let (found, code) = criticals(cri_nsdebug(), &[&spec, "-n", "audit"]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(code, Some(0));
    // Its devices are runc's defaults, as its runtime spec (the CRI's record) says.
    let out = cri_nsdebug()
        .args(["audit", "--json", &spec, "-n", "audit"])
        .output()
        .expect("nsdebug runs");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let devices: Vec<&Value> = doc["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .filter(|f| f["id"] == "devices" || f["id"] == "record.grant-dropped")
        .collect();
    assert!(devices.is_empty(), "{devices:?}");
    let with_etc = nsdebug_tests::CriPod::start_with_mounts(
        "audit",
        "hostpath",
        &["app"],
        &[],
        &[("/etc", "/x")],
    );
    let spec = format!("pod/{}", with_etc.name);
    let (found, code) = criticals(cri_nsdebug(), &[&spec, "-n", "audit"]);
    assert!(
        found.iter().any(
            |f| f.contains("mount.host-path") && f.contains("hostPath volume: the host's /etc")
        ),
        "{found:?}"
    );
    assert_eq!(code, Some(3));
}

/// A bind mount Docker recorded that the container lazily unmounted (and holds nothing of):
/// the kernel's mount tables no longer show it, Docker's record does: `mount.hidden`, at the
/// severity of the mount.
#[test]
fn a_recorded_bind_mount_the_container_hid_is_found() {
    require_root_and_docker!();
    let c = Container::start_with(
        &["-v", "/etc:/hostetc", "--cap-add", "SYS_ADMIN"],
        &[
            "sh",
            "-c",
            "umount -l /hostetc; touch /tmp/ready; exec sleep 1000",
        ],
    );
    for _ in 0..100 {
        if docker(&["exec", &c.name, "test", "-e", "/tmp/ready"])
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(inspect(&c.name, "{{json .Mounts}}").contains("\"Source\":\"/etc\""));
    let found = findings(&c.name);
    let hidden = found
        .iter()
        .find(|(id, _, _)| id == "mount.hidden")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(hidden.1, "critical", "{hidden:?}");
    assert!(hidden.2.contains("bind /etc -> /hostetc"), "{hidden:?}");
}

/// One finding per fact: Docker's socket mounted in is one critical `mount.runtime-socket`
/// carrying the mount, not also a `mount.host-path` of the same mount. And a misspelt
/// `--ignore` id is refused (exit 2, listing the ids) instead of accepting nothing silently.
#[test]
fn a_mounted_socket_is_one_finding_and_an_unknown_ignore_id_is_refused() {
    require_root_and_docker!();
    let c = Container::start(&["-v", "/var/run/docker.sock:/var/run/docker.sock"]);
    let found = findings(&c.name);
    let about_socket: Vec<_> = found
        .iter()
        .filter(|(id, _, e)| id.starts_with("mount.") && e.contains("docker.sock"))
        .collect();
    assert_eq!(about_socket.len(), 1, "{found:?}");
    assert_eq!(about_socket[0].0, "mount.runtime-socket");
    assert_eq!(about_socket[0].1, "critical");
    let out = run_nsdebug(&["audit", &c.name, "--ignore", "namespace.usr"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("\"namespace.usr\"") && stderr.contains("namespace.user"),
        "{stderr}"
    );
    let file = std::env::temp_dir().join(unique_name("ignore"));
    std::fs::write(&file, "root\nno-such-finding # typo\n").unwrap();
    let out = run_nsdebug(&["audit", &c.name, "--ignore-file", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A default rootless Podman container (user namespace, storage under /run/user/UID with
/// the vfs driver): Podman's own files (`vfs-containers/ID/userdata/{hosts,hostname,
/// .containerenv}`) are no finding. Where the container
/// gets no cgroup of its own (it stays in its user's cgroup, beside host processes), those
/// host processes are not audited as the container's (they would bring the host's mount
/// namespace and every capability). Podman binds the host's /dev/null, /dev/zero... (it
/// cannot mknod) and, on cgroup v1, leaves the container in its user's cgroup, whose
/// devices cgroup allows all: in a user namespace owned by that user the kernel refuses
/// mknod, so those default nodes are all it reaches, and `--fail-on critical` passes.
#[test]
fn a_rootless_podman_containers_own_mounts_are_no_finding() {
    nsdebug_tests::require_podman!();
    let c = match nsdebug_tests::RootlessPodman::start() {
        Ok(c) => c,
        Err(why) if nsdebug_tests::in_ci() => {
            panic!("rootless podman: {why}; CI=true, so this is a failure")
        }
        Err(why) => return eprintln!("SKIP rootless podman: {why}"),
    };
    let mut command = nsdebug_tests::nsdebug();
    command.env("CONTAINER_HOST", format!("unix://{}", c.socket));
    let (found, code) = criticals(command, &[&c.name]);
    let own: Vec<&String> = found
        .iter()
        .filter(|f| f.contains("-containers/") && f.contains("/userdata/"))
        .collect();
    assert!(own.is_empty(), "{own:?}");
    // None of its criticals comes from host processes in its cgroup: not the host's mount
    // namespace, not every capability held outside a user namespace of its own.
    let host: Vec<&String> = found
        .iter()
        .filter(|f| f.contains("namespace.mnt") || f.contains("caps.all"))
        .collect();
    assert!(host.is_empty(), "{host:?}");
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(code, Some(0), "{found:?}");
    // The devices cgroup is still said, with why it is not critical.
    let out = nsdebug_tests::nsdebug()
        .env("CONTAINER_HOST", format!("unix://{}", c.socket))
        .args(["audit", "--json", &c.name])
        .output()
        .expect("nsdebug runs");
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    if let Some(devices) = container(&doc, &c.name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "devices")
    {
        let evidence = devices["evidence"].as_str().unwrap_or_default();
        assert_eq!(devices["severity"], "info", "{devices}");
        assert!(
            evidence.contains("user namespace owned by uid")
                && evidence.contains("mknod refused")
                && evidence.contains("/dev/null (char 1:3"),
            "{evidence}"
        );
    }
}

/// A rootless Podman container given a host device beyond the defaults (`--device
/// /dev/kmsg`, the host's kernel log, bound since it cannot mknod): that node is a finding
/// with its device numbers, and the devices cgroup that lets it be used stays critical.
/// A rootful container whose devices cgroup allows all keeps the critical `devices`
/// finding: no user namespace stops its mknod. (`--device-cgroup-rule 'a *:* rwm'`, the
/// devices part of `--privileged`: this sandbox's runc cannot apply `--privileged`'s caps.)
#[test]
fn a_host_device_node_beyond_the_defaults_stays_a_finding_rootless_or_not() {
    nsdebug_tests::require_podman!();
    let c = match nsdebug_tests::RootlessPodman::start_with(&["--device", "/dev/kmsg"]) {
        Ok(c) => c,
        Err(why) if nsdebug_tests::in_ci() => {
            panic!("rootless podman: {why}; CI=true, so this is a failure")
        }
        Err(why) => return eprintln!("SKIP rootless podman: {why}"),
    };
    let mut command = nsdebug_tests::nsdebug();
    command.env("CONTAINER_HOST", format!("unix://{}", c.socket));
    let (found, code) = criticals(command, &[&c.name]);
    assert_eq!(code, Some(3), "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.contains("mount.host-path") && f.contains("/dev/kmsg (char device 1:11)")),
        "{found:?}"
    );
    // Not the defaults bound beside it.
    assert!(
        !found
            .iter()
            .any(|f| f.contains("/dev/null") || f.contains("/dev/zero")),
        "{found:?}"
    );
    if Path::new("/sys/fs/cgroup/devices").exists() {
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("\"critical\" \"devices\"")),
            "{found:?}"
        );
    }
    require_root_and_docker!();
    let privileged = Container::start(&["--device-cgroup-rule", "a *:* rwm"]);
    let found = findings(&privileged.name);
    if Path::new("/sys/fs/cgroup/devices").exists() {
        assert!(
            found
                .iter()
                .any(|(id, severity, _)| id == "devices" && severity == "critical"),
            "{found:?}"
        );
    }
}

/// A container run `--cap-add SYS_ADMIN` whose only process empties its bounding set and
/// becomes uid 1000: Docker's record still has the grant (what docker-bench reads), the
/// kernel shows it nowhere. The audit says both: no `caps.extra`, and an info
/// `record.grant-dropped` naming the grant. Without the drop, no such finding.
#[test]
fn a_recorded_grant_no_process_holds_any_more_is_said() {
    require_root_and_docker!();
    const DROPPER: &str = r#"
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
    for (int cap = 0; cap < 64; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (setgid(1000) || setuid(1000)) return 3;
    for (;;) pause();
}
"#;
    let (_dir, binary) = build_misleader(DROPPER);
    let mount = format!("{binary}:/dropper:ro");
    let c = Container::start_with(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "-v",
            &mount,
            "--entrypoint",
            "/dropper",
        ],
        &[],
    );
    let mut dropped = false;
    for _ in 0..100 {
        dropped = status_field(c.pid, "CapBnd") == "0000000000000000";
        if dropped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(dropped, "the init did not drop its bounding set");
    assert!(inspect(&c.name, "{{.HostConfig.CapAdd}}").contains("SYS_ADMIN"));
    let found = findings(&c.name);
    assert!(
        !found.iter().any(|(id, _, _)| id == "caps.extra"),
        "{found:?}"
    );
    let said = found
        .iter()
        .find(|(id, _, _)| id == "record.grant-dropped")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(said.1, "info");
    let (doc, _) = audit_json(&[&c.name]);
    let title = container(&doc, &c.name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "record.grant-dropped")
        .map(|f| f["title"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    assert!(title.contains("--cap-add SYS_ADMIN"), "{title}");
    let kept = Container::start(&["--cap-add", "SYS_ADMIN"]);
    let found = findings(&kept.name);
    assert!(
        !found.iter().any(|(id, _, _)| id == "record.grant-dropped"),
        "{found:?}"
    );
}

/// Docker's record against each process's kernel state. A container run `--security-opt
/// no-new-privileges` is, as recorded, NoNewPrivs 1 and under Docker's seccomp profile: no
/// `record.less-confined`. A process put into it from the host (`nsenter -a`, as a host
/// tool or `docker exec --privileged` would) has neither: `docker inspect` still says both,
/// so the audit says, high, that the record misleads, naming that process.
#[test]
fn a_process_less_confined_than_dockers_record_is_found() {
    require_root_and_docker!();
    let c = Container::start(&["--security-opt", "no-new-privileges"]);
    assert!(inspect(&c.name, "{{.HostConfig.SecurityOpt}}").contains("no-new-privileges"));
    assert_eq!(status_field(c.pid, "NoNewPrivs"), "1");
    let found = findings(&c.name);
    assert!(
        !found.iter().any(|(id, _, _)| id.starts_with("record.")),
        "{found:?}"
    );
    let mut intruder = std::process::Command::new("nsenter")
        .args(["-t", &c.pid.to_string(), "-a", "sleep", "60"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nsenter runs");
    // Its child, in the container's pid namespace, is the process the audit finds.
    let sleeper = first_child(intruder.id());
    let found = findings(&c.name);
    let _ = std::process::Command::new("kill")
        .arg(sleeper.to_string())
        .status();
    let _ = intruder.kill();
    let _ = intruder.wait();
    let misled: Vec<_> = found
        .iter()
        .filter(|(id, _, _)| id == "record.less-confined")
        .collect();
    assert_eq!(misled.len(), 2, "{found:?}");
    assert!(misled
        .iter()
        .all(|(_, severity, evidence)| severity == "high"
            && evidence.starts_with(&format!("pid {sleeper} "))));
    assert!(misled.iter().any(|(_, _, e)| e.contains("NoNewPrivs 0")));
    assert!(misled.iter().any(|(_, _, e)| e.contains("Seccomp 0")));
}

/// Removes a pod's kubelet directory (and `/var/lib/kubelet/pods`, `/var/lib/kubelet` when
/// the test made them and they are empty) when dropped.
struct KubeletPodDir {
    dir: std::path::PathBuf,
    made: Vec<std::path::PathBuf>,
}

impl Drop for KubeletPodDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for dir in &self.made {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// What kubelet does for a pod, done through the CRI: its volumes made under
/// `/var/lib/kubelet/pods/UID/volumes/` (an emptyDir, a configMap, a secret, a projected
/// service-account token `kube-api-access-*`) and bound in, plus a `hostPath` of `/etc`.
/// The kubelet's volumes are no finding; the token is the low
/// `k8s.service-account-token` with its path; `/etc` is the critical `hostPath volume`.
#[test]
fn kubelets_volumes_through_the_cri_are_no_finding_and_a_host_path_is() {
    nsdebug_tests::require_cri!();
    let uid = nsdebug_tests::CriPod::new_uid();
    let kubelet = std::path::PathBuf::from("/var/lib/kubelet");
    let made: Vec<std::path::PathBuf> = [kubelet.join("pods"), kubelet.clone()]
        .into_iter()
        .filter(|d| !d.exists())
        .collect();
    let pod_dir = KubeletPodDir {
        dir: kubelet.join("pods").join(&uid),
        made,
    };
    let volumes = pod_dir.dir.join("volumes");
    let volume = |kind: &str, name: &str| volumes.join(format!("kubernetes.io~{kind}")).join(name);
    let cache = volume("empty-dir", "cache");
    let config = volume("configmap", "app-config");
    let secret = volume("secret", "db-password");
    let token = volume("projected", "kube-api-access-x7k2p");
    for (dir, file) in [
        (&cache, None),
        (&config, Some("app.conf")),
        (&secret, Some("password")),
        (&token, Some("token")),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        if let Some(file) = file {
            std::fs::write(dir.join(file), "x").unwrap();
        }
    }
    let mount = |host: &std::path::Path, inside: &str, readonly: bool| nsdebug_cri::v1::Mount {
        host_path: host.to_string_lossy().into_owned(),
        container_path: inside.to_owned(),
        readonly,
        ..Default::default()
    };
    let mounts = [
        mount(&cache, "/cache", false),
        mount(&config, "/etc/app", true),
        mount(&secret, "/etc/db", true),
        mount(
            &token,
            "/var/run/secrets/kubernetes.io/serviceaccount",
            true,
        ),
        mount(std::path::Path::new("/etc"), "/hostetc", false),
    ];
    let pod =
        nsdebug_tests::CriPod::start_as("audit", "kubelet", &["app"], &[], Some(&uid), &mounts);
    let mut command = nsdebug_tests::nsdebug();
    command.env(
        "CONTAINER_RUNTIME_ENDPOINT",
        format!("unix://{}", nsdebug_tests::CRI_SOCKET),
    );
    let out = command
        .args([
            "audit",
            "--json",
            &format!("pod/{}", pod.name),
            "-n",
            "audit",
        ])
        .output()
        .expect("nsdebug runs");
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let found: Vec<&Value> = doc["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .flat_map(|c| c["findings"].as_array().into_iter().flatten())
        .collect();
    let text = |f: &Value| format!("{} {}", f["title"], f["evidence"]);
    let kubelet_findings: Vec<String> = found
        .iter()
        .filter(|f| f["id"] != "k8s.service-account-token")
        .map(|f| text(f))
        .filter(|t| t.contains("/var/lib/kubelet"))
        .collect();
    assert!(kubelet_findings.is_empty(), "{kubelet_findings:?}");
    let tokens: Vec<&&Value> = found
        .iter()
        .filter(|f| f["id"] == "k8s.service-account-token")
        .collect();
    assert_eq!(tokens.len(), 1, "{found:?}");
    assert_eq!(tokens[0]["severity"], "low");
    assert!(
        text(tokens[0]).contains("/var/run/secrets/kubernetes.io/serviceaccount")
            && text(tokens[0]).contains(&token.to_string_lossy().into_owned()),
        "{}",
        tokens[0]
    );
    let host_etc: Vec<&&Value> = found
        .iter()
        .filter(|f| f["id"] == "mount.host-path" && f["severity"] == "critical")
        .collect();
    assert_eq!(host_etc.len(), 1, "{found:?}");
    assert!(
        host_etc[0]["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("hostPath volume: the host's /etc ")
                && t.ends_with(" at /hostetc")),
        "{}",
        host_etc[0]
    );
    drop(pod);
}

/// The CRI's record against the kernel: a pod whose `hostPath` of `/etc` was unmounted from
/// its container's mount namespace (lazily, as a process of it with SYS_ADMIN would) no
/// longer shows it in any mount table; the CRI's `ContainerStatus.mounts` still records it
/// (what kube-bench and `crictl inspect` read): `mount.hidden`, critical like the mount.
#[test]
fn a_host_path_volume_the_cri_recorded_and_the_pod_hid_is_found() {
    nsdebug_tests::require_cri!();
    let pod = nsdebug_tests::CriPod::start_with_mounts(
        "audit",
        "hidden",
        &["app"],
        &[],
        &[("/etc", "/hostetc")],
    );
    let audit = || {
        let out = nsdebug_tests::nsdebug()
            .env(
                "CONTAINER_RUNTIME_ENDPOINT",
                format!("unix://{}", nsdebug_tests::CRI_SOCKET),
            )
            .args([
                "audit",
                "--json",
                &format!("pod/{}", pod.name),
                "-n",
                "audit",
            ])
            .output()
            .expect("nsdebug runs");
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
        doc["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| {
                c["target"]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("/app"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no container app in {doc:#}"))
    };
    let before = audit();
    let ids = |entry: &Value| -> Vec<String> {
        entry["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        !ids(&before).contains(&"mount.hidden".to_owned()),
        "{before:#}"
    );
    let pid = before["target"]["pid"].as_i64().expect("pid").to_string();
    let unmounted = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-m", "umount", "-l", "/hostetc"])
        .status()
        .expect("nsenter runs");
    assert!(unmounted.success());
    let after = audit();
    let hidden = after["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == "mount.hidden")
        .unwrap_or_else(|| panic!("{after:#}"));
    assert_eq!(hidden["severity"], "critical", "{hidden}");
    assert!(
        hidden["title"]
            .as_str()
            .is_some_and(|t| t.contains("the host's /etc") && t.contains("/hostetc")),
        "{hidden}"
    );
    assert!(
        !ids(&after).contains(&"mount.host-path".to_owned()),
        "{after:#}"
    );
}

/// The host's device of its root filesystem (`vda`), from the host's sysfs.
fn host_root_disk() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    // The whole disk when the root is a partition of it: the test hands that to Docker.
    let disk = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
        .ok()
        .filter(|p| p.join("partition").exists())
        .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()));
    Some(disk.unwrap_or_else(|| name.to_owned()))
}

/// `--device` makes the node with mknod in the container's own `/dev` (no mount table shows
/// it): the devices cgroup is what lets it be opened. The host's root disk is critical (its
/// filesystems raw), `/dev/kmsg` high, each named with the node found in the container; a
/// default container has no `devices` finding and still passes `--fail-on critical`.
#[test]
fn a_device_given_with_device_is_found_in_the_devices_cgroup() {
    require_root_and_docker!();
    if !Path::new("/sys/fs/cgroup/devices").exists() {
        // cgroup v2: the allowlist is an eBPF program; the unit tests cover the rules.
        assert!(
            !nsdebug_tests::in_ci(),
            "CI host without a v1 devices cgroup"
        );
        return eprintln!("SKIP: no v1 devices cgroup on this host");
    }
    let Some(disk) = host_root_disk() else {
        assert!(
            !nsdebug_tests::in_ci(),
            "CI host whose root is on no block device"
        );
        return eprintln!("SKIP: the host's root filesystem is on no block device");
    };
    let default = Container::start(&[]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&default.name]);
    assert_eq!(code, Some(0), "a default container passes: {found:?}");
    assert!(
        !findings(&default.name)
            .iter()
            .any(|(id, _, _)| id == "devices"),
        "runc's default devices are no finding"
    );

    let node = format!("/dev/{disk}");
    let disk_ctr = Container::start(&["--device", &node]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&disk_ctr.name]);
    assert_eq!(code, Some(3), "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"critical\" \"devices\"")
                && f.contains(&format!("{node} (block "))),
        "{found:?}"
    );
    let evidence = findings(&disk_ctr.name);
    assert!(
        evidence
            .iter()
            .any(|(id, _, e)| id == "devices" && e.contains(&format!("in the container: {node}"))),
        "{evidence:?}"
    );

    // A hostile one names a node of the same device with a terminal escape: the evidence
    // shows it escaped.
    let kmsg = Container::start_with(
        &["--device", "/dev/kmsg"],
        &[
            "sh",
            "-c",
            r#"mknod "/dev/$(printf '\033[2Jx')" c 1 11 && exec sleep 600"#,
        ],
    );
    let human = run_nsdebug(&["audit", &kmsg.name]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("/dev/\\x1b[2Jx") && !text.contains('\x1b'),
        "{text}"
    );
    let found = findings(&kmsg.name);
    assert!(
        found
            .iter()
            .any(|(id, s, e)| id == "devices" && s == "high" && e.contains("c 1:11 rwm")),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|(_, _, e)| e.contains("not in docker's record")),
        "granted by docker: {found:?}"
    );

    // The kernel against Docker's record, changed from the host (the devices cgroup of the
    // container this test made): /dev/kmsg denied is a grant Docker still records; mem
    // (c 1:1) allowed is critical and in no record.
    let cgroup = |name: &str| format!("/sys/fs/cgroup/devices/docker/{}", inspect(name, "{{.Id}}"));
    std::fs::write(format!("{}/devices.deny", cgroup(&kmsg.name)), "c 1:11 rwm")
        .expect("devices.deny");
    let found = findings(&kmsg.name);
    assert!(
        found
            .iter()
            .any(|(id, s, _)| id == "record.grant-dropped" && s == "info"),
        "{found:?}"
    );
    assert!(!found.iter().any(|(id, _, _)| id == "devices"), "{found:?}");
    let widened = Container::start(&[]);
    std::fs::write(
        format!("{}/devices.allow", cgroup(&widened.name)),
        "c 1:1 r",
    )
    .expect("devices.allow");
    let found = findings(&widened.name);
    assert!(
        found.iter().any(|(id, s, e)| id == "devices"
            && s == "critical"
            && e.contains("c 1:1 r; not in docker's record")),
        "{found:?}"
    );

    // A host node bound in (no mknod) and opened by a --device-cgroup-rule: the bound node
    // is the evidence, and the rule is Docker's.
    let bound = Container::start(&[
        "-v",
        "/dev/kmsg:/hostkmsg",
        "--device-cgroup-rule",
        "c 1:11 rw",
    ]);
    let found = findings(&bound.name);
    assert!(
        found.iter().any(|(id, s, e)| id == "devices"
            && s == "high"
            && e.contains("in the container: /hostkmsg (char 1:11")
            && !e.contains("not in docker's record")),
        "{found:?}"
    );
}

/// Capabilities that are known escapes are critical: `DAC_READ_SEARCH` alone (any host
/// file through `open_by_handle_at`), `SYS_PTRACE` with `--pid=host` (host root processes
/// ptraced; one finding naming both facts), while `SYS_PTRACE` alone stays high.
#[test]
fn capabilities_that_are_known_escapes_are_critical() {
    require_root_and_docker!();
    let shocker = Container::start(&["--cap-add", "DAC_READ_SEARCH"]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&shocker.name]);
    assert_eq!(code, Some(3), "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"critical\" \"caps.extra\"") && f.contains("DAC_READ_SEARCH")),
        "{found:?}"
    );

    let tracer = Container::start(&["--cap-add", "SYS_PTRACE", "--pid=host"]);
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&tracer.name]);
    assert_eq!(code, Some(3), "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"critical\" \"caps.extra\"")
                && f.contains("SYS_PTRACE")
                && f.contains("host's pid namespace")),
        "{found:?}"
    );

    let alone = Container::start(&["--cap-add", "SYS_PTRACE"]);
    let found = findings(&alone.name);
    assert!(has(&found, "caps.extra", "high"), "{found:?}");
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&alone.name]);
    assert_eq!(code, Some(0), "{found:?}");
}

/// `--ipc=host` is one fact, the host's shared memory: Docker binds the host's `/dev/shm`
/// for it, and that mount is the evidence of one high `namespace.ipc`, not a second,
/// critical `mount.host-path`. `-v /dev/shm:/dev/shm` without it stays a host path.
#[test]
fn ipc_host_is_one_finding_with_the_hosts_dev_shm_as_evidence() {
    require_root_and_docker!();
    let shared = Container::start(&["--ipc=host"]);
    let found = findings(&shared.name);
    assert!(
        !found.iter().any(|(id, _, _)| id == "mount.host-path"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(id, s, e)| id == "namespace.ipc"
            && s == "high"
            && e.contains("the host's /dev/shm tmpfs")),
        "{found:?}"
    );
    let (found, code) = criticals(nsdebug_tests::nsdebug(), &[&shared.name]);
    assert_eq!(code, Some(0), "{found:?}");

    let bound = Container::start(&["-v", "/dev/shm:/dev/shm"]);
    let found = findings(&bound.name);
    assert!(has(&found, "mount.host-path", "critical"), "{found:?}");
    assert!(
        !found.iter().any(|(id, _, _)| id == "namespace.ipc"),
        "{found:?}"
    );
}

/// A container that fills its `/dev` (5000 entries) costs the audit 4096 of them: the
/// device is still found, and the evidence says the rest was not looked at.
#[test]
fn a_dev_filled_by_the_container_is_looked_at_up_to_a_bound() {
    require_root_and_docker!();
    if !Path::new("/sys/fs/cgroup/devices").exists() {
        assert!(
            !nsdebug_tests::in_ci(),
            "CI host without a v1 devices cgroup"
        );
        return eprintln!("SKIP: no v1 devices cgroup on this host");
    }
    let filled = Container::start_with(
        &["--device", "/dev/kmsg"],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 5000 ]; do : > /dev/f$i; i=$((i+1)); done; touch /dev/.done; exec sleep 600",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !Path::new(&format!("/proc/{}/root/dev/.done", filled.pid)).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container did not fill /dev"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let found = findings(&filled.name);
    assert!(
        found.iter().any(|(id, s, e)| id == "devices"
            && s == "high"
            && e.contains("only the first 4096 entries of its /dev were looked at")),
        "{found:?}"
    );
}
