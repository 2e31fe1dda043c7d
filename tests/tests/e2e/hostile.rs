//! `nsdebug enter` against a container built to attack the operator (the `Hostile` fixture):
//! each test is one way a hostile container's root tried to reach the host through the
//! debugging session, and checks what an operator would check.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nsdebug_tests::{
    docker, host_hostname, nsdebug, require_root_and_docker, run_nsdebug, wait_bounded, Container,
    Hostile,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The confinement fields of `/proc/self/status` as `CMD` prints them.
const STATUS_FIELDS: &str = "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status";

#[test]
fn a_program_from_the_container_runs_with_the_containers_powers_like_docker_exec() {
    require_root_and_docker!();
    let h = Hostile::start(&[]);
    let name = &h.container.name;
    let docker_exec = docker(&["exec", name, "sh", "-c", STATUS_FIELDS]);
    let ours = nsdebug()
        .args(["enter", name, "--", "sh", "-c", STATUS_FIELDS])
        .output()
        .unwrap();
    assert!(ours.status.success(), "{ours:?}");
    assert_eq!(
        text(&ours.stdout),
        text(&docker_exec.stdout),
        "capabilities, seccomp, ids as docker exec gets them"
    );
    assert!(
        text(&ours.stdout).contains("Seccomp:\t2"),
        "the container's seccomp filter is in force: {ours:?}"
    );

    let cgroups = |out: std::process::Output| text(&out.stdout);
    assert_eq!(
        cgroups(run_nsdebug(&[
            "enter",
            name,
            "--",
            "cat",
            "/proc/self/cgroup"
        ])),
        cgroups(docker(&["exec", name, "cat", "/proc/self/cgroup"])),
        "accounted and limited in the container's cgroups"
    );

    // The operator's environment stays outside; the container's is what its code sees.
    let env = nsdebug()
        .args(["enter", name, "--", "cat", "/proc/self/environ"])
        .env("NSDEBUG_OPERATOR_SECRET", "hunter2")
        .output()
        .unwrap();
    let env = text(&env.stdout);
    assert!(
        !env.contains("hunter2") && env.contains("TZ=Europe/Paris"),
        "{env:?}"
    );

    // The planted /bin/bash, where an operator's $SHELL points: it cannot mount or read disks.
    let planted = nsdebug()
        .args(["enter", name, "--", "/bin/bash", "-c", "echo shell-ran"])
        .env("SHELL", "/bin/bash")
        .output()
        .unwrap();
    let out = text(&planted.stdout);
    assert!(
        out.contains("shell-ran") && !out.contains("PLANTED-"),
        "{planted:?}"
    );
    // ...which is exactly what --privileged gives back on purpose (and why it is not the default).
    let privileged = run_nsdebug(&[
        "enter",
        name,
        "--privileged",
        "--",
        "/bin/bash",
        "-c",
        "echo shell-ran",
    ]);
    assert!(
        text(&privileged.stdout).contains("PLANTED-MOUNT-OK"),
        "{privileged:?}"
    );
}

#[test]
fn a_program_from_the_container_cannot_type_into_the_operators_terminal() {
    require_root_and_docker!();
    // Linux >= 6.2 can turn TIOCSTI off; the test needs it on to show what a container could do.
    let knob = "/proc/sys/dev/tty/legacy_tiocsti";
    let before = std::fs::read_to_string(knob).ok();
    if before.as_deref().map(str::trim) == Some("0") {
        std::fs::write(knob, "1").expect("enable TIOCSTI for the test");
    }
    let h = Hostile::start(&[]);
    let session = format!(
        "{} enter {} -- /bin/inject 'echo INJECTED-$((6*7))\n'; read -t 2 line; echo \"GOT[$line]\"",
        nsdebug_tests::nsdebug_path().display(),
        h.container.name
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &session, "/dev/null"])
        .env("SHELL", "/bin/bash")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = script.stdin.take().unwrap();
    let out = script.wait_with_output().unwrap();
    drop(stdin);
    if let Some(before) = before {
        let _ = std::fs::write(knob, before.trim());
    }
    let out = text(&out.stdout);
    assert!(
        out.contains("TIOCSTI fd 0: injected"),
        "the injector ran, on a terminal: {out}"
    );
    assert!(
        out.contains("GOT[]"),
        "nothing reached the operator's shell: {out}"
    );
}

