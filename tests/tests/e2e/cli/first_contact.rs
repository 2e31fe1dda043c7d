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
