//! `nsdebug debug` against containers that try to turn the session against the operator:
//! planted symlinks at `$CTR_ROOT`, an `rshared` volume, a uid-65534 watcher without
//! capabilities, a container that stops the session's processes; and a session whose nsdebug
//! is killed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nsdebug_tests::{
    docker, hostile_fixture_dir, nsdebug, require_root_and_docker, run_nsdebug, unique_name,
    Container, Spawned,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The pids of every process whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| text(&c).replace('\0', " ").contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// The `sleep` processes among [`processes_with`] `marker`.
fn sleeps_with(marker: &str) -> Vec<i32> {
    processes_with(marker)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
        .collect()
}

/// A number no other test's `sleep` uses.
fn unique_seconds() -> String {
    let name = unique_name("s");
    let digits: String = name.chars().filter(char::is_ascii_digit).collect();
    format!("9{}", &digits[digits.len().saturating_sub(7)..])
}

#[test]
fn ctr_root_never_leads_to_host_files_read_or_append() {
    require_root_and_docker!();
    let created = format!("/tmp/{}-created-by-symlink", unique_name("h"));
    let plant = format!(
        "ln -s /etc/shadow /tmp/notes.txt && ln -s {created} /tmp/app.log && \
         ln -s ../../../../../../etc/shadow /tmp/relative.txt && exec sleep 3600"
    );
    let c = Container::start_with(&[], &["sh", "-c", &plant]);
    std::thread::sleep(Duration::from_millis(300));
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let first = shadow.lines().next().unwrap_or("root:").to_owned();

    for rw in [false, true] {
        let mut args = vec!["debug", &c.name];
        if rw {
            args.push("--rw");
        }
        args.extend([
            "--",
            "sh",
            "-c",
            "readlink $CTR_ROOT/tmp/notes.txt; cat $CTR_ROOT/tmp/notes.txt; \
             cat $CTR_ROOT/tmp/relative.txt; echo x >> $CTR_ROOT/tmp/app.log; \
             echo written > $CTR_ROOT/tmp/new-file && echo WROTE",
        ]);
        let out = run_nsdebug(&args);
        let stdout = text(&out.stdout);
        // The container's files are there (the link itself reads), but no link is followed.
        assert!(stdout.starts_with("/etc/shadow\n"), "rw={rw}: {out:?}");
        assert!(
            !stdout.contains(&first) && !stdout.contains("root:"),
            "rw={rw}: the host's shadow file was printed: {out:?}"
        );
        assert!(
            !std::path::Path::new(&created).exists(),
            "rw={rw}: appending through $CTR_ROOT created the host file {created}"
        );
        // Writing is --rw's alone, and lands in the container.
        let inside = docker(&["exec", &c.name, "cat", "/tmp/new-file"]);
        assert_eq!(stdout.contains("WROTE"), rw, "{out:?}");
        assert_eq!(text(&inside.stdout).trim() == "written", rw, "{inside:?}");
    }
    let _ = std::fs::remove_file(&created);
    // `enter` has no $CTR_ROOT: --rw there is a mistake, said before anything is looked up.
    let enter = run_nsdebug(&["enter", &c.name, "--rw", "--", "true"]);
    assert_eq!(enter.status.code(), Some(125), "{enter:?}");
    assert!(
        text(&enter.stderr).contains("--rw is for nsdebug debug"),
        "{enter:?}"
    );
}

/// A directory of the host bind-mounted on itself and made shared, unmounted when dropped.
struct SharedDir(String);

