//! `nsdebug veth TARGET [--down|--up] [-i IFNAME] [--json]`: a container's interfaces, their
//! host-side peers, and taking those down (the container cannot take its own end down).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use nsdebug_net::down::{is_parented, DownRecords, Outcome, PeerRecord};
use nsdebug_net::peer::{inspect, Inspection, Interface, OtherEnd, Place};
use nsdebug_net::{Link, RouteSocket};
use nsenter_core::{Namespace, Target};
use serde::Serialize;

use super::shown;
use nix::sys::signal::{SigSet, Signal};

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};
use nsdebug_resolve::{docker, host_reference, ResolveOptions};

// Arguments of `nsdebug veth`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::VETH, long_about = None)]
#[command(mut_arg("container", |arg| arg.help(crate::cli::CONTAINER_OR_SANDBOX)))]
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
    let taken_down = DownRecords::recorded_in(Path::new(STATE_DIR), &resolved.target);
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
        peer.taken_down_by_nsdebug = taken_down.contains(&PeerRecord::of(link, place));
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
        namespace: place.name(),
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

/// Root's own directory for the records of `--down` (see [`nsdebug_net::down`]).
const STATE_DIR: &str = "/run/nsdebug";

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

/// Takes the peers down (`down`) or brings back what the record says, and says what changed.
fn change(
    args: &VethArgs,
    down: bool,
    what: &str,
    target: &Target,
    inspection: &mut Inspection,
) -> Result<ExitCode, Failure> {
    let records = DownRecords::open(Path::new(STATE_DIR))?;
    let only = args.interface.as_deref();
    let outcome = if down {
        records.take_down(target, inspection, only)
    } else {
        records.bring_up(target, inspection, only)
    }
    .with_context(|| what.to_owned())?;
    report(what, down, &outcome);
    Ok(ExitCode::SUCCESS)
}

/// What `--down` or `--up` did, a line per peer; names are the container's to choose.
fn report(what: &str, down: bool, outcome: &Outcome) {
    if !down && outcome.recorded_before == 0 {
        println!("{what}: already up: nsdebug has none of its peers down");
        return;
    }
    for gone in &outcome.gone {
        crate::cli::notice(format_args!(
            "{what}: {} (ifindex {}) is gone from the host: nothing to bring up",
            shown(&gone.name),
            gone.index
        ));
    }
    if outcome.changed.is_empty() {
        println!(
            "{what}: nothing changed (every selected peer was already {})",
            if down { "down" } else { "up" }
        );
    }
    for change in &outcome.changed {
        let peer = &change.peer;
        let whose = match &change.interface {
            Some(interface) => format!("peer of {}", shown(interface)),
            None => "whose container end is no longer in it".to_owned(),
        };
        println!(
            "{} {} (ifindex {}, {}), {whose}",
            if down { "took down" } else { "brought up" },
            shown(&peer.name),
            peer.index,
            shown(&peer.place)
        );
    }
}
