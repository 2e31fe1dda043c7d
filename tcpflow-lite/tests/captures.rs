//! tcpflow-lite on captures these tests write themselves: crafted segments with exact
//! expected streams, through the real binary.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etherparse::PacketBuilder;

#[derive(Clone, Copy)]
enum Link {
    Ethernet,
    Vlan(u16),
    Sll2,
    Raw,
}

impl Link {
    fn dlt(self) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan(_) => 1,
            Link::Sll2 => 276,
            Link::Raw => 101,
        }
    }
}

/// A connection between a client and a server, for building its segments.
#[derive(Clone, Copy)]
struct Conn {
    link: Link,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
}

#[derive(Clone, Copy, Default)]
struct Flags {
    syn: bool,
    fin: bool,
    rst: bool,
}

const SYN: Flags = Flags {
    syn: true,
    fin: false,
    rst: false,
};
const FIN: Flags = Flags {
    syn: false,
    fin: true,
    rst: false,
};
const RST: Flags = Flags {
    syn: false,
    fin: false,
    rst: true,
};
const NONE: Flags = Flags {
    syn: false,
    fin: false,
    rst: false,
};

impl Conn {
    fn v4(link: Link) -> Conn {
        Conn {
            link,
            client: ("10.0.0.1".parse().unwrap(), 40000),
            server: ("10.0.0.2".parse().unwrap(), 80),
        }
    }

    /// A frame from the client (`up`) or the server.
    fn seg(&self, up: bool, seq: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
        let ((src, sport), (dst, dport)) = if up {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ip = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
            _ => unreachable!(),
        };
        let mut tcp = ip.tcp(sport, dport, seq, 65535);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        if flags.rst {
            tcp = tcp.rst();
        }
        let mut packet = Vec::new();
        tcp.write(&mut packet, payload).unwrap();
        let ether_type: u16 = if src.is_ipv4() { 0x0800 } else { 0x86dd };
        let mut frame = Vec::new();
        match self.link {
            Link::Ethernet | Link::Vlan(_) => {
                frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
                if let Link::Vlan(id) = self.link {
                    frame.extend_from_slice(&0x8100u16.to_be_bytes());
                    frame.extend_from_slice(&id.to_be_bytes());
                }
                frame.extend_from_slice(&ether_type.to_be_bytes());
            }
            Link::Sll2 => {
                frame.extend_from_slice(&ether_type.to_be_bytes());
                frame.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            }
            Link::Raw => {}
        }
        frame.extend_from_slice(&packet);
        frame
    }
}

fn write_pcap(path: &Path, link: Link, frames: &[Vec<u8>]) {
    let timed: Vec<(u32, u32, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                1_700_000_000u32 + i as u32 / 100,
                (i as u32 % 100) * 1000,
                &f[..],
            )
        })
        .collect();
    write_pcap_timed(path, link, &timed);
}

/// A capture of (seconds, microseconds, frame).
fn write_pcap_timed(path: &Path, link: Link, frames: &[(u32, u32, &[u8])]) {
    std::fs::write(path, pcap_bytes(link, frames)).unwrap();
}

fn pcap_bytes(link: Link, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&link.dlt().to_le_bytes());
    for (secs, micros, frame) in frames {
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&micros.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("tcpflow-lite-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        Scratch(dir)
    }
    fn pcap(&self) -> PathBuf {
        self.0.join("in.pcap")
    }
    fn out(&self) -> PathBuf {
        self.0.join("out")
    }
    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.out().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; have {:?}", self.names()))
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.out())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tcpflow_lite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpflow-lite"))
        .args(args)
        .output()
        .unwrap()
}

fn run_files(scratch: &Scratch, link: Link, frames: &[Vec<u8>], extra: &[&str]) -> Output {
    write_pcap(&scratch.pcap(), link, frames);
    let pcap = scratch.pcap();
    let out = scratch.out();
    let mut args = vec!["-r", pcap.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = tcpflow_lite(&args);
    assert!(output.status.success(), "{output:?}");
    output
}

const UP: &str = "010.000.000.001.40000-010.000.000.002.00080";
const DOWN: &str = "010.000.000.002.00080-010.000.000.001.40000";

#[test]
fn reordered_duplicated_and_wrapping_segments_give_the_exact_streams() {
    let s = Scratch::new("reorder");
    let c = Conn::v4(Link::Ethernet);
    let isn = 0xFFFF_FFF8u32; // the client's stream crosses 2^32
    let server_isn = 5000u32;
    let at = |n: u32| isn.wrapping_add(1).wrapping_add(n);
    let frames = vec![
        c.seg(true, isn, SYN, b""),
        c.seg(false, server_isn, SYN, b""),
        c.seg(true, at(10), NONE, b"/index.html "),
        c.seg(true, at(0), NONE, b"GET "),
        c.seg(true, at(4), NONE, b"/ndex.html"), // overlaps the next with different bytes
        c.seg(true, at(0), NONE, b"GET "),       // duplicate
        c.seg(true, at(22), NONE, b"HTTP/1.0\r\n\r\n"),
        c.seg(false, server_isn + 1, NONE, b"HTTP/1.0 200 OK\r\n\r\nhi"),
        c.seg(true, at(34), FIN, b""),
        c.seg(false, server_isn + 23, FIN, b""),
    ];
    run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(s.names(), [UP, DOWN]);
    assert_eq!(s.file(UP), expected_first());
    assert_eq!(s.file(DOWN), b"HTTP/1.0 200 OK\r\n\r\nhi");
}

/// With `first`, bytes 10..14 come from "/index.html " (arrived first); 4..10 from "/ndex.".
fn expected_first() -> Vec<u8> {
    let mut stream = vec![0u8; 34];
    stream[0..4].copy_from_slice(b"GET ");
    stream[10..22].copy_from_slice(b"/index.html ");
    stream[4..10].copy_from_slice(&b"/ndex.html"[..6]);
    stream[22..34].copy_from_slice(b"HTTP/1.0\r\n\r\n");
    stream
}

#[test]
fn overlap_policy_first_and_last_and_conflicts_are_reported() {
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 100, SYN, b""),
        c.seg(true, 103, NONE, b"OD"),
        c.seg(true, 101, NONE, b"GO"),
        c.seg(true, 103, NONE, b"IL"),
        c.seg(true, 101, NONE, b"EV"),
    ];
    let first = Scratch::new("first");
    let out = run_files(&first, Link::Ethernet, &frames, &[]);
    assert_eq!(first.file(UP), b"GOOD");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 conflicting overlaps"),
        "{out:?}"
    );
    let last = Scratch::new("last");
    run_files(&last, Link::Ethernet, &frames, &["--overlap", "last"]);
    assert_eq!(last.file(UP), b"EVIL");
}

