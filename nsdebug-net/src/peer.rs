//! A network namespace's interfaces and where their other ends are: the peer of a veth, the
//! parent of a macvlan/ipvlan/vlan, in this namespace, the caller's, or a third one.
//!
//! Interface indexes repeat across namespaces, so a peer is never looked up by index alone:
//! `IFLA_LINK_NETNSID` says in which namespace (as the interface's own namespace numbers
//! them) `IFLA_LINK` is to be read, and `RTM_GETNSID` maps candidate namespaces to those ids.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Arc;

use nsenter_core::{run_in, Namespace, Pid, Target};

use crate::error::{Error, Result};
use crate::link::{Address, Link, RouteSocket};

/// A network namespace other than the inspected one and the caller's.
#[derive(Debug)]
pub struct OtherNetns {
    /// How to name it: `ip netns blue`, `netns of pid 4242 (sleep)`.
    pub description: String,
    /// The namespace, to enter it.
    pub target: Target,
}

impl OtherNetns {
    /// An rtnetlink socket inside this namespace.
    pub fn socket(&self) -> Result<RouteSocket> {
        run_in(&self.target, Namespace::Net.into(), RouteSocket::open)?
    }
}

/// Where the other end of an interface lives.
#[derive(Clone, Debug)]
pub enum Place {
    /// In the inspected namespace itself.
    Inside,
    /// In the caller's namespace (usually the host's).
    Home,
    /// In a third namespace.
    Other(Arc<OtherNetns>),
}

impl Place {
    /// How it is named: `inside`, `host` (the caller's), or the other namespace's
    /// description.
    pub fn name(&self) -> String {
        match self {
            Place::Inside => "inside".to_owned(),
            Place::Home => "host".to_owned(),
            Place::Other(netns) => netns.description.clone(),
        }
    }
}

/// The other end of an interface.
#[derive(Clone, Debug)]
pub enum OtherEnd {
    /// None: not a virtual pair or stacked device (loopback, dummy, a physical device...).
    None,
    /// Found: the veth peer, or the parent device of a macvlan/ipvlan/vlan.
    Found {
        /// The peer or parent link, as its own namespace sees it.
        link: Link,
        /// Its namespace.
        place: Place,
    },
    /// Its namespace is not the caller's and none of the namespaces nsdebug-net can find
    /// (named `ip netns`, or some process's) has that id.
    Unreachable {
        /// The id the inspected namespace gives the peer's namespace.
        netnsid: i32,
        /// The peer's ifindex there.
        index: u32,
    },
}

/// One interface of the inspected namespace.
#[derive(Clone, Debug)]
pub struct Interface {
    /// The link.
    pub link: Link,
    /// Its addresses.
    pub addresses: Vec<Address>,
    /// Its peer or parent.
    pub other_end: OtherEnd,
}

/// What [`inspect`] found, with the sockets to act on it.
pub struct Inspection {
    /// The interfaces, by ifindex.
    pub interfaces: Vec<Interface>,
    /// A socket in the inspected namespace.
    pub inside: RouteSocket,
    /// A socket in the caller's namespace.
    pub home: RouteSocket,
}

/// Lists the interfaces of `target`'s network namespace and finds each one's other end:
/// in the target's namespace, the calling thread's ("home"), or any other network
/// namespace found under `/run/netns` or `/proc/*/ns/net`.
pub fn inspect(target: &Target) -> Result<Inspection> {
    let mut inside = run_in(target, Namespace::Net.into(), RouteSocket::open)??;
    let mut home = RouteSocket::open()?;
    let links = inside.links()?;
    let addresses = inside.addresses()?;
    let own = File::open("/proc/thread-self/ns/net").map_err(Error::OwnNamespace)?;
    let home_nsid = inside.netnsid_of(own.as_fd())?;
    let mut others: Option<Vec<Arc<OtherNetns>>> = None;
    let mut interfaces = Vec::with_capacity(links.len());
    for link in links {
        let other_end = match (link.link, link.link_netnsid) {
            (None, _) => OtherEnd::None,
            (Some(index), None) if index == link.index || index == 0 => OtherEnd::None,
            (Some(index), None) => match inside.link(index)? {
                Some(peer) => OtherEnd::Found {
                    link: peer,
                    place: Place::Inside,
                },
                None => OtherEnd::None,
            },
            (Some(index), Some(netnsid)) if Some(netnsid) == home_nsid => match home.link(index)? {
                Some(peer) => OtherEnd::Found {
                    link: peer,
                    place: Place::Home,
                },
                None => OtherEnd::Unreachable { netnsid, index },
            },
            (Some(index), Some(netnsid)) => {
                let candidates = others.get_or_insert_with(other_namespaces);
                find_elsewhere(&mut inside, candidates, netnsid, index)?
            }
        };
        let own_addresses = addresses
            .iter()
            .filter(|a| a.index == link.index)
            .cloned()
            .collect();
        interfaces.push(Interface {
            link,
            addresses: own_addresses,
            other_end,
        });
    }
    Ok(Inspection {
        interfaces,
        inside,
        home,
    })
}

fn find_elsewhere(
    inside: &mut RouteSocket,
    candidates: &[Arc<OtherNetns>],
    netnsid: i32,
    index: u32,
) -> Result<OtherEnd> {
    for candidate in candidates {
        let Ok(file) = candidate.target.namespace_file(Namespace::Net) else {
            continue;
        };
        if inside.netnsid_of(file)? != Some(netnsid) {
            continue;
        }
        if let Some(link) = candidate.socket()?.link(index)? {
            return Ok(OtherEnd::Found {
                link,
                place: Place::Other(Arc::clone(candidate)),
            });
        }
    }
    Ok(OtherEnd::Unreachable { netnsid, index })
}

/// Every network namespace this crate can name: `ip netns` names first, then one process
/// per other namespace (the lowest pid), skipping duplicates.
pub fn other_namespaces() -> Vec<Arc<OtherNetns>> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut add = |description: String, target: Target| {
        if let Ok(id) = target.namespace_id(Namespace::Net) {
            if seen.insert(id) {
                found.push(Arc::new(OtherNetns {
                    description,
                    target,
                }));
            }
        }
    };
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let path = std::path::Path::new("/run/netns").join(&name);
            if let Ok(target) = Target::from_namespace_file(&path) {
                add(format!("ip netns {}", name.to_string_lossy()), target);
            }
        }
    }
    let mut pids: Vec<Pid> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| Pid::new(e.file_name().to_str()?.parse().ok()?))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        if let Ok(target) = Target::open(pid) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            add(format!("netns of pid {pid} ({})", comm.trim()), target);
        }
    }
    found
}
