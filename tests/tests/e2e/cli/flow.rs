//! `nsdebug flow` against real containers: capture inside the container's namespace.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nsdebug_tests::{docker, nsdebug, require_root_and_docker, run_nsdebug, Container};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nsdbg-flow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(args: &[&str]) -> Child {
    let child = nsdebug()
        .arg("flow")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200)); // the capture is open
    child
}

fn interrupt(child: Child) -> std::process::Output {
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child, as Ctrl-C would.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait_with_output().unwrap()
}

fn download(ip: &str, path: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "-m", "20", &format!("http://{ip}{path}")])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn three_downloads_are_reassembled_exactly_and_saved_as_a_pcap() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let dir = scratch("three");
    let pcap = dir.join("raw.pcap");
    let out_dir = dir.join("flows");
    std::fs::create_dir(&out_dir).unwrap();
    let capture = start(&[
        &c.name,
        "-o",
        out_dir.to_str().unwrap(),
        "-w",
        pcap.to_str().unwrap(),
        "port",
        "80",
    ]);
    let bodies: Vec<Vec<u8>> = (0..3).map(|_| download(&c.ip(), "/big.bin")).collect();
    let out = interrupt(capture);
    assert!(out.status.success(), "{out:?}");
    let summary = text(&out.stderr);
    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let replies: Vec<_> = files
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".00080-"))
        .collect();
    assert_eq!(replies.len(), 3, "{files:?}\n{summary}");
    for reply in replies {
        let stream = std::fs::read(reply).unwrap();
        let header = stream.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(stream.starts_with(b"HTTP/1."));
        assert!(
            stream[header..] == bodies[0][..],
            "{}: body differs",
            reply.display()
        );
    }
    assert!(bodies.iter().all(|b| b.len() == 4 * 1024 * 1024));
    // The saved packets open in tcpdump, as many as nsdebug reported.
    let packets: u64 = summary
        .split("nsdebug flow: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let dump = Command::new("tcpdump")
        .args(["-nn", "-r", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        text(&dump.stdout).lines().count() as u64,
        packets,
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_console_shows_the_request_then_the_reply() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let capture = start(&[&c.name, "-c", "--duration", "3", "port", "80"]);
    download(&c.ip(), "/index.html");
    let out = capture.wait_with_output().unwrap();
    let console = text(&out.stdout);
    let get = console
        .find("GET /index.html")
        .unwrap_or_else(|| panic!("{console}"));
    let reply = console
        .find("nsdebug test page")
        .unwrap_or_else(|| panic!("{console}"));
    assert!(get < reply, "{console}");
    assert!(out.status.success());
}

#[test]
fn sustained_transfer_is_captured_without_unreported_loss() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let capture = start(&[&c.name, "--json", "port", "80"]);
    let ip = c.ip();
    let started = std::time::Instant::now();
    let mut served = 0usize;
    while started.elapsed() < Duration::from_secs(10) {
        served += download(&ip, "/big.bin").len();
    }
    let out = interrupt(capture);
    let summary = text(&out.stderr);
    let events = text(&out.stdout);
    // Every byte the server sent is in the flows, or the loss is reported.
    let received: usize = events
        .lines()
        .filter(|l| l.contains(r#""event":"close""#))
        .flat_map(|l| {
            l.split(r#""bytes":"#)
                .skip(1)
                .map(|n| n.split(',').next().unwrap().parse::<usize>().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    if summary.contains("dropped by the kernel") {
        assert!(summary.contains("gaps"), "{summary}");
    } else {
        assert!(
            received >= served,
            "{received} bytes in flows < {served} served: {summary}"
        );
        assert!(summary.contains(" 0 gaps"), "{summary}");
    }
}

#[test]
fn bad_input_gets_clear_errors_and_nothing_is_overwritten() {
    require_root_and_docker!();
    let unknown = run_nsdebug(&["flow", "nsdbg-no-such-container", "port", "80"]);
    assert_eq!(unknown.status.code(), Some(125));
    assert!(text(&unknown.stderr).contains("no such container"));

    let c = Container::start(&[]);
    let bad = run_nsdebug(&["flow", &c.name, "-c", "port", "eighty"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        text(&bad.stderr).contains("bad filter expression \"port eighty\""),
        "{bad:?}"
    );
    assert_eq!(
        text(&bad.stderr).lines().count(),
        1,
        "one line, before any capture: {bad:?}"
    );

    let not_writable = run_nsdebug(&["flow", &c.name, "-o", "/proc", "port", "80"]);
    assert_eq!(not_writable.status.code(), Some(125));
    assert!(
        text(&not_writable.stderr).contains("output directory /proc"),
        "{not_writable:?}"
    );

    let dir = scratch("taken");
    let pcap = dir.join("taken.pcap");
    std::fs::write(&pcap, b"precious").unwrap();
    let taken = run_nsdebug(&["flow", &c.name, "-w", pcap.to_str().unwrap(), "port", "80"]);
    assert_eq!(taken.status.code(), Some(125));
    assert_eq!(std::fs::read(&pcap).unwrap(), b"precious");
    // A dangling symbolic link is not followed: its target is never created.
    let link = dir.join("link.pcap");
    let outside = dir.join("outside.pcap");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let dangling = run_nsdebug(&[
        "flow",
        &c.name,
        "-w",
        link.to_str().unwrap(),
        "--duration",
        "1",
        "port",
        "80",
    ]);
    assert_eq!(dangling.status.code(), Some(125), "{dangling:?}");
    assert!(!outside.exists(), "the link was followed");

    let host = Container::start(&["--net=host"]);
    let shared = run_nsdebug(&["flow", &host.name, "-c", "port", "80"]);
    assert_eq!(shared.status.code(), Some(125));
    assert!(
        text(&shared.stderr).contains("no network namespace of its own"),
        "{shared:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_container_that_stops_ends_the_capture_cleanly() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let dir = scratch("stop");
    let capture = start(&[&c.name, "-o", dir.to_str().unwrap(), "port", "80"]);
    download(&c.ip(), "/index.html");
    docker(&["stop", "-t", "0", &c.name]);
    let out = capture.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains("stopped during the capture"),
        "{out:?}"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().count() >= 2,
        "the flows seen are written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tcpdump_habits_get_a_precise_message_not_a_filter_error() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let late = run_nsdebug(&["flow", &c.name, "port", "80", "-c"]);
    assert_eq!(late.status.code(), Some(2), "{late:?}");
    assert!(
        text(&late.stderr).contains("\"-c\" after the filter: options go before it"),
        "{late:?}"
    );
    let both = run_nsdebug(&["flow", &c.name, "-c", "--json", "port", "80"]);
    assert_eq!(
        both.status.code(),
        Some(2),
        "text and JSON on one stdout are refused: {both:?}"
    );
    let duration = run_nsdebug(&["flow", &c.name, "-c", "--duration", "500ms", "port", "80"]);
    assert!(
        duration.status.success(),
        "--duration takes units: {duration:?}"
    );
}

#[test]
fn json_ends_with_a_summary_event_naming_the_target() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let capture = nsdebug()
        .args(["flow", &c.name, "--json", "--duration", "3s", "port", "80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(nsdebug_tests::http_answers(&c.ip(), 2));
    let out = capture.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().expect("events");
    assert_eq!(last["event"], "summary", "{events:?}");
    assert_eq!(last["target"]["name"], c.name.as_str(), "{last}");
    assert!(
        last["flows"].as_u64().unwrap() >= 1 && last["bytes"].as_u64().unwrap() > 0,
        "{last}"
    );
    assert_eq!(last["stopped_by"], "duration", "{last}");
    assert!(events.iter().any(|e| e["event"] == "close"), "{events:?}");
}

/// The container makes `/tmp/flows` a link to a host directory; the user names the
/// container's directory through `/proc/PID/root`. Nothing may reach the host's directory:
/// the capture is refused before it starts, with one line naming the link.
#[test]
fn output_paths_through_a_containers_link_are_refused() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let host = scratch("link-target");
    let linked = docker(&[
        "exec",
        &c.name,
        "ln",
        "-s",
        host.to_str().unwrap(),
        "/tmp/flows",
    ]);
    assert!(linked.status.success(), "{linked:?}");
    let inside = format!("/proc/{}/root/tmp/flows", c.pid);
    let pcap = format!("{inside}/raw.pcap");
    for args in [
        vec!["-o", inside.as_str(), "-w", pcap.as_str()],
        vec!["-o", inside.as_str()],
        vec!["-c", "-w", pcap.as_str()],
        vec!["-o", &format!("{inside}/deeper")],
    ] {
        let mut argv = vec!["flow", c.name.as_str()];
        argv.extend(args.iter().copied());
        argv.extend(["--duration", "1", "port", "80"]);
        let out = run_nsdebug(&argv);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {out:?}");
        assert!(
            stderr.contains(&format!("\"{inside}\" is a symbolic link")),
            "{args:?}: the line names the link: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert_eq!(
            std::fs::read_dir(&host).unwrap().count(),
            0,
            "{args:?}: written through the link into the host's directory"
        );
    }
    // A real directory inside the container is fine: the flows land in the container.
    let made = docker(&["exec", &c.name, "mkdir", "/tmp/real"]);
    assert!(made.status.success());
    let real = format!("/proc/{}/root/tmp/real", c.pid);
    let capture = start(&[&c.name, "-o", &real, "port", "80"]);
    download(&c.ip(), "/index.html");
    let out = interrupt(capture);
    assert!(out.status.success(), "{out:?}");
    let listed = docker(&["exec", &c.name, "ls", "/tmp/real"]);
    assert!(text(&listed.stdout).contains(".00080-"), "{listed:?}");
    let _ = std::fs::remove_dir_all(&host);
}

/// A hostile container floods its own capture with crafted connections, each carrying one
/// byte (a file each): the files stay within `nsdebug flow`'s default bound, the summary
/// and one line say which bound was reached, and nsdebug's memory stays bounded.
#[test]
fn a_flood_of_connections_stays_within_the_default_file_bound() {
    require_root_and_docker!();
    let hostile = nsdebug_tests::Hostile::start(&[]);
    let c = &hostile.container;
    let dir = scratch("flood");
    let out_dir = dir.join("flows");
    let capture = start(&[
        &c.name,
        "-o",
        out_dir.to_str().unwrap(),
        "--duration",
        // Creating 10,000 files takes seconds on a busy machine (a debug build, shared
        // cores): the packets wait in the kernel's buffer meanwhile, none dropped.
        "30",
        "tcp",
    ]);
    let pid = capture.id();
    let flood = docker(&["exec", &c.name, "/hostile/flood", "40000"]);
    assert!(flood.status.success(), "{flood:?}");
    // Peak memory, read while it runs (the status file goes with the process).
    let mut peak_kb = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            break;
        };
        if status.contains("State:\tZ") {
            break;
        }
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        {
            peak_kb = kb;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = capture.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    let files = std::fs::read_dir(&out_dir).unwrap().count();
    assert!(files <= 10_000, "{files} files: {stderr}");
    assert_eq!(files, 10_000, "the flood reached the bound: {stderr}");
    assert!(
        stderr.contains("--max-files reached: flows are still reassembled"),
        "one line says which bound: {stderr}"
    );
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.contains("not written (--max-files reached at 10000 files"),
        "the summary counts what was dropped: {summary}"
    );
    assert!(peak_kb > 0 && peak_kb < 256 * 1024, "peak RSS {peak_kb} kB");
    assert!(
        !summary.contains("dropped by the kernel"),
        "the capture kept reading while files were created: {summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