#[test]
fn a_host_program_in_the_containers_pid_namespace_is_out_of_its_reach() {
    require_root_and_docker!();
    let h = Hostile::start(&[]);
    let name = &h.container.name;
    // A process of the container's own, with a marker in its environment: the watcher must
    // see it, or this test proves nothing.
    let control = std::process::Command::new("docker")
        .args(["exec", "-e", "WATCH_ME=visible", name, "sleep", "2"])
        .spawn()
        .unwrap();
    let ours = nsdebug()
        .args(["enter", name, "--pid", "--net", "--", "/bin/sleep", "2"])
        .env("NSDEBUG_OPERATOR_SECRET", "hunter2")
        .output()
        .unwrap();
    nsdebug_tests::Spawned(control);
    assert!(ours.status.success(), "{ours:?}");
    std::thread::sleep(Duration::from_millis(300));
    let log = h.log();
    assert!(
        log.contains("WATCH_ME=visible"),
        "the watcher reads the container's own processes: {log}"
    );
    assert!(
        !log.contains("hunter2") && !log.contains("/bin/sleep"),
        "nothing of the host program was reached: {log}"
    );

    // Where the kernel would let the container in, the host program is not started.
    let setuid = run_nsdebug(&[
        "enter",
        name,
        "--pid",
        "--net",
        "-S",
        "1000",
        "--",
        "/bin/true",
    ]);
    assert_eq!(setuid.status.code(), Some(125), "{setuid:?}");
    assert!(
        text(&setuid.stderr).contains("refusing to start a host program"),
        "{setuid:?}"
    );

    let tracer = Hostile::start(&["--cap-add", "SYS_PTRACE"]);
    let refused = run_nsdebug(&[
        "enter",
        &tracer.container.name,
        "--pid",
        "--net",
        "--",
        "/bin/true",
    ]);
    assert_eq!(refused.status.code(), Some(125), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("CAP_SYS_PTRACE"),
        "{refused:?}"
    );
    // Forced, it is reached indeed: the refusal is what keeps the secret.
    let forced = nsdebug()
        .args([
            "enter",
            &tracer.container.name,
            "--pid",
            "--net",
            "--expose-host-program",
            "--",
            "/bin/sleep",
            "2",
        ])
        .env("NSDEBUG_OPERATOR_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(forced.status.success(), "{forced:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tracer.log().contains("hunter2"),
        "with CAP_SYS_PTRACE the container reads it: {}",
        tracer.log()
    );
}

#[test]
fn the_containers_environment_never_steers_a_host_program() {
    require_root_and_docker!();
    let h = Hostile::start(&[]);
    let name = &h.container.name;
    let script =
        "ls / >/dev/null; echo TZ=$TZ PC=[$PROMPT_COMMAND] PRELOAD=[$LD_PRELOAD] HOME=$HOME";
    let out = run_nsdebug(&["enter", name, "--net", "-e", "--", "bash", "-c", script]);
    let stdout = text(&out.stdout);
    assert!(out.status.success() && !stdout.contains("PWNED"), "{out:?}");
    assert!(
        stdout.contains("TZ=Europe/Paris PC=[] PRELOAD=[] HOME=/root"),
        "only allowlisted settings: {out:?}"
    );

    // A host root in the container's mount namespace looks programs up in the host's PATH,
    // never in the container's (which points into its overlay upperdir, at a planted `ip`).
    let out = run_nsdebug(&["enter", name, "--mount", "--root=/", "-e", "--", "ip", "-V"]);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("PLANTED") && stdout.contains("iproute2"),
        "{out:?}"
    );
}

