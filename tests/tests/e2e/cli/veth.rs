//! `nsdebug veth` against real containers and namespaces the tests build.

use nsdebug_tests::{
    docker, http_answers, ip, require_root_and_docker, run_nsdebug, unique_name, Container,
    HostLink, Netns,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The seed recipe: `nsenter --net ethtool -S eth0 | grep peer_ifindex`, then `ip link`.
fn ethtool_peer(pid: i32, ifname: &str) -> (u32, String) {
    let out = std::process::Command::new("/usr/bin/nsenter")
        .args(["-t", &pid.to_string(), "-n", "ethtool", "-S", ifname])
        .output()
        .unwrap();
    let stats = text(&out.stdout);
    let index: u32 = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("peer_ifindex: "))
        .unwrap_or_else(|| panic!("no peer_ifindex in {stats}"))
        .parse()
        .unwrap();
    let links = text(
        &std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    );
    let name = links
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{index}: ")))
        .and_then(|rest| rest.split(['@', ':']).next())
        .unwrap()
        .to_owned();
    (index, name)
}

fn json_peers(listing: &str) -> Vec<(String, u32, String)> {
    // (container ifname, peer ifindex, peer name) from the --json output, read field by field.
    let mut peers = Vec::new();
    let mut current = String::new();
    let mut lines = listing.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("\"name\": \"") {
            current = name.trim_end_matches("\",").to_owned();
        }
        if line.starts_with("\"peer\": {") {
            let name = lines
                .next()
                .unwrap()
                .trim()
                .trim_start_matches("\"name\": \"")
                .trim_end_matches("\",")
                .to_owned();
            let index = lines
                .next()
                .unwrap()
                .trim()
                .trim_start_matches("\"ifindex\": ")
                .trim_end_matches(',')
                .parse()
                .unwrap();
            peers.push((current.clone(), index, name));
        }
    }
    peers
}

#[test]
fn the_peer_found_is_the_one_the_ethtool_recipe_finds() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&["veth", &c.name, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let (index, name) = ethtool_peer(c.pid, "eth0");
    let listing = text(&out.stdout);
    assert_eq!(
        json_peers(&listing),
        [("eth0".to_owned(), index, name.clone())],
        "{listing}"
    );
    assert!(
        listing.contains("\"master\": \"docker0\"") && listing.contains(&c.ip()),
        "{listing}"
    );
    let table = text(&run_nsdebug(&["veth", &c.name]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("eth0") && l.contains(&name) && l.contains("host")),
        "{table}"
    );
}

#[test]
fn down_cuts_the_container_off_and_up_brings_it_back() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let address = c.ip();
    assert!(http_answers(&address, 5), "serves before");
    let (_, peer) = ethtool_peer(c.pid, "eth0");
    let down = run_nsdebug(&["veth", &c.name, "--down"]);
    assert!(down.status.success(), "{down:?}");
    assert_eq!(
        text(&down.stdout).trim(),
        format!(
            "took down {peer} (ifindex {}, host), peer of eth0",
            ethtool_peer(c.pid, "eth0").0
        )
    );
    assert!(!http_answers(&address, 2), "unreachable after --down");
    let up = run_nsdebug(&["veth", &c.name, "--up"]);
    assert!(
        up.status.success() && text(&up.stdout).starts_with(&format!("brought up {peer}")),
        "{up:?}"
    );
    let back = (0..20).any(|_| http_answers(&address, 1));
    assert!(back, "reachable again after --up");
    // Nothing recorded any more: a second --up has nothing to restore, and says so (exit 0).
    let again = run_nsdebug(&["veth", &c.name, "--up"]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(text(&again.stdout).contains("already up"), "{again:?}");
}

