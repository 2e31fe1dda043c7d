//! `nsdebug veth TARGET [--down|--up] [-i IFNAME] [--json]`: a container's interfaces, their
//! host-side peers, and taking those down (the container cannot take its own end down).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use nsenter_core::net::peer::{inspect, Inspection, Interface, OtherEnd, Place, PARENTED_KINDS};
use nsenter_core::net::{Link, RouteSocket};
use nsenter_core::{Namespace, Target};
use serde::Serialize;

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::{docker, host_reference, resolve, ResolveOptions};

/// Arguments of `nsdebug veth`.
#[derive(clap::Args, Debug)]
pub struct VethArgs {
    /// The container, pod, pid, netns name or namespace file.
    target: String,
    /// Take the host-side peer(s) down: the container is cut off the network.
    #[arg(long, conflicts_with = "up")]
    down: bool,
    /// Bring back up exactly the peers that `--down` took down.
    #[arg(long)]
    up: bool,
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

/// Runs `nsdebug veth`.
pub fn run(args: VethArgs) -> Result<ExitCode, Failure> {
    // A pod without -c: its sandbox, whose network namespace all its containers share.
    let options = ResolveOptions { pod_sandbox: true, ..args.lookup.options() };
    let (resolved, shares_with) = block_on(async {
        let resolved = resolve(&args.target, &options).await?;
        // `--net=container:ID`: say whose namespace this is.
        let mode = resolved.container.as_ref().and_then(|c| c.network_mode.clone());
        let owner = match mode.as_deref().and_then(|m| m.strip_prefix("container:")) {
            Some(id) => Some(docker::Engine::docker().name_of(id).await.unwrap_or_else(|| id.to_owned())),
            None => None,
        };
        anyhow::Ok((resolved, owner))
    })??;
    let what = &resolved.description;
    let changing = args.down || args.up;
    if let Some(owner) = &shares_with {
        eprintln!("nsdebug: {what} uses the network namespace of container {owner} (--net=container:{owner})");
    }

    if shares_host_netns(&resolved.target)? {
        let message = format!("{what} shares the host's network namespace (--net=host): its interfaces are the host's own, there is no veth peer");
        return if changing { Err(anyhow!(message).into()) } else { println!("{message}"); Ok(ExitCode::SUCCESS) };
    }
    let mut inspection = inspect(&resolved.target).with_context(|| what.clone())?;
    if inspection.interfaces.iter().all(|i| i.link.name == "lo") {
        let message = format!("{what} has no network interface but lo (--net=none): nothing connects it to anything");
        return if changing { Err(anyhow!(message).into()) } else { println!("{message}"); Ok(ExitCode::SUCCESS) };
    }
    if let Some(name) = &args.interface {
        if !inspection.interfaces.iter().any(|i| &i.link.name == name) {
            let names: Vec<&str> = inspection.interfaces.iter().map(|i| i.link.name.as_str()).collect();
            return Err(anyhow!("{what} has no interface {name} (it has {})", names.join(", ")).into());
        }
    }
    if changing {
        return change(&args, what, &resolved.target, &mut inspection);
    }
    let rows: Vec<Row> = inspection.interfaces.iter().map(|i| row(i, &mut inspection.home)).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the target's network namespace is the host's (PID 1's, or ours where PID 1
/// cannot be inspected).
fn shares_host_netns(target: &Target) -> anyhow::Result<bool> {
    if !target.kinds().contains(Namespace::Net) {
        bail!("{:?} is not a network namespace", target.id());
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
        Place::Home => home.link(index).ok().flatten().map_or(index.to_string(), |m| m.name),
        _ => index.to_string(),
    });
    PeerRow {
        name: link.name.clone(),
        ifindex: link.index,
        namespace: place_name(place),
        master,
        state: link.oper_state.clone(),
        rx_bytes: stats.rx_bytes,
        tx_bytes: stats.tx_bytes,
        rx_dropped: stats.rx_dropped,
        tx_dropped: stats.tx_dropped,
    }
}

fn is_parented(link: &Link) -> bool {
    link.kind.as_deref().is_some_and(|k| PARENTED_KINDS.contains(&k))
}

fn row(interface: &Interface, home: &mut RouteSocket) -> Row {
    let link = &interface.link;
    let mut row = Row {
        name: link.name.clone(),
        ifindex: link.index,
        kind: link.kind.clone(),
        mac: link.mac.clone(),
        addresses: interface.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect(),
        state: link.oper_state.clone(),
        peer: None,
        parent: None,
        unreachable: None,
    };
    match &interface.other_end {
        OtherEnd::None => {}
        OtherEnd::Found { link: other, place } if is_parented(link) => row.parent = Some(peer_row(other, place, home)),
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
    println!(
        "{:<10} {:>5} {:<17} {:<20} {:<8} {:<16} {:>5} {:<10} {:<9} {:<8} {:>12} {:>12} {:>7}",
        "IFACE", "IDX", "MAC", "ADDRESSES", "STATE", "PEER", "IDX", "NAMESPACE", "MASTER", "STATE", "RX BYTES", "TX BYTES", "DROPS"
    );
    for r in rows {
        let addresses = if r.addresses.is_empty() { "-".to_owned() } else { r.addresses.join(",") };
        let head = format!(
            "{:<10} {:>5} {:<17} {:<20} {:<8}",
            r.name, r.ifindex, r.mac.as_deref().unwrap_or("-"), addresses, r.state
        );
        match (&r.peer, &r.parent, &r.unreachable) {
            (Some(p), _, _) => println!(
                "{head} {:<16} {:>5} {:<10} {:<9} {:<8} {:>12} {:>12} {:>7}",
                p.name,
                p.ifindex,
                p.namespace,
                p.master.as_deref().unwrap_or("-"),
                p.state,
                p.rx_bytes,
                p.tx_bytes,
                p.rx_dropped + p.tx_dropped
            ),
            (None, Some(p), _) => println!(
                "{head} {} on parent {} (ifindex {}, {})",
                r.kind.as_deref().unwrap_or("link"),
                p.name,
                p.ifindex,
                p.namespace
            ),
            (None, None, Some(why)) => println!("{head} peer: {why}"),
            _ => println!("{head} -"),
        }
    }
}

/// Where `--down` records what it changed, for `--up`: per network namespace (its inode).
fn state_file(target: &Target) -> anyhow::Result<PathBuf> {
    let id = target.namespace_id(Namespace::Net)?;
    Ok(PathBuf::from(format!("/run/nsdebug/veth-down-{}-{}", id.dev, id.ino)))
}

/// The key a peer is recorded under: its namespace, ifindex and name.
fn peer_key(link: &Link, place: &Place) -> String {
    format!("{}\t{}\t{}", place_name(place), link.index, link.name)
}

fn change(args: &VethArgs, what: &str, target: &Target, inspection: &mut Inspection) -> Result<ExitCode, Failure> {
    let state = state_file(target)?;
    let recorded: Vec<String> = match std::fs::read_to_string(&state) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    };
    if args.up && recorded.is_empty() {
        return Err(anyhow!("{what}: nothing to bring up: nsdebug has not taken any of its peers down").into());
    }
    let selected: Vec<&Interface> = inspection
        .interfaces
        .iter()
        .filter(|i| args.interface.as_ref().is_none_or(|name| &i.link.name == name))
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
                    if args.down { "down" } else { "up" }
                )
                .into());
            }
            OtherEnd::Found { link: other, place } => (other, place),
            OtherEnd::Unreachable { netnsid, .. } => {
                return Err(anyhow!("{what}: the peer of {} is in a namespace (netnsid {netnsid}) nsdebug cannot find", link.name).into());
            }
            OtherEnd::None if args.interface.is_some() => {
                return Err(anyhow!("{what}: {} has no peer (kind {})", link.name, link.kind.as_deref().unwrap_or("none")).into());
            }
            OtherEnd::None => continue,
        };
        let key = peer_key(peer, place);
        let wanted_up = args.up;
        if args.up && !recorded.contains(&key) {
            continue; // not ours to bring up
        }
        if args.down && !peer.admin_up {
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
            format!("{what}: setting {} ({}) {}", peer.name, place_name(place), if wanted_up { "up" } else { "down" })
        })?;
        changed.push(format!("{} (ifindex {}, {}), peer of {}", peer.name, peer.index, place_name(place), link.name));
        if args.down {
            still_down.push(key);
        } else {
            still_down.retain(|k| k != &key);
        }
    }
    record(&state, &still_down)?;
    if changed.is_empty() {
        println!("{what}: nothing changed (every selected peer was already {})", if args.down { "down" } else { "up" });
    }
    for line in &changed {
        println!("{} {line}", if args.down { "took down" } else { "brought up" });
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the record (or removes it when empty), replacing it atomically; /run/nsdebug is
/// root's own directory.
fn record(path: &PathBuf, keys: &[String]) -> anyhow::Result<()> {
    if keys.is_empty() {
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let dir = path.parent().ok_or_else(|| anyhow!("state path without directory"))?;
    std::fs::create_dir_all(dir)?;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    let mut keys = keys.to_vec();
    keys.dedup();
    file.write_all(format!("{}\n", keys.join("\n")).as_bytes())?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}