#[test]
fn the_working_directory_stays_inside_the_containers_root() {
    require_root_and_docker!();
    assert!(
        std::path::Path::new("/etc/debian_version").exists(),
        "the host marker this test looks for"
    );
    let h = Hostile::start(&[]);
    let name = &h.container.name;
    for fd in 3..=12 {
        let wd = format!("--wd=/fd{fd}");
        let out = run_nsdebug(&["enter", name, &wd, "--", "ls"]);
        assert!(
            !text(&out.stdout).contains("debian_version"),
            "{wd} reached a host directory: {out:?}"
        );
    }
    let escape = run_nsdebug(&["enter", name, "--wd=/escape", "--", "ls"]);
    let listing = text(&escape.stdout);
    assert!(
        listing.contains("nsdebug-image") && !listing.contains("debian_version"),
        "{escape:?}"
    );
    let normal = run_nsdebug(&["enter", name, "--wd=/www", "--", "pwd"]);
    assert_eq!(text(&normal.stdout), "/www\n", "{normal:?}");

    // The CVE-2024-21626 pattern: nsdebug started with a host directory open (fd 7, leaked by
    // whatever started it), a container that sees its /proc/self (one sharing the host's pid
    // namespace) and `/fd7 -> /proc/self/fd/7`: the fd is closed before any chdir, and the
    // lookup refuses magic links anyway.
    let pid_host = Hostile::start(&["--pid=host"]);
    let etc = std::fs::File::open("/etc").unwrap();
    let mut leaky = nsdebug();
    leaky.args(["enter", &pid_host.container.name, "--wd=/fd7", "--", "ls"]);
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let raw = etc.as_raw_fd();
        // SAFETY: dup2 between fork and exec, on an fd this process owns; no allocation.
        unsafe {
            leaky.pre_exec(move || match libc::dup2(raw, 7) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            })
        };
    }
    let out = leaky.output().unwrap();
    assert!(
        !text(&out.stdout).contains("debian_version"),
        "--wd=/fd7 reached the host's /etc: {out:?}"
    );
    assert_ne!(out.status.code(), Some(0), "refused: {out:?}");
}

