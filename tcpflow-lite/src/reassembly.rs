//! One direction of a TCP connection: sequence numbers -> an ordered byte stream.
//!
//! Sequence numbers are unwrapped into 64-bit stream offsets (wrap-safe: a stream may cross
//! 0xFFFFFFFF any number of times). Segments that arrive early wait in a bounded buffer;
//! retransmissions are deduplicated; where segments overlap with different bytes the
//! [`Overlap`] policy decides and the disagreement is counted; missing bytes become gaps,
//! reported, never silently skipped.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

/// Which bytes win where segments overlap with different contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overlap {
    /// The bytes that arrived first (what the receiving Linux stack and Wireshark deliver).
    #[default]
    First,
    /// The bytes that arrived last (what tcpflow writes).
    Last,
}

/// What reassembly hands on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Bytes at a stream offset. Normally in order; with [`Overlap::Last`], or data arriving
    /// inside a gap declared earlier, the offset can lie before bytes already handed on, and a
    /// file sink writes them there (a console cannot take them back). A direction that spills
    /// ([`Direction::spill_early_data`]) also hands on bytes beyond the stream's end, with a
    /// hole before them, to be written at their offset.
    Data {
        /// Stream offset of the first byte (0 = first byte after the SYN).
        offset: u64,
        /// The bytes.
        bytes: Cow<'a, [u8]>,
    },
    /// Bytes that never arrived: `len` bytes at `offset`.
    Gap {
        /// Stream offset of the hole.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// The direction starts over as a new stream (offset 0 again): its sender jumped further
    /// than [`MAX_SEEK`] in sequence space, or sent new data after its RST. tcpflow writes
    /// what follows to a new file, and so does the file sink.
    Restart,
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes handed on in order (the stream's length without gaps).
    pub bytes: u64,
    /// Gaps declared.
    pub gaps: u64,
    /// Bytes missing in gaps.
    pub gap_bytes: u64,
    /// Bytes received more than once (retransmissions, overlaps).
    pub duplicate_bytes: u64,
    /// Segments whose overlap with earlier data disagreed with it.
    pub conflicts: u64,
    /// Bytes of such disagreement.
    pub conflict_bytes: u64,
    /// Gaps declared early because the out-of-order buffer reached its limit.
    pub forced_gaps: u64,
    /// Keep-alive probes ignored (one byte one below the next expected byte).
    pub keepalives: u64,
    /// Times the direction started over as a new stream ([`Event::Restart`]).
    pub restarts: u64,
}

/// A sequence jump (either way) from the next expected byte beyond which the direction
/// starts over as a new stream: tcpflow's `max_seek`, 16 MiB. tcpflow bounds each jump by it
/// and no more, so jumps of 16 MiB one after the other make a file as sparse as the sender
/// likes; here a stream's extent is also bounded by what it carried ([`Direction::data`]).
pub const MAX_SEEK: u32 = 16 << 20;

/// Memory a segment waiting out of order costs beyond its bytes (its vector and allocation,
/// its slot in the ordered map), counted against the limits: many 1-byte segments cost what
/// they really hold, not 1 byte each.
pub const CHUNK_OVERHEAD: usize = 96;

/// Out-of-order bytes (with their overhead) a spilling direction holds before it hands them
/// on to be written at their offset: small reorderings stay in memory, where overlapping
/// retransmissions are compared; a long wait behind a hole costs no memory.
const SPILL_BYTES: usize = 64 * 1024;

/// How many delivered bytes are kept to compare retransmissions against: enough for the
/// retransmissions of a window's worth of small segments, small enough for many flows.
const RECENT: usize = 16 * 1024;

/// A direction that started mid-stream holds its bytes until this many are buffered (or it
/// ends), so that offset 0 can move back to earlier data arriving out of order.
const SETTLE_BYTES: usize = 64 * 1024;

/// Out-of-order bytes waiting for the stream to reach them.
#[derive(Debug)]
enum Chunk {
    /// Held in memory.
    Held(Vec<u8>),
    /// Already handed on to be written at their offset ([`Direction::spill_early_data`]):
    /// only their length is kept.
    Written(u64),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Held(bytes) => bytes.len() as u64,
            Chunk::Written(len) => *len,
        }
    }
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Direction {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    /// Offset 0 came from the first data seen, not a SYN, and may still move back.
    tentative: bool,
    /// Offset 0 came from a SYN.
    syn_seen: bool,
    /// The highest sequence number seen and its offset, to unwrap the next one.
    anchor: (u32, u64),
    /// The sequence number after the last segment taken (tcpflow's "next sequence number"),
    /// for the keep-alive and seek-limit rules.
    next_seq: u32,
    /// Next offset to hand on in order.
    delivered: u64,
    /// Early segments, by offset; they never overlap each other.
    pending: BTreeMap<u64, Chunk>,
    /// Memory of `pending`: held bytes, and [`CHUNK_OVERHEAD`] per chunk.
    pending_bytes: usize,
    /// The part of `pending_bytes` for chunks held in memory.
    held_bytes: usize,
    /// Early bytes are handed on once [`SPILL_BYTES`] wait, instead of held until their turn.
    spill: bool,
    /// The last delivered bytes (at most [`RECENT`]), ending at `delivered`.
    recent: VecDeque<u8>,
    /// Holes declared (offset, len), kept so that late data there is recognised.
    holes: Vec<(u64, u64)>,
    /// Payload bytes this stream took (retransmissions included): what the capture carried.
    carried: u64,
    /// The end of the furthest byte handed on or waiting: the size of its file.
    extent: u64,
    /// Counters.
    pub stats: DirectionStats,
}

