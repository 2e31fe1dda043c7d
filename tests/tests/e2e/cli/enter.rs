//! `nsdebug enter` and `nsdebug ps` against real containers.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nsdebug_tests::{
    bin_dir, docker, nsdebug, require_root_and_docker, run_nsdebug, wait_bounded, Container,
    PodContainer,
};

/// The status as a shell reports it in `$?`: the exit code, or 128+N for death by signal N
/// (nsdebug either becomes the command, like nsenter, or exits with 128+N for it).
fn shell_status(status: std::process::ExitStatus) -> Option<i32> {
    status.code().or(status.signal().map(|signal| 128 + signal))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn net_sees_the_containers_address_and_not_docker0() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&["enter", &c.name, "--net", "--", "ip", "-o", "addr"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("inet {}/", c.ip())) && !stdout.contains("docker0"),
        "{stdout}"
    );
}

#[test]
fn a_paused_containers_network_is_seen_by_a_host_program_but_nothing_waits_on_it() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    assert!(docker(&["pause", &c.name]).status.success());
    // Bounded: a command that waited on the frozen container would never end by itself.
    let run = |args: &[&str]| {
        let mut child = nsdebug()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if wait_bounded(&mut child, Duration::from_secs(10)).is_none() {
            let _ = child.kill();
        }
        child.wait_with_output().unwrap()
    };
    let net = run(&["enter", &c.name, "--net", "--", "ip", "-o", "addr"]);
    let uts = run(&["enter", &c.name, "--uts", "--pid", "--", "hostname"]);
    // Confined like the container (its seccomp filters are read by stopping it), or joining
    // its cgroup: those would wait until it is thawed, and are refused.
    let confined = run(&["enter", &c.name, "--", "true"]);
    let cgroup = run(&["enter", &c.name, "--net", "--join-cgroup", "--", "true"]);
    docker(&["unpause", &c.name]);
    assert!(net.status.success(), "{net:?}");
    assert!(
        text(&net.stdout).contains(&format!("inet {}/", c.ip())),
        "{net:?}"
    );
    assert!(uts.status.success(), "{uts:?}");
    assert_eq!(text(&uts.stdout).trim(), c.hostname, "{uts:?}");
    for refused in [&confined, &cgroup] {
        assert_eq!(refused.status.code(), Some(125), "{refused:?}");
        assert!(
            text(&refused.stderr).contains(&format!("docker container {} (", c.name))
                && text(&refused.stderr).contains("is paused"),
            "{refused:?}"
        );
    }
}

#[test]
fn uts_gives_the_hostname_by_name_id_and_id_prefix() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let id = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.Id}}", &c.name]).stdout)
        .trim()
        .to_owned();
    for spec in [c.name.as_str(), id.as_str(), &id[..10]] {
        let out = run_nsdebug(&[
            "enter",
            spec,
            "--uts",
            "--",
            "cat",
            "/proc/sys/kernel/hostname",
        ]);
        assert_eq!(text(&out.stdout).trim(), c.hostname, "{spec}: {out:?}");
    }
}

#[test]
fn all_sees_pid_1_and_the_containers_files() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--all",
        "--",
        "sh",
        "-c",
        "tr '\\0' ' ' </proc/1/cmdline; echo; cat /etc/nsdebug-image",
    ]);
    assert_eq!(
        text(&out.stdout),
        "/bin/httpd -f -p 80 -h /www \nnsdebug test image\n",
        "{out:?}"
    );
    // No flag at all means the same.
    let out = run_nsdebug(&["enter", &c.name, "--", "cat", "/etc/nsdebug-image"]);
    assert_eq!(text(&out.stdout), "nsdebug test image\n", "{out:?}");
}