#[test]
fn gaps_are_zero_filled_in_files_and_reported() {
    let s = Scratch::new("gap");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 0, SYN, b""),
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 9, NONE, b"xyz"),
    ];
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        s.out().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(s.file(UP), b"abc\0\0\0\0\0xyz");
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains(r#""event":"gap""#) && json.contains(r#""len":5,"offset":3"#),
        "{json}"
    );
    assert!(json.contains(r#""gap_bytes":5"#), "{json}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 gap (5 bytes missing)"));
}

#[test]
fn json_events_carry_the_capture_time_of_their_packet() {
    let s = Scratch::new("json-ts");
    let c = Conn::v4(Link::Ethernet);
    let frames = [
        c.seg(true, 0, SYN, b""),
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 9, NONE, b"xyz"),
        c.seg(true, 12, FIN, b""),
    ];
    let timed = [
        (1_700_000_000, 250_000, &frames[0][..]),
        (1_700_000_001, 0, &frames[1][..]),
        (1_700_000_002, 500_000, &frames[2][..]),
        (1_700_000_003, 0, &frames[3][..]),
    ];
    write_pcap_timed(&s.pcap(), Link::Ethernet, &timed);
    let out = tcpflow_lite(&["-r", s.pcap().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ts = |kind: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind)
            .and_then(|e| e["ts"].as_f64())
            .unwrap_or_else(|| panic!("no {kind} with ts in {events:?}"))
    };
    // open: its first packet; gap: the packet past the hole (when the FIN makes it final,
    // at the latest); close: its last packet.
    assert_eq!(ts("open"), 1_700_000_000.25);
    assert!(
        (1_700_000_002.5..=1_700_000_003.0).contains(&ts("gap")),
        "{events:?}"
    );
    assert_eq!(ts("close"), 1_700_000_003.0);
}

#[test]
fn syn_with_data_rst_with_data_and_reuse_of_the_4_tuple() {
    let s = Scratch::new("reuse");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 1000, SYN, b"early"), // data on the SYN (TCP Fast Open)
        c.seg(true, 1006, RST, b"bye"),   // data on the RST, then the connection is gone
        c.seg(true, 1006, NONE, b"bye"),  // a retransmission after the RST: not a new connection
        c.seg(true, 900_000_000, SYN, b""),
        c.seg(true, 900_000_001, NONE, b"second"),
        c.seg(true, 900_000_007, FIN, b""),
        c.seg(true, 50, SYN, b""),
        c.seg(true, 51, NONE, b"third"),
    ];
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(
        s.names(),
        [UP.to_owned(), format!("{UP}c1"), format!("{UP}c2")]
    );
    assert_eq!(s.file(UP), b"earlybye");
    assert_eq!(s.file(&format!("{UP}c1")), b"second");
    assert_eq!(s.file(&format!("{UP}c2")), b"third");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 late segment after close ignored"),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

#[test]
fn vlan_sll2_and_ipv6_captures() {
    let vlan = Scratch::new("vlan");
    let c = Conn::v4(Link::Vlan(7));
    run_files(
        &vlan,
        Link::Vlan(7),
        &[c.seg(true, 1, SYN, b""), c.seg(true, 2, NONE, b"tagged")],
        &[],
    );
    assert_eq!(vlan.file(&format!("{UP}--7")), b"tagged");

    let sll2 = Scratch::new("sll2");
    let c = Conn::v4(Link::Sll2);
    run_files(
        &sll2,
        Link::Sll2,
        &[
            c.seg(false, 1, SYN, b""),
            c.seg(false, 2, NONE, b"cooked v2"),
        ],
        &[],
    );
    assert_eq!(sll2.file(DOWN), b"cooked v2");

    let v6 = Scratch::new("v6");
    let c = Conn {
        link: Link::Raw,
        client: ("2001:db8::1".parse().unwrap(), 443),
        server: ("2001:db8::a:2".parse().unwrap(), 8080),
    };
    run_files(
        &v6,
        Link::Raw,
        &[c.seg(true, 7, SYN, b""), c.seg(true, 8, NONE, b"six")],
        &[],
    );
    assert_eq!(v6.file("2001:db8::1.00443-2001:db8::a:2.08080"), b"six");
}

#[test]
fn the_console_prints_each_stream_reassembled_in_order() {
    let s = Scratch::new("console");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 0, SYN, b""),
        c.seg(true, 5, NONE, b"/a HTTP/1.0\r\n"), // arrives before "GET "
        c.seg(true, 1, NONE, b"GET "),
    ];
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    let out = tcpflow_lite(&["-r", s.pcap().to_str().unwrap(), "-c", "-g"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{UP}: GET \n{UP}: /a HTTP/1.0\r\n")
    );
    assert!(s.names().is_empty(), "-c writes no files");
}

#[test]
fn filters_and_byte_limits_apply() {
    let s = Scratch::new("filter");
    let a = Conn::v4(Link::Ethernet);
    let b = Conn {
        client: ("10.0.0.1".parse().unwrap(), 40001),
        server: ("10.0.0.3".parse().unwrap(), 22),
        ..a
    };
    let frames = vec![
        a.seg(true, 0, SYN, b""),
        a.seg(true, 1, NONE, b"0123456789"),
        b.seg(true, 0, SYN, b""),
        b.seg(true, 1, NONE, b"ssh"),
    ];
    run_files(&s, Link::Ethernet, &frames, &["-b", "4", "port", "80"]);
    assert_eq!(s.names(), [UP]);
    assert_eq!(s.file(UP), b"0123");
}

#[test]
fn bad_input_gets_one_line_errors_and_nothing_is_overwritten() {
    let s = Scratch::new("bad");
    let missing = tcpflow_lite(&["-r", "/nonexistent/capture.pcap"]);
    assert_eq!(missing.status.code(), Some(125));
    let line = String::from_utf8_lossy(&missing.stderr);
    assert!(
        line.contains("/nonexistent/capture.pcap") && !line.contains("panicked"),
        "{line}"
    );

    let c = Conn::v4(Link::Ethernet);
    write_pcap(
        &s.pcap(),
        Link::Ethernet,
        &[c.seg(true, 0, SYN, b""), c.seg(true, 1, NONE, b"new")],
    );
    let filter = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        s.out().to_str().unwrap(),
        "port",
        "eighty",
        "and",
    ]);
    assert_eq!(filter.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&filter.stderr).contains("bad filter expression"),
        "{filter:?}"
    );

    std::fs::write(s.out().join(UP), b"precious").unwrap();
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        s.out().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(s.file(UP), b"precious");
    assert_eq!(s.file(&format!("{UP}c1")), b"new");

    let not_dir = tcpflow_lite(&["-r", s.pcap().to_str().unwrap(), "-o", "/nonexistent/dir"]);
    assert_eq!(not_dir.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&not_dir.stderr).contains("/nonexistent/dir"));
}