#[test]
fn a_program_the_container_stops_does_not_make_nsdebug_hang() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let mut session = nsdebug()
        .args(["enter", &c.name, "--", "sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sleeper = String::new();
    for _ in 0..100 {
        sleeper = text(&docker(&["exec", &c.name, "pidof", "sleep"]).stdout)
            .trim()
            .to_owned();
        if !sleeper.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sleeper.is_empty(), "the command started");
    assert!(docker(&["exec", &c.name, "kill", "-STOP", &sleeper])
        .status
        .success());
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(session.id() as i32, libc::SIGTERM) };
    let status = wait_bounded(&mut session, Duration::from_secs(5));
    if status.is_none() {
        let _ = session.kill();
    }
    let status = status
        .expect("nsdebug ended within 5 s of SIGTERM although the container stopped its command");
    assert_eq!(
        (status.code(), status.signal()),
        (Some(128 + 15), None),
        "died of the relayed SIGTERM"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(session.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("was stopped"), "it said so: {stderr}");
}

#[test]
fn a_paused_container_is_refused_by_name_and_by_pid_instead_of_hanging() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    assert!(docker(&["pause", &c.name]).status.success());
    for spec in [c.name.clone(), c.pid.to_string()] {
        let mut child = nsdebug()
            .args(["enter", &spec, "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(125),
            "{spec}: refused within 10 s"
        );
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(stderr.contains("paused"), "{spec}: {stderr}");
    }
    docker(&["unpause", &c.name]);
}

#[test]
fn a_number_that_is_a_pid_and_a_container_or_a_host_pid_is_refused_unless_explicit() {
    require_root_and_docker!();
    // A container named after a live pid of the host's (our own test process).
    let me = std::process::id().to_string();
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &me,
        "--hostname",
        "numbered",
        nsdebug_tests::IMAGE,
    ]);
    assert!(out.status.success(), "{out:?}");
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _remove = Remove(me.clone());
    let ambiguous = run_nsdebug(&["enter", &me, "--uts", "--", "hostname"]);
    assert_eq!(ambiguous.status.code(), Some(125), "{ambiguous:?}");
    let message = text(&ambiguous.stderr);
    assert!(
        message.contains(&format!("pid {me}")) && message.contains("docker container"),
        "{message}"
    );
    assert!(ambiguous.stdout.is_empty(), "nothing ran: {ambiguous:?}");
    let as_pid = run_nsdebug(&["enter", &format!("pid:{me}"), "--uts", "--", "hostname"]);
    assert_eq!(text(&as_pid.stdout).trim(), host_hostname(), "{as_pid:?}");
    let as_container = run_nsdebug(&[
        "enter",
        &me,
        "--runtime",
        "docker",
        "--uts",
        "--",
        "hostname",
    ]);
    assert_eq!(
        text(&as_container.stdout).trim(),
        "numbered",
        "{as_container:?}"
    );

    // (Where a container ID starts with 2, this is refused as ambiguous first.)
    let kthread = run_nsdebug(&["enter", "2", "--uts", "--", "hostname"]);
    assert_eq!(kthread.status.code(), Some(125), "{kthread:?}");
    assert!(
        kthread.stdout.is_empty() && text(&kthread.stderr).contains("say pid:2"),
        "{kthread:?}"
    );
    // (Where a container ID starts with 1, this is refused as ambiguous first.)
    let init = run_nsdebug(&["enter", "1", "--uts", "--", "hostname"]);
    assert_eq!(init.status.code(), Some(125), "{init:?}");
    assert!(
        init.stdout.is_empty() && text(&init.stderr).contains("say pid:1"),
        "{init:?}"
    );
    let explicit = run_nsdebug(&["enter", "pid:2", "--uts", "--", "hostname"]);
    assert_eq!(
        text(&explicit.stdout).trim(),
        host_hostname(),
        "{explicit:?}"
    );
}

#[test]
fn an_interactive_session_has_a_terminal_of_its_own() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let command = format!(
        "{} enter {}",
        nsdebug_tests::nsdebug_path().display(),
        c.name
    );
    let mut script = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // A session leader of its own whose terminal is not the operator's: its sid is its pid.
    stdin
        .write_all(b"cut -d' ' -f6 /proc/$$/stat; echo pid=$$; test -t 0 && echo tty-ok; exit 3\n")
        .unwrap();
    let out = script.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    let pid = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("pid="))
        .expect("the shell answered");
    assert!(
        stdout.lines().any(|l| l.trim() == pid),
        "the shell leads its own session: {stdout}"
    );
    assert!(stdout.contains("tty-ok"), "on a terminal: {stdout}");
    assert_eq!(out.status.code(), Some(3), "{stdout}");
}

#[test]
fn a_fifo_over_a_mapped_file_does_not_hang_the_hosts_gdb() {
    require_root_and_docker!();
    // The container maps /tmp/sleep, then mounts a fifo over its path: a root gdb that opens
    // it through /proc/PID/root blocks for ever (SIGTERM does not end it).
    let c = Container::start_with(
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "apparmor=unconfined",
        ],
        &[
            "sh",
            "-c",
            "cp /bin/busybox /tmp/sleep && (/tmp/sleep 1000 &); sleep 0.3; mkfifo /tmp/fifo && \
             mount --bind /tmp/fifo /tmp/sleep && touch /tmp/ready; exec tail -f /dev/null",
        ],
    );
    let start = Instant::now();
    while !docker(&["exec", &c.name, "test", "-p", "/tmp/sleep"])
        .status
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the fixture did not mount its fifo"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut gdb = nsdebug()
        .args(["trace", &c.name, "-p", "sleep", "--with", "gdb", "--"])
        .args(["-batch", "-ex", "info proc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: a gdb that hangs forks helpers that hang too, holding the pipes.
        .process_group(0)
        .spawn()
        .unwrap();
    let done = wait_bounded(&mut gdb, Duration::from_secs(30)).is_some();
    if !done {
        // SAFETY: kill(2) of the process group led by a child of ours, not reaped yet.
        unsafe { libc::kill(-(gdb.id() as i32), libc::SIGKILL) };
    }
    let out = gdb.wait_with_output().unwrap();
    assert!(done, "gdb hung on the container's fifo: {out:?}");
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("exe = '/tmp/sleep'"),
        "gdb attached and read the process: {out:?}"
    );
    assert!(
        text(&out.stderr).contains("not given to gdb") && text(&out.stderr).contains("/tmp/sleep"),
        "the fifo is named as left out: {out:?}"
    );
}

