//! What names a connection and each of its directions: the key of a direction (addresses,
//! ports, VLAN tag), tcpflow's file names, and a connection as sinks see it.

use std::net::IpAddr;

/// One direction of a connection: source, destination and VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// The outermost VLAN tag's TCI (id and priority bits, as tcpflow names files).
    pub vlan: Option<u16>,
}

impl FlowKey {
    /// The other direction.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
            vlan: self.vlan,
        }
    }

    pub(crate) fn canonical(&self) -> FlowKey {
        let reversed = self.reversed();
        if reversed < *self {
            reversed
        } else {
            *self
        }
    }
}

/// tcpflow's name for one direction: `%A.%a-%B.%b` with IPv4 octets `%03d` and ports
/// `%05d`, `--VLAN` when tagged, `cN` for the Nth reuse of the 4-tuple.
pub fn tcpflow_name(key: &FlowKey, reuse: u32) -> String {
    fn endpoint(addr: &IpAddr, port: u16) -> String {
        match addr {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                format!("{a:03}.{b:03}.{c:03}.{d:03}.{port:05}")
            }
            IpAddr::V6(v6) => format!("{v6}.{port:05}"),
        }
    }
    let mut name = format!(
        "{}-{}",
        endpoint(&key.src, key.src_port),
        endpoint(&key.dst, key.dst_port)
    );
    if let Some(vlan) = key.vlan {
        name.push_str(&format!("--{vlan}"));
    }
    if reuse > 0 {
        name.push_str(&format!("c{reuse}"));
    }
    name
}

/// A connection as sinks see it.
#[derive(Clone, Debug)]
pub struct FlowInfo {
    /// Unique within a run.
    pub id: u64,
    /// Direction 0: the first direction seen (the client's when the SYN was captured).
    pub key: FlowKey,
    /// Per direction, the `cN` of its name (0: none), as tcpflow names its files: a name is
    /// taken once a direction carried bytes under it (tcpflow creates the file then), and a
    /// direction takes the first name not taken, so connections that carried nothing (SYN
    /// then RST, scans) take none. Until a direction carries bytes, its name is the one it
    /// would take.
    pub reuse: [u32; 2],
    /// Capture time of its first packet, in seconds since the epoch.
    pub first_seen: f64,
    /// Capture time of its latest packet: when a sink hears of a gap or of its end, the
    /// packet that caused it (at the end of a capture or on expiry, its last one).
    pub last_seen: f64,
    /// Per direction: whether it took its name (carried bytes since it started or restarted).
    pub(super) named: [bool; 2],
}

impl FlowInfo {
    /// The key of direction `dir` (0 or 1).
    pub fn direction(&self, dir: usize) -> FlowKey {
        if dir == 0 {
            self.key
        } else {
            self.key.reversed()
        }
    }

    /// tcpflow's file name of direction `dir`.
    pub fn name(&self, dir: usize) -> String {
        tcpflow_name(&self.direction(dir), self.reuse[dir])
    }
}