#[test]
fn a_host_network_container_is_entered_and_reported_as_sharing_the_host_netns() {
    require_root_and_docker!();
    let host = Container::start(&["--net=host"]);
    let isolated = Container::start(&[]);
    let out = run_nsdebug(&["enter", &host.name, "--net", "--", "ip", "-o", "link"]);
    assert!(text(&out.stdout).contains("docker0"), "host netns: {out:?}");
    let all = run_nsdebug(&[
        "enter",
        &host.name,
        "--all",
        "--",
        "cat",
        "/etc/nsdebug-image",
    ]);
    assert_eq!(text(&all.stdout), "nsdebug test image\n", "{all:?}");
    let ps = run_nsdebug(&["ps", "--json"]);
    assert!(ps.status.success(), "{ps:?}");
    let listing = text(&ps.stdout);
    let entry = |name: &str| {
        let start = listing
            .find(&format!("\"name\": \"{name}\""))
            .unwrap_or_else(|| panic!("{name} not in {listing}"));
        let end = listing[start..]
            .find('}')
            .map_or(listing.len(), |e| start + e);
        listing[start..end].to_owned()
    };
    assert!(
        entry(&host.name).contains("\"net\""),
        "{}",
        entry(&host.name)
    );
    assert!(
        !entry(&isolated.name).contains("\"net\""),
        "{}",
        entry(&isolated.name)
    );
    assert!(entry(&isolated.name).contains(&format!("\"pid\": {}", isolated.pid)));
    let table = text(&run_nsdebug(&["ps"]).stdout);
    let row = table
        .lines()
        .find(|l| l.contains(&host.name))
        .unwrap_or_default()
        .to_owned();
    assert!(
        row.starts_with("docker") && row.contains(&host.pid.to_string()) && row.contains("net"),
        "{table}"
    );
}

#[test]
fn exit_codes_and_signals_propagate() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    for ns in ["--net", "--all"] {
        let out = run_nsdebug(&["enter", &c.name, ns, "--", "sh", "-c", "exit 9"]);
        assert_eq!(out.status.code(), Some(9), "{ns}");
        let out = run_nsdebug(&["enter", &c.name, ns, "--", "sh", "-c", "kill -KILL $$"]);
        assert_eq!(shell_status(out.status), Some(128 + 9), "{ns}");
    }
    let out = run_nsdebug(&["enter", &c.name, "--all", "--", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    // A signal sent to nsdebug reaches the command, which dies of it: relayed through the
    // pid namespace's middle process (--all), or directly when nsdebug became the command.
    for ns in ["--all", "--net"] {
        let mut running = nsdebug()
            .args(["enter", &c.name, ns, "--", "sleep", "30"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(running.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        let status = running.wait().unwrap();
        assert_eq!(
            shell_status(status),
            Some(128 + libc::SIGTERM),
            "{ns}: {status:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let ps = run_nsdebug(&["enter", &c.name, "--all", "--", "ps"]);
    assert!(!text(&ps.stdout).contains("sleep 30"), "{ps:?}");
}

#[test]
fn the_command_holds_only_fds_0_1_2() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--all",
        "--",
        "sh",
        "-c",
        "ls /proc/$$/fd; true",
    ]);
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{out:?}"
    );
}

#[test]
fn env_root_wd_credentials_and_cgroup_options_apply() {
    require_root_and_docker!();
    let c = Container::start(&[
        "-e",
        "GREETING=from-the-container",
        "-e",
        "TZ=Europe/Paris",
        "-e",
        "LD_PRELOAD=/tmp/evil.so",
        "-e",
        "PATH=/tmp/evil-bin",
    ]);
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--net",
        "--env",
        "--",
        "sh",
        "-c",
        "echo ${TZ:-none} ${GREETING:-not-taken} ${LD_PRELOAD:-no-preload}",
    ]);
    // The host's sh, found through the host's PATH, with only the allowlisted settings of the
    // container's environment (TZ), not its other variables nor its loader variables.
    assert_eq!(
        text(&out.stdout),
        "Europe/Paris not-taken no-preload\n",
        "{out:?}"
    );
    let inside = run_nsdebug(&[
        "enter",
        &c.name,
        "--all",
        "--env",
        "--",
        "/bin/sh",
        "-c",
        "echo $PATH $LD_PRELOAD",
    ]);
    assert_eq!(
        text(&inside.stdout),
        "/tmp/evil-bin /tmp/evil.so\n",
        "inside its own filesystem it is its environment: {inside:?}"
    );
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--net",
        "--root",
        "--",
        "/bin/cat",
        "/etc/nsdebug-image",
    ]);
    assert_eq!(text(&out.stdout), "nsdebug test image\n", "{out:?}");
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--all",
        "--wd=/www",
        "-S",
        "65534",
        "-G",
        "65534",
        "--",
        "/bin/sh",
        "-c",
        "pwd; id -u; id -g",
    ]);
    assert_eq!(text(&out.stdout), "/www\n65534\n65534\n", "{out:?}");
    let id = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.Id}}", &c.name]).stdout)
        .trim()
        .to_owned();
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--net",
        "--join-cgroup",
        "--",
        "cat",
        "/proc/self/cgroup",
    ]);
    let cgroups = text(&out.stdout);
    assert!(
        out.status.success()
            && cgroups
                .lines()
                .all(|l| l.contains(&id) || l.ends_with(":/")),
        "{cgroups}"
    );
    assert!(cgroups.contains(&id), "{cgroups}");
}

