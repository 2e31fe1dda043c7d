//! The example programs, run as a user would run them.

use std::process::Command;

use nsdebug_tests::{bin_dir, require_root_and_docker, Container};

fn run_example(name: &str, pid: i32) -> std::process::Output {
    Command::new(bin_dir().join(name))
        .arg(pid.to_string())
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

#[test]
fn examples_report_a_missing_pid_in_one_line() {
    for name in ["list-links", "container-hostname"] {
        let output = run_example(name, 999_999_999);
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("{name}: pid 999999999: no such process\n")
        );
    }
}
