//! Bad targets and missing privileges give typed errors, never a panic.

use nsdebug_tests::{bin_dir, require_root_and_docker, Container};
use nsenter_core::{
    run_in, Command, Error, Namespace, NamespaceSet, NsGuard, Pid, Target, TargetId,
};

#[test]
fn a_target_that_exits_gives_target_exited_everywhere() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let fallback = Target::open_without_pidfd(Pid::try_from(container.pid).unwrap()).unwrap();
    container.remove();
    assert!(!target.is_alive());
    let guard = NsGuard::enter(&target, Namespace::Net.into()).err();
    assert!(
        matches!(guard, Some(Error::TargetExited { target: TargetId::Pid(pid) }) if pid.get() == container.pid),
        "{guard:?}"
    );
    let guard = NsGuard::enter(&fallback, Namespace::Net.into()).err();
    assert!(
        matches!(guard, Some(Error::TargetExited { .. })),
        "{guard:?}"
    );
    let closure = run_in(&target, Namespace::Uts.into(), || ()).err();
    assert!(
        matches!(closure, Some(Error::TargetExited { .. })),
        "{closure:?}"
    );
    let command = Command::new("true")
        .status_in(&target, NamespaceSet::ALL)
        .err();
    assert!(
        matches!(command, Some(Error::TargetExited { .. })),
        "{command:?}"
    );
    assert!(matches!(
        Target::open(Pid::try_from(container.pid).unwrap()),
        Err(Error::NoSuchProcess { .. })
    ));
}

#[test]
fn a_pid_that_never_existed_is_no_such_process() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let error = Target::open(Pid::try_from(pid_max + 1).unwrap()).unwrap_err();
    assert!(matches!(error, Error::NoSuchProcess { pid } if pid.get() == pid_max + 1));
    assert_eq!(
        error.to_string(),
        format!("pid {}: no such process", pid_max + 1)
    );
}

#[test]
fn a_non_root_caller_gets_permission_denied_naming_the_pid() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let probe = bin_dir().join("nsprobe");
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&probe)
        .arg(container.pid.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{text}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for line in ["guard", "command"] {
        let expected = format!(
            "{line}: cannot enter the net namespace of pid {}: permission denied",
            container.pid
        );
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn guards_dropped_out_of_order_abort_rather_than_run_on_in_the_wrong_namespace() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let output = std::process::Command::new(bin_dir().join("nsprobe"))
        .args(["out-of-order", &container.pid.to_string()])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("dropped out of order"),
        "{output:?}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_caller_with_its_standard_streams_closed_still_gets_errors_and_clean_streams() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let file = std::env::temp_dir().join(format!("nsdbg-stdio-{}", std::process::id()));
    std::fs::write(&file, "").unwrap();
    let status = std::process::Command::new(bin_dir().join("nsprobe"))
        .args([
            "closed-stdio",
            &container.pid.to_string(),
            file.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(status.success(), "{text}");
    // The program had no stdin (closed in the caller) and got stdout and stderr, nothing else.
    assert_eq!(
        text.lines().collect::<Vec<_>>()[..4],
        ["out", "err", "1", "2"],
        "{text}"
    );
    assert!(text.contains("status: Ok(Some(0))"), "{text}");
    assert!(
        text.contains("missing: cannot run /nonexistent: no such file"),
        "{text}"
    );
}
