//! `nsdebug pid`: the host pids of a container's processes, for the host's tracers.

use nsdebug_tests::{docker, require_root_and_docker, run_nsdebug, Container};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn container_pids_map_to_the_host_pids_the_kernel_gives() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let init = run_nsdebug(&["pid", &c.name, "1"]);
    assert_eq!(
        text(&init.stdout).trim(),
        c.pid.to_string(),
        "pid 1 is what docker inspect says: {init:?}"
    );

    assert!(docker(&["exec", "-d", &c.name, "sleep", "60"])
        .status
        .success());
    let mut inside = String::new();
    for _ in 0..50 {
        inside = text(&docker(&["exec", &c.name, "pidof", "sleep"]).stdout)
            .trim()
            .to_owned();
        if !inside.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let by_name = run_nsdebug(&["pid", &c.name, "sleep"]);
    let host: i32 = text(&by_name.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("one host pid: {by_name:?}"));
    let status = std::fs::read_to_string(format!("/proc/{host}/status")).unwrap();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap();
    assert_eq!(
        nspid.split_whitespace().last(),
        Some(inside.as_str()),
        "its NSpid ends in its container pid"
    );
    assert_eq!(
        text(&run_nsdebug(&["pid", &c.name, &inside]).stdout).trim(),
        host.to_string()
    );

    let json = run_nsdebug(&["pid", &c.name, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["target"]["name"], c.name.as_str(), "{doc}");
    assert_eq!(doc["target"]["runtime"], "docker", "{doc}");
    let listed: Vec<(i64, i64)> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["container_pid"].as_i64().unwrap(),
                p["host_pid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        listed.contains(&(1, i64::from(c.pid))) && listed.len() >= 2,
        "{listed:?}"
    );
    let missing = run_nsdebug(&["pid", &c.name, "nosuchprocess"]);
    assert_eq!(missing.status.code(), Some(125), "{missing:?}");
}

#[test]
fn the_hosts_strace_sees_the_accept_of_a_request_sent_during_the_trace() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let trace = nsdebug_tests::nsdebug()
        .args([
            "trace",
            &c.name,
            "-p",
            "1",
            "--",
            "-e",
            "trace=accept,accept4",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(
        nsdebug_tests::http_answers(&c.ip(), 2),
        "the request is served"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill(2) on our own child (now strace, which detaches on SIGINT).
    unsafe { libc::kill(trace.id() as i32, libc::SIGINT) };
    let out = trace.wait_with_output().unwrap();
    let log = text(&out.stderr);
    assert!(log.contains(&format!("host pid(s) {}", c.pid)), "{log}");
    assert!(
        log.lines().any(|l| l
            .trim_start_matches(|c: char| c != 'a')
            .starts_with("accept")
            && l.contains(") = ")),
        "{log}"
    );
}

/// `nsdebug pid NAME 1` on a `--pid=host` container: its init's host pid, not a refusal.
#[test]
fn pid_1_of_a_pid_host_container_is_its_inits_host_pid() {
    require_root_and_docker!();
    let c = Container::start(&["--pid=host"]);
    let out = run_nsdebug(&["pid", &c.name, "1"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), c.pid.to_string(), "{out:?}");
    let all = run_nsdebug(&["pid", &c.name]);
    let listing = text(&all.stdout);
    assert!(all.status.success(), "{all:?}");
    assert!(
        !listing
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("1")),
        "the host's init is not the container's:\n{listing}"
    );
}