impl Direction {
    /// A SYN with sequence number `seq`: data starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        let base = seq.wrapping_add(1);
        self.syn_seen = true;
        match self.base {
            None => {
                self.base = Some(base);
                self.anchor = (base, 0);
                self.next_seq = base;
            }
            // Data overtook its SYN: offset 0 is right after the SYN after all.
            Some(current) if self.tentative => {
                let by = current.wrapping_sub(base) as i32;
                if by > 0 {
                    self.rebase(by as u64);
                }
                self.tentative = false;
            }
            Some(_) => {}
        }
    }

    /// Moves offset 0 back by `by` bytes (data before the first byte seen, in a direction
    /// that started mid-stream and has handed nothing on yet).
    fn rebase(&mut self, by: u64) {
        if let Some(base) = self.base {
            self.base = Some(base.wrapping_sub(by as u32));
        }
        self.anchor.1 += by;
        self.extent += by;
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending
            .into_iter()
            .map(|(offset, chunk)| (offset + by, chunk))
            .collect();
    }

    /// Whether the direction has seen a SYN or data.
    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    /// Whether nothing was handed on or is waiting (a SYN may have been seen).
    pub fn is_empty(&self) -> bool {
        self.delivered == 0 && self.pending.is_empty()
    }

    /// Whether `len` bytes at `seq` lie wholly within what was handed on already.
    pub fn covers(&self, seq: u32, len: usize) -> bool {
        let Some(base) = self.base else { return false };
        if self.tentative {
            return false;
        }
        let offset = u64::from(seq.wrapping_sub(base));
        offset + len as u64 <= self.delivered && self.delivered <= u64::from(u32::MAX)
    }

    /// Starts over as a new stream: what is waiting becomes gaps of the old one, then
    /// [`Event::Restart`]; `syn` is the sequence number of a SYN starting the new one, if any.
    /// The counters go on.
    pub fn restart<'a>(&mut self, syn: Option<u32>, emit: &mut impl FnMut(Event<'a>)) {
        self.finish(emit);
        let mut stats = self.stats;
        stats.restarts += 1;
        *self = Direction {
            stats,
            spill: self.spill,
            ..Direction::default()
        };
        emit(Event::Restart);
        if let Some(seq) = syn {
            self.syn(seq);
        }
    }

    /// With `on`, out-of-order bytes are held only up to 64 KiB (`SPILL_BYTES`); beyond, they are
    /// handed on at their offset, beyond the stream's end ([`Event::Data`]), and only their
    /// extent is kept. For a sink that writes bytes where they belong (a file, as tcpflow
    /// writes each segment at its offset at once), so that a long wait behind a hole costs
    /// no memory. Overlaps with bytes handed on that way are not compared (their contents
    /// are no longer held): under [`Overlap::Last`] they are rewritten, under
    /// [`Overlap::First`] dropped, and counted as duplicates.
    pub fn spill_early_data(&mut self, on: bool) {
        self.spill = on;
    }

    /// The sequence number of offset 0 (ISN + 1), once known.
    pub fn base(&self) -> Option<u32> {
        self.base
    }

    /// Forgets the bytes kept to check retransmissions against (a finished direction need
    /// not hold them; many lingering connections would add up).
    pub fn forget_history(&mut self) {
        self.recent = VecDeque::new();
    }

    /// Whether delivered bytes are kept to compare retransmissions against.
    pub fn has_history(&self) -> bool {
        self.recent.capacity() > 0
    }

    /// Memory held by out-of-order bytes waiting: their length plus [`CHUNK_OVERHEAD`] for
    /// each segment held.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Memory of the delivered bytes kept to compare retransmissions against.
    pub fn history_bytes(&self) -> usize {
        self.recent.capacity()
    }

    /// Memory this direction holds beyond its fixed size: out-of-order bytes with their
    /// overhead, and the delivered bytes kept to compare retransmissions against.
    pub fn held(&self) -> usize {
        self.pending_bytes + self.recent.capacity()
    }

    /// Next offset to hand on: the length of the stream so far, gaps included.
    pub fn position(&self) -> u64 {
        self.delivered
    }

    /// Where `seq` falls from offset 0, negative before it (nearest in sequence space to
    /// the anchor, so wrapping is followed), and whether it lies beyond the anchor.
    fn signed_offset(&self, seq: u32) -> (i64, bool) {
        let (anchor_seq, anchor_offset) = self.anchor;
        let delta = seq.wrapping_sub(anchor_seq) as i32 as i64;
        (anchor_offset as i64 + delta, delta > 0)
    }

    /// The 64-bit offset of `seq`, or `None` for bytes before offset 0.
    fn offset_of(&mut self, seq: u32) -> Option<u64> {
        let (offset, ahead) = self.signed_offset(seq);
        let offset = u64::try_from(offset).ok()?;
        if ahead {
            self.anchor = (seq, offset);
        }
        Some(offset)
    }

    /// Whether `len` bytes at `seq` would leave the stream's holes larger than [`MAX_SEEK`]
    /// plus the bytes it carried (its extent beyond `MAX_SEEK` + twice what it carried):
    /// jumps of up to 16 MiB, each allowed alone, must not add up to a file of gigabytes of
    /// zeros from a few packets.
    fn too_sparse(&self, seq: u32, len: usize) -> bool {
        let (start, _) = self.signed_offset(seq);
        let extent = match u64::try_from(start) {
            Ok(start) => self.extent.max(start + len as u64),
            // Offset 0 moves back that far (a mid-stream start); otherwise nothing of it
            // lands before offset 0.
            Err(_) if self.tentative => self.extent + start.unsigned_abs(),
            Err(_) => self.extent,
        };
        let carried = self.carried + len as u64;
        extent > u64::from(MAX_SEEK) + 2 * carried
    }

    /// A segment's payload at sequence number `seq`. `max_pending` bounds the bytes waiting
    /// out of order: beyond it, the oldest hole is declared a gap. A jump of more than
    /// [`MAX_SEEK`] from the next expected byte, or one that would make the stream's holes
    /// larger than `MAX_SEEK` plus the bytes it carried, starts a new stream
    /// ([`Event::Restart`]): no capture makes a file more than 16 MiB larger than twice the
    /// bytes its stream carried.
    pub fn data<'a>(
        &mut self,
        seq: u32,
        payload: &'a [u8],
        policy: Overlap,
        max_pending: usize,
        emit: &mut impl FnMut(Event<'a>),
    ) {
        if payload.is_empty() {
            return;
        }
        if self.base.is_some() {
            let delta = seq.wrapping_sub(self.next_seq) as i32;
            if payload.len() == 1 && delta == -1 {
                // A keep-alive probe: one byte one below the next expected byte, not data.
                self.stats.keepalives += 1;
                return;
            }
            if delta.unsigned_abs() > MAX_SEEK || self.too_sparse(seq, payload.len()) {
                self.restart(None, emit);
            }
        }
        self.next_seq = seq.wrapping_add(payload.len() as u32);
        self.carried += payload.len() as u64;
        if self.base.is_none() {
            // Started mid-stream: the first byte seen is offset 0, for now.
            self.base = Some(seq);
            self.anchor = (seq, 0);
            self.tentative = true;
        }
        let (mut start, mut payload) = match self.offset_of(seq) {
            Some(offset) => (offset, payload),
            None if self.tentative => {
                // Earlier bytes of a mid-stream start, arriving late: offset 0 moves back.
                let by = self.base.map_or(0, |base| base.wrapping_sub(seq) as u64);
                self.rebase(by);
                (0, payload)
            }
            None if self.syn_seen => {
                // Starts before the SYN's sequence number: not of this stream (tcpflow
                // ignores such a segment whole, and so do we).
                return;
            }
            None => {
                // Starts before offset 0 (data older than the first byte seen): keep what
                // reaches offset 0 and beyond.
                let base = self.base.unwrap_or(seq);
                let skip = (base.wrapping_sub(seq) as usize).min(payload.len());
                (0, &payload[skip..])
            }
        };
        if payload.is_empty() {
            return;
        }
        self.extent = self.extent.max(start + payload.len() as u64);
        // The part that was already handed on: compare, count, maybe rewrite, drop.
        if start < self.delivered {
            let already = ((self.delivered - start) as usize).min(payload.len());
            let (old, new) = payload.split_at(already);
            self.revisit(start, old, policy, emit);
            start += already as u64;
            payload = new;
            if payload.is_empty() {
                return;
            }
        }
        if start == self.delivered && self.pending.is_empty() && !self.tentative {
            // The common case, in order: hand the bytes on without copying them.
            self.remember(payload);
            emit(Event::Data {
                offset: start,
                bytes: Cow::Borrowed(payload),
            });
            self.delivered += payload.len() as u64;
            self.stats.bytes += payload.len() as u64;
            return;
        }
        if self.write_ahead(start, payload, emit) {
            while self.pending_bytes > max_pending {
                self.force_gap(emit);
            }
            return;
        }
        self.insert(start, payload, policy, emit);
        self.drain(emit);
        if self.spill && !self.tentative && self.held_bytes > SPILL_BYTES {
            self.spill_held(emit);
        }
        while self.pending_bytes > max_pending {
            self.force_gap(emit);
        }
    }

    /// Bytes at `start`, all before `delivered`: a retransmission, or late data in a hole.
    fn revisit<'a>(
        &mut self,
        start: u64,
        bytes: &'a [u8],
        policy: Overlap,
        emit: &mut impl FnMut(Event<'a>),
    ) {
        let in_hole = self
            .holes
            .iter()
            .any(|(offset, len)| start < offset + len && start + bytes.len() as u64 > *offset);
        if in_hole {
            // Late data for a declared gap: it fills the hole in a file.
            emit(Event::Data {
                offset: start,
                bytes: Cow::Borrowed(bytes),
            });
            return;
        }
        self.stats.duplicate_bytes += bytes.len() as u64;
        let recent_start = self.delivered - self.recent.len() as u64;
        if start >= recent_start {
            let from = (start - recent_start) as usize;
            let end = (from + bytes.len()).min(self.recent.len());
            let differing = self
                .recent
                .range(from..end)
                .zip(bytes)
                .filter(|(a, b)| a != b)
                .count();
            if differing > 0 {
                self.stats.conflicts += 1;
                self.stats.conflict_bytes += differing as u64;
                if policy == Overlap::Last {
                    for (slot, byte) in self.recent.range_mut(from..end).zip(bytes) {
                        *slot = *byte;
                    }
                    emit(Event::Data {
                        offset: start,
                        bytes: Cow::Borrowed(bytes),
                    });
                }
            }
        } else if policy == Overlap::Last {
            // Too old to compare: rewrite, as tcpflow would.
            emit(Event::Data {
                offset: start,
                bytes: Cow::Borrowed(bytes),
            });
        }
    }

    /// A spilling direction hands bytes beyond everything pending straight on, without a
    /// copy, once what is pending was handed on already (a long wait behind a hole): the
    /// last extent grows, or a new one starts. Returns whether it did.
    fn write_ahead<'a>(
        &mut self,
        start: u64,
        bytes: &'a [u8],
        emit: &mut impl FnMut(Event<'a>),
    ) -> bool {
        let Some(mut last) = self.pending.last_entry() else {
            return false;
        };
        let end = *last.key() + last.get().len();
        let Chunk::Written(len) = last.get_mut() else {
            return false;
        };
        if start < end || self.tentative {
            return false;
        }
        if start == end {
            *len += bytes.len() as u64;
        } else {
            self.pending
                .insert(start, Chunk::Written(bytes.len() as u64));
            self.pending_bytes += CHUNK_OVERHEAD;
        }
        emit(Event::Data {
            offset: start,
            bytes: Cow::Borrowed(bytes),
        });
        true
    }

    /// Puts early bytes into `pending`: the parts no chunk holds become new chunks; where
    /// chunks hold bytes already, they are compared and, under [`Overlap::Last`], overwritten
    /// in place. Where chunks were handed on already, the new bytes are rewritten there under
    /// [`Overlap::Last`]. The cost is that of the segment's own bytes, never of the chunks
    /// around it.
    fn insert<'a>(
        &mut self,
        start: u64,
        bytes: &'a [u8],
        policy: Overlap,
        emit: &mut impl FnMut(Event<'a>),
    ) {
        let end = start + bytes.len() as u64;
        // Chunks overlapping [start, end): at most one starts before `start`.
        let first = self
            .pending
            .range(..start)
            .next_back()
            .filter(|(o, c)| **o + c.len() > start)
            .map(|(o, _)| *o);
        let overlapping: Vec<u64> = first
            .into_iter()
            .chain(self.pending.range(start..end).map(|(o, _)| *o))
            .collect();
        let mut fresh: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut at = start; // bytes before `at` are handled
        let (mut duplicate, mut conflicts) = (0u64, 0u64);
        for offset in overlapping {
            let Some(chunk) = self.pending.get_mut(&offset) else {
                continue;
            };
            if offset > at {
                fresh.push((
                    at,
                    bytes[(at - start) as usize..(offset - start) as usize].to_vec(),
                ));
            }
            let from = offset.max(start);
            let to = (offset + chunk.len()).min(end);
            let new = &bytes[(from - start) as usize..(to - start) as usize];
            duplicate += new.len() as u64;
            match chunk {
                Chunk::Held(held) => {
                    let held = &mut held[(from - offset) as usize..(to - offset) as usize];
                    let differing = held.iter().zip(new).filter(|(a, b)| a != b).count() as u64;
                    if differing > 0 {
                        conflicts += differing;
                        if policy == Overlap::Last {
                            held.copy_from_slice(new);
                        }
                    }
                }
                Chunk::Written(_) if policy == Overlap::Last => emit(Event::Data {
                    offset: from,
                    bytes: Cow::Borrowed(new),
                }),
                Chunk::Written(_) => {}
            }
            at = at.max(to);
        }
        if at < end {
            fresh.push((at, bytes[(at - start) as usize..].to_vec()));
        }
        for (offset, chunk) in fresh {
            self.pending_bytes += chunk.len() + CHUNK_OVERHEAD;
            self.held_bytes += chunk.len() + CHUNK_OVERHEAD;
            self.pending.insert(offset, Chunk::Held(chunk));
        }
        self.stats.duplicate_bytes += duplicate;
        if conflicts > 0 {
            self.stats.conflicts += 1;
            self.stats.conflict_bytes += conflicts;
        }
    }

    /// Hands on every pending chunk that now continues the stream.
    fn drain<'a>(&mut self, emit: &mut impl FnMut(Event<'a>)) {
        if self.tentative {
            if self.pending_bytes < SETTLE_BYTES {
                return;
            }
            self.settle();
        }
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.delivered {
                break;
            }
            match entry.remove() {
                Chunk::Held(bytes) => {
                    self.pending_bytes -= bytes.len() + CHUNK_OVERHEAD;
                    self.held_bytes -= bytes.len() + CHUNK_OVERHEAD;
                    self.deliver(bytes, emit);
                }
                Chunk::Written(len) => {
                    // Handed on already: the stream moves past them. They are not in memory,
                    // so retransmissions of them have nothing to be compared with.
                    self.pending_bytes -= CHUNK_OVERHEAD;
                    self.recent.clear();
                    self.delivered += len;
                    self.stats.bytes += len;
                }
            }
        }
    }

    /// Hands on every chunk held, at its offset, and keeps only the extents of what is
    /// pending, adjacent ones merged (one-byte segments behind a hole become one extent).
    fn spill_held<'a>(&mut self, emit: &mut impl FnMut(Event<'a>)) {
        let mut extents: Vec<(u64, u64)> = Vec::new();
        for (offset, chunk) in std::mem::take(&mut self.pending) {
            let len = chunk.len();
            if let Chunk::Held(bytes) = chunk {
                emit(Event::Data {
                    offset,
                    bytes: Cow::Owned(bytes),
                });
            }
            match extents.last_mut() {
                Some((_, end)) if *end == offset => *end = offset + len,
                _ => extents.push((offset, offset + len)),
            }
        }
        self.pending = extents
            .into_iter()
            .map(|(start, end)| (start, Chunk::Written(end - start)))
            .collect();
        self.held_bytes = 0;
        self.pending_bytes = self.pending.len() * CHUNK_OVERHEAD;
    }

    fn deliver<'a>(&mut self, chunk: Vec<u8>, emit: &mut impl FnMut(Event<'a>)) {
        let len = chunk.len();
        self.remember(&chunk);
        emit(Event::Data {
            offset: self.delivered,
            bytes: Cow::Owned(chunk),
        });
        self.delivered += len as u64;
        self.stats.bytes += len as u64;
    }

    fn remember(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(RECENT)..];
        let overflow = (self.recent.len() + bytes.len()).saturating_sub(RECENT);
        self.recent.drain(..overflow);
        let needed = self.recent.len() + bytes.len();
        if needed > self.recent.capacity() {
            // Doubling, but never beyond RECENT: the history of many open directions adds
            // up, and a VecDeque left to grow would hold up to twice what it keeps.
            let capacity = needed.max(self.recent.capacity() * 2).min(RECENT);
            self.recent.reserve_exact(capacity - self.recent.len());
        }
        self.recent.extend(bytes);
    }

    /// Over the out-of-order limit: a mid-stream start settles its offset 0 and hands on;
    /// otherwise the hole before the first pending chunk becomes a gap.
    fn force_gap<'a>(&mut self, emit: &mut impl FnMut(Event<'a>)) {
        if self.tentative {
            self.settle();
            self.drain(emit);
            return;
        }
        self.stats.forced_gaps += 1;
        self.skip_to_pending(emit);
    }

    fn skip_to_pending<'a>(&mut self, emit: &mut impl FnMut(Event<'a>)) {
        let Some((&next, _)) = self.pending.first_key_value() else {
            return;
        };
        let len = next - self.delivered;
        if len == 0 {
            self.drain(emit);
            return;
        }
        emit(Event::Gap {
            offset: self.delivered,
            len,
        });
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        if self.holes.len() < 64 {
            self.holes.push((self.delivered, len));
        }
        // The bytes of the hole are unknown: compare nothing against them.
        self.recent.clear();
        self.delivered = next;
        self.drain(emit);
    }

    /// Offset 0 is final: the earliest byte held.
    fn settle(&mut self) {
        self.tentative = false;
    }

    /// End of the direction (FIN, RST, expiry, end of capture): every hole left is a gap.
    pub fn finish<'a>(&mut self, emit: &mut impl FnMut(Event<'a>)) {
        if self.tentative {
            self.settle();
            self.drain(emit);
        }
        while !self.pending.is_empty() {
            self.skip_to_pending(emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds (seq, bytes) segments and returns the in-order stream with gaps as `_`, plus
    /// the direction for its counters.
    fn run(isn: u32, segments: &[(u32, &[u8])], policy: Overlap) -> (Vec<u8>, Direction) {
        run_spilling(isn, segments, policy, false)
    }

    /// [`run`], the out-of-order bytes spilled (written where they belong) or not.
    fn run_spilling(
        isn: u32,
        segments: &[(u32, &[u8])],
        policy: Overlap,
        spill: bool,
    ) -> (Vec<u8>, Direction) {
        let mut direction = Direction::default();
        direction.spill_early_data(spill);
        direction.syn(isn);
        let mut out = Vec::new();
        let mut emit = |event: Event<'_>| match event {
            Event::Data { offset, bytes } => {
                let offset = offset as usize;
                if out.len() < offset + bytes.len() {
                    out.resize(offset + bytes.len(), b'_');
                }
                out[offset..offset + bytes.len()].copy_from_slice(&bytes);
            }
            Event::Gap { offset, len } => {
                let end = (offset + len) as usize;
                if out.len() < end {
                    out.resize(end, b'_');
                }
            }
            Event::Restart => out.push(b'|'),
        };
        for (seq, bytes) in segments {
            direction.data(*seq, bytes, policy, 1 << 20, &mut emit);
        }
        direction.finish(&mut emit);
        (out, direction)
    }

    #[test]
    fn in_order_out_of_order_and_duplicates() {
        let (out, d) = run(
            1000,
            &[
                (1001, b"hello "),
                (1013, b"!"),
                (1007, b"world"),
                (1007, b"world"),
                (1012, b" "),
            ],
            Overlap::First,
        );
        assert_eq!(out, b"hello world !");
        assert_eq!(d.stats.duplicate_bytes, 5);
        assert_eq!(d.stats.conflicts, 0);
        assert_eq!(d.stats.gaps, 0);
    }

    #[test]
    fn overlaps_with_different_bytes_follow_the_policy_and_are_counted() {
        // "GOOD" first, then "EVIL" over the same bytes, before and after delivery.
        let segments: &[(u32, &[u8])] = &[(2, b"GO"), (4, b"OD"), (4, b"IL"), (1, b"x")];
        let (first, d) = run(0, segments, Overlap::First);
        assert_eq!(first, b"xGOOD");
        assert_eq!((d.stats.conflicts, d.stats.conflict_bytes), (1, 2));
        let (last, _) = run(0, segments, Overlap::Last);
        assert_eq!(last, b"xGOIL");
        let delivered: &[(u32, &[u8])] = &[(1, b"xGOOD"), (2, b"EVIL")];
        assert_eq!(run(0, delivered, Overlap::First).0, b"xGOOD");
        assert_eq!(run(0, delivered, Overlap::Last).0, b"xEVIL");
    }

    #[test]
    fn gaps_are_reported_and_late_data_fills_them() {
        let (out, d) = run(0, &[(1, b"ab"), (6, b"fg")], Overlap::First);
        assert_eq!(out, b"ab___fg");
        assert_eq!((d.stats.gaps, d.stats.gap_bytes), (1, 3));
    }

    #[test]
    fn a_mid_stream_start_moves_offset_0_back_to_earlier_data_arriving_late() {
        let mut d = Direction::default();
        let mut out = Vec::new();
        let mut emit = |e: Event<'_>| out.push(format!("{e:?}"));
        // No SYN; the later segment arrives first, across the wrap.
        d.data(10, b"world", Overlap::First, 1 << 20, &mut emit);
        d.data(0xFFFF_FFFC, b"hello ", Overlap::First, 1 << 20, &mut emit);
        d.finish(&mut emit);
        assert_eq!(
            out,
            [
                "Data { offset: 0, bytes: [104, 101, 108, 108, 111, 32] }",
                "Gap { offset: 6, len: 8 }",
                "Data { offset: 14, bytes: [119, 111, 114, 108, 100] }"
            ]
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let isn = 0xFFFF_FFF0u32;
        let (out, _) = run(
            isn,
            &[
                (isn.wrapping_add(1), b"0123456789abcdef"),
                (isn.wrapping_add(17), b"XYZ"),
                (4, b"!!"),
            ],
            Overlap::First,
        );
        assert_eq!(out, b"0123456789abcdefXYZ!!");
    }

    #[test]
    fn the_out_of_order_limit_forces_a_gap() {
        let mut d = Direction::default();
        d.syn(0);
        let mut events = Vec::new();
        d.data(11, b"0123456789", Overlap::First, 8, &mut |e: Event<'_>| {
            events.push(format!("{e:?}"))
        });
        assert_eq!(d.stats.forced_gaps, 1);
        assert!(
            events[0].starts_with("Gap { offset: 0, len: 10 }"),
            "{events:?}"
        );
    }

    #[test]
    fn spilled_bytes_wait_as_extents_and_rewrites_of_them_follow_the_policy() {
        // Byte 0 missing, then 100,000 one-byte segments: held up to SPILL_BYTES, then
        // written where they belong; what waits is one extent, whatever the count.
        let mut d = Direction::default();
        d.spill_early_data(true);
        d.syn(0);
        let mut written = 0u64;
        let mut emit = |e: Event<'_>| {
            if let Event::Data { bytes, .. } = e {
                written += bytes.len() as u64;
            }
        };
        for i in 0..100_000u32 {
            d.data(2 + i, b"x", Overlap::First, 4 << 20, &mut emit);
        }
        assert_eq!(written, 100_000);
        assert_eq!((d.pending.len(), d.held_bytes), (1, 0));
        assert_eq!(d.pending_bytes, CHUNK_OVERHEAD);
        // Without spilling, the same segments are all held.
        let mut held = Direction::default();
        held.syn(0);
        for i in 0..1000u32 {
            held.data(2 + i, b"x", Overlap::First, 4 << 20, &mut |_| {});
        }
        assert_eq!(held.pending.len(), 1000);

        let old = vec![b'a'; 100_000];
        let mut segments: Vec<(u32, &[u8])> = vec![(2, &old)];
        segments.push((50_000, b"EVIL"));
        segments.push((1, b"!"));
        for (policy, expected) in [(Overlap::First, b"aaaa"), (Overlap::Last, b"EVIL")] {
            let (out, d) = run_spilling(0, &segments, policy, true);
            assert_eq!(&out[49_999..50_003], expected, "{policy:?}");
            assert_eq!(out.len(), 100_001);
            assert_eq!(d.stats.duplicate_bytes, 4);
        }
    }

    /// Model-based: any segmentation, reordering and duplication of a random stream, with
    /// sequence numbers that wrap, reassembles to the stream.
    #[test]
    fn random_segmentation_reordering_and_duplication_reassemble_exactly() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..600 {
            // Every sixth stream is long enough for out-of-order bytes to be spilled.
            let spill = case % 6 == 0;
            let len = if spill {
                (next() % 300_000) as usize + 1
            } else {
                (next() % 5000) as usize + 1
            };
            let stream: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let isn = if case % 3 == 0 {
                u32::MAX - (next() % 3000) as u32
            } else {
                next() as u32
            };
            let mut segments = Vec::new();
            let mut at = 0;
            while at < len {
                let size = ((next() % 1460) as usize + 1).min(len - at);
                segments.push((at, size));
                at += size;
            }
            // Duplicates and overlapping re-segmentations of the same bytes.
            for _ in 0..(next() % 10) {
                let start = (next() as usize) % len;
                let size = ((next() % 2000) as usize + 1).min(len - start);
                segments.push((start, size));
            }
            for i in (1..segments.len()).rev() {
                let j = (next() as usize) % (i + 1);
                segments.swap(i, j);
            }
            let owned: Vec<(u32, &[u8])> = segments
                .iter()
                .map(|(start, size)| {
                    (
                        isn.wrapping_add(1).wrapping_add(*start as u32),
                        &stream[*start..start + size],
                    )
                })
                .collect();
            for policy in [Overlap::First, Overlap::Last] {
                let (out, d) = run_spilling(isn, &owned, policy, spill);
                assert_eq!(out, stream, "case {case} {policy:?}");
                assert_eq!(d.stats.conflicts, 0);
                assert_eq!(d.stats.gaps, 0);
                assert_eq!(d.stats.bytes, len as u64);
                assert_eq!((d.pending_bytes, d.held_bytes), (0, 0));
            }
        }
    }
}
