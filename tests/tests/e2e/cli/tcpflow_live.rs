//! tcpflow-lite capturing live: a real HTTP download through a veth pair between two
//! namespaces this test creates.

use std::process::{Command, Stdio};
use std::time::Duration;

use nsdebug_tests::{bin_dir, ip, require_root_and_docker, Netns, Spawned};

#[test]
fn a_live_capture_reassembles_the_exact_served_bytes() {
    require_root_and_docker!();
    let server = Netns::new("srv");
    let client = Netns::new("cli");
    let (a, b) = (
        format!("vs{}", std::process::id() % 100000),
        format!("vc{}", std::process::id() % 100000),
    );
    ip(&[
        "link", "add", &a, "netns", &server.0, "type", "veth", "peer", "name", &b, "netns",
        &client.0,
    ]);
    ip(&["-n", &server.0, "addr", "add", "10.214.0.1/24", "dev", &a]);
    ip(&["-n", &client.0, "addr", "add", "10.214.0.2/24", "dev", &b]);
    ip(&["-n", &server.0, "link", "set", &a, "up"]);
    ip(&["-n", &client.0, "link", "set", &b, "up"]);

    let www = std::env::temp_dir().join(format!("nsdbg-www-{}", std::process::id()));
    let out = std::env::temp_dir().join(format!("nsdbg-flows-{}", std::process::id()));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("big.bin"), &body).unwrap();
    let _httpd = Spawned(
        Command::new("ip")
            .args([
                "netns", "exec", &server.0, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    let capture = |interface: &str, args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &client.0])
            .arg(bin_dir().join("tcpflow-lite"))
            .args(["-i", interface])
            .args(args)
            .args(["port", "8080"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let on_veth = capture(&b, &["-o", out.to_str().unwrap()]);
    let on_any = capture("any", &["--json"]); // Linux cooked v2 frames
    std::thread::sleep(Duration::from_millis(1000));
    let got = Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.0,
            "curl",
            "-s",
            "-m",
            "20",
            "http://10.214.0.1:8080/big.bin",
        ])
        .output()
        .unwrap();
    assert_eq!(
        got.stdout.len(),
        body.len(),
        "the download itself: {:?}",
        got.status
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut results = Vec::new();
    for child in [on_veth, on_any] {
        // SAFETY: kill(2) on our own child: SIGINT, as a user's Ctrl-C.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        results.push(child.wait_with_output().unwrap());
    }
    let _ = std::fs::remove_dir_all(&www);
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let from_server: Vec<_> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("010.214.000.001.08080-")
        })
        .collect();
    assert_eq!(from_server.len(), 1, "{files:?} {:?}", results[0]);
    let stream = std::fs::read(from_server[0]).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let header_end = stream
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP header")
        + 4;
    assert!(
        stream.starts_with(b"HTTP/1."),
        "{:?}",
        &stream[..40.min(stream.len())]
    );
    assert!(
        stream[header_end..] == body[..],
        "body: {} bytes reassembled, {} served",
        stream.len() - header_end,
        body.len()
    );
    for result in &results {
        assert!(result.status.success(), "{result:?}");
        let summary = String::from_utf8_lossy(&result.stderr);
        assert!(
            summary.contains("0 gaps") && !summary.contains("dropped by the kernel"),
            "{summary}"
        );
    }
    // The -i any capture (SLL2) counted the same bytes for the server's direction.
    let events = String::from_utf8_lossy(&results[1].stdout);
    assert!(
        events.contains(&format!("\"bytes\":{}", stream.len())),
        "{events}"
    );
}
