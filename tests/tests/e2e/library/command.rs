//! The command API against real containers and namespaces made with unshare.

use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;

use nsdebug_tests::{first_child, ns_inode, require_root_and_docker, Container, Spawned};
use nsenter_core::{Command, Namespace, NamespaceSet, Pid, RootDir, Signal, Target, WorkDir};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn with_all_namespaces_the_program_sees_the_containers_pid_1_and_files() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let output = Command::new("sh")
        .args([
            "-c",
            "tr '\\0' ' ' < /proc/1/cmdline; echo; cat /etc/nsdebug-image; echo pid=$$; hostname",
        ])
        .output_in(&target, NamespaceSet::ALL)
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        lines[0].trim(),
        "/bin/httpd -f -p 80 -h /www",
        "container's PID 1: {lines:?}"
    );
    assert_eq!(lines[1], "nsdebug test image");
    let pid: i32 = lines[2].trim_start_matches("pid=").parse().unwrap();
    assert!(
        pid > 1 && pid < 100,
        "a small pid in the container's pid namespace: {pid}"
    );
    assert_eq!(lines[3], container.hostname);
}

#[test]
fn with_net_only_the_program_sees_host_files_and_container_links() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let marker = std::env::temp_dir().join(format!("nsdbg-marker-{}", std::process::id()));
    std::fs::write(&marker, "host file\n").unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat {}; cat /proc/net/dev; ip -o -4 addr show",
            marker.display()
        ))
        .output_in(&target, Namespace::Net.into())
        .unwrap();
    std::fs::remove_file(&marker).unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{output:?}");
    assert!(text.starts_with("host file\n"), "{text}");
    assert!(
        text.contains("eth0:") && !text.contains("docker0"),
        "{text}"
    );
    assert!(
        text.contains(&format!("inet {}/", container.ip())),
        "{text}"
    );
}

#[test]
fn exit_codes_and_deaths_by_signal_are_reported_faithfully() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    // Without the pid namespace the program is our child; with it, it is our grandchild
    // behind a relaying middle process. Both must report the same.
    for kinds in [
        Namespace::Net.into(),
        Namespace::Net | Namespace::Pid,
        NamespaceSet::ALL,
    ] {
        let status = Command::new("sh")
            .args(["-c", "exit 7"])
            .status_in(&target, kinds)
            .unwrap();
        assert_eq!(status.code(), Some(7), "{kinds}");
        let status = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status_in(&target, kinds)
            .unwrap();
        assert_eq!(
            (status.code(), status.signal()),
            (None, Some(libc::SIGTERM)),
            "{kinds}"
        );
        let status = Command::new("sh")
            .args(["-c", "kill -KILL $$"])
            .status_in(&target, kinds)
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{kinds}");
    }
}

#[test]
fn signals_sent_to_the_child_reach_the_program_in_the_pid_namespace() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let mut child = Command::new("sleep")
        .arg("30")
        .spawn_in(&target, NamespaceSet::ALL)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.signal(Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT));
    // Nothing of it is left in the container.
    let ps = Command::new("ps")
        .output_in(&target, NamespaceSet::ALL)
        .unwrap();
    assert!(!stdout(&ps).contains("sleep 30"), "{}", stdout(&ps));
}

#[test]
fn the_program_inherits_only_fds_0_1_2() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    // Leave fds open in this process without close-on-exec, as careless embedders do.
    let leaked: Vec<i32> = (0..3)
        .map(|_| {
            let file = std::fs::File::open("/etc/hostname").unwrap();
            // SAFETY: dup(2) of an open fd; the duplicate is deliberately leaked.
            let fd = unsafe { libc::dup(file.as_raw_fd()) };
            assert!(fd > 2);
            fd
        })
        .collect();
    // The shell lists its own fds (`; true` keeps it from exec'ing ls in its place): with the
    // container's busybox, and with the host's sh.
    for kinds in [NamespaceSet::ALL, Namespace::Net | Namespace::Uts] {
        let output = Command::new("sh")
            .args(["-c", "ls /proc/$$/fd; true"])
            .output_in(&target, kinds)
            .unwrap();
        let fds: Vec<&str> = std::str::from_utf8(&output.stdout)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(fds, ["0", "1", "2"], "{kinds}: {output:?}");
    }
    for fd in leaked {
        // SAFETY: closing the fds dup'ed above, owned by nothing else.
        unsafe { libc::close(fd) };
    }
}

#[test]
fn credentials_root_working_directory_and_environment_are_applied() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let output = Command::new("sh")
        .args(["-c", "id -u; id -g; pwd; echo \"$GREETING|$HOME\""])
        .uid(65534)
        .gid(65534)
        .current_dir(WorkDir::Path("/www".into()))
        .env_clear()
        .env("GREETING", "hello")
        .output_in(&target, NamespaceSet::ALL)
        .unwrap();
    assert_eq!(
        stdout(&output),
        "65534\n65534\n/www\nhello|\n",
        "{output:?}"
    );
    // The target's root without its mount namespace: the container's files, the host's mounts.
    let output = Command::new("/bin/cat")
        .arg("/etc/nsdebug-image")
        .root(RootDir::Target)
        .output_in(&target, Namespace::Net.into())
        .unwrap();
    assert_eq!(stdout(&output), "nsdebug test image\n", "{output:?}");
}

#[test]
fn user_and_time_namespaces_are_joined_by_the_forked_child() {
    require_root_and_docker!();
    let unshare = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--time",
            "--boottime",
            "1000",
            "--fork",
            "sleep",
            "60",
        ])
        .spawn()
        .unwrap();
    let unshare = Spawned(unshare);
    let pid = first_child(unshare.0.id());
    let target = Target::open(Pid::try_from(pid).unwrap()).unwrap();
    let kinds = Namespace::User | Namespace::Time;
    let output = Command::new("sh")
        .args(["-c", "readlink /proc/self/ns/user /proc/self/ns/time; id -u; cut -d. -f1 /proc/uptime; grep Groups: /proc/self/status"])
        .output_in(&target, kinds)
        .unwrap();
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("user:[{}]", ns_inode(&format!("/proc/{pid}/ns/user"))),
        "{output:?}"
    );
    assert_eq!(
        lines[1],
        format!("time:[{}]", ns_inode(&format!("/proc/{pid}/ns/time")))
    );
    assert_eq!(lines[2], "0", "uid 0 inside the user namespace by default");
    assert_eq!(
        lines[4].trim(),
        "Groups:",
        "no supplementary group of the host leaks in"
    );
    let host_uptime: u64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside_uptime: u64 = lines[3].parse().unwrap();
    assert!(
        inside_uptime >= host_uptime + 990,
        "boottime offset applies: {inside_uptime} vs {host_uptime}"
    );
}

#[test]
fn a_program_missing_in_the_container_is_a_clear_error() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let error = Command::new("no-such-tool-xyz")
        .status_in(&target, NamespaceSet::ALL)
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("no-such-tool-xyz") && message.contains("not found in PATH"),
        "{message}"
    );
    assert!(
        matches!(
            error,
            nsenter_core::Error::ProgramNotFound {
                searched_path: true,
                ..
            }
        ),
        "{error:?}"
    );
}