/// Runs Debian's tcpflow 1.6.1 (when installed) on the capture just written and checks that
/// it wrote the same files with the same bytes as tcpflow-lite: the expectations of the
/// conformance tests below are what tcpflow writes, and this keeps them honest.
fn same_as_tcpflow(scratch: &Scratch) {
    let theirs = scratch.0.join("tcpflow");
    std::fs::create_dir_all(&theirs).unwrap();
    let run = Command::new("tcpflow")
        .arg("-r")
        .arg(scratch.pcap())
        .arg("-o")
        .arg(&theirs)
        .current_dir(&theirs)
        .output();
    match run {
        Ok(output) if output.status.success() => {}
        _ => {
            eprintln!("tcpflow is not installed here: comparison with it skipped");
            return;
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(&theirs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "report.xml")
        .collect();
    names.sort();
    assert_eq!(names, scratch.names(), "file names differ from tcpflow's");
    for name in names {
        assert_eq!(
            std::fs::read(theirs.join(&name)).unwrap(),
            scratch.file(&name),
            "{name} differs from tcpflow's"
        );
    }
}

/// A SYN-ACK from the server (`SYN` sent by the server side).
const SYNACK: Flags = SYN;

#[test]
fn a_rst_ends_only_its_senders_direction_and_later_new_data_is_a_new_file() {
    let s = Scratch::new("rst-direction");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 100, SYN, b""),
        c.seg(false, 500, SYNACK, b""),
        c.seg(true, 101, NONE, b"GET /"),
        c.seg(true, 106, RST, b""),
        c.seg(false, 501, NONE, b"HTTP/1.0 200"), // in flight when the client reset: kept
        c.seg(true, 101, NONE, b"GET /"),         // a retransmission of what was written
        c.seg(true, 300, NONE, b"again"),         // new data after the RST: a new file
        c.seg(false, 513, NONE, b" OK"),
    ];
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(
        s.names(),
        [UP.to_owned(), format!("{UP}c1"), DOWN.to_owned()]
    );
    assert_eq!(s.file(UP), b"GET /");
    assert_eq!(s.file(&format!("{UP}c1")), b"again");
    assert_eq!(s.file(DOWN), b"HTTP/1.0 200 OK");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 late segment "),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

#[test]
fn c_n_is_added_only_when_the_name_is_taken_on_disk() {
    let s = Scratch::new("cn-disk");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        // Two refused attempts (SYN, RST): no file written.
        c.seg(true, 3_000_000_000, SYN, b""),
        c.seg(false, 0, RST, b""),
        c.seg(true, 3_500_000_000, SYN, b""),
        c.seg(false, 0, RST, b""),
        // A connection where only the client sends.
        c.seg(true, 1000, SYN, b""),
        c.seg(false, 5000, SYNACK, b""),
        c.seg(true, 1001, FIN, b"one"),
        c.seg(false, 5001, FIN, b""),
        // Then one where both do: only the client's name is taken.
        c.seg(true, 90_000_000, SYN, b""),
        c.seg(false, 70_000_000, SYNACK, b""),
        c.seg(true, 90_000_001, NONE, b"two"),
        c.seg(false, 70_000_001, NONE, b"reply"),
    ];
    run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(
        s.names(),
        [UP.to_owned(), format!("{UP}c1"), DOWN.to_owned()]
    );
    assert_eq!(s.file(UP), b"one");
    assert_eq!(s.file(&format!("{UP}c1")), b"two");
    assert_eq!(s.file(DOWN), b"reply");
    same_as_tcpflow(&s);
    // JSON events and the console name each direction as its file is named: the refused
    // attempts and the server's silence in the first connection take no name.
    let pcap = s.pcap();
    let json = tcpflow_lite(&["-r", pcap.to_str().unwrap(), "--json"]);
    let closes: Vec<(String, String)> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["event"] == "close")
        .map(|event| {
            let name = |dir: usize| {
                event["directions"][dir]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (name(0), name(1))
        })
        .collect();
    let (up, down) = (UP.to_owned(), DOWN.to_owned());
    assert_eq!(
        closes,
        [
            (up.clone(), down.clone()),
            (up.clone(), down.clone()),
            (up.clone(), down.clone()),
            (format!("{UP}c1"), down.clone()),
        ]
    );
    let console = tcpflow_lite(&["-r", pcap.to_str().unwrap(), "-c"]);
    assert_eq!(
        String::from_utf8_lossy(&console.stdout),
        format!("{UP}: one\n{UP}c1: two\n{DOWN}: reply\n")
    );
}

#[test]
fn a_stale_syn_ack_with_another_isn_does_not_end_the_connection() {
    let s = Scratch::new("stale-synack");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 100, SYN, b""),
        c.seg(false, 500, SYNACK, b""),
        c.seg(true, 101, NONE, b"request"),
        c.seg(false, 501, NONE, b"resp"),
        c.seg(false, 7_000_000, SYNACK, b""), // an old SYN-ACK retransmitted
        c.seg(false, 505, NONE, b"onse"),
        c.seg(true, 108, NONE, b"!"),
    ];
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(s.names(), [UP, DOWN]);
    assert_eq!(s.file(UP), b"request!");
    assert_eq!(s.file(DOWN), b"response");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 SYN with a stale sequence number ignored"),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

#[test]
fn a_keep_alive_probe_one_below_the_next_byte_is_not_data() {
    let s = Scratch::new("keepalive");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 0, SYN, b""),
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 3, NONE, b"X"), // keep-alive: seq = next - 1, one garbage byte
        c.seg(true, 4, NONE, b"def"),
    ];
    let out = run_files(&s, Link::Ethernet, &frames, &["--overlap", "last"]);
    assert_eq!(s.file(UP), b"abcdef");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 keep-alive probe ignored"),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

#[test]
fn a_sequence_jump_beyond_16_mib_starts_a_new_file() {
    let s = Scratch::new("seek");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 0, SYN, b""),
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 4 + (16 << 20) + 1, NONE, b"far"), // one byte beyond the limit
        c.seg(true, 4 + (16 << 20) + 4, NONE, b"ther"),
        c.seg(true, 4 + (16 << 20), NONE, b"?"), // just within it: a hole of 16 MiB
    ];
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(s.names(), [UP.to_owned(), format!("{UP}c1")]);
    assert_eq!(s.file(UP), b"abc");
    assert_eq!(s.file(&format!("{UP}c1")), b"?farther");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 stream restarted"),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