#[test]
fn a_terminal_gives_an_interactive_shell() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let command = format!(
        "{} enter {} --all",
        bin_dir().join("nsdebug").display(),
        c.name
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin
        .write_all(b"test -t 0 && test -t 1 && echo marker-$((6*7)) && hostname\nexit 4\n")
        .unwrap();
    let out = script.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("marker-42") && stdout.contains(&c.hostname),
        "a terminal inside: {stdout}"
    );
    assert!(stdout.contains("/ # "), "an interactive prompt: {stdout}");
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn containerd_finds_docker_tasks_and_labelled_containers_by_id() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let id = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.Id}}", &c.name]).stdout)
        .trim()
        .to_owned();
    let out = run_nsdebug(&[
        "enter",
        &id,
        "--runtime",
        "containerd",
        "--uts",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(text(&out.stdout).trim(), c.hostname, "{out:?}");

    // A container that only carries kubelet's labels (no CRI pod behind it) is found by its ID;
    // pods themselves are found through the CRI (cli_pods).
    let pod = PodContainer::start("web", "shop", "app");
    let by_id = run_nsdebug(&["enter", &pod.id, "--", "cat", "/etc/nsdebug-image"]);
    assert_eq!(text(&by_id.stdout), "nsdebug test image\n", "{by_id:?}");
    let ps = text(&run_nsdebug(&["ps"]).stdout);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("containerd") && l.contains(&format!("shop/{}/app", pod.pod))),
        "{ps}"
    );
}

#[test]
fn bad_targets_get_one_clear_line_and_exit_125() {
    require_root_and_docker!();
    let unknown = run_nsdebug(&["enter", "nsdbg-no-such-container", "--", "true"]);
    assert_eq!(unknown.status.code(), Some(125));
    let line = text(&unknown.stderr);
    assert_eq!(line.lines().count(), 1, "{line}");
    for tried in [
        "no such container or namespace",
        "docker (",
        "containerd (",
        "ip netns",
    ] {
        assert!(line.contains(tried), "{tried} missing: {line}");
    }

    let c = Container::start(&[]);
    docker(&["stop", "-t", "0", &c.name]);
    let stopped = run_nsdebug(&["enter", &c.name, "--", "true"]);
    assert_eq!(stopped.status.code(), Some(125));
    assert!(
        text(&stopped.stderr).contains(&format!("docker container {} (", c.name)),
        "{stopped:?}"
    );
    assert!(
        text(&stopped.stderr).contains("is not running (status: exited)"),
        "{stopped:?}"
    );

    let paused = Container::start(&[]);
    docker(&["pause", &paused.name]);
    let frozen = run_nsdebug(&[
        "enter",
        &paused.name,
        "--join-cgroup",
        "--net",
        "--",
        "true",
    ]);
    docker(&["unpause", &paused.name]);
    assert_eq!(frozen.status.code(), Some(125));
    assert!(
        text(&frozen.stderr).contains("is paused (its cgroup is frozen): unpause it first"),
        "{frozen:?}"
    );

    let down = nsdebug()
        .args(["enter", &c.name, "--runtime", "docker", "--", "true"])
        .env("DOCKER_HOST", "unix:///run/nsdbg-no-dockerd.sock")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(125));
    assert!(
        text(&down.stderr).contains("docker (unix:///run/nsdbg-no-dockerd.sock)"),
        "{down:?}"
    );

    let ambiguous = run_nsdebug(&["enter", "", "--runtime", "docker", "--", "true"]);
    assert_eq!(ambiguous.status.code(), Some(125), "{ambiguous:?}");
    for out in [&unknown, &stopped, &down, &ambiguous] {
        assert!(!text(&out.stderr).contains("panicked"), "{out:?}");
    }
}