#[test]
fn a_ptmx_that_is_a_link_a_fifo_or_a_file_gets_a_host_terminal_without_opening_it() {
    require_root_and_docker!();
    // A devpts of its own is the container's to replace: a tmpfs at /dev/pts, and in it a
    // `ptmx` that is a link to a host path (a FIFO nobody reads: opening it would show).
    let host_fifo = std::env::temp_dir().join(nsdebug_tests::unique_name("ptmx-fifo"));
    let fifo = host_fifo.display().to_string();
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let opened = format!("{fifo}.opened");
    // Completes (and leaves `.opened`) only if someone opens the FIFO for reading; killed,
    // and the files removed, however the test ends.
    let _writer = nsdebug_tests::Spawned(
        std::process::Command::new("sh")
            .args(["-c", &format!("echo x > {fifo} && touch {opened}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _files = RemovedOnDrop(vec![host_fifo.clone(), opened.clone().into()]);
    let c = Container::start_with(
        &["--tmpfs", "/dev/pts"],
        &[
            "sh",
            "-c",
            &format!("ln -s {fifo} /dev/pts/ptmx; exec sleep 3600"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !docker(&["exec", &c.name, "test", "-L", "/dev/pts/ptmx"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the container made no link");
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = format!(
        "{} enter {} -- sh -c 'test -t 0 && test -t 1 && echo on-a-terminal'",
        nsdebug_tests::nsdebug_path().display(),
        c.name
    );
    let replace = [
        ("a symbolic link (not followed)", None),
        // Inside the container: a FIFO whose writer ends only if it is opened.
        (
            "a FIFO",
            Some("rm /dev/pts/ptmx && mkfifo /dev/pts/ptmx && (echo x > /dev/pts/ptmx && touch /tmp/fifo-opened) &"),
        ),
        ("a regular file", Some("rm -f /dev/pts/ptmx && echo x > /dev/pts/ptmx")),
    ];
    for (what, setup) in replace {
        if let Some(setup) = setup {
            let out = docker(&["exec", "-d", &c.name, "sh", "-c", setup]);
            assert!(out.status.success(), "{out:?}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !docker(&[
                "exec",
                &c.name,
                "sh",
                "-c",
                "test ! -L /dev/pts/ptmx && test -e /dev/pts/ptmx",
            ])
            .status
            .success()
            {
                assert!(
                    Instant::now() < deadline,
                    "the container did not replace ptmx"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let (shown, status) = nsdebug_tests::on_a_terminal(&session, 30);
        assert_ne!(status, Some(124), "nsdebug blocked on {what}: {shown}");
        assert_eq!(status, Some(0), "{what}: {shown}");
        assert!(
            shown.contains("no terminal from the container's devpts")
                && shown.contains(&format!("/dev/pts/ptmx is {what}")),
            "a one-line note names {what}: {shown}"
        );
        assert!(
            shown.contains("on-a-terminal"),
            "a host terminal instead: {shown}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !std::path::Path::new(&opened).exists(),
        "the host FIFO the link points to was opened"
    );
    assert!(
        !docker(&["exec", &c.name, "test", "-e", "/tmp/fifo-opened"])
            .status
            .success(),
        "the container's FIFO was opened"
    );
}

/// Files a test made on the host, removed when it ends (passed or not).
struct RemovedOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = std::fs::remove_file(file);
        }
    }
}
