//! The connection table: both directions of every TCP connection, their lifecycle (SYN,
//! FIN, RST, reuse of a 4-tuple), and the limits that keep memory bounded.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::IpAddr;

use crate::decode::Segment;
use crate::hash::FlowMap;
use crate::reassembly::{Direction, DirectionStats, Event, Overlap};

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

    fn canonical(&self) -> FlowKey {
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
    named: [bool; 2],
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

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions sent FIN.
    Fin,
    /// A RST.
    Rst,
    /// A new SYN on the same 4-tuple started another connection.
    Reused,
    /// Nothing seen for the idle timeout.
    Idle,
    /// Evicted to stay within the flow limit.
    FlowLimit,
    /// End of the capture (or of a live capture, on SIGINT/SIGTERM).
    End,
    /// The sink failed for this connection (a write error on its file): it is dropped, the
    /// others go on.
    Failed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::Reused => "reused",
            CloseReason::Idle => "idle",
            CloseReason::FlowLimit => "flow-limit",
            CloseReason::End => "end",
            CloseReason::Failed => "failed",
        })
    }
}

/// Where reassembled bytes go.
pub trait Sink {
    /// A connection was seen for the first time.
    fn opened(&mut self, _flow: &FlowInfo) -> io::Result<()> {
        Ok(())
    }
    /// Whether bytes may come ahead of the stream, beyond a hole ([`Event::Data`]): a sink
    /// that writes each chunk at its offset (a file) says yes, and reassembly then holds
    /// little out of order ([`Direction::spill_early_data`]); one that shows bytes as they
    /// come (a console) says no.
    fn takes_early_data(&self) -> bool {
        false
    }
    /// Bytes of direction `dir` at stream `offset` (see [`Event::Data`]).
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Bytes of direction `dir` that never arrived.
    fn gap(&mut self, _flow: &FlowInfo, _dir: usize, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Direction `dir` starts over as a new stream ([`Event::Restart`]): what follows goes to
    /// a new file.
    fn restarted(&mut self, _flow: &FlowInfo, _dir: usize) -> io::Result<()> {
        Ok(())
    }
    /// Both directions sent FIN: more data is unlikely (the connection lingers a moment for
    /// retransmissions). A file sink can close its files now.
    fn finished(&mut self, _flow: &FlowInfo) -> io::Result<()> {
        Ok(())
    }
    /// The connection ended; `stats` per direction.
    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()>;
    /// Connections whose output failed after the call that caused it returned (a sink that
    /// writes on another thread learns its errors later), each once: the table drops them as
    /// if that call had failed, and hands the sink nothing more for them but, for one still
    /// open, `closed` with [`CloseReason::Failed`]. Asked every few segments: keep it cheap.
    fn take_failures(&mut self) -> Vec<Failure> {
        Vec::new()
    }
    /// The end of the output: everything handed over is written (a writer thread is joined)
    /// before this returns. An error here is the output's as a whole, not one connection's.
    fn drain(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bounds on memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Out-of-order bytes buffered per direction before a gap is declared.
    pub pending_per_direction: usize,
    /// Memory held by all flows together: out-of-order segments (with their overhead) and the
    /// delivered bytes kept to compare retransmissions against.
    pub pending_total: usize,
    /// Of `pending_total`, what the retransmission histories (the last delivered bytes of
    /// each direction, kept to find retransmissions that disagree) may hold in all flows:
    /// beyond it the least recently active connections forget theirs. Small, so that many
    /// open connections cost little more than their state, as in tcpflow (which keeps none).
    pub history_total: usize,
    /// Connections tracked at once; the least recently active is closed beyond it.
    pub flows: usize,
    /// Seconds (capture time) without a packet after which a connection is closed.
    pub idle_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pending_per_direction: 4 << 20,
            pending_total: 256 << 20,
            history_total: 4 << 20,
            flows: 100_000,
            idle_seconds: 300.0,
        }
    }
}

/// Counters of a whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// TCP segments processed.
    pub segments: u64,
    /// Connections seen.
    pub flows: u64,
    /// Connections closed by the flow limit.
    pub evicted: u64,
    /// Connections closed by the idle timeout.
    pub expired: u64,
    /// Gaps forced by the total memory limit.
    pub forced_by_total: u64,
    /// Retransmission histories dropped for the total memory limit (disagreeing
    /// retransmissions of those bytes can no longer be counted).
    pub histories_dropped: u64,
    /// Segments with data already seen on a direction closed by FIN or RST, dropped.
    pub late: u64,
    /// SYNs with another initial sequence number on a direction already carrying data,
    /// ignored with their payload (tcpflow does the same).
    pub stale_syns: u64,
    /// Connections dropped because the sink failed for them (see [`FlowTable::failures`]).
    pub failed: u64,
}

/// A connection the sink failed for.
#[derive(Debug)]
pub struct Failure {
    /// The connection.
    pub flow: FlowInfo,
    /// What went wrong (for a file: its path and the system's message).
    pub error: io::Error,
}

