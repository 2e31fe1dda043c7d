//! Link layers -> IPv4/IPv6 -> TCP: what one captured frame says about one TCP segment.

use std::net::IpAddr;

use etherparse::{
    EtherType, IpNumber, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice,
};

/// libpcap link types this crate decodes (`DLT_*` / `LINKTYPE_*` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// BSD loopback (`DLT_NULL`, 0): a 4-byte address family in host byte order.
    Null,
    /// Ethernet (1), with 802.1Q / QinQ tags.
    Ethernet,
    /// Raw IP (`DLT_RAW`: 12 or 14 on some systems, `LINKTYPE_RAW` 101).
    Raw,
    /// OpenBSD loopback (`DLT_LOOP`, 108): the family in network byte order.
    Loop,
    /// Linux cooked capture v1 (`DLT_LINUX_SLL`, 113).
    LinuxSll,
    /// Linux cooked capture v2 (`DLT_LINUX_SLL2`, 276): what `-i any` gives.
    LinuxSll2,
    /// IPv4 only (228).
    Ipv4,
    /// IPv6 only (229).
    Ipv6,
}

impl LinkType {
    /// The link type for a libpcap `DLT_*` number, if it is one this crate decodes.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            _ => return None,
        })
    }
}

/// One TCP segment, borrowed from the captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The outermost 802.1Q/802.1ad tag's TCI (VLAN id and priority bits, as tcpflow names
    /// files), if tagged.
    pub vlan: Option<u16>,
    /// Sequence number.
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The TCP payload (possibly cut short by the capture's snap length).
    pub payload: &'a [u8],
}

/// Why a frame gave no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not IP, or IP but not TCP: not for us.
    NotTcp,
    /// Malformed or truncated headers.
    Malformed,
    /// A fragment of a fragmented IP datagram (not reassembled, as tcpflow).
    Fragment,
}

/// Decodes one frame of link type `link`. A frame cut short by the capture's snap length
/// still gives the payload bytes it holds (as tcpflow writes them), so headers are parsed
/// leniently: the IP length may exceed what was captured.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    let sliced = match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(frame).map_err(|_| Skip::Malformed)?,
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {
            LaxSlicedPacket::from_ip(frame).map_err(|_| Skip::Malformed)?
        }
        LinkType::Null | LinkType::Loop => {
            let family = frame.get(..4).ok_or(Skip::Malformed)?;
            let family = if link == LinkType::Null {
                // Host byte order of the capturing machine: accept either.
                u32::from_le_bytes([family[0], family[1], family[2], family[3]]).min(
                    u32::from_be_bytes([family[0], family[1], family[2], family[3]]),
                )
            } else {
                u32::from_be_bytes([family[0], family[1], family[2], family[3]])
            };
            // AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS.
            if !matches!(family, 2 | 10 | 24 | 28 | 30) {
                return Err(Skip::NotTcp);
            }
            LaxSlicedPacket::from_ip(&frame[4..]).map_err(|_| Skip::Malformed)?
        }
        LinkType::LinuxSll => {
            // 16 bytes: packet type, ARPHRD, address length, 8 address bytes, protocol.
            let protocol = frame.get(14..16).ok_or(Skip::Malformed)?;
            let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
            LaxSlicedPacket::from_ether_type(ether_type, frame.get(16..).ok_or(Skip::Malformed)?)
        }
        LinkType::LinuxSll2 => {
            // 20 bytes: protocol first, then interface index, ARPHRD, packet type, address.
            let protocol = frame.get(..2).ok_or(Skip::Malformed)?;
            let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
            LaxSlicedPacket::from_ether_type(ether_type, frame.get(20..).ok_or(Skip::Malformed)?)
        }
    };
    // The outermost tag's whole TCI (priority, DEI and VLAN id), as tcpflow names its files
    // (`--45056` for VLAN 0 at priority 5): users diff these names against tcpflow's.
    let vlan = sliced.link_exts.iter().find_map(|ext| match ext {
        LaxLinkExtSlice::Vlan(vlan) => {
            let tci = vlan.slice().get(..2)?;
            Some(u16::from_be_bytes([tci[0], tci[1]]))
        }
        _ => None,
    });
    let mut first_fragment = None;
    let (src, dst) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            if ip.payload().fragmented {
                // The first fragment (offset 0) holds the TCP header and the first bytes of
                // the payload: tcpflow writes them, so do we. Later fragments are skipped.
                if ip.header().fragments_offset().value() != 0
                    || ip.payload().ip_number != IpNumber::TCP
                {
                    return Err(Skip::Fragment);
                }
                first_fragment = Some(ip.payload().payload);
            }
            (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            if ip.payload().fragmented {
                return Err(Skip::Fragment);
            }
            (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
            )
        }
        _ => return Err(Skip::NotTcp),
    };
    if let Some(payload) = first_fragment {
        let tcp = TcpSlice::from_slice(payload).map_err(|_| Skip::Malformed)?;
        return Ok(segment_of(src, dst, vlan, &tcp));
    }
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        // IP carrying TCP whose header did not fit in the capture: malformed, not "not TCP".
        return Err(match sliced.stop_err {
            Some(_) => Skip::Malformed,
            None => Skip::NotTcp,
        });
    };
    Ok(segment_of(src, dst, vlan, tcp))
}

fn segment_of<'a>(src: IpAddr, dst: IpAddr, vlan: Option<u16>, tcp: &TcpSlice<'a>) -> Segment<'a> {
    Segment {
        src,
        dst,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        vlan,
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    }
}
