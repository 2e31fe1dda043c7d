//! `nsdebug veth TARGET [--down|--up] [-i IFNAME] [--json]`: a container's interfaces, their
//! host-side peers, and taking those down (the container cannot take its own end down).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use nsdebug_net::peer::{inspect, Inspection, Interface, OtherEnd, Place};
use nsdebug_net::{Link, RouteSocket};
use nsenter_core::{Namespace, Target};
use serde::Serialize;
use tcpflow_lite::beneath::Dir;

use super::shown;
use nix::sys::signal::{SigSet, Signal};

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};
use nsdebug_resolve::{docker, host_reference, ResolveOptions};

/// Arguments of `nsdebug veth`.
#[derive(clap::Args, Debug)]
pub struct VethArgs {
    /// The container, pod, pid, netns name or namespace file.
    target: String,
    /// Take the host-side peer(s) down: the container is cut off the network.
    #[arg(long, conflicts_with = "up")]
    down: bool,
    /// Bring back up exactly the peers that `--down` took down (nothing to do is not an error).
    #[arg(long)]
    up: bool,
    /// With --down: bring them back up by itself after this long (30s, 2m), or at once on
    /// SIGINT/SIGTERM/SIGHUP: a drill that cannot strand a container.
    #[arg(long = "for", value_name = "DURATION", requires = "down", conflicts_with = "up", value_parser = super::parse_duration)]
    for_duration: Option<std::time::Duration>,
    /// Only this interface of the container (e.g. eth1).
    #[arg(short = 'i', long = "interface", value_name = "IFNAME")]
    interface: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    lookup: LookupArgs,
}

#[derive(Serialize)]
struct PeerRow {
    name: String,
    ifindex: u32,
    namespace: String,
    master: Option<String>,
    /// The Docker network whose bridge `master` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    /// `nsdebug veth --down` took it down (and `--up` brings it back).
    taken_down_by_nsdebug: bool,
    state: String,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_dropped: u64,
    tx_dropped: u64,
}

#[derive(Serialize)]
struct Row {
    name: String,
    ifindex: u32,
    kind: Option<String>,
    mac: Option<String>,
    addresses: Vec<String>,
    state: String,
    /// The host-side (or other-namespace) veth peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<PeerRow>,
    /// The parent device of a macvlan/ipvlan/vlan.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<PeerRow>,
    /// Why the other end could not be found.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable: Option<String>,
}

/// `veth --json`: whose network namespace it is (`own`, `host`, `none`) and its interfaces.
#[derive(Serialize)]
struct Listing<'a> {
    target: serde_json::Value,
    network: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    interfaces: &'a [Row],
}