/// Passes everything on to a sink; an error for one connection is kept instead of returned,
/// and that connection gets nothing more (but `closed`) until the table has dropped it.
struct Guard<'s> {
    inner: &'s mut dyn Sink,
    failed: Vec<Failure>,
}

impl Guard<'_> {
    fn dead(&self, flow: &FlowInfo) -> bool {
        self.failed.iter().any(|f| f.flow.id == flow.id)
    }

    fn check(&mut self, flow: &FlowInfo, result: io::Result<()>) -> io::Result<()> {
        if let Err(error) = result {
            self.failed.push(Failure {
                flow: flow.clone(),
                error,
            });
        }
        Ok(())
    }
}

impl Sink for Guard<'_> {
    fn takes_early_data(&self) -> bool {
        self.inner.takes_early_data()
    }
    fn opened(&mut self, flow: &FlowInfo) -> io::Result<()> {
        let result = self.inner.opened(flow);
        self.check(flow, result)
    }
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if self.dead(flow) {
            return Ok(());
        }
        let result = self.inner.data(flow, dir, offset, bytes);
        self.check(flow, result)
    }
    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
        if self.dead(flow) {
            return Ok(());
        }
        let result = self.inner.gap(flow, dir, offset, len);
        self.check(flow, result)
    }
    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        if self.dead(flow) {
            return Ok(());
        }
        let result = self.inner.restarted(flow, dir);
        self.check(flow, result)
    }
    fn finished(&mut self, flow: &FlowInfo) -> io::Result<()> {
        if self.dead(flow) {
            return Ok(());
        }
        let result = self.inner.finished(flow);
        self.check(flow, result)
    }
    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()> {
        let result = self.inner.closed(flow, stats, reason);
        if reason == CloseReason::Failed {
            return Ok(()); // already reported; the sink only lets go of what it held
        }
        self.check(flow, result)
    }
    fn take_failures(&mut self) -> Vec<Failure> {
        self.inner.take_failures()
    }
    fn drain(&mut self) -> io::Result<()> {
        self.inner.drain()
    }
}

/// Failures kept with their error (all are counted).
const MAX_FAILURES: usize = 16;

/// Segments between two questions for failures learned late ([`Sink::take_failures`]):
/// asking costs a few calls, and until then the writer drops the flow's bytes itself.
const LATE_FAILURES_EVERY: u64 = 64;

/// Seconds (capture time) a connection lingers after both FINs: retransmissions still
/// arrive then, and tcpflow writes them.
const LINGER_SECONDS: f64 = 2.0;

struct Connection {
    info: FlowInfo,
    dirs: [Direction; 2],
    fin: [bool; 2],
    /// Directions ended by their RST.
    rst: [bool; 2],
    /// Memory its directions held when last counted into [`FlowTable`]'s total.
    held: usize,
    /// Of `held`, their retransmission histories.
    history: usize,
    /// The sink failed for it: its segments are dropped until it ends.
    failed: bool,
    /// When both directions had sent FIN.
    finished_at: Option<f64>,
}

const NIL: usize = usize::MAX;

struct Slot {
    key: FlowKey,
    connection: Connection,
    /// Neighbours in the recency list ([`NIL`] at either end).
    newer: usize,
    older: usize,
}

/// The open connections in order of last activity: a map to slots of a slab that are linked
/// from the most to the least recently active, so that marking one active, finding the least
/// recently active and removing one are all O(1), whatever the number of connections (a
/// sender opening flows without end costs constant work per flow).
struct Connections {
    index: FlowMap<FlowKey, usize>,
    /// The last key looked up and its slot: one packet looks its connection up several
    /// times, and comparing a key costs less than hashing it.
    last: std::cell::Cell<Option<(FlowKey, usize)>>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
}