impl SharedDir {
    fn new() -> SharedDir {
        let dir = format!("/tmp/{}", unique_name("shared"));
        std::fs::create_dir_all(format!("{dir}/sub")).unwrap();
        let shared = SharedDir(dir.clone());
        for args in [vec!["--bind", &dir, &dir], vec!["--make-shared", &dir]] {
            let out = std::process::Command::new("mount")
                .args(&args)
                .output()
                .unwrap();
            assert!(out.status.success(), "mount {args:?}: {out:?}");
        }
        shared
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l", &self.0])
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_mount_made_in_the_session_reaches_neither_host_nor_container() {
    require_root_and_docker!();
    let dir = SharedDir::new();
    let volume = format!("{}:/data:rshared", dir.0);
    let c = Container::start_with(&["-v", &volume], &["sleep", "3600"]);
    let fstype = unique_name("leak");
    let script = format!(
        "mount -t tmpfs {fstype} $CTR_ROOT/data/sub && grep -c {fstype} /proc/self/mountinfo \
         && echo MOUNTED && sleep 2"
    );
    let mut session = Spawned(
        nsdebug()
            .args(["debug", &c.name, "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = session.0.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "MOUNTED")
        .collect();
    assert_eq!(lines, vec!["1".to_owned()], "the session made its mount");
    let leaked = |when: &str| {
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let container = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid)).unwrap();
        assert!(!host.contains(&fstype), "{when}: on the host: {host}");
        assert!(
            !container.contains(&fstype),
            "{when}: in the container: {container}"
        );
    };
    leaked("during the session");
    let status = session.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    leaked("after the session");
}

#[test]
fn killing_nsdebug_leaves_no_process_of_the_session() {
    require_root_and_docker!();
    // In a pid namespace of the container's, and in the host's (--pid=host: the session's
    // reaper is then nsdebug's own child).
    for extra in [&[][..], &["--pid=host"][..]] {
        killed_session_leaves_nothing(extra);
    }
}

fn killed_session_leaves_nothing(extra: &[&str]) {
    let c = Container::start_with(extra, &["sleep", "3600"]);
    let seconds = unique_seconds();
    // A daemon-like grandchild (double fork), a background job and the foreground program.
    let script = format!("(sleep {seconds} &); sleep {seconds} & sleep {seconds}");
    let mut session = Spawned(
        nsdebug()
            .args(["debug", &c.name, "--", "sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let marker = format!("sleep {seconds}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeps_with(&marker).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sleeps_with(&marker).len(),
        3,
        "{extra:?}: the session started its three sleeps"
    );
    session.0.kill().unwrap(); // SIGKILL
    let _ = session.0.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = processes_with(&marker)
        .iter()
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("{pid} {}", comm.trim())
        })
        .collect();
    assert!(
        left.is_empty(),
        "{extra:?}: processes of the session left after SIGKILL: {left:?}"
    );
}

#[test]
fn a_session_program_cannot_become_a_uid_the_container_has() {
    require_root_and_docker!();
    let volume = format!("{}:/hostile:ro", hostile_fixture_dir().display());
    // The container's processes: uid 65534, no capability at all; its watcher tries every
    // process that appears (environ, mem, cwd, fds, ptrace) and logs what works.
    let c = Container::start_with(
        &["-v", &volume, "--user", "65534:65534", "--cap-drop", "ALL"],
        &["/hostile/watcher"],
    );
    let log = || text(&docker(&["exec", &c.name, "cat", "/tmp/watch.log"]).stdout);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log().contains("ready") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run_nsdebug(&[
        "debug",
        &c.name,
        "--",
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "/bin/sleep",
        "2",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let log = log();
    let reached: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/sleep") || l.contains("setpriv") || l.contains("CTR_ROOT"))
        .collect();
    assert!(
        reached.is_empty(),
        "a session program became uid 65534 and the container reached it: {reached:?}"
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("Operation not permitted"),
        "the uid change is refused: {out:?}"
    );
}

#[test]
fn a_process_stopped_deep_in_the_session_is_reported() {
    require_root_and_docker!();
    let c = Container::start_with(&[], &["sleep", "3600"]);
    let seconds = unique_seconds();
    let script = format!("sleep {seconds} | cat; echo done");
    let mut session = Spawned(
        nsdebug()
            .args(["debug", &c.name, "--", "sh", "-c", &script])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let marker = format!("sleep {seconds}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleep = loop {
        match sleeps_with(&marker).first().copied() {
            Some(pid) => break pid,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => panic!("the session's sleep did not start"),
        }
    };
    // Its pid as the container sees it (the last NSpid field).
    let status = std::fs::read_to_string(format!("/proc/{sleep}/status")).unwrap();
    let inner = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_owned();
    let stop = docker(&["exec", &c.name, "kill", "-STOP", &inner]);
    assert!(stop.status.success(), "{stop:?}");
    std::thread::sleep(Duration::from_millis(1500));
    docker(&["exec", &c.name, "kill", "-KILL", &inner]);
    let mut stderr = String::new();
    use std::io::Read;
    session
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = session.0.wait();
    assert!(
        stderr.contains(&format!("session process {sleep} (sleep) is stopped")),
        "{stderr}"
    );
}

/// The `NSpid:` of `/proc/PID/status`: the pid in each namespace, outermost first.
fn ns_pids(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_session_whose_top_process_the_container_kills_or_stops_leaves_nothing() {
    require_root_and_docker!();
    // The container kills the outermost session process it sees; or stops it, and then
    // nsdebug is killed.
    for stop in [false, true] {
        container_turns_on_the_session(stop);
    }
}

fn container_turns_on_the_session(stop: bool) {
    let c = Container::start_with(&[], &["sleep", "3600"]);
    let seconds = unique_seconds();
    let script = format!("sleep {seconds} & sleep {seconds}");
    let mut session = Spawned(
        nsdebug()
            .args(["debug", &c.name, "--", "sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let marker = format!("sleep {seconds}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeps_with(&marker).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let sleeps = sleeps_with(&marker);
    assert_eq!(
        sleeps.len(),
        2,
        "stop={stop}: the session started its sleeps"
    );
    // The outermost process of the session that the container sees (two NSpid entries).
    let mut top = sleeps[0];
    while ns_pids(parent_of(top)).len() >= 2 {
        top = parent_of(top);
    }
    let inner = ns_pids(top).last().copied().unwrap().to_string();
    let signal = if stop { "-STOP" } else { "-KILL" };
    let sent = docker(&["exec", &c.name, "kill", signal, &inner]);
    assert!(sent.status.success(), "{sent:?}");
    if stop {
        std::thread::sleep(Duration::from_millis(300));
        session.0.kill().unwrap(); // SIGKILL
    }
    let _ = session.0.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sleeps_with(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = sleeps_with(&marker)
        .iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            format!("{pid}: {stat}")
        })
        .collect();
    assert!(
        left.is_empty(),
        "stop={stop}: the session's sleeps outlived what the container did to {top}: {left:?}"
    );
}
