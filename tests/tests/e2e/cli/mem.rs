//! `nsdebug mem` and the audit's OOM findings, on containers the OOM killer really acts on.

use nsdebug_tests::{docker, require_root_and_docker, run_nsdebug, Container};

fn json(args: &[&str]) -> serde_json::Value {
    let out = run_nsdebug(args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn an_oom_kill_is_counted_and_the_limit_shown() {
    require_root_and_docker!();
    let c = Container::start(&["--memory", "32m"]);
    let before = json(&["mem", &c.name, "--json"]);
    assert_eq!(before["memory"]["limit"], 32 * 1024 * 1024, "{before}");
    assert_eq!(before["memory"]["oom_kills"], 0, "{before}");
    assert_eq!(
        (
            before["target"]["name"].as_str(),
            before["target"]["pid"].as_i64()
        ),
        (Some(c.name.as_str()), Some(i64::from(c.pid)))
    );
    // A process inside allocates past the limit (busybox tail keeps a line without newline
    // in memory), marked as the OOM killer's first choice so that the init survives.
    let hog = docker(&[
        "exec",
        &c.name,
        "sh",
        "-c",
        "echo 1000 > /proc/self/oom_score_adj; head -c 200m /dev/zero | tail >/dev/null",
    ]);
    assert_eq!(hog.status.code(), Some(137), "killed by SIGKILL: {hog:?}");
    let after = json(&["mem", &c.name, "--json"]);
    assert!(
        after["memory"]["oom_kills"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{after}"
    );
    assert!(
        after["memory"]["peak"].as_u64().unwrap() >= 30 * 1024 * 1024,
        "{after}"
    );
    assert_eq!(after["processes"][0]["container_pid"], 1, "{after}");
    let audit = run_nsdebug(&["audit", &c.name, "--json"]);
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("memory.oom-kills"),
        "{audit:?}"
    );
}

#[test]
fn a_disabled_oom_killer_is_high_without_a_limit_and_medium_with_one() {
    require_root_and_docker!();
    for (extra, severity) in [
        (&["--oom-kill-disable"][..], "high"),
        (&["--oom-kill-disable", "--memory", "64m"][..], "medium"),
    ] {
        let c = Container::start(extra);
        let doc = json(&["audit", &c.name, "--json"]);
        let findings = doc["containers"][0]["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let found = findings
            .iter()
            .find(|f| f["id"] == "memory.oom-kill-disabled");
        assert_eq!(
            found.map(|f| f["severity"].clone()),
            Some(serde_json::json!(severity)),
            "{extra:?}: {doc}"
        );
        assert_eq!(
            json(&["mem", &c.name, "--json"])["memory"]["oom_kill_disabled"],
            true
        );
    }
    let default = Container::start(&[]);
    let doc = run_nsdebug(&["audit", &default.name, "--json"]);
    assert!(
        !String::from_utf8_lossy(&doc.stdout).contains("memory.oom-kill-disabled"),
        "{doc:?}"
    );
}

#[test]
fn ps_shows_image_ip_oom_kills_and_with_a_the_containers_the_oom_killer_ended() {
    require_root_and_docker!();
    let c = Container::start(&["--memory", "32m"]);
    let hog = docker(&[
        "exec",
        &c.name,
        "sh",
        "-c",
        "echo 1000 > /proc/self/oom_score_adj; head -c 200m /dev/zero | tail >/dev/null",
    ]);
    assert_eq!(hog.status.code(), Some(137), "{hog:?}");
    let listing = String::from_utf8_lossy(&run_nsdebug(&["ps", &c.name]).stdout).into_owned();
    let line = listing
        .lines()
        .find(|l| l.contains(&c.name))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.contains(nsdebug_tests::IMAGE)
            && line.contains(&c.ip())
            && line.contains(" OOM kill")
            && !line.contains("(1 OOM kills)"),
        "{listing}"
    );
    assert_eq!(
        listing.lines().count(),
        2,
        "the name filter keeps only it: {listing}"
    );

    // A container whose init the OOM killer killed: gone from ps, shown by ps -a as Docker
    // recorded it.
    let name = nsdebug_tests::unique_name("oom");
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let run = docker(&[
        "run",
        "--name",
        &name,
        "--memory",
        "16m",
        nsdebug_tests::IMAGE,
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail",
    ]);
    let _remove = Remove(name.clone());
    assert_eq!(run.status.code(), Some(137), "{run:?}");
    let recorded =
        String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.OOMKilled}}", &name]).stdout)
            .trim()
            .to_owned();
    // Docker learns of the OOM kill through an event that can lose the race with the exit:
    // what nsdebug shows must be what Docker recorded, either way.
    assert!(recorded == "true" || recorded == "false", "{recorded}");
    assert!(
        !String::from_utf8_lossy(&run_nsdebug(&["ps", &name]).stdout).contains(&name),
        "not running: not in ps"
    );
    let all = json(&["ps", "-a", &name, "--json"]);
    assert_eq!(all[0]["oom_killed"], recorded == "true", "{all}");
    assert_eq!(all[0]["exit_code"], 137, "{all}");
}