impl Connections {
    fn new() -> Connections {
        Connections {
            index: FlowMap::default(),
            last: std::cell::Cell::new(None),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    fn find(&self, key: &FlowKey) -> Option<usize> {
        if let Some((last, i)) = self.last.get() {
            if last == *key {
                return Some(i);
            }
        }
        let i = *self.index.get(key)?;
        self.last.set(Some((*key, i)));
        Some(i)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn contains_key(&self, key: &FlowKey) -> bool {
        self.find(key).is_some()
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Connection> {
        let i = self.find(key)?;
        self.slot_mut(i).map(|slot| &mut slot.connection)
    }

    fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Connection)> {
        self.slots
            .iter()
            .flatten()
            .map(|slot| (&slot.key, &slot.connection))
    }

    /// From the least recently active on, while `keep_going` says so.
    fn oldest_while(&self, mut keep_going: impl FnMut(&Connection) -> bool) -> Vec<FlowKey> {
        let mut keys = Vec::new();
        let mut i = self.oldest;
        while let Some(slot) = self.slot(i) {
            if !keep_going(&slot.connection) {
                break;
            }
            keys.push(slot.key);
            i = slot.newer;
        }
        keys
    }

    fn unlink(&mut self, i: usize) {
        let Some((newer, older)) = self.slot(i).map(|s| (s.newer, s.older)) else {
            return;
        };
        match self.slot_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slot_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    fn push_newest(&mut self, i: usize) {
        let previous = self.newest;
        if let Some(slot) = self.slot_mut(i) {
            slot.newer = NIL;
            slot.older = previous;
        }
        match self.slot_mut(previous) {
            Some(p) => p.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
    }

    /// Marks `key` as the most recently active.
    fn touch(&mut self, key: &FlowKey) {
        if let Some(i) = self.find(key) {
            if i != self.newest {
                self.unlink(i);
                self.push_newest(i);
            }
        }
    }

    fn insert(&mut self, key: FlowKey, connection: Connection) {
        self.remove(&key);
        let slot = Slot {
            key,
            connection,
            newer: NIL,
            older: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, i);
        self.last.set(Some((key, i)));
        self.push_newest(i);
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Connection> {
        let i = self.index.remove(key)?;
        if self.last.get().is_some_and(|(last, _)| last == *key) {
            self.last.set(None);
        }
        self.unlink(i);
        let slot = self.slots.get_mut(i).and_then(Option::take)?;
        self.free.push(i);
        Some(slot.connection)
    }

    fn oldest_key(&self) -> Option<FlowKey> {
        self.slot(self.oldest).map(|slot| slot.key)
    }
}

/// What is remembered of a 4-tuple's past connections.
struct Past {
    /// Connections so far.
    count: u32,
    /// Names taken so far ([`FlowInfo::reuse`]): of the direction from the canonical key's
    /// source, then of the other.
    names: [u32; 2],
    /// What the last one carried, once it ended (boxed: most 4-tuples have none).
    ended: Option<Box<Ended>>,
}

struct Ended {
    /// Direction 0.
    key: FlowKey,
    /// Per direction: the sequence number of offset 0 and the length handed on.
    spans: [Option<(u32, u64)>; 2],
}

impl Ended {
    /// Whether `len` bytes at `seq` from `key`'s sender were all seen already.
    fn covers(&self, key: &FlowKey, seq: u32, len: usize) -> bool {
        let dir = if *key == self.key { 0 } else { 1 };
        self.spans[dir]
            .is_some_and(|(base, length)| u64::from(seq.wrapping_sub(base)) + len as u64 <= length)
    }
}

/// Every connection of a capture.
pub struct FlowTable {
    connections: Connections,
    /// Connections that saw both FINs, in that order: (when, key, id), closed after lingering.
    finishing: VecDeque<(f64, FlowKey, u64)>,
    /// Per 4-tuple (canonical): connections so far, and how the last one ended.
    history: FlowMap<FlowKey, Past>,
    next_id: u64,
    policy: Overlap,
    limits: Limits,
    /// Memory held by all directions (out-of-order segments, retransmission histories).
    held_total: usize,
    /// Of `held_total`, the retransmission histories.
    history_total: usize,
    since_sweep: u32,
    last_sweep: f64,
    /// The latest capture time seen.
    clock: f64,
    /// Connections the sink failed for, the first [`MAX_FAILURES`] kept.
    failures: Vec<Failure>,
    /// Counters.
    pub stats: TableStats,
}

impl FlowTable {
    /// An empty table.
    pub fn new(policy: Overlap, limits: Limits) -> FlowTable {
        FlowTable {
            connections: Connections::new(),
            finishing: VecDeque::new(),
            history: FlowMap::default(),
            next_id: 0,
            policy,
            limits,
            held_total: 0,
            history_total: 0,
            since_sweep: 0,
            last_sweep: 0.0,
            clock: f64::MIN,
            failures: Vec::new(),
            stats: TableStats::default(),
        }
    }

    /// Connections open now.
    pub fn open_flows(&self) -> usize {
        self.connections.len()
    }

    /// Connections the sink failed for (the first few), each dropped without stopping the
    /// others; [`TableStats::failed`] counts them all.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Runs `work` with the sink behind a [`Guard`], then drops every connection the sink
    /// failed for, so that one bad flow never stops the others. Failures learned late (from
    /// a writer thread) count as if the call had failed: they are asked for every
    /// [`LATE_FAILURES_EVERY`] segments, at each tick and at the end.
    fn guarded(
        &mut self,
        sink: &mut dyn Sink,
        work: impl FnOnce(&mut FlowTable, &mut Guard<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut guard = Guard {
            inner: sink,
            failed: Vec::new(),
        };
        let segments = self.stats.segments;
        let result = work(self, &mut guard);
        if self.stats.segments == segments || self.stats.segments % LATE_FAILURES_EVERY == 0 {
            for failure in guard.inner.take_failures() {
                if !guard.dead(&failure.flow) {
                    guard.failed.push(failure);
                }
            }
        }
        for failure in std::mem::take(&mut guard.failed) {
            let canonical = failure.flow.key.canonical();
            if let Some(connection) = self
                .connections
                .get_mut(&canonical)
                .filter(|c| c.info.id == failure.flow.id)
            {
                // Its state goes; the connection stays, failed, so that its later segments
                // are dropped too instead of starting new files.
                self.held_total = self.held_total.saturating_sub(connection.held);
                self.history_total = self.history_total.saturating_sub(connection.history);
                connection.held = 0;
                connection.history = 0;
                for dir in &mut connection.dirs {
                    let stats = dir.stats;
                    *dir = Direction::default();
                    dir.stats = stats;
                }
                connection.failed = true;
                let stats = [connection.dirs[0].stats, connection.dirs[1].stats];
                let _ = guard
                    .inner
                    .closed(&connection.info, &stats, CloseReason::Failed);
            } else {
                // Failed while it closed, or learned after (from a writer thread): the sink
                // was told then, and it was counted then.
            }
            self.stats.failed += 1;
            if self.failures.len() < MAX_FAILURES {
                self.failures.push(failure);
            }
        }
        result
    }

    /// One TCP segment captured at `time` (seconds). A sink error for one connection drops
    /// that connection only ([`FlowTable::failures`]).
    pub fn segment(
        &mut self,
        time: f64,
        segment: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        self.guarded(sink, |table, guard| {
            table.segment_inner(time, segment, guard)
        })
    }

    fn segment_inner(
        &mut self,
        time: f64,
        segment: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        self.stats.segments += 1;
        // Capture time only moves forward: a timestamp going back (clock steps, merged or
        // edited captures) neither makes a connection look idle nor delays its expiry.
        let time = time.max(self.clock);
        self.clock = time;
        let key = FlowKey {
            src: segment.src,
            src_port: segment.src_port,
            dst: segment.dst,
            dst_port: segment.dst_port,
            vlan: segment.vlan,
        };
        let canonical = key.canonical();
        if let Some(connection) = self.connections.get_mut(&canonical).filter(|c| c.failed) {
            // Dropped for an output error: nothing more is written for it; it ends as usual.
            connection.info.last_seen = time;
            if segment.rst || segment.fin {
                self.connections.remove(&canonical);
            }
            self.connections.touch(&canonical);
            return Ok(());
        }
        if let Some(connection) = self.connections.get_mut(&canonical) {
            let dir = if connection.info.key == key { 0 } else { 1 };
            if segment.syn
                && connection.dirs[dir]
                    .base()
                    .is_some_and(|base| base != segment.seq.wrapping_add(1))
            {
                // A SYN with another initial sequence number on a known 4-tuple.
                if connection.finished_at.is_some() {
                    // After both FINs: the 4-tuple is reused by a new connection.
                    self.close(&canonical, CloseReason::Reused, sink)?;
                } else if connection.rst[dir] || connection.dirs[dir].is_empty() {
                    // After its RST, or before any data: this direction starts from the new SYN.
                    connection.rst[dir] = false;
                    let past = self.history.get_mut(&canonical);
                    advance(sink, connection, past, dir, Ok(()), |d, emit| {
                        d.restart(Some(segment.seq), emit)
                    })?;
                } else {
                    // A stale SYN (a retransmitted old SYN-ACK, say) on a direction with data:
                    // ignored with its payload, as tcpflow does.
                    self.stats.stale_syns += 1;
                    return Ok(());
                }
            } else if !segment.syn
                && !segment.payload.is_empty()
                && !connection.dirs[dir].started()
                && self
                    .history
                    .get(&canonical)
                    .and_then(|p| p.ended.as_ref())
                    .is_some_and(|e| e.covers(&key, segment.seq, segment.payload.len()))
            {
                // A retransmission of the previous connection's bytes on this 4-tuple.
                self.stats.late += 1;
                return Ok(());
            } else if connection.rst[dir] && !segment.payload.is_empty() {
                if connection.dirs[dir].covers(segment.seq, segment.payload.len()) {
                    // A retransmission of what came before the RST.
                    self.stats.late += 1;
                    return Ok(());
                }
                // New data after its RST: the direction starts over (a new file, as tcpflow).
                connection.rst[dir] = false;
                let past = self.history.get_mut(&canonical);
                advance(sink, connection, past, dir, Ok(()), |d, emit| {
                    d.restart(None, emit)
                })?;
            }
        }
        if !self.connections.contains_key(&canonical) {
            if segment.payload.is_empty() && !segment.syn {
                // Only a SYN or data starts a connection (bare ACKs, FINs and RSTs of
                // connections not tracked do not, as in tcpflow).
                return Ok(());
            }
            let past = self.history.get(&canonical);
            let count = past.map_or(0, |p| p.count);
            let names = past.map_or([0, 0], |p| p.names);
            let ended = past.and_then(|p| p.ended.as_ref());
            if !segment.syn
                && ended.is_some_and(|e| e.covers(&key, segment.seq, segment.payload.len()))
            {
                // After FIN/RST, a retransmission of what was seen; new data starts a new
                // connection (tcpflow writes it to a new file).
                self.stats.late += 1;
                return Ok(());
            }
            if self.connections.len() >= self.limits.flows {
                self.evict_oldest(sink)?;
            }
            let side = usize::from(key != canonical);
            let info = FlowInfo {
                id: self.next_id,
                key,
                reuse: [names[side], names[1 - side]],
                first_seen: time,
                last_seen: time,
                named: [false; 2],
            };
            self.next_id += 1;
            self.stats.flows += 1;
            // What the last connection carried is kept: its retransmissions are still late.
            self.history
                .entry(canonical)
                .or_insert(Past {
                    count: 0,
                    names: [0, 0],
                    ended: None,
                })
                .count = count + 1;
            sink.opened(&info)?;
            let mut dirs: [Direction; 2] = Default::default();
            let spill = sink.takes_early_data();
            dirs.iter_mut().for_each(|d| d.spill_early_data(spill));
            let connection = Connection {
                info,
                dirs,
                fin: [false; 2],
                rst: [false; 2],
                held: 0,
                history: 0,
                failed: false,
                finished_at: None,
            };
            self.connections.insert(canonical, connection);
        }
        let policy = self.policy;
        let max_pending = self.limits.pending_per_direction;
        self.connections.touch(&canonical);
        let Some(connection) = self.connections.get_mut(&canonical) else {
            return Ok(());
        };
        connection.info.last_seen = time;
        let dir = if connection.info.key == key { 0 } else { 1 };
        if segment.syn {
            connection.dirs[dir].syn(segment.seq);
        }
        let seq = if segment.syn {
            segment.seq.wrapping_add(1)
        } else {
            segment.seq
        };
        let past = self.history.get_mut(&canonical);
        advance(sink, connection, past, dir, Ok(()), |d, emit| {
            d.data(seq, segment.payload, policy, max_pending, emit)
        })?;
        if segment.fin {
            connection.fin[dir] = true;
        }
        // Both directions done (FIN, or the RST of one and the FIN of the other): the
        // connection lingers for retransmissions, then closes.
        let done = |d: usize| connection.fin[d] || connection.rst[d];
        if done(0) && done(1) && connection.finished_at.is_none() && !segment.rst {
            connection.finished_at = Some(time);
            self.finishing
                .push_back((time, canonical, connection.info.id));
            connection
                .dirs
                .iter_mut()
                .for_each(Direction::forget_history);
            sink.finished(&connection.info)?;
        }
        if segment.rst {
            // A RST ends its sender's direction only (as in tcpflow): the other side's data
            // still in flight is kept. The connection ends when the other direction has
            // ended too, or never carried data.
            connection.rst[dir] = true;
            let past = self.history.get_mut(&canonical);
            advance(sink, connection, past, dir, Ok(()), |d, emit| {
                d.finish(emit)
            })?;
            let other = 1 - dir;
            if connection.rst[other] || connection.fin[other] || connection.dirs[other].is_empty() {
                self.close(&canonical, CloseReason::Rst, sink)?;
            }
        }
        self.account(&canonical);
        if self.held_total > self.limits.pending_total
            || self.history_total > self.limits.history_total
        {
            self.relieve(sink)?;
        }
        self.since_sweep += 1;
        if self.since_sweep >= 4096 || time - self.last_sweep >= 1.0 {
            self.tick_inner(time, sink)?;
        }
        Ok(())
    }

    /// Closes what time has ended: connections idle too long, and those finished (both FINs)
    /// more than a linger period ago. A live capture calls this when no packet comes.
    pub fn tick(&mut self, now: f64, sink: &mut dyn Sink) -> io::Result<()> {
        self.guarded(sink, |table, guard| table.tick_inner(now, guard))
    }

    fn tick_inner(&mut self, now: f64, sink: &mut dyn Sink) -> io::Result<()> {
        self.since_sweep = 0;
        self.last_sweep = now;
        while let Some(&(at, key, id)) = self.finishing.front() {
            if now - at <= LINGER_SECONDS {
                break;
            }
            self.finishing.pop_front();
            let still = self
                .connections
                .get_mut(&key)
                .is_some_and(|c| c.info.id == id && c.finished_at.is_some());
            if still {
                self.close(&key, CloseReason::Fin, sink)?;
            }
        }
        self.expire(now, sink)
    }

    /// Closes every connection (end of capture) and drains the sink ([`Sink::drain`]): when
    /// this returns, everything is written, and every failure is in [`FlowTable::failures`].
    pub fn finish(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        self.guarded(sink, |table, guard| {
            let closed = table.finish_inner(guard);
            let drained = guard.drain();
            closed.and(drained)
        })
    }

    fn finish_inner(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        let mut keys: Vec<(u64, FlowKey, bool)> = self
            .connections
            .iter()
            .map(|(k, c)| (c.info.id, *k, c.finished_at.is_some()))
            .collect();
        keys.sort();
        for (_, key, finished) in keys {
            self.close(
                &key,
                if finished {
                    CloseReason::Fin
                } else {
                    CloseReason::End
                },
                sink,
            )?;
        }
        Ok(())
    }

    fn close(
        &mut self,
        canonical: &FlowKey,
        reason: CloseReason,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let Some(mut connection) = self.connections.remove(canonical) else {
            return Ok(());
        };
        self.held_total = self.held_total.saturating_sub(connection.held);
        self.history_total = self.history_total.saturating_sub(connection.history);
        connection.held = 0;
        connection.history = 0;
        if connection.failed {
            return Ok(()); // the sink was told when it failed
        }
        let mut result = Ok(());
        for dir in 0..2 {
            let past = self.history.get_mut(canonical);
            result = advance(sink, &mut connection, past, dir, result, |d, emit| {
                d.finish(emit)
            });
        }
        result?;
        // Whatever ended it, what it carried is remembered: seen again (retransmitted, or
        // replayed after an idle close or eviction) it is late, not a new connection, as
        // tcpflow checks such data against what it wrote.
        // A connection that carried nothing leaves nothing (a scan's SYNs cost no memory
        // once closed).
        let span = |d: &Direction| {
            d.base()
                .filter(|_| d.position() > 0 && d.position() <= u64::from(u32::MAX))
                .map(|b| (b, d.position()))
        };
        let spans = [span(&connection.dirs[0]), span(&connection.dirs[1])];
        if spans == [None, None] {
            if self.history.get(canonical).is_some_and(|p| p.count <= 1) {
                self.history.remove(canonical);
            }
        } else if let Some(entry) = self.history.get_mut(canonical) {
            entry.ended = Some(Box::new(Ended {
                key: connection.info.key,
                spans,
            }));
        }
        match reason {
            CloseReason::Idle => self.stats.expired += 1,
            CloseReason::FlowLimit => self.stats.evicted += 1,
            _ => {}
        }
        let stats = [connection.dirs[0].stats, connection.dirs[1].stats];
        sink.closed(&connection.info, &stats, reason)
    }

    fn evict_oldest(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        match self.connections.oldest_key() {
            Some(key) => self.close(&key, CloseReason::FlowLimit, sink),
            None => Ok(()),
        }
    }

    /// Brings the memory a connection's directions hold into the total.
    fn account(&mut self, canonical: &FlowKey) {
        if let Some(connection) = self.connections.get_mut(canonical) {
            let held = connection.dirs[0].held() + connection.dirs[1].held();
            self.held_total = (self.held_total + held).saturating_sub(connection.held);
            connection.held = held;
            let history = connection.dirs[0].history_bytes() + connection.dirs[1].history_bytes();
            self.history_total = (self.history_total + history).saturating_sub(connection.history);
            connection.history = history;
        }
    }

    /// Over the total memory limit: down to three quarters of it, first by dropping the
    /// retransmission histories of the least recently active connections (they only serve
    /// to count disagreeing retransmissions), then by turning into gaps the holes of the
    /// directions holding most out-of-order bytes. The cost is paid once per quarter of the
    /// limit, not per packet.
    fn relieve(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        let target = self.limits.pending_total / 4 * 3;
        let history_target = self.limits.history_total / 4 * 3;
        // Walked in place (no list of every key): this runs once per quarter of a limit.
        let mut i = self.connections.oldest;
        while let Some(slot) = self.connections.slot_mut(i) {
            if self.history_total <= history_target && self.held_total <= target {
                break;
            }
            i = slot.newer;
            let key = slot.key;
            let connection = &mut slot.connection;
            if connection.dirs.iter().any(Direction::has_history) {
                connection
                    .dirs
                    .iter_mut()
                    .for_each(Direction::forget_history);
                self.stats.histories_dropped += 1;
                self.account(&key);
            }
        }
        if self.held_total <= target {
            return Ok(());
        }
        let mut largest: Vec<(usize, FlowKey, usize)> = self
            .connections
            .iter()
            .flat_map(|(k, c)| (0..2).map(move |d| (c.dirs[d].pending_bytes(), *k, d)))
            .filter(|(pending, _, _)| *pending > 0)
            .collect();
        largest.sort_unstable_by_key(|(pending, _, _)| std::cmp::Reverse(*pending));
        for (_, key, dir) in largest {
            if self.held_total <= target {
                break;
            }
            self.stats.forced_by_total += 1;
            let Some(connection) = self.connections.get_mut(&key) else {
                continue;
            };
            let past = self.history.get_mut(&key);
            let result = advance(sink, connection, past, dir, Ok(()), |d, emit| {
                d.finish(emit)
            });
            self.account(&key);
            result?;
        }
        Ok(())
    }

    fn expire(&mut self, now: f64, sink: &mut dyn Sink) -> io::Result<()> {
        let idle = self.limits.idle_seconds;
        let expired = self
            .connections
            .oldest_while(|c| now - c.info.last_seen > idle);
        for key in expired {
            self.close(&key, CloseReason::Idle, sink)?;
        }
        // Forget 4-tuples long quiet; file names stay unique through the sink's own check.
        if self.history.len() > 4 * self.limits.flows {
            let open = &self.connections;
            self.history.retain(|k, _| open.contains_key(k));
            self.finishing.retain(|(_, k, _)| open.contains_key(k));
        }
        Ok(())
    }
}

/// Advances direction `dir` of `connection` by `step` and hands each event it emits to the sink
/// ([`deliver`]) while `result` (what came before, passed on) is Ok: after a sink error the
/// step still runs to its end, so the direction's state advances, but nothing more reaches
/// the sink.
fn advance<'a>(
    sink: &mut dyn Sink,
    connection: &mut Connection,
    mut past: Option<&mut Past>,
    dir: usize,
    mut result: io::Result<()>,
    step: impl FnOnce(&mut Direction, &mut &mut dyn FnMut(Event<'a>)),
) -> io::Result<()> {
    let info = &mut connection.info;
    let mut emit = |event| {
        if result.is_ok() {
            result = deliver(sink, info, past.as_deref_mut(), dir, event);
        }
    };
    step(
        &mut connection.dirs[dir],
        &mut (&mut emit as &mut dyn FnMut(Event<'a>)),
    );
    result
}

/// Hands an event of direction `dir` to the sink, naming the direction as tcpflow names its
/// file ([`FlowInfo::reuse`]) from the names its 4-tuple took before (`past`).
fn deliver(
    sink: &mut dyn Sink,
    info: &mut FlowInfo,
    past: Option<&mut Past>,
    dir: usize,
    event: Event<'_>,
) -> io::Result<()> {
    let key = info.direction(dir);
    let side = usize::from(key != key.canonical());
    match event {
        Event::Data { offset, bytes } => {
            if !info.named[dir] {
                // Its first bytes: tcpflow creates the file now, under the first free name.
                info.named[dir] = true;
                if let Some(past) = past {
                    info.reuse[dir] = past.names[side];
                    past.names[side] += 1;
                }
            }
            sink.data(info, dir, offset, &bytes)
        }
        Event::Gap { offset, len } => sink.gap(info, dir, offset, len),
        Event::Restart => {
            let result = sink.restarted(info, dir);
            // What follows is a new stream under the next free name.
            info.named[dir] = false;
            if let Some(past) = past {
                info.reuse[dir] = past.names[side];
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(port: u16) -> FlowKey {
        let ip = IpAddr::from([10, 0, 0, 1]);
        FlowKey {
            src: ip,
            src_port: port,
            dst: ip,
            dst_port: 80,
            vlan: None,
        }
    }

    fn connection(id: u64) -> Connection {
        Connection {
            info: FlowInfo {
                id,
                key: key(0),
                reuse: [0, 0],
                first_seen: 0.0,
                last_seen: 0.0,
                named: [false; 2],
            },
            dirs: Default::default(),
            fin: [false; 2],
            rst: [false; 2],
            held: 0,
            history: 0,
            failed: false,
            finished_at: None,
        }
    }

    /// Model-based: random inserts, touches and removals keep the same order of recency as
    /// a plain list, and the least recently active is found at once.
    #[test]
    fn the_recency_list_matches_a_plain_list() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut table = Connections::new();
        let mut model: Vec<u16> = Vec::new(); // oldest first
        for step in 0..20_000u64 {
            let port = (next() % 64) as u16;
            match next() % 4 {
                0 | 1 => {
                    model.retain(|p| *p != port);
                    model.push(port);
                    table.insert(key(port), connection(step));
                }
                2 => {
                    if model.contains(&port) {
                        model.retain(|p| *p != port);
                        model.push(port);
                    }
                    table.touch(&key(port));
                }
                _ => {
                    let removed = model.contains(&port);
                    model.retain(|p| *p != port);
                    assert_eq!(table.remove(&key(port)).is_some(), removed);
                }
            }
            assert_eq!(table.len(), model.len());
            assert_eq!(table.oldest_key(), model.first().map(|p| key(*p)));
            if step % 97 == 0 {
                let order: Vec<FlowKey> = table.oldest_while(|_| true);
                assert_eq!(order, model.iter().map(|p| key(*p)).collect::<Vec<_>>());
            }
        }
    }

    /// Checks what reassembly promises a sink: each stream grows from offset 0 (data never
    /// beyond its end, gaps exactly at it), restarts begin a new one, and the counters of a
    /// closed connection add up to what was handed on.
    #[derive(Default)]
    struct Checking {
        end: HashMap<(u64, usize), u64>,
        before: HashMap<(u64, usize), u64>,
        closed: u64,
        restarts: u64,
    }

    impl Sink for Checking {
        fn data(
            &mut self,
            flow: &FlowInfo,
            dir: usize,
            offset: u64,
            bytes: &[u8],
        ) -> io::Result<()> {
            let end = self.end.entry((flow.id, dir)).or_insert(0);
            assert!(
                offset <= *end,
                "data at {offset} beyond the stream end {end}"
            );
            *end = (*end).max(offset + bytes.len() as u64);
            Ok(())
        }
        fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
            let end = self.end.entry((flow.id, dir)).or_insert(0);
            assert_eq!(offset, *end, "a gap starts where the stream ends");
            assert!(len > 0);
            *end += len;
            Ok(())
        }
        fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
            let end = self.end.remove(&(flow.id, dir)).unwrap_or(0);
            *self.before.entry((flow.id, dir)).or_insert(0) += end;
            self.restarts += 1;
            Ok(())
        }
        fn closed(
            &mut self,
            flow: &FlowInfo,
            stats: &[DirectionStats; 2],
            _: CloseReason,
        ) -> io::Result<()> {
            self.closed += 1;
            for (dir, s) in stats.iter().enumerate() {
                let end = self.end.remove(&(flow.id, dir)).unwrap_or(0)
                    + self.before.remove(&(flow.id, dir)).unwrap_or(0);
                assert_eq!(
                    s.bytes + s.gap_bytes,
                    end,
                    "counted bytes and gaps make the streams"
                );
            }
            Ok(())
        }
    }

    /// Random traffic on a few 4-tuples (SYNs with new and stale ISNs, RSTs, FINs, keep-alives,
    /// retransmissions, jumps beyond 16 MiB, tight limits): the table keeps every promise to
    /// its sink and its memory account matches what its connections hold.
    #[test]
    fn random_lifecycles_keep_the_sink_contract_and_the_memory_account() {
        let mut state = 0x0DDB_1A5E_5BAD_5EEDu64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let payload = [b'x'; 3000];
        let mut seen = TableStats::default();
        let mut restarts = 0;
        for case in 0..60 {
            let limits = Limits {
                pending_per_direction: 8192,
                pending_total: 20_000,
                history_total: 4096,
                flows: 3,
                idle_seconds: 5.0,
            };
            let policy = if case % 2 == 0 {
                Overlap::First
            } else {
                Overlap::Last
            };
            let mut table = FlowTable::new(policy, limits);
            let mut sink = Checking::default();
            let isns = [1000u32, 0xFFFF_F000, 5_000_000, 900_000_000];
            let mut time = 0.0;
            for _ in 0..3000 {
                let r = next();
                let port = 40000 + (r % 4) as u16;
                let up = (r >> 3) & 1 == 0;
                let (client, server) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
                let (src, dst, src_port, dst_port) = if up {
                    (client, server, port, 80)
                } else {
                    (server, client, 80, port)
                };
                let isn = isns[((r >> 5) % 4) as usize];
                let offset = match (r >> 8) % 10 {
                    0 => 17 << 20, // beyond the seek limit
                    1 => 0,
                    _ => ((r >> 12) % 20_000) as u32,
                };
                let len = match (r >> 30) % 5 {
                    0 => 0,
                    1 => 1,
                    _ => ((r >> 33) % 3000) as usize,
                };
                let flags = (r >> 45) % 16;
                let segment = Segment {
                    src,
                    dst,
                    src_port,
                    dst_port,
                    vlan: None,
                    seq: isn.wrapping_add(1).wrapping_add(offset),
                    syn: flags == 0,
                    fin: flags == 1,
                    rst: flags == 2,
                    payload: &payload[..len],
                };
                time += if (r >> 50) % 50 == 0 {
                    10.0
                } else {
                    ((r >> 56) % 100) as f64 / 400.0
                };
                table.segment(time, &segment, &mut sink).unwrap();
                let held: usize = table.connections.iter().map(|(_, c)| c.held).sum();
                assert_eq!(table.held_total, held, "case {case}");
                let history: usize = table.connections.iter().map(|(_, c)| c.history).sum();
                assert_eq!(table.history_total, history, "case {case}");
                assert!(table.history_total <= 4096 + 2 * 16 * 1024, "case {case}");
                assert!(table.connections.len() <= 3);
            }
            table.finish(&mut sink).unwrap();
            seen.stale_syns += table.stats.stale_syns;
            seen.late += table.stats.late;
            seen.evicted += table.stats.evicted;
            seen.expired += table.stats.expired;
            seen.forced_by_total += table.stats.forced_by_total;
            seen.histories_dropped += table.stats.histories_dropped;
            restarts += sink.restarts;
            assert_eq!(table.open_flows(), 0);
            assert_eq!(table.held_total, 0, "case {case}");
            assert!(
                sink.end.is_empty() && sink.before.is_empty(),
                "every stream was closed"
            );
        }
        // The traffic went through every path it is meant to test.
        assert!(
            seen.stale_syns > 0 && seen.late > 0 && seen.evicted > 0 && seen.expired > 0,
            "{seen:?}"
        );
        assert!(
            seen.forced_by_total > 0 && seen.histories_dropped > 0 && restarts > 0,
            "{seen:?} {restarts}"
        );
    }
}
