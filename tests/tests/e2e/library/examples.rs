//! The example programs, run as a user would run them.

use std::process::Command;

use nsdebug_tests::{bin_dir, docker, require_root_and_docker, run_nsdebug, Container};

fn run_example(name: &str, pid: i32) -> std::process::Output {
    run_example_on(name, &pid.to_string())
}

fn run_example_on(name: &str, target: &str) -> std::process::Output {
    Command::new(bin_dir().join(name))
        .arg(target)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run example {name} (cargo build --workspace first): {e}")
        })
}

#[test]
fn list_links_shows_the_containers_veth_end_and_address() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let output = run_example("list-links", container.pid);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(text.contains(": eth0 <veth> UP"), "{text}");
    assert!(
        text.contains(&format!("    {}/16", container.ip())),
        "{text}"
    );
    assert!(!text.contains("docker0"), "{text}");
}

#[test]
fn hostname_prints_the_containers_hostname() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let output = run_example("container-hostname", container.pid);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", container.hostname)
    );
}

/// An outside crate (the examples package) finds a container by its name through
/// nsdebug-resolve and enters it, without starting a process; the name means the same
/// container to it as to `nsdebug`.
#[test]
fn hostname_finds_a_container_by_name_as_nsdebug_does() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let output = run_example_on("container-hostname", &container.name);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}\n", container.hostname)
    );
    let cli = run_nsdebug(&[
        "enter",
        &container.name,
        "--uts",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(cli.stdout, output.stdout, "{cli:?}");

    // A stopped container is said to be one, in one line, not entered.
    docker(&["stop", "-t", "0", &container.name]);
    let stopped = run_example_on("container-hostname", &container.name);
    assert_eq!(stopped.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("docker container {} (", container.name))
            && stderr.contains("is not running (status: exited)"),
        "{stderr}"
    );
}

/// The container chooses its hostname: an escape sequence in it reaches the terminal as text.
#[test]
fn hostname_escapes_what_the_container_chose() {
    require_root_and_docker!();
    let container = Container::start(&["--cap-add", "SYS_ADMIN"]);
    let set = docker(&["exec", &container.name, "hostname", "x\x1b]0;pwned\x07y"]);
    assert!(set.status.success(), "{set:?}");
    let output = run_example_on("container-hostname", &container.name);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "x\\x1b]0;pwned\\x07y\n"
    );
}

#[test]
fn examples_report_a_missing_target_in_one_line() {
    let output = run_example("list-links", 999_999_999);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "list-links: pid 999999999: no such process\n"
    );
    // A number that is no live pid may still name a container: every place is asked.
    let output = run_example("container-hostname", 999_999_999);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("container-hostname: 999999999: no such container or namespace; tried pid: no process 999999999;"),
        "{stderr}"
    );
}