#[test]
fn a_memory_limit_above_the_hosts_ram_is_no_limit() {
    require_root_and_docker!();
    let ram_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let over = format!("{}m", ram_kib / 1024 * 2);
    let c = Container::start(&["--memory", &over]);
    let doc = json(&["audit", &c.name, "--json"]);
    let findings = doc["containers"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let memory = findings
        .iter()
        .find(|f| f["id"] == "cgroup.memory")
        .cloned()
        .unwrap_or_default();
    assert_eq!(memory["severity"], "medium", "{doc}");
    assert!(
        memory["title"]
            .as_str()
            .unwrap_or("")
            .contains("more than the host's RAM"),
        "{doc}"
    );
    let within = Container::start(&["--memory", "64m"]);
    let doc = json(&["audit", &within.name, "--json"]);
    let findings = doc["containers"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let memory = findings
        .iter()
        .find(|f| f["id"] == "cgroup.memory")
        .cloned()
        .unwrap_or_default();
    assert_eq!(memory["severity"], "info", "{doc}");
}

/// `docker inspect -f '{{.State.OOMKilled}}'` is asked of containers that died: `mem` says
/// what is known of one (exit, OOM-killed, when, its limit) instead of "is not running".
#[test]
fn mem_of_a_container_the_oom_killer_ended_says_so() {
    require_root_and_docker!();
    let c = Container::start_with(
        &["--memory", "8m"],
        &["sh", "-c", "head -c 100m /dev/zero | tail"],
    );
    // Wait until it exited. Docker records the exit and its OOM event one after the other,
    // and on a busy cgroup-v1 host it has missed the event (OOMKilled false for a container
    // the kernel killed): the kernel log is mem's second witness, so the user's answer must
    // be "yes" either way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let state = docker(&["inspect", "-f", "{{.State.Status}}", &c.name]);
        let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
        if state == "exited" || std::time::Instant::now() >= deadline {
            break state;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status, "exited", "the container did not end within 60 s");
    let runtime_says = docker(&["inspect", "-f", "{{.State.OOMKilled}}", &c.name]);
    let runtime_says = String::from_utf8_lossy(&runtime_says.stdout).trim() == "true";
    let out = run_nsdebug(&["mem", &c.name]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for line in [
        "is not running (status: exited)",
        "exit code   137 (killed by signal 9)",
        "OOM killed  yes",
        "limit       8.0 MiB",
        "finished    20",
    ] {
        assert!(shown.contains(line), "no '{line}' in:\n{shown}");
    }
    let report = json(&["mem", &c.name, "--json"]);
    assert_eq!(report["running"], false, "{report}");
    // Docker's own word, as recorded, and the kernel's: at least one of them saw the kill.
    assert_eq!(report["target"]["oom_killed"], runtime_says, "{report}");
    assert!(
        runtime_says || report["kernel_oom_kills"].as_u64().unwrap_or(0) >= 1,
        "neither Docker nor the kernel log saw the OOM kill: {report}"
    );
    assert_eq!(
        report["target"]["memory_limit"],
        8 * 1024 * 1024,
        "{report}"
    );
}

/// A `--pid=host` container's processes are those of its cgroup, not every host process.
#[test]
fn mem_of_a_pid_host_container_lists_its_cgroups_processes_only() {
    require_root_and_docker!();
    let c = Container::start(&["--pid=host"]);
    let report = json(&["mem", &c.name, "--json", "--top", "1000"]);
    let processes = report["processes"].as_array().expect("processes");
    let host_pids: Vec<i64> = processes
        .iter()
        .filter_map(|p| p["host_pid"].as_i64())
        .collect();
    assert!(host_pids.contains(&i64::from(c.pid)), "{report}");
    assert!(
        !host_pids.contains(&1),
        "the host's init is not the container's: {report}"
    );
    assert!(
        !host_pids.contains(&i64::from(std::process::id())),
        "this test is not in the container: {report}"
    );
    assert!(processes.len() <= 3, "{report}");
}
