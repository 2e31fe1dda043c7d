//! `nsdebug audit` on pairs of real containers: each finding appears exactly where Docker was
//! asked for the weakening, never in the default container, with the kernel's values.

use nsdebug_tests::{docker, require_root_and_docker, run_nsdebug, Container};

/// (finding id, severity, evidence) of one container, from `nsdebug audit NAME --json`.
fn findings(name: &str) -> Vec<(String, String, String)> {
    let out = run_nsdebug(&["audit", name, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if let Some(id) = line.strip_prefix("\"id\": \"") {
            let id = id.trim_end_matches("\",").to_owned();
            let severity = lines.next().unwrap().trim_start_matches("\"severity\": \"").trim_end_matches("\",").to_owned();
            let _title = lines.next();
            let evidence = lines.next().unwrap().trim_start_matches("\"evidence\": \"").trim_end_matches('"').to_owned();
            found.push((id, severity, evidence));
        }
    }
    found
}

fn has(found: &[(String, String, String)], id: &str, severity: &str) -> bool {
    found.iter().any(|(i, s, _)| i == id && s == severity)
}

fn inspect(name: &str, format: &str) -> String {
    String::from_utf8_lossy(&docker(&["inspect", "-f", format, name]).stdout).trim().to_owned()
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
        (&["--security-opt", "seccomp=unconfined"][..], "seccomp", "high"),
        (&["-v", "/var/run/docker.sock:/var/run/docker.sock"][..], "mount.runtime-socket", "critical"),
        (&["--device-cgroup-rule", "a *:* rwm"][..], "devices", "critical"),
        (&["-v", "/etc:/hostetc"][..], "mount.host-path", "critical"),
        (&["--ipc=host"][..], "namespace.ipc", "medium"),
    ] {
        assert!(!base.iter().any(|(i, _, _)| i == id), "{id} in the default container: {base:?}");
        let weakened = Container::start(args);
        let found = findings(&weakened.name);
        assert!(has(&found, id, severity), "{args:?}: no {severity} {id} in {found:?}");
    }
    // Present in the default container too: Docker's defaults are what they are.
    assert!(has(&base, "cgroup.pids", "medium") && has(&base, "root", "high") && has(&base, "no-new-privs", "low"), "{base:?}");
}

#[test]
fn limits_user_and_no_new_privileges_remove_their_findings_with_dockers_values() {
    require_root_and_docker!();
    let limited = Container::start(&["--pids-limit", "100", "--memory", "64m", "--security-opt", "no-new-privileges", "--user", "1000"]);
    let found = findings(&limited.name);
    let pids = found.iter().find(|(i, _, _)| i == "cgroup.pids").unwrap();
    assert_eq!(pids.1, "info");
    assert!(pids.2.ends_with(&format!("= {}", inspect(&limited.name, "{{.HostConfig.PidsLimit}}"))), "{pids:?}");
    let memory = found.iter().find(|(i, _, _)| i == "cgroup.memory").unwrap();
    assert_eq!(memory.1, "info");
    assert!(memory.2.ends_with(&format!("= {}", inspect(&limited.name, "{{.HostConfig.Memory}}"))), "{memory:?}");
    assert!(!found.iter().any(|(i, _, _)| i == "no-new-privs" || i == "root"), "{found:?}");
    // The capability list read from the kernel is Docker's default set, nothing more.
    assert!(!found.iter().any(|(i, _, _)| i == "caps.extra"), "{found:?}");
}

#[test]
fn fail_on_gates_the_exit_status() {
    require_root_and_docker!();
    let c = Container::start(&["--net=host"]);
    assert_eq!(run_nsdebug(&["audit", &c.name, "--fail-on", "high"]).status.code(), Some(3));
    assert_eq!(run_nsdebug(&["audit", &c.name, "--fail-on", "critical"]).status.code(), Some(0));
    let table = String::from_utf8_lossy(&run_nsdebug(&["audit", &c.name]).stdout).into_owned();
    assert!(table.contains("namespace.net") && table.contains("--net=host"), "{table}");
    let all = run_nsdebug(&["audit", "--json"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains(&c.name), "every container when none is named");
}