#[test]
fn a_drill_with_for_restores_by_itself_and_on_ctrl_c_and_stale_records_are_tidied() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let address = c.ip();
    assert!(http_answers(&address, 2), "reachable before");
    // A record of a namespace that no longer exists (its container is gone).
    let stale = "/run/nsdebug/veth-down-1-999999999";
    let _ = std::fs::create_dir_all("/run/nsdebug");
    std::fs::write(stale, "host\t9999\tvethgone\n").unwrap();

    let start = std::time::Instant::now();
    let mut drill = nsdebug_tests::nsdebug()
        .args(["veth", &c.name, "--down", "--for", "3s"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(!http_answers(&address, 1), "cut off during the drill");
    let status = drill.wait().unwrap();
    assert!(
        status.success() && start.elapsed() >= std::time::Duration::from_secs(3),
        "{status:?}"
    );
    assert!(
        (0..20).any(|_| http_answers(&address, 1)),
        "back by itself after 3 s"
    );
    assert!(
        !std::path::Path::new(stale).exists(),
        "the stale record was tidied"
    );

    let mut drill = nsdebug_tests::nsdebug()
        .args(["veth", &c.name, "--down", "--for", "10m"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(!http_answers(&address, 1), "cut off during the drill");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(drill.id() as i32, libc::SIGINT) };
    let status = drill.wait().unwrap();
    assert_eq!(status.code(), Some(130), "ended by SIGINT, after restoring");
    assert!(
        (0..20).any(|_| http_answers(&address, 1)),
        "back at once after Ctrl-C"
    );
    let after = run_nsdebug(&["veth", &c.name, "--up"]);
    assert!(
        text(&after.stdout).contains("already up"),
        "nothing left recorded: {after:?}"
    );
}

#[test]
fn up_restores_only_what_down_changed() {
    require_root_and_docker!();
    let network = unique_name("net");
    assert!(docker(&["network", "create", &network]).status.success());
    let c = Container::start(&[]);
    assert!(docker(&["network", "connect", &network, &c.name])
        .status
        .success());
    let (_, eth1_peer) = ethtool_peer(c.pid, "eth1");
    // The user took eth1's peer down by hand; nsdebug --down then --up must leave it down.
    ip(&["link", "set", &eth1_peer, "down"]);
    assert!(run_nsdebug(&["veth", &c.name, "--down"]).status.success());
    assert!(run_nsdebug(&["veth", &c.name, "--up"]).status.success());
    let links = text(
        &std::process::Command::new("ip")
            .args(["-o", "link", "show", &eth1_peer])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!links.contains(",UP"), "eth1's peer stays down: {links}");
    let listing = text(&run_nsdebug(&["veth", &c.name, "--json"]).stdout);
    let peers = json_peers(&listing);
    assert_eq!(peers.len(), 2, "two networks, two peers: {listing}");
    assert_eq!(peers[1].2, eth1_peer);
    drop(c);
    docker(&["network", "rm", &network]);
}

#[test]
fn host_network_and_no_network_containers_get_a_clear_answer() {
    require_root_and_docker!();
    let host = Container::start(&["--net=host"]);
    let out = run_nsdebug(&["veth", &host.name]);
    assert!(
        out.status.success()
            && text(&out.stdout).contains("shares the host's network namespace (--net=host)"),
        "{out:?}"
    );
    let json = run_nsdebug(&["veth", &host.name, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("JSON, not prose: {e}: {json:?}"));
    assert_eq!(doc["network"], "host", "{doc}");
    assert_eq!(
        doc["target"]["name"],
        host.name.as_str(),
        "the same target object as every --json: {doc}"
    );
    assert_eq!(doc["interfaces"].as_array().map(Vec::len), Some(0), "{doc}");
    let down = run_nsdebug(&["veth", &host.name, "--down"]);
    assert_eq!(down.status.code(), Some(125));
    assert!(text(&down.stderr).contains("--net=host"), "{down:?}");

    let none = Container::start(&["--net=none"]);
    let out = run_nsdebug(&["veth", &none.name]);
    assert!(
        text(&out.stdout).contains("no network interface but lo (--net=none)"),
        "{out:?}"
    );
    let down = run_nsdebug(&["veth", &none.name, "--down"]);
    assert_eq!(down.status.code(), Some(125));
    assert!(
        text(&down.stderr).contains("--net=none") && text(&down.stderr).lines().count() == 1,
        "{down:?}"
    );

    // Its own server on another port: port 80 of the shared namespace is taken.
    let joined = Container::start_with(
        &[&format!("--net=container:{}", none.name)],
        &["/bin/httpd", "-f", "-p", "8080", "-h", "/www"],
    );
    let out = run_nsdebug(&["veth", &joined.name]);
    assert!(
        text(&out.stderr).contains(&format!(
            "uses the network namespace of container {}",
            none.name
        )),
        "{out:?}"
    );
}

#[test]
fn a_peer_in_a_third_namespace_is_found_through_the_netnsid() {
    require_root_and_docker!();
    let a = Netns::new("a");
    let b = Netns::new("b");
    ip(&[
        "link", "add", "nsdbg-va", "netns", &a.0, "type", "veth", "peer", "name", "nsdbg-vb",
        "netns", &b.0,
    ]);
    ip(&["-n", &a.0, "link", "set", "nsdbg-va", "up"]);
    ip(&["-n", &b.0, "link", "set", "nsdbg-vb", "up"]);
    // A same-named, same-index decoy in the host must not be taken for the peer.
    let out = run_nsdebug(&["veth", &a.0, "--json"]);
    let listing = text(&out.stdout);
    assert!(
        listing.contains(&format!("\"namespace\": \"ip netns {}\"", b.0)),
        "{listing}"
    );
    assert_eq!(json_peers(&listing)[0].2, "nsdbg-vb");
    let down = run_nsdebug(&["veth", &a.0, "--down", "-i", "nsdbg-va"]);
    assert!(down.status.success(), "{down:?}");
    let state = text(
        &std::process::Command::new("ip")
            .args(["-n", &b.0, "-o", "link", "show", "nsdbg-vb"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!state.contains(",UP"), "{state}");
    assert!(run_nsdebug(&["veth", &a.0, "--up"]).status.success());
    let state = text(
        &std::process::Command::new("ip")
            .args(["-n", &b.0, "-o", "link", "show", "nsdbg-vb"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(state.contains(",UP"), "{state}");
}

#[test]
fn a_macvlan_names_its_parent_and_is_refused() {
    require_root_and_docker!();
    let ns = Netns::new("m");
    let parent = format!("nsdbg-p{}", std::process::id() % 100000);
    ip(&[
        "link",
        "add",
        &parent,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{parent}x"),
    ]);
    let _parent = HostLink(parent.clone());
    ip(&["link", "set", &parent, "up"]);
    ip(&[
        "link", "add", "nsdbg-mv", "link", &parent, "type", "macvlan", "mode", "bridge",
    ]);
    ip(&["link", "set", "nsdbg-mv", "netns", &ns.0]);
    let out = run_nsdebug(&["veth", &ns.0]);
    let table = text(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("nsdbg-mv")
            && l.contains(&format!("macvlan on parent {parent}"))
            && l.contains("host")),
        "{table}"
    );
    let down = run_nsdebug(&["veth", &ns.0, "--down"]);
    assert_eq!(down.status.code(), Some(125));
    assert!(
        text(&down.stderr).contains("refusing") && text(&down.stderr).contains(&parent),
        "{down:?}"
    );
    let state = text(
        &std::process::Command::new("ip")
            .args(["-o", "link", "show", &parent])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(state.contains(",UP"), "the parent is untouched: {state}");
}

#[test]
fn interface_names_with_control_characters_are_escaped_in_the_table() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    // The container's root may name its links as it likes: ESC [2J clears a terminal.
    let added = std::process::Command::new("/usr/bin/nsenter")
        .args([
            "-t",
            &c.pid.to_string(),
            "-n",
            "ip",
            "link",
            "add",
            "\x1b[2Jx",
            "type",
            "veth",
            "peer",
            "name",
            "esc-peer",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let table = run_nsdebug(&["veth", &c.name]);
    assert!(table.status.success(), "{table:?}");
    assert!(
        !table.stdout.contains(&0x1b),
        "a raw ESC reached the table: {table:?}"
    );
    assert!(
        text(&table.stdout).contains(r"\x1b[2Jx"),
        "{}",
        text(&table.stdout)
    );
    let json = run_nsdebug(&["veth", &c.name, "--json"]);
    assert!(
        text(&json.stdout).contains(r"\u001b[2Jx"),
        "--json keeps the name: {}",
        text(&json.stdout)
    );
}

/// `--for` is a drill of `--down`: with `--up` it used to take the network down for its
/// duration; now it is a usage error and nothing changes.
#[test]
fn up_for_is_refused_and_the_container_stays_reachable() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let out = run_nsdebug(&["veth", &c.name, "--up", "--for", "2s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("'--for <DURATION>' cannot be used with '--up'")
            || text(&out.stderr).contains("'--up' cannot be used with '--for <DURATION>'"),
        "{out:?}"
    );
    assert!(!text(&out.stdout).contains("took down"), "{out:?}");
    assert!(http_answers(&c.ip(), 2), "the container is still reachable");
}

/// A paused container's interfaces are read (only --down/--up need it running); the bridge
/// is named with its Docker network; a peer nsdebug took down says so, with the way back.
#[test]
fn paused_reads_bridges_name_their_network_and_a_peer_taken_down_says_so() {
    require_root_and_docker!();
    let network = unique_name("net");
    assert!(docker(&["network", "create", &network]).status.success());
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["network", "rm", &self.0]);
        }
    }
    let _network = Remove(network.clone());
    let c = Container::start(&["--network", &network]);
    docker(&["pause", &c.name]);
    let paused = run_nsdebug(&["veth", &c.name]);
    let refused = run_nsdebug(&["veth", &c.name, "--down"]);
    docker(&["unpause", &c.name]);
    assert!(paused.status.success(), "{paused:?}");
    assert!(text(&paused.stdout).contains("eth0"), "{paused:?}");
    assert_eq!(refused.status.code(), Some(125), "{refused:?}");
    assert!(text(&refused.stderr).contains("is paused"), "{refused:?}");

    let listing = text(&run_nsdebug(&["veth", &c.name]).stdout);
    assert!(listing.contains(&format!("({network})")), "{listing}");
    let down = run_nsdebug(&["veth", &c.name, "--down"]);
    assert!(down.status.success(), "{down:?}");
    let listing = text(&run_nsdebug(&["veth", &c.name]).stdout);
    let up = run_nsdebug(&["veth", &c.name, "--up"]);
    assert!(up.status.success(), "{up:?}");
    assert!(listing.contains("DOWN (nsdebug --down)"), "{listing}");
    assert!(
        listing.contains(&format!("nsdebug veth {} --up brings it back", c.name)),
        "{listing}"
    );
    let after = text(&run_nsdebug(&["veth", &c.name]).stdout);
    assert!(!after.contains("nsdebug --down"), "{after}");
}

/// `--up` restores the host peer `--down` took down even after the container moved its end
/// into another namespace (nothing in the container leads to the peer any more).
#[test]
fn up_restores_the_host_peer_whatever_the_container_did_since() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let before = run_nsdebug(&["veth", &c.name, "--json"]);
    let peers = json_peers(&text(&before.stdout));
    let (_, _, peer) = peers
        .iter()
        .find(|(ifname, _, _)| ifname == "eth0")
        .cloned()
        .expect("eth0's peer");
    let down = run_nsdebug(&["veth", &c.name, "--down"]);
    assert!(down.status.success(), "{down:?}");
    let elsewhere = Netns::new("moved");
    let moved = std::process::Command::new("nsenter")
        .args(["-t", &c.pid.to_string(), "-n", "ip", "link", "set", "eth0"])
        .args(["netns", &elsewhere.0])
        .output()
        .unwrap();
    assert!(moved.status.success(), "{moved:?}");
    let up = run_nsdebug(&["veth", &c.name, "--up"]);
    assert!(up.status.success(), "{up:?}");
    assert!(
        text(&up.stdout).contains(&format!("brought up {peer}")),
        "{up:?}"
    );
    let link = std::process::Command::new("ip")
        .args(["-o", "link", "show", "dev", &peer])
        .output()
        .unwrap();
    let flags = text(&link.stdout);
    let flags = flags
        .split(['<', '>'])
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "{peer} is admin up: {flags}"
    );
    let again = run_nsdebug(&["veth", &c.name, "--up"]);
    assert!(
        text(&again.stdout).contains("already up"),
        "the record is gone: {again:?}"
    );
}
