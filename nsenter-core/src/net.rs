//! Network links and addresses of a network namespace, read through rtnetlink.
//!
//! A netlink socket belongs to the network namespace it was created in, for its whole life.
//! Open a [`RouteSocket`] inside an [`NsGuard`](crate::NsGuard) (or
//! [`run_in`](crate::run_in)) and use it after leaving: it still answers for the target's
//! namespace. This is how nsdebug reads a container's links without running anything in it,
//! and why `/sys/class/net` is not used (it shows the namespace of whoever mounted `/sys`).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage, State};
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
        let err = |source| Error::Netlink { request: "socket", source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        Ok(RouteSocket { socket, sequence: 0 })
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

    /// Sends a dump request and feeds every answer to `each` until `NLMSG_DONE`.
    fn dump(
        &mut self,
        request: RouteNetlinkMessage,
        name: &'static str,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        let err = |source| Error::Netlink { request: name, source };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
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
                    .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
                let length = answer.header.length as usize;
                match answer.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        let errno = e.code.map_or(0, |code| -code.get());
                        return Err(err(io::Error::from_raw_os_error(errno)));
                    }
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
        admin_up: message.header.flags.contains(netlink_packet_route::link::LinkFlags::Up),
        mtu: None,
        link: None,
        link_netnsid: None,
        master: None,
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
    if !matches!(message.header.family, AddressFamily::Inet | AddressFamily::Inet6) {
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
    Some(Address { index: message.header.index, address: address?, prefix_len: message.header.prefix_len })
}

fn format_mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn state_name(state: State) -> String {
    state.to_string().to_uppercase()
}

fn kind_name(kind: &InfoKind) -> String {
    kind.to_string()
}