#[test]
fn a_non_root_caller_is_told_it_needs_root() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin_dir().join("nsdebug"))
        .args(["enter", &c.pid.to_string(), "--net", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {}", c.pid))
            && stderr.contains("permission denied")
            && stderr.contains("root"),
        "{stderr}"
    );
    assert!(out.status.signal().is_none() && !stderr.contains("panicked"));
    // By name: the runtime's socket refuses the user, and the message says so, not "Connect".
    let by_name = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin_dir().join("nsdebug"))
        .args(["enter", &c.name, "--net", "--", "true"])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let stderr = text(&by_name.stderr);
    assert!(
        stderr.contains("permission denied on /var/run/docker.sock (run as root)"),
        "{stderr}"
    );
}

#[test]
fn the_command_may_follow_the_target_without_dashes_as_in_nsenter_and_docker_exec() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&[
        "enter",
        "--uts",
        &c.name,
        "cat",
        "-A",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(
        text(&out.stdout),
        format!("{}$\n", c.hostname),
        "the command's own options stay its own: {out:?}"
    );
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "--uts",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(text(&out.stdout).trim(), c.hostname, "{out:?}");
}

#[test]
fn an_image_without_a_shell_gets_a_hint_and_the_hosts_tools_still_work() {
    require_root_and_docker!();
    let c = nsdebug_tests::shell_less_container();
    let out = nsdebug()
        .args(["enter", &c.name])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let message = text(&out.stderr);
    assert!(
        message.contains("has no shell") && message.contains("--net --pid --uts --ipc"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    let out = run_nsdebug(&["enter", &c.name, "--net", "--", "ip", "-o", "link"]);
    assert!(
        out.status.success() && text(&out.stdout).contains("eth0"),
        "{out:?}"
    );
}

#[test]
fn output_that_cannot_be_written_is_one_line_and_125_not_a_panic() {
    require_root_and_docker!();
    let _c = Container::start(&[]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = nsdebug()
        .arg("ps")
        .stdout(full)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().last(),
        Some("nsdebug: cannot write to stdout: No space left on device (os error 28)"),
        "{stderr}"
    );
}

#[test]
fn users_and_groups_may_be_named_as_in_docker_exec() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&[
        "enter",
        &c.name,
        "-S",
        "nobody",
        "--",
        "/bin/sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(
        text(&out.stdout),
        "65534\n65534\n",
        "the container's nobody and its group: {out:?}"
    );
    let out = run_nsdebug(&[
        "enter", &c.name, "-S", "0", "-G", "nogroup", "--", "/bin/sh", "-c", "id -g",
    ]);
    assert_eq!(text(&out.stdout), "65534\n", "{out:?}");
    let unknown = run_nsdebug(&["enter", &c.name, "-S", "nosuchuser", "--", "true"]);
    assert_eq!(unknown.status.code(), Some(125), "{unknown:?}");
    assert!(
        text(&unknown.stderr)
            .contains("\"nosuchuser\": no such name in the container's /etc/passwd"),
        "{unknown:?}"
    );
}

#[test]
fn verbose_says_how_the_target_was_resolved_and_joined_and_quiet_hides_notices() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&["-v", "enter", &c.name, "--net", "--", "true"]);
    let log = text(&out.stderr);
    assert!(
        log.contains(&format!("{} is docker container {}", c.name, c.name)),
        "{log}"
    );
    assert!(
        log.contains("joining the net namespace;") && log.contains("host powers"),
        "{log}"
    );
    let quiet = run_nsdebug(&[
        "flow",
        &c.name,
        "-q",
        "-c",
        "--duration",
        "300ms",
        "port",
        "80",
    ]);
    assert!(
        quiet.status.success() && !text(&quiet.stderr).contains("capturing on"),
        "{quiet:?}"
    );
    let normal = run_nsdebug(&["flow", &c.name, "-c", "--duration", "300ms", "port", "80"]);
    assert!(text(&normal.stderr).contains("capturing on"), "{normal:?}");
}