/// The client's segment as two IPv4 fragments: the first (offset 0, more fragments) holds the
/// TCP header and the first `split` bytes of `payload`.
fn fragments(c: &Conn, seq: u32, payload: &[u8], split: usize) -> [Vec<u8>; 2] {
    let frame = c.seg(true, seq, NONE, payload);
    let (ether, ip) = frame.split_at(14);
    let header = &ip[..20];
    let data = &ip[20..];
    let part = |flags_offset: u16, bytes: &[u8]| {
        let mut h = header.to_vec();
        h[2..4].copy_from_slice(&((20 + bytes.len()) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&flags_offset.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum: u32 = h
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        h[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
        [ether, &h, bytes].concat()
    };
    let cut = 20 + split; // TCP header and the first bytes
    [
        part(0x2000, &data[..cut]),
        part((cut / 8) as u16, &data[cut..]),
    ]
}

#[test]
fn the_first_ipv4_fragment_is_data() {
    let s = Scratch::new("fragment");
    let c = Conn::v4(Link::Ethernet);
    let [first, second] = fragments(&c, 1, b"first-8+second part", 12);
    let frames = vec![c.seg(true, 0, SYN, b""), first, second];
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(s.file(UP), b"first-8+seco");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 IP fragment skipped"),
        "{out:?}"
    );
    same_as_tcpflow(&s);
}

#[test]
fn a_missing_output_directory_is_created_and_errors_are_one_line() {
    let s = Scratch::new("mkdir");
    let c = Conn::v4(Link::Ethernet);
    write_pcap(
        &s.pcap(),
        Link::Ethernet,
        &[c.seg(true, 0, SYN, b""), c.seg(true, 1, NONE, b"made")],
    );
    let dir = s.0.join("new");
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(dir.join(UP)).unwrap(), b"made");
    // Only the last component is created, as tcpflow does.
    let nested = s.0.join("missing/new");
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        nested.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing/new") && !nested.exists(),
        "{stderr}"
    );

    // A capture cut short in its last record: the flows read are written, the error is the
    // only line.
    let mut bytes = std::fs::read(s.pcap()).unwrap();
    bytes.extend_from_slice(&c.seg(true, 5, NONE, b"cut")[..0]);
    let record = 16 + c.seg(true, 5, NONE, b"more").len();
    let mut extra = Vec::new();
    extra.extend_from_slice(&1_700_000_001u32.to_le_bytes());
    extra.extend_from_slice(&0u32.to_le_bytes());
    extra.extend_from_slice(&(record as u32).to_le_bytes());
    extra.extend_from_slice(&(record as u32).to_le_bytes());
    extra.extend_from_slice(&c.seg(true, 5, NONE, b"more")[..10]);
    bytes.extend_from_slice(&extra);
    std::fs::write(s.pcap(), bytes).unwrap();
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        s.out().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert_eq!(s.file(UP), b"made");
}

