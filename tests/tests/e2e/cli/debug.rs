//! `nsdebug debug`: the host's tools with the container's view, on an image with no shell and
//! no libc (a single static `/pause` as pid 1), and against the hostile fixture.

use std::collections::BTreeSet;

use nsdebug_tests::{nsdebug, require_root_and_docker, run_nsdebug, shell_less_container, Hostile};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The mount points of a mountinfo text (what a change of mounts would show).
fn mount_points(mountinfo: &str) -> BTreeSet<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_shell_less_container_is_seen_with_the_hosts_tools_and_nothing_is_left_behind() {
    require_root_and_docker!();
    let c = shell_less_container();
    let mountinfo = format!("/proc/{}/mountinfo", c.pid);
    let before = std::fs::read_to_string(&mountinfo).unwrap();

    // ps (the host's) over a fresh /proc of the container's pid namespace: its pause and ps.
    let ps = run_nsdebug(&["debug", &c.name, "--", "ps", "-e", "-o", "pid=,comm="]);
    assert!(ps.status.success(), "{ps:?}");
    let listed: Vec<(String, String)> = text(&ps.stdout)
        .lines()
        .filter_map(|l| {
            l.trim()
                .split_once(char::is_whitespace)
                .map(|(p, c)| (p.to_owned(), c.trim().to_owned()))
        })
        .collect();
    assert_eq!(
        listed.first(),
        Some(&("1".to_owned(), "pause".to_owned())),
        "{listed:?}"
    );
    // ps and the session's reaper (a process of nsdebug's, in the container's pid namespace).
    assert!(
        listed
            .iter()
            .skip(1)
            .all(|(_, comm)| comm == "ps" || comm == "nsdebug"),
        "only the container's processes and the session's: {listed:?}"
    );

    let ip = run_nsdebug(&["debug", &c.name, "--", "ip", "-o", "-4", "addr"]);
    assert!(
        text(&ip.stdout).contains(&format!("inet {}/", c.ip())),
        "{ip:?}"
    );

    let files = run_nsdebug(&[
        "debug",
        &c.name,
        "--",
        "sh",
        "-c",
        "cd $CTR_ROOT && ls && cat /etc/resolv.conf",
    ]);
    let out = text(&files.stdout);
    assert!(
        out.lines().any(|l| l == "pause"),
        "its files at $CTR_ROOT: {files:?}"
    );
    let resolv = std::fs::read_to_string(format!("/proc/{}/root/etc/resolv.conf", c.pid)).unwrap();
    assert!(
        out.ends_with(&resolv),
        "its resolv.conf: {out:?} vs {resolv:?}"
    );

    // Nothing changed in the container's mount namespace, nothing remains on the host.
    let after = std::fs::read_to_string(&mountinfo).unwrap();
    assert_eq!(mount_points(&before), mount_points(&after));
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("/run/nsdebug/ctr") && !host.contains(" /run/nsdebug "),
        "{host}"
    );
    let procs = std::fs::read_to_string(format!("/proc/{}/task/{}/children", c.pid, c.pid))
        .unwrap_or_default();
    assert!(
        procs.trim().is_empty(),
        "no process left in the container: {procs:?}"
    );
}

#[test]
fn a_debug_session_is_out_of_a_hostile_containers_reach() {
    require_root_and_docker!();
    let h = Hostile::start(&[]);
    let out = nsdebug()
        .args(["debug", &h.container.name, "--", "/bin/sleep", "2"])
        .env("NSDEBUG_OPERATOR_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = h.log();
    assert!(
        log.contains("ready") && !log.contains("hunter2") && !log.contains("/bin/sleep"),
        "{log}"
    );
    // Its planted `ip` is never what the session runs: the host's PATH, the host's files.
    let ip = run_nsdebug(&["debug", &h.container.name, "--", "ip", "-V"]);
    assert!(
        text(&ip.stdout).contains("iproute2") && !text(&ip.stdout).contains("PLANTED"),
        "{ip:?}"
    );
    let tracer = Hostile::start(&["--cap-add", "SYS_PTRACE"]);
    let refused = run_nsdebug(&["debug", &tracer.container.name, "--", "true"]);
    assert_eq!(refused.status.code(), Some(125), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("CAP_SYS_PTRACE"),
        "{refused:?}"
    );
}
