//! The connection table: both directions of every TCP connection, their lifecycle (SYN,
//! FIN, RST, reuse of a 4-tuple), and the limits that keep memory bounded.

mod key;
mod recency;
mod sink;

use std::collections::VecDeque;
use std::io;

pub use key::{tcpflow_name, FlowInfo, FlowKey};
pub use sink::{CloseReason, Failure, Sink};

use crate::decode::Segment;
use crate::hash::FlowMap;
use crate::reassembly::{Direction, Event, Overlap};
use recency::Connections;
use sink::Guard;

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
    connections: Connections<Connection>,
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
        if !self.known(&key, &canonical, segment, sink)? {
            return Ok(());
        }
        if !self.connections.contains_key(&canonical)
            && !self.open(time, &key, &canonical, segment, sink)?
        {
            return Ok(());
        }
        self.take(time, &key, &canonical, segment, sink)
    }

    /// What a segment means for a connection already open on its 4-tuple, before its bytes
    /// are taken: a SYN that reuses the 4-tuple or restarts a direction, a late
    /// retransmission (false: dropped), new data after a RST.
    fn known(
        &mut self,
        key: &FlowKey,
        canonical: &FlowKey,
        segment: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<bool> {
        let (key, canonical) = (*key, *canonical);
        let Some(connection) = self.connections.get_mut(&canonical) else {
            return Ok(true);
        };
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
                return Ok(false);
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
            return Ok(false);
        } else if connection.rst[dir] && !segment.payload.is_empty() {
            if connection.dirs[dir].covers(segment.seq, segment.payload.len()) {
                // A retransmission of what came before the RST.
                self.stats.late += 1;
                return Ok(false);
            }
            // New data after its RST: the direction starts over (a new file, as tcpflow).
            connection.rst[dir] = false;
            let past = self.history.get_mut(&canonical);
            advance(sink, connection, past, dir, Ok(()), |d, emit| {
                d.restart(None, emit)
            })?;
        }
        Ok(true)
    }

    /// Opens a connection for a segment on a 4-tuple not open (false: the segment does not
    /// start one, or is late for the one before).
    fn open(
        &mut self,
        time: f64,
        key: &FlowKey,
        canonical: &FlowKey,
        segment: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<bool> {
        let (key, canonical) = (*key, *canonical);
        if segment.payload.is_empty() && !segment.syn {
            // Only a SYN or data starts a connection (bare ACKs, FINs and RSTs of
            // connections not tracked do not, as in tcpflow).
            return Ok(false);
        }
        let past = self.history.get(&canonical);
        let count = past.map_or(0, |p| p.count);
        let names = past.map_or([0, 0], |p| p.names);
        let ended = past.and_then(|p| p.ended.as_ref());
        if !segment.syn && ended.is_some_and(|e| e.covers(&key, segment.seq, segment.payload.len()))
        {
            // After FIN/RST, a retransmission of what was seen; new data starts a new
            // connection (tcpflow writes it to a new file).
            self.stats.late += 1;
            return Ok(false);
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
        Ok(true)
    }

    /// Takes a segment's SYN, bytes, FIN and RST into its open connection, then keeps memory
    /// and time in bounds.
    fn take(
        &mut self,
        time: f64,
        key: &FlowKey,
        canonical: &FlowKey,
        segment: &Segment<'_>,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let (key, canonical) = (*key, *canonical);
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
    use crate::reassembly::DirectionStats;
    use std::collections::HashMap;
    use std::net::IpAddr;

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
