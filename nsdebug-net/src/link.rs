//! Network links and addresses of a network namespace, read and changed through rtnetlink.
//!
//! A netlink socket belongs to the network namespace it was created in, for its whole life.
//! Open a [`RouteSocket`] inside an [`NsGuard`](nsenter_core::NsGuard) (or
//! [`run_in`](nsenter_core::run_in)) and use it after leaving: it still answers for the
//! target's namespace. This is how nsdebug reads a container's links without running anything in it,
//! and why `/sys/class/net` is not used (it shows the namespace of whoever mounted `/sys`).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::LinkFlags;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage, State};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// One network interface as the kernel reports it (`RTM_NEWLINK`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Interface index, unique only within its network namespace.
    pub index: u32,
    /// Interface name (`eth0`).
    pub name: String,
    /// Link kind from `IFLA_LINKINFO` (`veth`, `bridge`, `macvlan`...), if any.
    pub kind: Option<String>,
    /// Hardware address, formatted `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Operational state (`UP`, `DOWN`, `UNKNOWN`...).
    pub oper_state: String,
    /// Whether the interface is administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// MTU.
    pub mtu: Option<u32>,
    /// `IFLA_LINK`: the peer (veth) or parent (macvlan, vlan) ifindex, in the namespace
    /// named by `link_netnsid` when that is set, else in this one.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace id, as this namespace numbers it, of the peer's.
    pub link_netnsid: Option<i32>,
    /// `IFLA_MASTER`: ifindex of the bridge or bond this interface is enslaved to.
    pub master: Option<u32>,
    /// Traffic counters (`IFLA_STATS64`).
    pub stats: Option<LinkStats>,
}

/// Traffic counters of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on receive.
    pub rx_dropped: u64,
    /// Packets dropped on send.
    pub tx_dropped: u64,
}

/// One address of an interface (`RTM_NEWADDR`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// An rtnetlink socket, bound to the network namespace the thread was in when it was opened.
pub struct RouteSocket {
    socket: Socket,
    sequence: u32,
}

impl RouteSocket {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<RouteSocket> {
        let err = |source| Error::Netlink {
            request: "socket",
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        Ok(RouteSocket {
            socket,
            sequence: 0,
        })
    }

    /// Every link of the socket's namespace, by ifindex.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let mut links = Vec::new();
        self.dump(request, "RTM_GETLINK", |message| {
            if let RouteNetlinkMessage::NewLink(link) = message {
                links.push(link_from(link));
            }
        })?;
        links.sort_by_key(|link| link.index);
        Ok(links)
    }

    /// Every IPv4 and IPv6 address of the socket's namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
        let mut addresses = Vec::new();
        self.dump(request, "RTM_GETADDR", |message| {
            if let RouteNetlinkMessage::NewAddress(address) = message {
                addresses.extend(address_from(address));
            }
        })?;
        Ok(addresses)
    }

    /// One link by ifindex (`RTM_GETLINK` for that index only: its cost does not grow with
    /// the number of links); `None` if there is no such link.
    pub fn link(&mut self, index: u32) -> Result<Option<Link>> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let mut found = None;
        let answer = self.transact(
            RouteNetlinkMessage::GetLink(message),
            "RTM_GETLINK",
            NLM_F_ACK,
            |m| {
                if let RouteNetlinkMessage::NewLink(link) = m {
                    found = Some(link_from(link));
                }
            },
        );
        match answer {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                Ok(None)
            }
            other => other.map(|()| found),
        }
    }

    /// Sets a link administratively up or down (`ip link set IFNAME up|down`).
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.change_mask = LinkFlags::Up;
        message.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        self.transact(
            RouteNetlinkMessage::SetLink(message),
            "RTM_SETLINK",
            NLM_F_ACK,
            |_| (),
        )
    }

    /// The id this socket's namespace gives the network namespace behind `netns`
    /// (`RTM_GETNSID`): what its links report as `IFLA_LINK_NETNSID` for peers there.
    /// `None` when it has given that namespace no id.
    pub fn netnsid_of(&mut self, netns: BorrowedFd<'_>) -> Result<Option<i32>> {
        let mut message = NsidMessage::default();
        message
            .attributes
            .push(NsidAttribute::Fd(netns.as_raw_fd() as u32));
        let mut id = None;
        self.transact(
            RouteNetlinkMessage::GetNsId(message),
            "RTM_GETNSID",
            NLM_F_ACK,
            |m| {
                if let RouteNetlinkMessage::NewNsId(answer) = m {
                    for attribute in answer.attributes {
                        if let NsidAttribute::Id(nsid) = attribute {
                            id = Some(nsid).filter(|nsid| *nsid >= 0);
                        }
                    }
                }
            },
        )?;
        Ok(id)
    }

    /// Sends a dump request and feeds every answer to `each` until `NLMSG_DONE`.
    fn dump(
        &mut self,
        request: RouteNetlinkMessage,
        name: &'static str,
        each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        self.transact(request, name, NLM_F_DUMP, each)
    }

    /// Sends a request with `flags` (`NLM_F_DUMP`, or `NLM_F_ACK` for a single answer) and
    /// feeds every answer to `each` until `NLMSG_DONE` or the acknowledgement.
    fn transact(
        &mut self,
        request: RouteNetlinkMessage,
        name: &'static str,
        flags: u16,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        let err = |source| Error::Netlink {
            request: name,
            source,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
        message.finalize();
        let mut buf = vec![0; message.buffer_len()];
        message.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(err)?;
        loop {
            let (bytes, _) = self.socket.recv_from_full().map_err(err)?;
            let mut offset = 0;
            while offset < bytes.len() {
                let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                    .map_err(|e| {
                    err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                })?;
                let length = answer.header.length as usize;
                match answer.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => match e.code {
                        // An acknowledgement: the request is done.
                        None => return Ok(()),
                        Some(code) => return Err(err(io::Error::from_raw_os_error(-code.get()))),
                    },
                    NetlinkPayload::InnerMessage(inner) => each(inner),
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn link_from(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        oper_state: "UNKNOWN".to_owned(),
        admin_up: message.header.flags.contains(LinkFlags::Up),
        mtu: None,
        link: None,
        link_netnsid: None,
        master: None,
        stats: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(mac) => link.mac = Some(format_mac(&mac)),
            LinkAttribute::OperState(state) => link.oper_state = state_name(state),
            LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
            LinkAttribute::Link(index) => link.link = Some(index),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
            LinkAttribute::Controller(index) => link.master = Some(index),
            LinkAttribute::Stats64(stats) => {
                link.stats = Some(LinkStats {
                    rx_bytes: stats.rx_bytes,
                    tx_bytes: stats.tx_bytes,
                    rx_dropped: stats.rx_dropped,
                    tx_dropped: stats.tx_dropped,
                })
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind_name(&kind));
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn address_from(message: AddressMessage) -> Option<Address> {
    if !matches!(
        message.header.family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return None;
    }
    // IFA_LOCAL is the interface's own address on point-to-point links; prefer it.
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => address = Some(*ip),
            AddressAttribute::Address(ip) if address.is_none() => address = Some(*ip),
            _ => {}
        }
    }
    Some(Address {
        index: message.header.index,
        address: address?,
        prefix_len: message.header.prefix_len,
    })
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn state_name(state: State) -> String {
    state.to_string().to_uppercase()
}

fn kind_name(kind: &InfoKind) -> String {
    kind.to_string()
}