#[test]
fn nsenter_and_docker_exec_forms_are_taken_or_explained() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let pid = c.pid.to_string();
    let out = run_nsdebug(&[
        "enter",
        "-t",
        &pid,
        "--uts",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(
        text(&out.stdout).trim(),
        c.hostname,
        "nsenter's -t PID: {out:?}"
    );
    let n = run_nsdebug(&["enter", "-t", &pid, "-n", "ip", "a"]);
    assert_eq!(n.status.code(), Some(125), "{n:?}");
    assert!(
        text(&n.stderr).contains("for nsenter's -n say --net"),
        "{n:?}"
    );
    let it = nsdebug()
        .args([
            "enter",
            "-it",
            &c.name,
            "--uts",
            "cat",
            "/proc/sys/kernel/hostname",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        text(&it.stdout).trim(),
        c.hostname,
        "docker exec's -it: {it:?}"
    );
    assert!(text(&it.stderr).contains("-i is not needed"), "{it:?}");
}

#[test]
fn tty_in_a_container_program_names_its_terminal_like_docker_exec_it() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    // What a user checks: the name, that it exists there, and what it is (owner, group, mode).
    let probe = r#"tty; [ -e "$(tty)" ] && echo exists-inside; stat -c %F:%u:%g:%a "$(tty)""#;
    let (ours, status) = nsdebug_tests::on_a_terminal(
        &format!(
            "{} enter {} -- sh -c '{probe}'",
            nsdebug_tests::nsdebug_path().display(),
            c.name
        ),
        30,
    );
    assert_eq!(status, Some(0), "{ours}");
    let lines: Vec<&str> = ours.lines().collect();
    let name_line = |lines: &[&str]| {
        lines
            .iter()
            .find(|l| l.starts_with("/dev/") || l.contains("not a tty"))
            .map(|l| l.to_string())
    };
    let name = name_line(&lines).unwrap_or_default();
    assert!(
        name.strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "tty names a /dev/pts/N: {ours}"
    );
    assert!(lines.contains(&"exists-inside"), "{ours}");
    let (docker_exec, status) =
        nsdebug_tests::on_a_terminal(&format!("docker exec -it {} sh -c '{probe}'", c.name), 30);
    assert_eq!(status, Some(0), "{docker_exec}");
    let kind = |shown: &str| {
        shown
            .lines()
            .find(|l| l.starts_with("character special file:"))
            .map(str::to_owned)
    };
    assert!(kind(&ours).is_some(), "{ours}");
    assert_eq!(
        kind(&ours),
        kind(&docker_exec),
        "as docker exec -it: {docker_exec}"
    );
    assert!(
        name_line(&docker_exec.lines().collect::<Vec<_>>())
            .is_some_and(|l| l.starts_with("/dev/pts/")),
        "{docker_exec}"
    );
}

#[test]
fn the_containers_terminal_follows_the_window_size_and_takes_ctrl_c() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let nsdebug = nsdebug_tests::nsdebug_path().display().to_string();
    // Our terminal's size at the start, then a resize while the program runs (SIGWINCH).
    // stty sets rows and cols with one ioctl each, so two SIGWINCHs come: the trap lets
    // the second land before it reads the size.
    let (shown, status) = nsdebug_tests::on_a_terminal(
        &format!(
            "stty rows 33 cols 77; (sleep 2; stty rows 40 cols 90 </dev/tty) & \
             {nsdebug} -q enter {} -- sh -c 'tty; stty size; \
             trap \"sleep 1; echo resized; stty size; exit 0\" WINCH; sleep 20 & wait'",
            c.name
        ),
        30,
    );
    assert_eq!(status, Some(0), "{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("/dev/pts/")), "{shown}");
    assert!(lines.contains(&"33 77"), "the size at the start: {shown}");
    let resized = lines.iter().position(|l| *l == "resized");
    assert!(
        resized.is_some_and(|at| lines.get(at + 1) == Some(&"40 90")),
        "the new size reached the program: {shown}"
    );

    // Ctrl-C typed at our terminal is SIGINT for the program, from its own terminal.
    let mut script = std::process::Command::new("timeout")
        .args(["30", "script", "-qec"])
        .arg(format!(
            "{nsdebug} -q enter {} -- sh -c 'trap \"echo interrupted; exit 7\" INT; echo ready; \
             sleep 20 & wait'",
            c.name
        ))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stdin.write_all(b"\x03").unwrap();
    let out = script.wait_with_output().unwrap();
    drop(stdin);
    let shown = text(&out.stdout);
    assert!(shown.contains("interrupted"), "{shown}");
    assert_eq!(out.status.code(), Some(7), "{shown}");
}
