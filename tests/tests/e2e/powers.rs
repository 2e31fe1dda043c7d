//! Hostile containers that split their powers between a harmless-looking pid 1 and a helper
//! (a process, a thread of pid 1, a process in a nested pid namespace), or whose init raises
//! capabilities for whoever copies them: `enter`, `debug` and `audit` decide from every
//! process and thread of the container, and a container program gets what `docker exec`
//! gives, never what the container's own processes hold.

use nsdebug_tests::{docker, nsdebug, require_root_and_docker, run_nsdebug, Container, Hostile};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The confinement fields of `/proc/self/status`, and `id`.
const WHO: &str = "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; id";

const CAP_SYS_PTRACE: u32 = 19;

/// The container's pid 1 as the host sees it.
fn init_pid(name: &str) -> i32 {
    text(&docker(&["inspect", "-f", "{{.State.Pid}}", name]).stdout)
        .trim()
        .parse()
        .expect("container pid")
}

/// A field of `/proc/PID/status` (or `/proc/PID/task/TID/status`).
fn status_field(path: &str, field: &str) -> String {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn has_cap(mask: &str, cap: u32) -> bool {
    u64::from_str_radix(mask, 16).is_ok_and(|m| m & (1 << cap) != 0)
}

/// The first number after `word ` in `line` (`pid 4242 (helper)` -> 4242).
fn number_after(line: &str, word: &str) -> Option<i32> {
    let rest = &line[line.find(word)? + word.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Runs a host program through `enter --net --pid` and `debug` that would create a file on
/// the host, and checks both are refused in one line naming the helper and its power, that
/// nothing ran, and returns the refusal.
fn refused_everywhere(h: &Hostile) -> String {
    let name = &h.container.name;
    let marker = format!("/tmp/{name}-host-program-ran");
    let touch = format!("touch {marker}");
    let mut lines = Vec::new();
    for how in [
        vec![
            "enter", name, "--net", "--pid", "--", "/bin/sh", "-c", &touch,
        ],
        vec!["debug", name, "--", "/bin/sh", "-c", &touch],
    ] {
        let out = run_nsdebug(&how);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{} refused: {out:?}", how[0]);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("(helper) holds CAP_SYS_PTRACE"),
            "{}: names the helper and its power: {stderr}",
            how[0]
        );
        assert!(
            !std::path::Path::new(&marker).exists(),
            "{}: the host program must not have run",
            how[0]
        );
        lines.push(stderr);
    }
    assert_eq!(
        lines[0].split(": ").last(),
        lines[1].split(": ").last(),
        "enter and debug name the same process"
    );
    lines.swap_remove(0)
}

#[test]
fn a_helper_process_keeping_cap_sys_ptrace_gets_no_host_program() {
    require_root_and_docker!();
    let h = Hostile::start_split(&["--cap-add", "SYS_PTRACE"], Some("process"));
    let init = init_pid(&h.container.name);
    // Pid 1 itself dropped it: reading pid 1 alone lets the host program in.
    let bounding = status_field(&format!("/proc/{init}/status"), "CapBnd");
    assert!(
        !has_cap(&bounding, CAP_SYS_PTRACE),
        "pid 1 dropped it: {bounding}"
    );
    let refusal = refused_everywhere(&h);
    let helper =
        number_after(refusal.rsplit(": ").next().unwrap_or(""), "pid ").expect("the helper's pid");
    assert_eq!(
        status_field(&format!("/proc/{helper}/status"), "Name"),
        "helper"
    );
    // The refusal is what keeps the host program out: forced, it runs.
    let name = &h.container.name;
    let marker = format!("/tmp/{name}-forced");
    let forced = run_nsdebug(&[
        "enter",
        name,
        "--net",
        "--pid",
        "--expose-host-program",
        "--",
        "/bin/sh",
        "-c",
        &format!("touch {marker}"),
    ]);
    assert!(forced.status.success(), "{forced:?}");
    assert!(std::path::Path::new(&marker).exists());
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn a_thread_of_pid_1_keeping_cap_sys_ptrace_gets_no_host_program() {
    require_root_and_docker!();
    let h = Hostile::start_split(&["--cap-add", "SYS_PTRACE"], Some("thread"));
    let init = init_pid(&h.container.name);
    let bounding = status_field(&format!("/proc/{init}/status"), "CapBnd");
    assert!(
        !has_cap(&bounding, CAP_SYS_PTRACE),
        "pid 1's main thread dropped it"
    );
    let refusal = refused_everywhere(&h);
    assert!(
        refusal.contains(&format!("of pid {init} (helper)")),
        "the thread of pid 1 is named: {refusal}"
    );
}

#[test]
fn a_process_of_a_nested_pid_namespace_keeping_cap_sys_ptrace_gets_no_host_program() {
    require_root_and_docker!();
    // unshare(CLONE_NEWPID) needs CAP_SYS_ADMIN; pid 1 drops it with CAP_SYS_PTRACE.
    let h = Hostile::start_split(
        &["--cap-add", "SYS_PTRACE", "--cap-add", "SYS_ADMIN"],
        Some("nested"),
    );
    let init = init_pid(&h.container.name);
    let bounding = status_field(&format!("/proc/{init}/status"), "CapBnd");
    assert!(!has_cap(&bounding, CAP_SYS_PTRACE), "pid 1 dropped it");
    let refusal = refused_everywhere(&h);
    let helper =
        number_after(refusal.rsplit(": ").next().unwrap_or(""), "pid ").expect("the helper's pid");
    let levels = status_field(&format!("/proc/{helper}/status"), "NSpid");
    assert_eq!(
        levels.split_whitespace().count(),
        3,
        "the helper is in a pid namespace nested in the container's: NSpid {levels}"
    );
}

#[test]
fn audit_enter_and_debug_agree_on_who_can_ptrace() {
    require_root_and_docker!();
    let split = Hostile::start_split(&["--cap-add", "SYS_PTRACE"], Some("process"));
    let plain = Hostile::start(&[]);
    for (h, holds) in [(&split, true), (&plain, false)] {
        let name = &h.container.name;
        let audit = run_nsdebug(&["audit", name, "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("audit JSON");
        let ptracers: Vec<i64> = report["containers"][0]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| {
                f["id"] == "caps.extra"
                    && f["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("SYS_PTRACE"))
            })
            .flat_map(|f| f["pids"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p.as_i64())
            .collect();
        let enter = run_nsdebug(&["enter", name, "--net", "--pid", "--", "/bin/true"]);
        let debug = run_nsdebug(&["debug", name, "--", "/bin/true"]);
        if holds {
            let helper = number_after(
                text(&enter.stderr).rsplit(": ").next().unwrap_or(""),
                "pid ",
            )
            .expect("enter names a pid");
            assert_eq!(
                ptracers,
                [i64::from(helper)],
                "audit names the process enter refuses for: {report}"
            );
            assert_eq!(enter.status.code(), Some(125), "{enter:?}");
            assert_eq!(debug.status.code(), Some(125), "{debug:?}");
            assert!(
                text(&debug.stderr).contains(&format!("pid {helper} (helper)")),
                "{debug:?}"
            );
        } else {
            assert!(ptracers.is_empty(), "{report}");
            assert!(enter.status.success(), "{enter:?}");
            assert!(debug.status.success(), "{debug:?}");
        }
    }
}

#[test]
fn a_container_program_gets_docker_execs_capabilities_not_those_its_init_raised() {
    require_root_and_docker!();
    let h = Hostile::start_split(&[], Some("ambient"));
    let name = &h.container.name;
    let init = init_pid(name);
    let ambient = status_field(&format!("/proc/{init}/status"), "CapAmb");
    assert_ne!(
        ambient, "0000000000000000",
        "the init raised its ambient set"
    );
    for (ours, theirs) in [
        (vec![], vec![]),
        (vec!["-S", "1000"], vec!["-u", "1000"]),
        (vec!["-S", "nobody"], vec!["-u", "nobody"]),
    ] {
        let mut args = vec!["enter", name.as_str()];
        args.extend(&ours);
        args.extend(["--", "sh", "-c", WHO]);
        let entered = run_nsdebug(&args);
        let mut exec = vec!["exec"];
        exec.extend(&theirs);
        exec.extend([name.as_str(), "sh", "-c", WHO]);
        let docker_exec = docker(&exec);
        assert!(entered.status.success(), "{entered:?}");
        assert_eq!(
            text(&entered.stdout),
            text(&docker_exec.stdout),
            "enter {ours:?} equals docker exec {theirs:?}"
        );
    }
}

#[test]
fn s_0_on_a_user_container_is_docker_exec_u_0() {
    require_root_and_docker!();
    let c = Container::start_with(&["--user", "1000:1000"], &["sleep", "600"]);
    let name = &c.name;
    let entered = nsdebug()
        .args(["enter", name, "-S", "0", "--", "sh", "-c", WHO])
        .output()
        .unwrap();
    let docker_exec = docker(&["exec", "-u", "0", name, "sh", "-c", WHO]);
    assert!(entered.status.success(), "{entered:?}");
    assert_eq!(text(&entered.stdout), text(&docker_exec.stdout));
    assert!(text(&entered.stdout).contains("uid=0(root) gid=0(root)"));
}

#[test]
fn pid_mem_and_trace_see_the_processes_of_a_nested_pid_namespace() {
    require_root_and_docker!();
    let h = Hostile::start_split(
        &["--cap-add", "SYS_PTRACE", "--cap-add", "SYS_ADMIN"],
        Some("nested"),
    );
    let name = &h.container.name;
    let helper = run_nsdebug(&["pid", name, "helper"]);
    assert!(
        helper.status.success(),
        "pid finds the nested helper: {helper:?}"
    );
    let host_pid = text(&helper.stdout).trim().to_owned();
    let levels = status_field(&format!("/proc/{host_pid}/status"), "NSpid");
    assert_eq!(
        levels.split_whitespace().count(),
        3,
        "nested: NSpid {levels}"
    );
    let mem = run_nsdebug(&["mem", name, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&mem.stdout).expect("mem JSON");
    assert!(
        report["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .any(|p| p["command"] == "helper"
                && p["host_pid"].as_i64().map(|p| p.to_string()).as_deref()
                    == Some(host_pid.as_str())),
        "mem lists it: {report}"
    );
    // trace -p helper attaches the host's strace to it.
    let mut trace = nsdebug()
        .args([
            "trace",
            name,
            "-p",
            "helper",
            "--",
            "-e",
            "trace=none",
            "-o",
            "/dev/null",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = trace.kill();
    let out = trace.wait_with_output().unwrap();
    assert!(
        text(&out.stderr).contains(&format!("host pid(s) {host_pid}")),
        "{out:?}"
    );
}

#[test]
fn a_refusal_names_the_process_with_its_name_escaped() {
    require_root_and_docker!();
    // Pid 1 gives itself a name that clears the operator's screen.
    let c = Container::start_with(
        &["--cap-add", "SYS_PTRACE"],
        &[
            "sh",
            "-c",
            "n=$(printf '\\033[2Jx'); cp /bin/busybox \"/tmp/$n\"; exec -a sleep \"/tmp/$n\" 600",
        ],
    );
    let out = run_nsdebug(&["enter", &c.name, "--net", "--pid", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        !out.stderr.contains(&0x1b),
        "no raw escape reaches the terminal: {out:?}"
    );
    assert!(
        text(&out.stderr).contains("(\\x1b[2Jx) holds CAP_SYS_PTRACE"),
        "{out:?}"
    );
}

/// Kills and reaps a child when the test ends, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A container whose cgroup is shared with host processes (as rootless Podman's is when it
/// gets no cgroup of its own): `unshare` makes new namespaces but keeps this test's cgroup.
/// The host's processes in that cgroup are not audited as the container's (no host mount
/// namespace, no host's capabilities), while a process of the host's pid namespace that
/// joined the container's network namespace is (it may be the container's: fail closed).
#[test]
fn host_processes_sharing_a_containers_cgroup_are_not_the_containers() {
    require_root_and_docker!();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if own.lines().all(|l| l.ends_with(":/")) {
        // Every hierarchy's root: the model never lists a root, nothing to share.
        assert!(!nsdebug_tests::in_ci(), "this test's cgroups are all roots");
        return eprintln!("SKIP: this test runs in the root of every cgroup hierarchy");
    }
    let ctr = Reaped(
        std::process::Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--net",
                "--uts",
                "--ipc",
            ])
            .args(["sleep", "300"])
            .spawn()
            .expect("unshare runs"),
    );
    // The container's init: unshare's child, in the new pid namespace.
    let mut init = None;
    for _ in 0..100 {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", ctr.0.id()))
            .unwrap_or_default();
        init = children.split_whitespace().next().map(str::to_owned);
        if init.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let init = init.expect("unshare's child");
    let joined = Reaped(
        std::process::Command::new("nsenter")
            .args(["-t", &init, "-n", "sleep", "300"])
            .spawn()
            .expect("nsenter runs"),
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run_nsdebug(&["audit", "--json", "--runtime", "pid", &init]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let container = &doc["containers"][0];
    let processes: Vec<i64> = container["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("no processes: {doc}"))
        .iter()
        .filter_map(|p| p.as_i64())
        .collect();
    let me = i64::from(std::process::id());
    assert!(
        !processes.contains(&me),
        "this test's own process is the host's, not the container's: {processes:?}"
    );
    assert!(
        processes.contains(&i64::from(joined.0.id())),
        "a process in the container's network namespace is the container's: {processes:?}"
    );
    // No finding is about the host's processes (the joined process is in the host's mount
    // namespace, and says so: that one is right).
    let about_host: Vec<&serde_json::Value> = container["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["pids"].as_array().is_some_and(|p| p.contains(&me.into())))
        .collect();
    assert!(about_host.is_empty(), "{about_host:?}");
}
