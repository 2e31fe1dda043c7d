//! The core suites (guard, closure runner, command runner) against a fake container made in a
//! user namespace: no root, no Docker. Run as root, the suite drops to `nobody` first, so it
//! shows the same thing either way: nsenter-core works for an unprivileged user on namespaces
//! that user owns.

use std::process::Command;

use nsdebug_tests::{bin_dir, in_ci, is_root};

#[test]
fn guard_closure_and_command_work_unprivileged_on_a_fake_container() {
    let suite = bin_dir().join("userns-suite");
    let output = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&suite)
            .output()
    } else {
        Command::new(&suite).output()
    }
    .expect("cannot run userns-suite (cargo build --workspace first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(2) {
        assert!(
            !in_ci(),
            "user namespaces unavailable, and CI=true: {stderr}"
        );
        eprintln!("SKIP userns suite: {stderr}");
        return;
    }
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        4,
        "{stdout}"
    );
}
