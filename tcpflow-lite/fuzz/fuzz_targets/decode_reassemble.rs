//! Fuzz target: arbitrary frames through decode and the flow table, with a sink that checks
//! what reassembly promises (in-order offsets never move backwards except for rewrites the
//! policy allows, gaps never overlap delivered bytes).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tcpflow_lite::decode::{decode, LinkType};
use tcpflow_lite::flow::{CloseReason, FlowInfo, FlowTable, Limits, Sink};
use tcpflow_lite::reassembly::{DirectionStats, Overlap};

#[derive(Default)]
struct Checking {
    /// Per (flow, direction): the end of the in-order stream so far.
    end: HashMap<(u64, usize), u64>,
    /// Per (flow, direction): the lengths of the streams it ended before restarting.
    before: HashMap<(u64, usize), u64>,
}

impl Sink for Checking {
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let end = self.end.entry((flow.id, dir)).or_insert(0);
        // Either continues the stream, or rewrites bytes already passed (policy / holes).
        assert!(offset <= *end || offset == *end, "data at {offset} beyond the stream end {end}");
        *end = (*end).max(offset + bytes.len() as u64);
        Ok(())
    }
    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> std::io::Result<()> {
        let end = self.end.entry((flow.id, dir)).or_insert(0);
        assert_eq!(offset, *end, "a gap starts where the stream ends");
        assert!(len > 0);
        *end += len;
        Ok(())
    }
    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> std::io::Result<()> {
        // A new stream from offset 0: the old one's length is kept for the totals.
        let end = self.end.remove(&(flow.id, dir)).unwrap_or(0);
        *self.before.entry((flow.id, dir)).or_insert(0) += end;
        Ok(())
    }
    fn closed(&mut self, flow: &FlowInfo, stats: &[DirectionStats; 2], _: CloseReason) -> std::io::Result<()> {
        for dir in 0..2 {
            let end = self.end.remove(&(flow.id, dir)).unwrap_or(0) + self.before.remove(&(flow.id, dir)).unwrap_or(0);
            assert_eq!(stats[dir].bytes + stats[dir].gap_bytes, end, "counted bytes and gaps make the stream");
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let links = [LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Null, LinkType::Loop];
    let link = links[selector as usize % links.len()];
    let policy = if selector & 0x80 == 0 { Overlap::First } else { Overlap::Last };
    let limits = Limits { pending_per_direction: 4096, pending_total: 16384, history_total: 4096, flows: 8, idle_seconds: 5.0 };
    let mut table = FlowTable::new(policy, limits);
    let mut sink = Checking::default();
    let mut time = 0.0;
    // Frames: a 2-byte length, then that many bytes.
    while rest.len() >= 2 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let frame = &rest[..len.min(rest.len())];
        rest = &rest[frame.len()..];
        time += 0.5;
        if let Ok(segment) = decode(link, frame) {
            table.segment(time, &segment, &mut sink).unwrap();
        }
    }
    table.finish(&mut sink).unwrap();
});