#[test]
fn data_before_the_syn_and_replays_after_an_idle_close_are_not_new_streams() {
    let c = Conn::v4(Link::Ethernet);
    let other = Conn {
        client: ("10.0.0.9".parse().unwrap(), 5000),
        ..c
    };
    const OTHER: &str = "010.000.000.009.05000-010.000.000.002.00080";
    let t = 1_700_000_000u32;
    let run = |name: &str, frames: &[(u32, Vec<u8>)]| {
        let s = Scratch::new(name);
        let timed: Vec<(u32, u32, &[u8])> =
            frames.iter().map(|(secs, f)| (*secs, 0, &f[..])).collect();
        write_pcap_timed(&s.pcap(), Link::Ethernet, &timed);
        let out = tcpflow_lite(&[
            "-r",
            s.pcap().to_str().unwrap(),
            "-o",
            s.out().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(s.names(), [UP, OTHER]);
        same_as_tcpflow(&s);
        s
    };
    let replay = run(
        "replay",
        &[
            (t, c.seg(true, 1000, SYN, b"")),
            (t, c.seg(true, 990, NONE, b"0123456789abc")), // starts before the SYN's sequence number
            (t, c.seg(true, 1001, NONE, b"hello")),
            (t + 1000, other.seg(true, 7, SYN, b"")), // 1000 s later: the first connection is idle
            (t + 1000, other.seg(true, 8, NONE, b"x")),
            (t + 1001, c.seg(true, 1001, NONE, b"hello")), // a replay of what was written
        ],
    );
    assert_eq!(replay.file(UP), b"hello");
    // A timestamp going back does not make a connection idle.
    let back = run(
        "clock-back",
        &[
            (t + 1000, other.seg(true, 7, SYN, b"")),
            (t, c.seg(true, 1000, SYN, b"")),
            (t, c.seg(true, 1001, NONE, b"hello")),
            (t + 1001, other.seg(true, 8, NONE, b"x")),
            (t + 2, c.seg(true, 1006, NONE, b"!")),
        ],
    );
    assert_eq!(back.file(UP), b"hello!");
}

/// Runs tcpflow-lite through `sh -c` with `setup` first (ulimit, trap), for limits of the
/// process itself.
fn tcpflow_lite_with(setup: &str, args: &[&str]) -> Output {
    let mut command = format!("{setup}; exec \"$0\"");
    for i in 1..=args.len() {
        command.push_str(&format!(" \"${i}\""));
    }
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(env!("CARGO_BIN_EXE_tcpflow-lite"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_open_file_cap_follows_rlimit_nofile() {
    let s = Scratch::new("nofile");
    // 60 connections open at once, each direction written again after the others opened.
    let conns: Vec<Conn> = (0..60u16)
        .map(|i| Conn {
            client: ("10.0.0.1".parse().unwrap(), 41000 + i),
            ..Conn::v4(Link::Ethernet)
        })
        .collect();
    let mut frames = Vec::new();
    for c in &conns {
        frames.push(c.seg(true, 0, SYN, b""));
        frames.push(c.seg(false, 0, SYN, b""));
        frames.push(c.seg(true, 1, NONE, b"ask "));
        frames.push(c.seg(false, 1, NONE, b"tell "));
    }
    for c in &conns {
        frames.push(c.seg(true, 5, NONE, b"again"));
        frames.push(c.seg(false, 6, NONE, b"more"));
    }
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    let out = tcpflow_lite_with(
        "ulimit -n 32",
        &[
            "-r",
            s.pcap().to_str().unwrap(),
            "-o",
            s.out().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(s.names().len(), 120);
    assert_eq!(
        s.file("010.000.000.001.41059-010.000.000.002.00080"),
        b"ask again"
    );
    assert_eq!(
        s.file("010.000.000.002.00080-010.000.000.001.41000"),
        b"tell more"
    );
}

#[test]
fn a_write_error_on_one_flow_drops_that_flow_only() {
    let s = Scratch::new("efbig");
    let big = Conn::v4(Link::Ethernet);
    let small = Conn {
        client: ("10.0.0.7".parse().unwrap(), 7000),
        ..big
    };
    let chunk = [b'x'; 1000];
    let mut frames = vec![
        big.seg(true, 0, SYN, b""),
        small.seg(true, 0, SYN, b""),
        small.seg(true, 1, NONE, b"fits"),
    ];
    for i in 0..200u32 {
        frames.push(big.seg(true, 1 + i * 1000, NONE, &chunk)); // 200 kB: over the file size limit
    }
    frames.push(small.seg(true, 5, NONE, b" too"));
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    // Files of at most 64 kB (ulimit -f counts 512- or 1024-byte blocks), SIGXFSZ ignored:
    // writing beyond fails with EFBIG.
    let out = tcpflow_lite_with(
        "trap '' XFSZ; ulimit -f 64",
        &[
            "-r",
            s.pcap().to_str().unwrap(),
            "-o",
            s.out().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("flow {UP} dropped")) && stderr.contains("too large"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 flow dropped for output errors"),
        "{stderr}"
    );
    assert_eq!(
        s.file("010.000.000.007.07000-010.000.000.002.00080"),
        b"fits too"
    );
    // Only what was written counts as reassembled, whenever the failure was learned.
    assert!(stderr.contains(", 8 bytes reassembled"), "{stderr}");
}

/// A flow whose file fails only once the capture ended and the flow was closed (its last
/// bytes are written at its close, and the write fails then): the summary, printed after
/// the writer is done, does not count its bytes as reassembled.
#[test]
fn a_write_error_learned_after_the_close_is_not_counted_as_reassembled() {
    let s = Scratch::new("late-efbig");
    let big = Conn::v4(Link::Ethernet);
    let small = Conn {
        client: ("10.0.0.7".parse().unwrap(), 7000),
        ..big
    };
    let chunk = [b'x'; 1000];
    // The big flow's first 100 bytes are written at once (a new file's first bytes are);
    // the next 3,000 wait in its buffer until the capture ends, and exceed the file size
    // limit then.
    let mut frames = vec![
        big.seg(true, 0, SYN, b""),
        small.seg(true, 0, SYN, b""),
        big.seg(true, 1, NONE, &chunk[..100]),
        small.seg(true, 1, NONE, b"fits"),
    ];
    for i in 0..3u32 {
        frames.push(big.seg(true, 101 + i * 1000, NONE, &chunk));
    }
    frames.push(small.seg(true, 5, NONE, b" too"));
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    let out = tcpflow_lite_with(
        "trap '' XFSZ; ulimit -f 1",
        &[
            "-r",
            s.pcap().to_str().unwrap(),
            "-o",
            s.out().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("flow {UP} dropped")), "{stderr}");
    assert!(
        stderr.contains("2 flows, 8 bytes reassembled") && stderr.contains("1 flow dropped"),
        "{stderr}"
    );
    assert_eq!(
        s.file("010.000.000.007.07000-010.000.000.002.00080"),
        b"fits too"
    );
}

#[test]
fn one_byte_segments_behind_a_hole_count_what_they_really_hold() {
    let s = Scratch::new("overhead");
    let c = Conn::v4(Link::Ethernet);
    // Byte 0 missing, then 20,000 one-byte segments: 20 kB of payload, but each held segment
    // costs about a hundred bytes, so a 1 MB bound is reached long before the end.
    let mut frames = vec![c.seg(true, 0, SYN, b"")];
    for i in 1..=20_000u32 {
        frames.push(c.seg(true, 1 + i, NONE, &[b'a' + (i % 26) as u8]));
    }
    let expected = |file: &[u8]| {
        file.len() == 20_001
            && file[0] == 0
            && file[1..]
                .iter()
                .enumerate()
                .all(|(i, b)| *b == b'a' + ((i as u32 + 1) % 26) as u8)
    };
    // The console shows bytes in order only: it holds them, up to the bound.
    write_pcap(&s.pcap(), Link::Ethernet, &frames);
    let pcap = s.pcap();
    let shown = tcpflow_lite(&[
        "-r",
        pcap.to_str().unwrap(),
        "-c",
        "--max-pending",
        "1000000",
    ]);
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(stderr.contains("1 gap forced by --max-pending"), "{stderr}");
    // Files take bytes at their offset: beyond 64 kB waiting they are written at once, as
    // tcpflow writes them, and nothing is forced (the hole is a gap at the end).
    let out = run_files(&s, Link::Ethernet, &frames, &["--max-pending", "1000000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("forced") && stderr.contains("1 gap (1 byte missing)"),
        "{stderr}"
    );
    assert!(expected(&s.file(UP)));
}

#[test]
fn retransmission_histories_count_against_the_total_bound() {
    let s = Scratch::new("histories");
    let conns: Vec<Conn> = (0..40u16)
        .map(|i| Conn {
            client: ("10.0.0.1".parse().unwrap(), 42000 + i),
            ..Conn::v4(Link::Ethernet)
        })
        .collect();
    let chunk = [b'h'; 1000];
    let mut frames: Vec<Vec<u8>> = conns.iter().map(|c| c.seg(true, 0, SYN, b"")).collect();
    // 20 kB in order on each of 40 connections, all open at once: each keeps the last 16 kB
    // it delivered to compare retransmissions against, 640 kB in all.
    for i in 0..20u32 {
        for c in &conns {
            frames.push(c.seg(true, 1 + i * 1000, NONE, &chunk));
        }
    }
    let out = run_files(
        &s,
        Link::Ethernet,
        &frames,
        &["--max-pending-total", "400000"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retransmission histories dropped for --max-history-total"),
        "{stderr}"
    );
    assert_eq!(s.names().len(), 40);
    assert!(s.names().iter().all(|name| s.file(name) == [b'h'; 20_000]));
}

#[test]
fn replacing_the_output_directory_during_a_capture_redirects_nothing() {
    use std::io::Write;
    use std::process::Stdio;
    let s = Scratch::new("swap");
    let elsewhere = s.0.join("elsewhere");
    let kept = s.0.join("kept");
    std::fs::create_dir(&elsewhere).unwrap();
    let c = Conn::v4(Link::Ethernet);
    let d = Conn {
        client: ("10.0.0.5".parse().unwrap(), 6000),
        ..c
    };
    let timed = |frames: &[Vec<u8>]| -> Vec<u8> {
        let frames: Vec<(u32, u32, &[u8])> =
            frames.iter().map(|f| (1_700_000_000, 0, &f[..])).collect();
        pcap_bytes(Link::Ethernet, &frames)
    };
    let first = timed(&[c.seg(true, 0, SYN, b""), c.seg(true, 1, NONE, b"before")]);
    let second = timed(&[
        d.seg(true, 0, SYN, b""),
        d.seg(true, 1, NONE, b"after"),
        c.seg(true, 7, NONE, b" and after"),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpflow-lite"))
        .args(["-r", "-", "-o", s.out().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&first).unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    while !s.out().join(UP).exists() {
        assert!(
            started.elapsed().as_secs() < 10,
            "the first file never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // The directory's path now leads elsewhere: a symbolic link in its place.
    std::fs::rename(s.out(), &kept).unwrap();
    std::os::unix::fs::symlink(&elsewhere, s.out()).unwrap();
    stdin.write_all(&second[24..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "a file was written through the link"
    );
    assert_eq!(std::fs::read(kept.join(UP)).unwrap(), b"before and after");
    assert_eq!(
        std::fs::read(kept.join("010.000.000.005.06000-010.000.000.002.00080")).unwrap(),
        b"after"
    );
}

#[test]
fn the_console_escapes_control_bytes_on_a_terminal_unless_raw() {
    let s = Scratch::new("escape");
    let c = Conn::v4(Link::Ethernet);
    // ESC [2J clears a screen; a C1 CSI and a byte that is not UTF-8 follow.
    let payload = b"GET /\x1b[2J\xc2\x9b6n\xff ok\r\n";
    write_pcap(
        &s.pcap(),
        Link::Ethernet,
        &[c.seg(true, 0, SYN, b""), c.seg(true, 1, NONE, payload)],
    );
    let pcap = s.pcap();
    let pcap = pcap.to_str().unwrap();
    // Not a terminal: the bytes as they are.
    let piped = tcpflow_lite(&["-r", pcap, "-c"]);
    assert!(
        piped.stdout.windows(payload.len()).any(|w| w == payload),
        "{piped:?}"
    );
    // A terminal (script(1) gives the program a pty): controls shown as \xNN.
    let on_tty = |extra: &str| -> Option<Vec<u8>> {
        let bin = env!("CARGO_BIN_EXE_tcpflow-lite");
        let command = format!("{bin} -r {pcap} -c {extra}");
        match Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
        {
            Ok(out) if out.status.success() => Some(out.stdout),
            _ => None,
        }
    };
    let Some(escaped) = on_tty("") else {
        eprintln!("script(1) is not installed here: the terminal case is skipped");
        return;
    };
    let text = String::from_utf8_lossy(&escaped);
    assert!(text.contains(r"GET /\x1b[2J\x9b6n\xff ok"), "{text}");
    assert!(
        !escaped.contains(&0x1b) && !escaped.contains(&0xff),
        "{text}"
    );
    let raw = on_tty("--raw").unwrap_or_default();
    assert!(
        raw.windows(4).any(|w| w == b"\x1b[2J"),
        "--raw prints the bytes as they are: {raw:?}"
    );
}

#[test]
fn a_rst_one_way_and_a_fin_the_other_end_the_connection_after_the_linger() {
    let s = Scratch::new("rst-fin");
    let c = Conn::v4(Link::Ethernet);
    let other = Conn {
        client: ("10.0.0.9".parse().unwrap(), 5000),
        ..c
    };
    let t = 1_700_000_000u32;
    let frames = [
        (t, c.seg(true, 100, SYN, b"")),
        (t, c.seg(false, 500, SYNACK, b"")),
        (t, c.seg(true, 101, NONE, b"GET /")),
        (t, c.seg(false, 501, NONE, b"HTTP ")),
        (t, c.seg(true, 106, RST, b"")),
        (t, c.seg(false, 506, FIN, b"late reply")),
        (t + 3, other.seg(true, 7, SYN, b"")), // 3 s later: the first connection has ended
        (t + 3, other.seg(true, 8, NONE, b"x")),
    ];
    let timed: Vec<(u32, u32, &[u8])> = frames.iter().map(|(secs, f)| (*secs, 0, &f[..])).collect();
    write_pcap_timed(&s.pcap(), Link::Ethernet, &timed);
    let out = tcpflow_lite(&[
        "-r",
        s.pcap().to_str().unwrap(),
        "-o",
        s.out().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8_lossy(&out.stdout);
    let first_close = json
        .lines()
        .find(|l| l.contains(r#""event":"close""#))
        .unwrap_or_default();
    assert!(
        first_close.contains(&format!(r#""flow":"{UP}""#))
            && first_close.contains(r#""reason":"fin""#),
        "{json}"
    );
    assert_eq!(s.file(DOWN), b"HTTP late reply");
    same_as_tcpflow(&s);
}

/// tcpflow names a tagged flow by the outermost 802.1Q tag's whole TCI, priority bits
/// included (`--45056` for VLAN 0 at priority 5); tcpflow-lite does the same, so that the
/// names of the two tools diff clean. An 802.1ad (0x88a8) outer tag is where they part:
/// tcpflow drops it from the name, merging that VLAN's flows with untagged ones (a tcpflow
/// bug: normalize.py rewrites the tag as 802.1Q), tcpflow-lite names it like any tag.
#[test]
fn vlan_names_carry_the_whole_tag_as_tcpflow_does() {
    for (tci, suffix) in [
        (0xB000u16, "--45056"),
        (0xA064, "--41060"),
        (0, "--0"),
        (100, "--100"),
    ] {
        let s = Scratch::new(&format!("tci-{tci}"));
        let c = Conn::v4(Link::Vlan(tci));
        run_files(
            &s,
            Link::Vlan(tci),
            &[c.seg(true, 1, SYN, b""), c.seg(true, 2, NONE, b"tagged")],
            &[],
        );
        assert_eq!(s.file(&format!("{UP}{suffix}")), b"tagged");
        same_as_tcpflow(&s);
    }
    // QinQ: the outer tag names the flow, 802.1Q or 802.1ad.
    for outer in [0x8100u16, 0x88a8] {
        let s = Scratch::new(&format!("qinq-{outer}"));
        let c = Conn::v4(Link::Ethernet);
        let frames: Vec<Vec<u8>> = [c.seg(true, 1, SYN, b""), c.seg(true, 2, NONE, b"double")]
            .into_iter()
            .map(|frame| {
                let mut tagged = frame[..12].to_vec();
                tagged.extend_from_slice(&outer.to_be_bytes());
                tagged.extend_from_slice(&0xB00Au16.to_be_bytes());
                tagged.extend_from_slice(&0x8100u16.to_be_bytes());
                tagged.extend_from_slice(&20u16.to_be_bytes());
                tagged.extend_from_slice(&frame[12..]);
                tagged
            })
            .collect();
        run_files(&s, Link::Ethernet, &frames, &[]);
        assert_eq!(s.file(&format!("{UP}--45066")), b"double");
        if outer == 0x8100 {
            same_as_tcpflow(&s);
        }
    }
}

/// `--count`, `-w` and the disk bounds are the options `nsdebug flow` takes, declared once:
/// `--count N` stops after N packets, `-w` wants a live capture, `--max-files` and
/// `--max-disk-bytes` keep files and bytes off the disk and the summary says what.
#[test]
fn capture_limits_and_disk_bounds_as_nsdebug_flow_takes_them() {
    let counted = Scratch::new("count");
    let c = Conn::v4(Link::Ethernet);
    let out = run_files(
        &counted,
        Link::Ethernet,
        &[
            c.seg(true, 1, SYN, b""),
            c.seg(true, 2, NONE, b"first"),
            c.seg(true, 7, NONE, b" second"),
        ],
        &["--count", "2"],
    );
    assert_eq!(counted.file(UP), b"first", "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 packets"));

    let live_only = tcpflow_lite(&["-r", counted.pcap().to_str().unwrap(), "-w", "x.pcap"]);
    // Refused before anything is read, as "nothing to read" is: tcpflow-lite could not run.
    assert_eq!(live_only.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&live_only.stderr).contains("-w saves a live capture"));

    // Five connections of 10 bytes each way, at most 3 files, then at most 25 bytes.
    let conns: Vec<Conn> = (0..5u16)
        .map(|i| Conn {
            client: ("10.0.0.1".parse().unwrap(), 43000 + i),
            ..Conn::v4(Link::Ethernet)
        })
        .collect();
    let frames: Vec<Vec<u8>> = conns
        .iter()
        .flat_map(|c| {
            [
                c.seg(true, 1, SYN, b""),
                c.seg(true, 2, NONE, b"0123456789"),
            ]
        })
        .collect();
    let files = Scratch::new("max-files");
    let out = run_files(&files, Link::Ethernet, &frames, &["--max-files", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(files.names().len(), 3, "{stderr}");
    assert!(
        stderr.contains("--max-files reached: later output was not written"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "2 directions and 20 bytes not written (--max-files reached at 3 files, 30 bytes)"
        ),
        "{stderr}"
    );
    let bytes = Scratch::new("max-disk-bytes");
    let out = run_files(&bytes, Link::Ethernet, &frames, &["--max-disk-bytes", "25"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let written: usize = bytes.names().iter().map(|n| bytes.file(n).len()).sum();
    assert_eq!((bytes.names().len(), written), (3, 25), "{stderr}");
    assert!(
        stderr.contains(
            "2 directions and 25 bytes not written (--max-disk-bytes reached at 3 files, 25 bytes)"
        ),
        "{stderr}"
    );
}

/// For a capture where tcpflow-lite and Debian's tcpflow differ by a documented tcpflow bug:
/// tcpflow's output on the capture differs (the bug shows), and once
/// `scripts/conformance.d/normalize.py` rewrote the capture around it (reporting `fix`),
/// tcpflow writes what tcpflow-lite wrote on the original, name for name and byte for byte.
/// Skipped, saying so, where tcpflow or python3 is missing.
fn a_tcpflow_bug(scratch: &Scratch, fix: &str) {
    let tcpflow = |captures: &[PathBuf], dir: &Path| -> bool {
        std::fs::create_dir_all(dir).unwrap();
        captures.iter().all(|capture| {
            Command::new("tcpflow")
                .arg("-r")
                .arg(capture)
                .args(["-o", "."])
                .current_dir(dir)
                .output()
                .is_ok_and(|o| o.status.success())
        })
    };
    let raw = scratch.0.join("tcpflow-raw");
    if !tcpflow(&[scratch.pcap()], &raw) {
        eprintln!("tcpflow is not installed here: comparison with it skipped");
        return;
    }
    let normalized = scratch.0.join("normalized.pcap");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/conformance.d/normalize.py");
    let Ok(made) = Command::new("python3")
        .arg(&script)
        .arg(scratch.pcap())
        .arg(&normalized)
        .output()
    else {
        eprintln!("python3 is not installed here: normalize.py skipped");
        return;
    };
    assert!(made.status.success(), "{made:?}");
    let made = String::from_utf8_lossy(&made.stdout).into_owned();
    assert!(
        made.lines().any(|l| l.starts_with(&format!("{fix} "))),
        "{made}"
    );
    let mut captures = vec![normalized];
    captures.extend(
        made.lines()
            .filter_map(|l| l.strip_prefix("part "))
            .map(PathBuf::from),
    );
    let fixed = scratch.0.join("tcpflow-normalized");
    assert!(tcpflow(&captures, &fixed));
    let contents = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .filter(|(name, _)| name != "report.xml")
            .collect();
        files.sort();
        files
    };
    let ours = contents(&scratch.out());
    assert_ne!(contents(&raw), ours, "tcpflow no longer shows the bug");
    assert_eq!(contents(&fixed), ours, "normalize.py does not explain it");
}

/// An IPv4 datagram whose total length ends before its TCP header does (20 bytes, the IP
/// header alone) in a frame padded to Ethernet's minimum: tcpflow reads a TCP header and
/// data from the padding, a flow between ports 0 and 0; tcpflow-lite counts a malformed frame.
#[test]
fn an_ipv4_datagram_ending_inside_its_tcp_header_is_malformed() {
    let s = Scratch::new("short-ipv4");
    let c = Conn::v4(Link::Ethernet);
    let mut short = c.seg(true, 6, NONE, b"")[..14 + 20].to_vec();
    short[16..18].copy_from_slice(&20u16.to_be_bytes());
    short[24..26].copy_from_slice(&[0, 0]);
    let sum = ipv4_checksum(&short[14..34]);
    short[24..26].copy_from_slice(&sum.to_be_bytes());
    short.extend_from_slice(&[0; 26]);
    let out = run_files(
        &s,
        Link::Ethernet,
        &[
            c.seg(true, 0, SYN, b""),
            c.seg(true, 1, NONE, b"hello"),
            short,
        ],
        &[],
    );
    assert_eq!(s.names(), [UP]);
    assert_eq!(s.file(UP), b"hello");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 malformed frame"),
        "{out:?}"
    );
    a_tcpflow_bug(&s, "short");
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One 4-tuple untagged, on VLAN 10 and on VLAN 20: three networks, three connections and
/// three files here. tcpflow keys its flows without the tag: one file, under the untagged
/// name, each connection's bytes overwriting the last one's.
#[test]
fn one_4_tuple_untagged_and_on_two_vlans_is_three_flows() {
    let s = Scratch::new("vlan-merge");
    let mut frames = Vec::new();
    for (tag, text) in [
        (None, &b"plain"[..]),
        (Some(10), b"ten"),
        (Some(20), b"twenty"),
    ] {
        let c = Conn::v4(tag.map_or(Link::Ethernet, Link::Vlan));
        frames.push(c.seg(true, 0, SYN, b""));
        frames.push(c.seg(true, 1, NONE, text));
    }
    run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(
        s.names(),
        [UP.to_owned(), format!("{UP}--10"), format!("{UP}--20")]
    );
    assert_eq!(s.file(UP), b"plain");
    assert_eq!(s.file(&format!("{UP}--10")), b"ten");
    assert_eq!(s.file(&format!("{UP}--20")), b"twenty");
    a_tcpflow_bug(&s, "vlan-merge");
}

/// IPv6 atomic fragments (a fragment header with offset 0 and no more fragments, RFC 6946)
/// carry whole TCP segments: tcpflow-lite reads them; tcpflow drops every packet with a
/// fragment header, here the client's whole direction.
#[test]
fn ipv6_atomic_fragments_are_whole_segments() {
    let s = Scratch::new("atomic");
    let c = Conn {
        link: Link::Ethernet,
        client: ("2001:db8::1".parse().unwrap(), 40000),
        server: ("2001:db8::2".parse().unwrap(), 80),
    };
    let atomic = |frame: Vec<u8>| -> Vec<u8> {
        // Ethernet (14), IPv6 (40): next header becomes 44, the payload 8 bytes longer.
        let mut out = frame[..54].to_vec();
        let length = u16::from_be_bytes([out[18], out[19]]) + 8;
        out[18..20].copy_from_slice(&length.to_be_bytes());
        out[20] = 44;
        out.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0x12, 0x34]);
        out.extend_from_slice(&frame[54..]);
        out
    };
    run_files(
        &s,
        Link::Ethernet,
        &[
            atomic(c.seg(true, 0, SYN, b"")),
            c.seg(false, 0, SYNACK, b""),
            atomic(c.seg(true, 1, NONE, b"request")),
            c.seg(false, 1, NONE, b"reply"),
        ],
        &[],
    );
    let (up, down) = (
        "2001:db8::1.40000-2001:db8::2.00080",
        "2001:db8::2.00080-2001:db8::1.40000",
    );
    assert_eq!(s.names(), [up, down]);
    assert_eq!(s.file(up), b"request");
    assert_eq!(s.file(down), b"reply");
    a_tcpflow_bug(&s, "atomic");
}

/// Runs Debian's tcpflow on the capture into `dir` and returns the size and allocated bytes
/// of each file it wrote (without reading them: some are gigabytes of zeros), or `None` where
/// tcpflow is not installed.
fn tcpflow_sizes(scratch: &Scratch, dir: &str) -> Option<Vec<(String, u64, u64)>> {
    let dir = scratch.0.join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ran = Command::new("tcpflow")
        .arg("-r")
        .arg(scratch.pcap())
        .args(["-o", "."])
        .current_dir(&dir)
        .output();
    if !ran.is_ok_and(|o| o.status.success()) {
        eprintln!("tcpflow is not installed here: comparison with it skipped");
        return None;
    }
    Some(sizes(&dir))
}

/// (name, st_size, st_blocks in bytes) of each file in `dir` but tcpflow's report.xml.
fn sizes(dir: &Path) -> Vec<(String, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut files: Vec<(String, u64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "report.xml")
        .map(|e| {
            let meta = e.metadata().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, meta.size(), meta.blocks() * 512)
        })
        .collect();
    files.sort();
    files
}

/// Jumps of up to 16 MiB are each allowed alone (tcpflow's `max_seek`), but 256 one-byte
/// segments 16 MiB apart would make a file of 4 GiB of zeros (tcpflow writes it): a stream's
/// holes stay within 16 MiB plus what it carried, and the next jump starts a new file.
#[test]
fn jumps_of_16_mib_one_after_another_make_no_huge_sparse_file() {
    let s = Scratch::new("staircase");
    let c = Conn::v4(Link::Ethernet);
    let mut frames = vec![c.seg(true, 0, SYN, b"")];
    frames.extend((0..256u32).map(|i| c.seg(true, 1 + i * (16 << 20), NONE, b"x")));
    let out = run_files(&s, Link::Ethernet, &frames, &[]);
    let files = sizes(&s.out());
    assert_eq!(files.len(), 128, "{files:?}");
    for (name, size, allocated) in &files {
        assert!(*size <= (16 << 20) + 4, "{name}: {size} bytes");
        assert!(
            *allocated <= 64 << 10,
            "{name}: {allocated} bytes allocated"
        );
    }
    assert_eq!(s.file(UP)[0], b'x');
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127 streams restarted"),
        "{out:?}"
    );
    if let Some(theirs) = tcpflow_sizes(&s, "tcpflow") {
        // tcpflow's one file spans the whole staircase.
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert!(theirs[0].1 >= 255 << 24, "{theirs:?}");
    }
}

/// The same staircase going down, in a direction that started mid-stream (no SYN), where
/// earlier bytes arriving late move offset 0 back (as tcpflow does, shifting its file): each
/// step is within 16 MiB, the file's holes are not.
#[test]
fn a_staircase_down_before_the_first_byte_makes_no_huge_sparse_file() {
    let s = Scratch::new("staircase-down");
    let c = Conn::v4(Link::Ethernet);
    let top: u32 = 2_000_000_000;
    let frames: Vec<Vec<u8>> = (0..64u32)
        .map(|i| c.seg(true, top - i * ((16 << 20) - 1), NONE, b"x"))
        .collect();
    run_files(&s, Link::Ethernet, &frames, &[]);
    let files = sizes(&s.out());
    assert!(files.len() >= 32, "{files:?}");
    for (name, size, allocated) in &files {
        assert!(*size <= (16 << 20) + 4, "{name}: {size} bytes");
        assert!(
            *allocated <= 64 << 10,
            "{name}: {allocated} bytes allocated"
        );
    }
}

/// A data segment exactly 2^31 from the next expected sequence number (one flipped bit, as a
/// fuzzer makes): a jump beyond 16 MiB like any other, so a new file, and the stream going on
/// where it was, another. tcpflow takes abs(-2^31) as negative and lets the jump through: it
/// drops the segment after a SYN, and without a SYN shifts the file by 2 GiB (4 GiB after two
/// such segments).
#[test]
fn a_jump_of_exactly_half_the_sequence_space_starts_a_new_file() {
    const HALF: u32 = 1 << 31;
    let s = Scratch::new("half-no-syn");
    let c = Conn::v4(Link::Ethernet);
    let frames = vec![
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 4 + HALF, NONE, b"X"),
        c.seg(true, 5, NONE, b"Y"), // 2^31 from X's end again
        c.seg(true, 6, NONE, b"def"),
    ];
    run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(
        s.names(),
        [UP.to_owned(), format!("{UP}c1"), format!("{UP}c2")]
    );
    assert_eq!(s.file(UP), b"abc");
    assert_eq!(s.file(&format!("{UP}c1")), b"X");
    assert_eq!(s.file(&format!("{UP}c2")), b"Ydef");
    if let Some(theirs) = tcpflow_sizes(&s, "tcpflow") {
        assert!(
            theirs.iter().any(|f| f.1 >= u64::from(u32::MAX)),
            "{theirs:?}"
        );
    }
    drop(s);

    // After a SYN: tcpflow drops the segment; normalize.py moves it on by one (a jump of
    // 2^31 - 1) and tcpflow writes what tcpflow-lite wrote.
    let s = Scratch::new("half-syn");
    let frames = vec![
        c.seg(true, 0, SYN, b""),
        c.seg(true, 1, NONE, b"abc"),
        c.seg(true, 4 + HALF, NONE, b"X"),
        c.seg(true, 4, NONE, b"def"),
    ];
    run_files(&s, Link::Ethernet, &frames, &[]);
    assert_eq!(s.file(UP), b"abc");
    assert_eq!(s.file(&format!("{UP}c1")), b"X");
    assert_eq!(s.file(&format!("{UP}c2")), b"def");
    a_tcpflow_bug(&s, "half");
}

/// `--max-disk-bytes` bounds what the files take as a user sees it (`ls -l`, a copy): their
/// sizes, holes included, not only the bytes written into them. Three connections, each a
/// byte, a 10 MiB hole and a byte: 31 MB of files from 6 bytes without the holes counted;
/// the first file takes 10 MiB of the 16 MB, the other two their first byte only.
#[test]
fn the_disk_bound_counts_the_holes_of_sparse_files() {
    let s = Scratch::new("disk-holes");
    let hole = 10 << 20;
    let frames: Vec<Vec<u8>> = (0..3u16)
        .flat_map(|i| {
            let c = Conn {
                client: ("10.0.0.1".parse().unwrap(), 44000 + i),
                ..Conn::v4(Link::Ethernet)
            };
            [
                c.seg(true, 1, SYN, b""),
                c.seg(true, 2, NONE, b"a"),
                c.seg(true, 3 + hole, NONE, b"b"),
            ]
        })
        .collect();
    let out = run_files(
        &s,
        Link::Ethernet,
        &frames,
        &["--max-disk-bytes", "16000000"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let files = sizes(&s.out());
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(total <= 16_000_000, "{total} bytes: {files:?} {stderr}");
    assert_eq!(files[0].1, u64::from(hole) + 2, "{files:?}");
    assert!(
        stderr
            .contains("2 bytes not written (--max-disk-bytes reached at 3 files, 10485764 bytes)"),
        "{stderr}"
    );
}
