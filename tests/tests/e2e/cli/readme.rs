//! The README's "Coming from nsenter, docker exec, tcpdump" table: every row's nsdebug
//! command, run as written on a container of the test's own (`web` is its name, `PID` its pid).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nsdebug_tests::{
    cri_prerequisites_met, nsdebug_path, require_root_and_docker, run_nsdebug, Container, CriPod,
    CRI_SOCKET,
};

/// The first `nsdebug ...` command of each row of the table, as written.
fn table_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("### Coming from nsenter, docker exec, tcpdump")
        .nth(1)
        .expect("the section");
    section
        .lines()
        .skip_while(|l| !l.starts_with("| you type"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cell = row.split(" | ").nth(1).unwrap_or_default();
            let command = cell.split('`').nth(1).unwrap_or_default();
            assert!(
                command.starts_with("nsdebug "),
                "a row without a command: {row}"
            );
            command.to_owned()
        })
        .collect()
}

/// What the row should show on stdout, beyond exiting well.
fn expected(command: &str, c: &Container) -> Option<String> {
    let ip = c.ip();
    match command {
        _ if command.contains("--net ip a") => Some(format!("inet {ip}/")),
        _ if command.ends_with("-- id") => Some("uid=65534".to_owned()),
        _ if command.starts_with("nsdebug pid ") => Some(c.pid.to_string()),
        _ if command.starts_with("nsdebug mem ") => Some("usage".to_owned()),
        _ if command.contains("-w /www ls") => Some("index.html".to_owned()),
        _ if command.ends_with("-- hostname") => Some(c.hostname.clone()),
        _ if command.starts_with("nsdebug veth ") => Some("took down".to_owned()),
        _ => None,
    }
}

#[test]
fn every_row_of_the_coming_from_table_runs() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let commands = table_commands();
    // The crash-loop row names a pod's container (`shop/web/app`): one of the test's own,
    // through the tests' CRI containerd.
    if !cri_prerequisites_met("cli::readme::every_row_of_the_coming_from_table_runs") {
        return;
    }
    let pod = CriPod::start("shop", "web", &["app"], &[]);
    let pod_container = format!("{}/app", pod.spec());
    assert!(commands.len() >= 12, "{commands:?}");
    let scratch = std::env::temp_dir().join(nsdebug_tests::unique_name("readme"));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = Vec::new();
    for written in &commands {
        let words: Vec<String> = written
            .split_whitespace()
            .skip(1)
            .map(|w| match w {
                "web" => c.name.clone(),
                "shop/web/app" => pod_container.clone(),
                "PID" => c.pid.to_string(),
                w => w.to_owned(),
            })
            .collect();
        let mut child = Command::new(nsdebug_path())
            .args(&words)
            .env("CONTAINER_RUNTIME_ENDPOINT", CRI_SOCKET)
            .current_dir(&scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Captures and tracers run until Ctrl-C: they get it after 3 s, as a user would.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let interrupted = child.try_wait().unwrap().is_none();
        if interrupted {
            // SAFETY: kill(2) on the child we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Ctrl-C ends a capture with its summary (0), a tracer as Ctrl-C ends it.
        let ended_well = out.status.success()
            || (interrupted
                && (out.status.code() == Some(130) || out.status.signal() == Some(libc::SIGINT)));
        let shows = expected(written, &c).is_none_or(|text| stdout.contains(&text));
        if !ended_well || !shows {
            failures.push(format!(
                "{written}: {:?}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if written.contains("--down") {
            run_nsdebug(&["veth", &c.name, "--up"]);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