/// Runs `nsdebug veth`.
pub fn run(args: VethArgs) -> Result<ExitCode, Failure> {
    // A pod without -c: its sandbox, whose network namespace all its containers share.
    // Reading a paused container's interfaces needs nothing of its processes; changing its
    // peers is refused then (it would not answer anyway).
    let options = ResolveOptions {
        pod_sandbox: true,
        frozen_ok: !(args.down || args.up),
        ..args.lookup.options()
    };
    let (resolved, shares_with) = block_on(async {
        let resolved = resolve(&args.target, &options).await?;
        // `--net=container:ID`: say whose namespace this is.
        let mode = resolved
            .container
            .as_ref()
            .and_then(|c| c.network_mode.clone());
        let owner = match mode.as_deref().and_then(|m| m.strip_prefix("container:")) {
            Some(id) => Some(
                docker::Engine::docker()
                    .name_of(id)
                    .await
                    .unwrap_or_else(|| id.to_owned()),
            ),
            None => None,
        };
        anyhow::Ok((resolved, owner))
    })??;
    let what = &resolved.description;
    let changing = args.down || args.up;
    if let Some(owner) = &shares_with {
        crate::cli::notice(format_args!(
            "{what} uses the network namespace of container {owner} (--net=container:{owner})"
        ));
    }

    if shares_host_netns(&resolved.target)? {
        let message = format!("{what} shares the host's network namespace (--net=host): its interfaces are the host's own, there is no veth peer");
        return no_peers(changing, args.json, &resolved, "host", message);
    }
    let mut inspection = inspect(&resolved.target).with_context(|| what.clone())?;
    // --up restores what --down recorded even when the container has since moved or deleted
    // its interface (only lo is left): the host peer is ours to bring back.
    if inspection.interfaces.iter().all(|i| i.link.name == "lo") && !args.up {
        let message = format!(
            "{what} has no network interface but lo (--net=none): nothing connects it to anything"
        );
        return no_peers(changing, args.json, &resolved, "none", message);
    }
    if let Some(name) = &args.interface {
        if !inspection.interfaces.iter().any(|i| &i.link.name == name) {
            let names: Vec<&str> = inspection
                .interfaces
                .iter()
                .map(|i| i.link.name.as_str())
                .collect();
            return Err(anyhow!(
                "{what} has no interface {name} (it has {})",
                names.join(", ")
            )
            .into());
        }
    }
    if changing {
        let Some(limit) = args.for_duration else {
            return change(&args, args.down, what, &resolved.target, &mut inspection);
        };
        // Signals wait from before the first change: a Ctrl-C at any point still restores.
        let signals = drill_signals();
        signals.thread_block()?;
        change(&args, true, what, &resolved.target, &mut inspection)?;
        let stopped_by = wait_for(limit, &signals)?;
        match stopped_by {
            Some(signal) => crate::cli::notice(format_args!("{signal}: bringing {what} back now")),
            None => crate::cli::notice(format_args!(
                "{} passed: bringing {what} back",
                humantime(limit)
            )),
        }
        change(&args, false, what, &resolved.target, &mut inspection)?;
        return Ok(ExitCode::from(
            stopped_by.map_or(0, |signal| 128 + signal as u8),
        ));
    }
    let mut rows: Vec<Row> = inspection
        .interfaces
        .iter()
        .map(|i| row(i, &mut inspection.home))
        .collect();
    let taken_down = recorded_keys(&resolved.target);
    let networks = resolved
        .container
        .as_ref()
        .map(|c| c.details.networks.clone())
        .unwrap_or_default();
    for (row, interface) in rows.iter_mut().zip(&inspection.interfaces) {
        let (Some(peer), OtherEnd::Found { link, place }) = (&mut row.peer, &interface.other_end)
        else {
            continue;
        };
        peer.taken_down_by_nsdebug = taken_down.contains(&peer_key(link, place));
        peer.network = peer
            .master
            .as_deref()
            .and_then(|bridge| network_of_bridge(bridge, &networks));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Listing {
                target: super::target_json(&resolved),
                network: "own",
                message: None,
                interfaces: &rows
            })?
        );
    } else {
        print_table(&rows);
        for peer in rows.iter().filter_map(|r| r.peer.as_ref()) {
            if peer.taken_down_by_nsdebug {
                println!(
                    "{} is down: nsdebug veth --down took it down; nsdebug veth {} --up brings it back",
                    shown(&peer.name),
                    shown(&args.target)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The peers `--down` recorded for this target (read only: nothing is created to list them).
fn recorded_keys(target: &Target) -> Vec<String> {
    let Ok(name) = state_file(target) else {
        return Vec::new();
    };
    match Dir::open_nofollow(Path::new(STATE_DIR)) {
        Ok(dir) => read_record(&dir, &name).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The Docker network whose bridge device is `bridge`: `docker0` is the default network
/// `bridge`'s, `br-` and 12 digits of its ID a user-defined network's.
fn network_of_bridge(bridge: &str, networks: &[(String, String)]) -> Option<String> {
    networks.iter().find_map(|(name, id)| {
        let device = if name == "bridge" {
            "docker0".to_owned()
        } else {
            format!("br-{}", id.get(..12)?)
        };
        (device == bridge).then(|| name.clone())
    })
}

/// The answer for a container without veth peers: an error when asked to change them, else the
/// message, or with --json `{"network": "host"|"none", "message": ..., "interfaces": []}`.
fn no_peers(
    changing: bool,
    json: bool,
    resolved: &nsdebug_resolve::Resolved,
    network: &str,
    message: String,
) -> Result<ExitCode, Failure> {
    if changing {
        return Err(anyhow!(message).into());
    }
    if json {
        let answer = Listing {
            target: super::target_json(resolved),
            network,
            message: Some(&message),
            interfaces: &[],
        };
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{message}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the target's network namespace is the host's (PID 1's, or ours where PID 1
/// cannot be inspected).
fn shares_host_netns(target: &Target) -> anyhow::Result<bool> {
    if !target.kinds().contains(Namespace::Net) {
        bail!("{} is not a network namespace", target.id());
    }
    let host = host_reference()?;
    Ok(target.namespace_id(Namespace::Net)? == host.namespace_id(Namespace::Net)?)
}

fn place_name(place: &Place) -> String {
    match place {
        Place::Inside => "inside".to_owned(),
        Place::Home => "host".to_owned(),
        Place::Other(netns) => netns.description.clone(),
    }
}

fn peer_row(link: &Link, place: &Place, home: &mut RouteSocket) -> PeerRow {
    let stats = link.stats.unwrap_or_default();
    // The bridge is in the peer's namespace; look its name up where we can cheaply.
    let master = link.master.map(|index| match place {
        Place::Home => home
            .link(index)
            .ok()
            .flatten()
            .map_or(index.to_string(), |m| m.name),
        _ => index.to_string(),
    });
    PeerRow {
        name: link.name.clone(),
        ifindex: link.index,
        namespace: place_name(place),
        master,
        network: None,
        taken_down_by_nsdebug: false,
        state: link.oper_state.clone(),
        rx_bytes: stats.rx_bytes,
        tx_bytes: stats.tx_bytes,
        rx_dropped: stats.rx_dropped,
        tx_dropped: stats.tx_dropped,
    }
}

/// Link kinds whose other end is a parent device rather than a peer: taking the parent down
/// takes down everything on it, the host's own traffic included.
const PARENTED_KINDS: [&str; 5] = ["macvlan", "macvtap", "ipvlan", "ipvtap", "vlan"];

fn is_parented(link: &Link) -> bool {
    link.kind
        .as_deref()
        .is_some_and(|k| PARENTED_KINDS.contains(&k))
}

fn row(interface: &Interface, home: &mut RouteSocket) -> Row {
    let link = &interface.link;
    let mut row = Row {
        name: link.name.clone(),
        ifindex: link.index,
        kind: link.kind.clone(),
        mac: link.mac.clone(),
        addresses: interface
            .addresses
            .iter()
            .map(|a| format!("{}/{}", a.address, a.prefix_len))
            .collect(),
        state: link.oper_state.clone(),
        peer: None,
        parent: None,
        unreachable: None,
    };
    match &interface.other_end {
        OtherEnd::None => {}
        OtherEnd::Found { link: other, place } if is_parented(link) => {
            row.parent = Some(peer_row(other, place, home))
        }
        OtherEnd::Found { link: other, place } => row.peer = Some(peer_row(other, place, home)),
        OtherEnd::Unreachable { netnsid, index } => {
            row.unreachable = Some(format!(
                "ifindex {index} in a namespace (netnsid {netnsid}) nsdebug cannot find or enter"
            ))
        }
    }
    row
}

fn print_table(rows: &[Row]) {
    const HEADER: [&str; 13] = [
        "IFACE",
        "IDX",
        "MAC",
        "ADDRESSES",
        "STATE",
        "PEER",
        "IDX",
        "NAMESPACE",
        "MASTER",
        "STATE",
        "RX BYTES",
        "TX BYTES",
        "DROPS",
    ];
    const RIGHT: [bool; 13] = [
        false, true, false, false, false, false, true, false, false, false, true, true, true,
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let addresses = if r.addresses.is_empty() {
                "-".to_owned()
            } else {
                r.addresses.join(",")
            };
            let mut cells = vec![
                shown(&r.name),
                r.ifindex.to_string(),
                r.mac.clone().unwrap_or_else(|| "-".into()),
                addresses,
                shown(&r.state),
            ];
            match (&r.peer, &r.parent, &r.unreachable) {
                (Some(p), _, _) => cells.extend([
                    shown(&p.name),
                    p.ifindex.to_string(),
                    shown(&p.namespace),
                    match (&p.master, &p.network) {
                        (Some(master), Some(network)) => {
                            format!("{} ({})", shown(master), shown(network))
                        }
                        (master, _) => shown(master.as_deref().unwrap_or("-")),
                    },
                    if p.taken_down_by_nsdebug {
                        format!("{} (nsdebug --down)", shown(&p.state))
                    } else {
                        shown(&p.state)
                    },
                    p.rx_bytes.to_string(),
                    p.tx_bytes.to_string(),
                    (p.rx_dropped + p.tx_dropped).to_string(),
                ]),
                (None, Some(p), _) => cells.push(format!(
                    "{} on parent {} (ifindex {}, {})",
                    shown(r.kind.as_deref().unwrap_or("link")),
                    shown(&p.name),
                    p.ifindex,
                    shown(&p.namespace)
                )),
                (None, None, Some(why)) => cells.push(format!("peer: {}", shown(why))),
                _ => cells.push("-".into()),
            }
            cells
        })
        .collect();
    super::print_table(&HEADER, &RIGHT, &cells);
}

/// Root's own directory for the records of `--down`.
const STATE_DIR: &str = "/run/nsdebug";

/// Where `--down` records what it changed, for `--up`: a file per network namespace (its
/// inode) in [`STATE_DIR`].
fn state_file(target: &Target) -> anyhow::Result<String> {
    let id = target.namespace_id(Namespace::Net)?;
    Ok(format!("veth-down-{}-{}", id.dev, id.ino))
}

/// The state directory, opened once: created 0700 when missing; refused when it is a symbolic
/// link or anyone but us can write to it. Its files are then read, created and replaced
/// beneath the open directory, never through a link.
fn state_dir(path: &Path) -> anyhow::Result<Dir> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(e).with_context(|| format!("creating {}", path.display()));
        }
        _ => {}
    }
    let dir = Dir::open_nofollow(path)
        .with_context(|| format!("{}: not a directory of its own", path.display()))?;
    let meta = dir.as_file()?.metadata()?;
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!(
            "{}: owned by uid {} with mode {:o}: not ours alone; refusing to use it",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(dir)
}

/// The keys recorded in `name` (none when there is no record).
fn read_record(dir: &Dir, name: &str) -> anyhow::Result<Vec<String>> {
    use std::io::Read;
    let mut text = String::new();
    match dir.open_beneath(name, libc::O_RDONLY, 0) {
        Ok(mut file) => file
            .read_to_string(&mut text)
            .with_context(|| format!("reading {STATE_DIR}/{name}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {STATE_DIR}/{name}")),
    };
    Ok(text.lines().map(str::to_owned).collect())
}

/// The key a peer is recorded under: its namespace, ifindex and name.
fn peer_key(link: &Link, place: &Place) -> String {
    format!("{}\t{}\t{}", place_name(place), link.index, link.name)
}

/// The signals that end a `--down --for` drill early.
fn drill_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// Waits `limit`, or until one of `signals` (blocked) arrives: which one, if one did.
fn wait_for(limit: std::time::Duration, signals: &SigSet) -> anyhow::Result<Option<Signal>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let fd = nix::sys::signalfd::SignalFd::with_flags(
        signals,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    )?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let millis = u16::try_from(left.as_millis().clamp(1, 60_000)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {
                if let Some(info) = fd.read_signal()? {
                    return Ok(Signal::try_from(info.ssi_signo as i32).ok());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `30s`, `2m30s`.
fn humantime(duration: std::time::Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:.0}s", (secs / 60.0).floor(), secs % 60.0)
    } else {
        format!("{secs:.1}s")
    }
}

/// Removes the records of network namespaces that no longer exist (their containers are
/// gone): nothing is left to bring up, and a new namespace may later get the same inode.
fn tidy_stale_records(dir: &Dir) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(listing) = dir.as_file() else { return };
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", listing.as_raw_fd())) else {
        return;
    };
    let mut live = std::collections::HashSet::new();
    let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten();
    for path in processes
        .map(|e| e.path().join("ns/net"))
        .chain(named.map(|e| e.path()))
    {
        if let Ok(meta) = std::fs::metadata(path) {
            live.insert(format!("veth-down-{}-{}", meta.dev(), meta.ino()));
        }
    }
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("veth-down-") && !name.contains(".tmp") && !live.contains(&name) {
            let _ = dir.remove(&name);
        }
    }
}

fn change(
    args: &VethArgs,
    down: bool,
    what: &str,
    target: &Target,
    inspection: &mut Inspection,
) -> Result<ExitCode, Failure> {
    let up = !down;
    let state = state_file(target)?;
    let dir = state_dir(Path::new(STATE_DIR))?;
    tidy_stale_records(&dir);
    let recorded = read_record(&dir, &state)?;
    if up && recorded.is_empty() {
        println!("{what}: already up: nsdebug has none of its peers down");
        return Ok(ExitCode::SUCCESS);
    }
    let selected: Vec<&Interface> = inspection
        .interfaces
        .iter()
        .filter(|i| {
            args.interface
                .as_ref()
                .is_none_or(|name| &i.link.name == name)
        })
        .filter(|i| i.link.name != "lo" || args.interface.is_some())
        .collect();
    let mut changed = Vec::new();
    let mut still_down = recorded.clone();
    for interface in selected {
        let link = &interface.link;
        let (peer, place) = match &interface.other_end {
            OtherEnd::Found { link: other, place } if is_parented(link) => {
                return Err(anyhow!(
                    "{what}: {} is a {} on {} ({}): taking {} {} would cut off everything on it, the host included; refusing",
                    link.name,
                    link.kind.as_deref().unwrap_or("link"),
                    other.name,
                    place_name(place),
                    other.name,
                    if down { "down" } else { "up" }
                )
                .into());
            }
            OtherEnd::Found { link: other, place } => (other, place),
            OtherEnd::Unreachable { netnsid, .. } => {
                return Err(anyhow!("{what}: the peer of {} is in a namespace (netnsid {netnsid}) nsdebug cannot find", link.name).into());
            }
            OtherEnd::None if args.interface.is_some() => {
                return Err(anyhow!(
                    "{what}: {} has no peer (kind {})",
                    link.name,
                    link.kind.as_deref().unwrap_or("none")
                )
                .into());
            }
            OtherEnd::None => continue,
        };
        let key = peer_key(peer, place);
        let wanted_up = up;
        if up && !recorded.contains(&key) {
            continue; // not ours to bring up
        }
        if down && !peer.admin_up {
            continue; // already down: not ours to bring back later
        }
        let mut other_socket;
        let socket = match place {
            Place::Home => &mut inspection.home,
            Place::Inside => &mut inspection.inside,
            Place::Other(netns) => {
                other_socket = netns.socket()?;
                &mut other_socket
            }
        };
        socket.set_link_up(peer.index, wanted_up).with_context(|| {
            format!(
                "{what}: setting {} ({}) {}",
                peer.name,
                place_name(place),
                if wanted_up { "up" } else { "down" }
            )
        })?;
        changed.push(format!(
            "{} (ifindex {}, {}), peer of {}",
            peer.name,
            peer.index,
            place_name(place),
            link.name
        ));
        if down {
            still_down.push(key);
        } else {
            still_down.retain(|k| k != &key);
        }
    }
    if up && args.interface.is_none() {
        restore_host_peers(what, &recorded, &mut still_down, inspection, &mut changed)?;
    }
    record(&dir, &state, &still_down)?;
    if changed.is_empty() {
        println!(
            "{what}: nothing changed (every selected peer was already {})",
            if down { "down" } else { "up" }
        );
    }
    for line in &changed {
        println!("{} {line}", if down { "took down" } else { "brought up" });
    }
    Ok(ExitCode::SUCCESS)
}

/// `--up` for host peers still recorded down that no interface of the container leads to any
/// more (it moved its end to another namespace, or deleted it): brought up by their recorded
/// ifindex when the link there still has the recorded name; a link gone or renamed is not
/// ours any more, and its record is dropped.
fn restore_host_peers(
    what: &str,
    recorded: &[String],
    still_down: &mut Vec<String>,
    inspection: &mut Inspection,
    changed: &mut Vec<String>,
) -> anyhow::Result<()> {
    for key in recorded {
        if !still_down.contains(key) {
            continue;
        }
        let mut fields = key.split('\t');
        let (Some("host"), Some(Ok(index)), Some(name)) = (
            fields.next(),
            fields.next().map(str::parse::<u32>),
            fields.next(),
        ) else {
            continue;
        };
        match inspection.home.link(index)? {
            Some(link) if link.name == name => {
                inspection
                    .home
                    .set_link_up(index, true)
                    .with_context(|| format!("{what}: setting {name} (host) up"))?;
                changed.push(format!(
                    "{} (ifindex {index}, host), whose container end is no longer in it",
                    shown(name)
                ));
            }
            _ => crate::cli::notice(format_args!(
                "{what}: {} (ifindex {index}) is gone from the host: nothing to bring up",
                shown(name)
            )),
        }
        still_down.retain(|k| k != key);
    }
    Ok(())
}

/// Writes the record `name` (or removes it when empty), replacing it atomically, beneath the
/// open state directory.
fn record(dir: &Dir, name: &str, keys: &[String]) -> anyhow::Result<()> {
    if keys.is_empty() {
        return match dir.remove(name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {STATE_DIR}/{name}"))
            }
            _ => Ok(()),
        };
    }
    let temporary = format!("{name}.tmp{}", std::process::id());
    let mut file = dir
        .open_beneath(
            &temporary,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .with_context(|| format!("writing {STATE_DIR}/{temporary}"))?;
    let mut keys = keys.to_vec();
    keys.dedup();
    file.write_all(format!("{}\n", keys.join("\n")).as_bytes())?;
    dir.rename(&temporary, name)
        .with_context(|| format!("writing {STATE_DIR}/{name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_and_its_records_never_go_through_a_link() {
        let root = std::env::temp_dir().join(format!("nsdebug-veth-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // Created 0700 when missing; records written, read back, removed when empty.
        let path = root.join("run");
        let dir = state_dir(&path).unwrap();
        let keys = vec!["home\t7\tveth1".to_owned()];
        record(&dir, "veth-down-1-2", &keys).unwrap();
        assert_eq!(read_record(&dir, "veth-down-1-2").unwrap(), keys);
        record(&dir, "veth-down-1-2", &[]).unwrap();
        assert!(read_record(&dir, "veth-down-1-2").unwrap().is_empty());
        // A record planted as a link is not read through, and writing replaces the link.
        let secret = root.join("secret");
        std::fs::write(&secret, "home\t1\teth0\n").unwrap();
        std::os::unix::fs::symlink(&secret, path.join("veth-down-3-4")).unwrap();
        assert!(read_record(&dir, "veth-down-3-4").is_err());
        record(&dir, "veth-down-3-4", &keys).unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "home\t1\teth0\n");
        // The directory as a link, or writable by others, is refused.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("link")).unwrap();
        assert!(state_dir(&root.join("link")).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(state_dir(&elsewhere).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
