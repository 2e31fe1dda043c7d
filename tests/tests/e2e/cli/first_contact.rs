//! What a new user meets first: the headline when not root, `-v` saying what it promises,
//! help and man texts that tell the truth, usage errors that are usage errors.

use std::process::{Command, Output};

use nsdebug_tests::{nsdebug_path, require_root_and_docker, run_nsdebug, Container};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `nsdebug ARGS` as uid 65534 without capabilities or groups (`setpriv`).
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(nsdebug_path())
        .args(args)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("setpriv")
}

const HEADLINE: &str = "nsdebug: nsdebug needs root (CAP_SYS_ADMIN, CAP_SYS_PTRACE)";

#[test]
fn not_root_the_first_line_says_nsdebug_needs_root() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    for args in [
        &["enter", c.name.as_str(), "--net", "ip", "a"][..],
        &["ps"][..],
    ] {
        let out = as_nobody(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(
            stderr
                .lines()
                .next()
                .is_some_and(|l| l.starts_with(HEADLINE)),
            "{args:?}: the first line is what to do:\n{stderr}"
        );
        assert!(!stderr.contains("hyper"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("permission denied on /var/run/docker.sock"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn ps_v_names_every_socket_it_asked_or_did_not_find() {
    require_root_and_docker!();
    let out = run_nsdebug(&["ps", "-v"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for runtime in ["docker (", "podman (", "cri", "containerd"] {
        assert!(
            stderr.lines().any(|l| l.contains(runtime)),
            "-v says nothing of {runtime}:\n{stderr}"
        );
    }
    assert!(stderr.contains("/var/run/docker.sock"), "{stderr}");
}

#[test]
fn trace_v_prints_the_resolution_and_the_command_line_it_runs() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    // strace detaches at once: it traces no call and writes its trace nowhere.
    let mut child = Command::new(nsdebug_path())
        .args([
            "trace",
            "-v",
            &c.name,
            "--",
            "-o",
            "/dev/null",
            "-e",
            "trace=none",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is docker container {}", c.name, c.name)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "running strace -f -p {} -o /dev/null -e trace=none",
            c.pid
        )),
        "{stderr}"
    );
}

/// tcpflow-lite in a mount namespace where every libpcap the loader would find is /dev/null.
fn tcpflow_lite_without_libpcap(args: &str) -> Output {
    let libs: Vec<String> = text(
        &Command::new("ldconfig")
            .arg("-p")
            .output()
            .expect("ldconfig")
            .stdout,
    )
    .lines()
    .filter(|l| l.trim_start().starts_with("libpcap.so"))
    .filter_map(|l| l.rsplit(" => ").next().map(str::to_owned))
    .collect();
    let hide: String = libs
        .iter()
        .map(|lib| format!("mount --bind /dev/null {lib} && "))
        .collect();
    let script = format!(
        "{hide}exec {} {args}",
        nsdebug_tests::bin_dir().join("tcpflow-lite").display()
    );
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare")
}

/// Without libpcap tcpflow-lite cannot run: 125 and one line saying what to install, not
/// 1 (which says a flow could not be written).
#[test]
fn tcpflow_lite_without_libpcap_exits_125_naming_the_package() {
    require_root_and_docker!();
    let out = tcpflow_lite_without_libpcap("-i lo -c");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("libpcap is not available") && stderr.contains("apt install libpcap0.8"),
        "{stderr}"
    );
    let help = Command::new(nsdebug_tests::bin_dir().join("tcpflow-lite"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        text(&help.stdout).contains("125 tcpflow-lite could not run (libpcap missing"),
        "the exit status is documented"
    );
}

/// The long options `nsdebug SUBCOMMAND --help` lists.
fn options_in_help(subcommand: &str) -> Vec<String> {
    let out = nsdebug_tests::nsdebug()
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{subcommand} --help: {out:?}");
    let mut options: Vec<String> = text(&out.stdout)
        .lines()
        // Option lines are indented 2 (`-n, --namespace`) or 6 (`--net`); their text 10.
        .filter(|l| {
            let indent = l.len() - l.trim_start().len();
            (2..=6).contains(&indent) && l.trim_start().starts_with('-')
        })
        .filter_map(|l| {
            let word = l.split_whitespace().find(|w| w.starts_with("--"))?;
            let name = word.trim_end_matches([',', '.']);
            Some(name.split(['[', '=']).next().unwrap_or(name).to_owned())
        })
        .collect();
    options.sort();
    options
}

/// Every option each subcommand's help lists, with what it does there and where a test shows
/// it (or why it has nothing to show). An option that is accepted but unused would have no
/// honest line here: adding an option means adding its line, and a line left for an option
/// the help no longer lists fails too.
const OPTIONS: &[(&str, &str, &str)] = &[
    ("*", "--help", "clap"),
    ("*", "--version", "clap"),
    ("*", "--verbose", "global: resolution and sockets (ps_v_..., trace_v_..., enter::verbose_says_...); completions/man: nothing to say, accepted as a global option"),
    ("*", "--quiet", "global: hides notices (enter::verbose_says_..._quiet_hides_notices)"),
    ("enter debug audit flow mem trace pid veth why", "--runtime", "one runtime only (enter.rs, podman.rs)"),
    ("enter debug audit flow mem trace pid veth why", "--namespace", "Kubernetes namespace of a pod (pods.rs)"),
    ("enter debug audit flow mem trace pid veth why", "--container", "container of a pod (pods.rs)"),
    ("enter debug audit flow mem trace pid veth why ps", "--cri-endpoint", "the CRI socket (pods.rs, ship.rs)"),
    ("why", "--lines", "how many log lines (issue 28's why tests, on main)"),
    ("enter debug", "--target", "nsenter's -t (enter::the_command_may_follow_the_target...)"),
    ("enter debug", "--net", "joins the network namespace (demo, enter.rs)"),
    ("enter debug", "--uts", "joins the UTS namespace (enter.rs)"),
    ("enter debug", "--ipc", "joins the IPC namespace (nsenter-core library tests)"),
    ("enter debug", "--pid", "joins the pid namespace (hostile.rs)"),
    ("enter debug", "--cgroup", "joins the cgroup namespace (nsenter-core library tests)"),
    ("enter debug", "--all", "every namespace that differs (demo, enter.rs)"),
    ("enter debug", "--wd", "working directory (enter::env_root_wd_...)"),
    ("enter debug", "--workdir", "docker exec's -w DIR (first_contact::docker_exec_and_nsenter_habits...)"),
    ("enter debug", "--setuid", "-S user (enter.rs)"),
    ("enter debug", "--setgid", "-G group (enter.rs)"),
    ("enter debug", "--env", "the target's harmless variables for a host program (enter::env_root_wd_...)"),
    ("enter debug", "--join-cgroup", "accounted like the container (enter::env_root_wd_..._cgroup_options_apply)"),
    ("flow", "--max-files", "disk bound: files (flow.rs a_flood_of_connections_stays_within_the_default_file_bound)"),
    ("flow", "--max-disk-bytes", "disk bound: bytes on disk (tcpflow-lite captures.rs --max-disk-bytes)"),
    ("flow", "--max-history-total", "retransmission histories' budget (tcpflow-lite flow tests)"),
    ("debug", "--rw", "$CTR_ROOT writable, links still not followed (debug_session.rs)"),
    ("enter debug", "--expose-host-program", "host program where the container could ptrace it (hostile.rs)"),
    ("enter", "--mount", "joins the mount namespace (hostile.rs); debug refuses it"),
    ("enter", "--user", "joins the user namespace (podman.rs rootless); debug refuses it"),
    ("enter", "--time", "joins the time namespace (nsenter-core library tests); debug refuses it"),
    ("enter", "--root", "root directory (enter::env_root_wd_...); debug refuses it"),
    ("enter", "--preserve-credentials", "keeps our ids in a user namespace (nsenter-core library tests); debug refuses it"),
    ("enter", "--privileged", "a container program with host powers (podman.rs, hostile.rs); debug refuses it"),
    ("ps", "--all", "stopped containers too (mem::ps_shows_..._with_a_the_containers...)"),
    ("ps audit flow mem pid veth why", "--json", "JSON (json::every_json_output_is_the_documented_schema...)"),
    ("audit", "--fail-on", "exit 3 (audit::fail_on_gates_the_exit_status)"),
    ("audit", "--ignore", "findings ignored (audit::host_facts_once_ignore_list...)"),
    ("audit", "--ignore-file", "findings ignored from a file (audit.rs)"),
    ("mem", "--top", "how many processes (mem::mem_of_a_pid_host_container...)"),
    ("trace", "--process", "which process (pid::the_hosts_strace_sees_the_accept...)"),
    ("trace", "--with", "strace, gdb or perf (trace.rs builds each command line)"),
    ("veth", "--down", "takes the peer down (demo, veth.rs)"),
    ("veth", "--up", "brings it back (demo, veth.rs)"),
    ("veth", "--for", "a drill with --down only (veth::a_drill_with_for..., veth::up_for_is_refused...)"),
    ("veth", "--interface", "one interface (veth.rs)"),
    ("flow", "--host-side", "capture on the host-side peer (pods.rs)"),
    ("flow", "--duration", "stop after (demo, flow.rs)"),
    ("flow", "--count", "stop after N packets (flow.rs)"),
    ("flow", "--raw", "tcpflow-lite's output options, shared with the tcpflow-lite binary (tcpflow-lite/tests)"),
    ("flow", "--overlap", "tcpflow-lite's output options (tcpflow-lite/tests)"),
    ("flow", "--max-flows", "tcpflow-lite's bounds (tcpflow-lite/tests)"),
    ("flow", "--max-pending", "tcpflow-lite's bounds (tcpflow-lite/tests)"),
    ("flow", "--max-pending-total", "tcpflow-lite's bounds (tcpflow-lite/tests)"),
    ("flow", "--max-open-files", "tcpflow-lite's bounds (tcpflow-lite/tests)"),
    ("flow", "--idle", "tcpflow-lite's idle expiry (tcpflow-lite/tests)"),
    ("flow", "--max-bytes", "tcpflow-lite's -b (tcpflow-lite/tests)"),
];

/// The subcommands `nsdebug --help` lists (all of them: a new one is checked too).
fn subcommands() -> Vec<String> {
    let out = nsdebug_tests::nsdebug().arg("--help").output().unwrap();
    let help = text(&out.stdout);
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 11, "{help}");
    names
}

#[test]
fn every_option_a_subcommand_lists_is_one_it_uses() {
    let mut unexplained = Vec::new();
    let mut stale = Vec::new();
    for subcommand in subcommands() {
        let subcommand = subcommand.as_str();
        let listed = options_in_help(subcommand);
        let expected: Vec<&str> = OPTIONS
            .iter()
            .filter(|(commands, _, _)| {
                *commands == "*" || commands.split(' ').any(|c| c == subcommand)
            })
            .map(|(_, option, _)| *option)
            .collect();
        for option in &listed {
            if !expected.contains(&option.as_str()) {
                unexplained.push(format!("{subcommand} {option}"));
            }
        }
        for option in expected {
            if !listed.iter().any(|o| o == option) {
                stale.push(format!("{subcommand} {option}"));
            }
        }
    }
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "options without a use written down: {unexplained:?}; uses of options the help does not list: {stale:?}"
    );
}

/// `debug` runs a host program that never joins the mount, user or time namespace: the
/// options about those are not in its help, and refused (usage, exit 2) rather than ignored.
#[test]
fn debug_refuses_the_options_it_has_no_use_for() {
    let help = options_in_help("debug");
    for option in [
        "--mount",
        "--user",
        "--time",
        "--privileged",
        "--root",
        "--preserve-credentials",
    ] {
        assert!(
            !help.iter().any(|o| o == option),
            "debug --help lists {option}"
        );
        let out = run_nsdebug(&["debug", "any-target", option, "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "debug {option}: {out:?}");
        assert!(
            text(&out.stderr).contains(&format!("{option} has no use there")),
            "{out:?}"
        );
    }
    let out = nsdebug_tests::nsdebug()
        .args(["debug", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(!help.contains("a program from the container"), "{help}");
    assert!(help.contains("The host's command"), "{help}");
}

/// `-e` adds a few harmless variables to a host program's environment: the help says so, and
/// `-c` in commands that enter a container (not a pod's network) does not speak of veth/flow.
#[test]
fn e_and_c_help_say_what_they_do_in_each_command() {
    let help = |subcommand: &str| {
        text(
            &nsdebug_tests::nsdebug()
                .args([subcommand, "--help"])
                .output()
                .unwrap()
                .stdout,
        )
    };
    let enter = help("enter");
    assert!(
        !enter.contains("the target's environment instead of ours"),
        "{enter}"
    );
    assert!(enter.contains("-e adds the target's LANG"), "{enter}");
    for subcommand in ["mem", "pid", "trace", "enter", "audit"] {
        let text = help(subcommand);
        assert!(
            !text.contains("veth") && !text.contains("flow"),
            "{subcommand} --help speaks of veth or flow:\n{text}"
        );
    }
    for subcommand in ["veth", "flow"] {
        assert!(
            help(subcommand).contains("the pod's sandbox"),
            "{subcommand}"
        );
    }
}

/// `man nsdebug`: NAME says what it does (not "nsdebug - nsdebug: ..."), every page it
/// refers to is one `nsdebug man DIR` writes, and there are EXAMPLES.
#[test]
fn the_man_page_names_itself_once_refers_to_written_pages_and_has_examples() {
    let dir = std::env::temp_dir().join(nsdebug_tests::unique_name("man"));
    let out = run_nsdebug(&["man", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().replace(".1", "(1)"))
        .collect();
    let top = std::fs::read_to_string(dir.join("nsdebug.1")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        top.contains(".SH NAME\nnsdebug \\- debug containers from the host"),
        "{top}"
    );
    for word in top.split_whitespace() {
        let word = word.replace("\\-", "-");
        if word.starts_with("nsdebug-") && word.ends_with("(1)") {
            assert!(
                written.contains(&word),
                "{word} is referred to, not written: {written:?}"
            );
        }
    }
    assert!(top.contains(".SH EXAMPLES"), "{top}");
}

/// `docker exec -w DIR`, nsenter's short flags, and a mistyped option before the command.
#[test]
fn docker_exec_and_nsenter_habits_work_and_a_typo_is_a_usage_error() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    for args in [
        &["enter", c.name.as_str(), "-w", "/www", "pwd"][..],
        &["enter", c.name.as_str(), "--workdir", "/www", "--", "pwd"][..],
    ] {
        let out = run_nsdebug(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(text(&out.stdout).trim(), "/www", "{args:?}");
    }
    // nsenter -t PID -m -u -p: the container's files, hostname and processes.
    let pid = c.pid.to_string();
    let out = run_nsdebug(&[
        "enter",
        "-t",
        &pid,
        "-m",
        "-u",
        "-p",
        "--",
        "sh",
        "-c",
        "hostname; cat /proc/1/cmdline",
    ]);
    assert!(out.status.success(), "{out:?}");
    let shown = text(&out.stdout);
    assert!(shown.starts_with(&format!("{}\n", c.hostname)), "{shown}");
    assert!(shown.contains("/bin/httpd"), "{shown}");
    // nsenter -t PID -u sh -c CMD: -c is the shell's, not nsdebug's --container.
    let out = run_nsdebug(&["enter", "-t", &pid, "-u", "sh", "-c", "hostname"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), c.hostname, "{out:?}");
    let typo = run_nsdebug(&["enter", &c.name, "--nett", "ip", "a"]);
    assert_eq!(typo.status.code(), Some(2), "{typo:?}");
    assert!(
        text(&typo.stderr).contains("enter has no option --nett (did you mean --net?)"),
        "{typo:?}"
    );
    // nsenter's -i with a pid would silently leave the IPC namespace out: refused.
    let ipc = run_nsdebug(&["enter", "-t", &pid, "-i", "-u", "true"]);
    assert_eq!(ipc.status.code(), Some(125), "{ipc:?}");
    assert!(
        text(&ipc.stderr).contains("for nsenter's -i say --ipc"),
        "{ipc:?}"
    );
}

/// `ps` SHARED WITH HOST shows the namespaces that isolate (net, pid...), not user, cgroup
/// and time that every Docker container shares: a `--net=host --pid=host` row stands out.
#[test]
fn ps_shared_with_host_shows_what_matters() {
    require_root_and_docker!();
    let plain = Container::start(&[]);
    let host = Container::start(&["--net=host", "--pid=host"]);
    let table = text(&run_nsdebug(&["ps", "nsdbg-t-"]).stdout);
    let shared = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no row {name}:\n{table}"))
            .to_owned()
    };
    assert_eq!(shared(&plain.name), "-", "{table}");
    assert_eq!(shared(&host.name), "net,pid", "{table}");
}

/// `flow` as a tcpdump user meets it: a wrong -i names the interfaces there are, a capture
/// of UDP only says none of it was TCP, and the notice reads "capturing on any inside ...".
#[test]
fn flow_names_interfaces_says_when_nothing_was_tcp_and_reads_well() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let wrong = run_nsdebug(&["flow", &c.name, "-i", "eht0", "-c", "--duration", "1s"]);
    assert_eq!(wrong.status.code(), Some(125), "{wrong:?}");
    assert!(
        text(&wrong.stderr).contains("has no interface eht0 (it has lo, eth0)"),
        "{wrong:?}"
    );
    let child = nsdebug_tests::nsdebug()
        .args([
            "flow",
            &c.name,
            "-c",
            "--duration",
            "3s",
            "udp",
            "port",
            "9999",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    for _ in 0..3 {
        socket
            .send_to(b"not tcp", format!("{}:9999", c.ip()))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("capturing on any inside docker container"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 packets, 0 TCP segments, 0 flows")
            && stderr.contains("(none of the packets was TCP)"),
        "{stderr}"
    );
}

/// Bash completes a TARGET with the names of the containers nsdebug sees, after options too.
#[test]
fn bash_completes_container_names() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let prefix = &c.name[..c.name.len() - 2];
    let path = format!(
        "{}:{}",
        nsdebug_path().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!(
        "source <(nsdebug completions bash)\n\
         COMP_WORDS=(nsdebug enter --net {prefix}); COMP_CWORD=3\n\
         _nsdebug_targets nsdebug {prefix} --net\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).lines().any(|l| l == c.name),
        "{prefix}<TAB> does not offer {}: {out:?}",
        c.name
    );
    // zsh and fish ask the same helper for TARGET (zsh's script also parses).
    let zsh = text(&run_nsdebug(&["completions", "zsh"]).stdout);
    assert!(
        zsh.contains("'::target -- The container, pod, pid, netns name or namespace file to enter:_nsdebug_targets'"),
        "{zsh}"
    );
    let fish = text(&run_nsdebug(&["completions", "fish"]).stdout);
    assert!(fish.contains("(nsdebug __complete-targets"), "{fish}");
    if Command::new("zsh").arg("--version").output().is_ok() {
        let parsed = Command::new("zsh")
            .args(["-n", "-c", &zsh])
            .output()
            .unwrap();
        assert!(parsed.status.success(), "{parsed:?}");
    }
}

/// A host program started by `enter --net` or `debug` can tell where it runs: NSDEBUG_TARGET
/// (a prompt can show it); a program from the container gets the container's environment.
#[test]
fn host_programs_get_nsdebug_target() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    for args in [
        &[
            "enter",
            c.name.as_str(),
            "--net",
            "--",
            "sh",
            "-c",
            "echo $NSDEBUG_TARGET",
        ][..],
        &[
            "debug",
            c.name.as_str(),
            "--",
            "sh",
            "-c",
            "echo $NSDEBUG_TARGET",
        ][..],
    ] {
        let out = run_nsdebug(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(text(&out.stdout).trim(), c.name, "{args:?}");
    }
    let inside = run_nsdebug(&[
        "enter",
        &c.name,
        "--",
        "sh",
        "-c",
        "echo \"[$NSDEBUG_TARGET]\"",
    ]);
    assert_eq!(text(&inside.stdout).trim(), "[]", "{inside:?}");
}

/// The same name in Docker and `ip netns` is refused as ambiguous, naming both and
/// `--runtime`, instead of silently entering Docker's.
#[test]
fn a_name_docker_and_ip_netns_both_have_is_ambiguous() {
    require_root_and_docker!();
    let netns = nsdebug_tests::Netns::new("dup");
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            nsdebug_tests::docker(&["rm", "-f", &self.0]);
        }
    }
    let run = nsdebug_tests::docker(&["run", "-d", "--name", &netns.0, nsdebug_tests::IMAGE]);
    assert!(run.status.success(), "{run:?}");
    let _container = Remove(netns.0.clone());
    let out = run_nsdebug(&["enter", &netns.0, "--net", "true"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is ambiguous", netns.0))
            && stderr.contains(&format!("docker container {}", netns.0))
            && stderr.contains(&format!("ip netns {}", netns.0))
            && stderr.contains("--runtime"),
        "{stderr}"
    );
    for runtime in ["docker", "netns"] {
        let out = run_nsdebug(&["enter", &netns.0, "--runtime", runtime, "--net", "true"]);
        assert!(out.status.success(), "--runtime {runtime}: {out:?}");
    }
}

/// Names go into Engine API paths: one no runtime could give is refused, not decoded into
/// another (`%72t2` was `rt2`) or cut at `?`; a typo gets the nearest name.
#[test]
fn names_no_runtime_could_give_are_refused_and_typos_get_a_suggestion() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let encoded = format!("%{:02x}{}", c.name.as_bytes()[0], &c.name[1..]);
    for spec in [encoded, format!("{}?size=1", c.name)] {
        let out = run_nsdebug(&["enter", &spec, "--net", "true"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{spec}: {stderr}");
        assert!(
            stderr.contains("is not a container name or ID"),
            "{spec}: {stderr}"
        );
    }
    let typo = c.name.replacen("-c", "-x", 1);
    let out = run_nsdebug(&["enter", &typo, "--net", "true"]);
    assert!(
        text(&out.stderr).contains(&format!("(did you mean {}?)", c.name)),
        "{out:?}"
    );
}

/// A relative path is a namespace file only written as one (`./`): a directory `shop/web`
/// in the current directory does not shadow the pod name `shop/web`.
#[test]
fn a_relative_path_must_look_like_one() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let dir = std::env::temp_dir().join(nsdebug_tests::unique_name("cwd"));
    std::fs::create_dir_all(dir.join("shop")).unwrap();
    std::os::unix::fs::symlink(format!("/proc/{}/ns/net", c.pid), dir.join("shop/web")).unwrap();
    let run_in_dir = |spec: &str| {
        nsdebug_tests::nsdebug()
            .args([
                "enter",
                spec,
                "--net",
                "--",
                "cat",
                "/proc/sys/kernel/hostname",
            ])
            .current_dir(&dir)
            .env(
                "CONTAINER_RUNTIME_ENDPOINT",
                "unix:///run/nsdbg-no-cri.sock",
            )
            .output()
            .unwrap()
    };
    let bare = run_in_dir("shop/web");
    let dotted = run_in_dir("./shop/web");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        bare.status.code(),
        Some(125),
        "shop/web is a pod name: {bare:?}"
    );
    assert!(
        !text(&bare.stderr).contains("namespace file shop/web"),
        "{bare:?}"
    );
    assert!(
        dotted.status.success(),
        "./shop/web is the file: {dotted:?}"
    );
}
