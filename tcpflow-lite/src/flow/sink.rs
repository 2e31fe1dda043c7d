//! The interface between the table and its outputs: what a sink is told, why a connection
//! ended, and the guard that keeps one failing connection from stopping the others.

use std::fmt;
use std::io;

use super::key::FlowInfo;
use crate::reassembly::DirectionStats;

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
    /// Whether bytes may come ahead of the stream, beyond a hole ([`Event::Data`](crate::reassembly::Event::Data)): a sink
    /// that writes each chunk at its offset (a file) says yes, and reassembly then holds
    /// little out of order ([`Direction::spill_early_data`](crate::reassembly::Direction::spill_early_data)); one that shows bytes as they
    /// come (a console) says no.
    fn takes_early_data(&self) -> bool {
        false
    }
    /// Bytes of direction `dir` at stream `offset` (see [`Event::Data`](crate::reassembly::Event::Data)).
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Bytes of direction `dir` that never arrived.
    fn gap(&mut self, _flow: &FlowInfo, _dir: usize, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Direction `dir` starts over as a new stream ([`Event::Restart`](crate::reassembly::Event::Restart)): what follows goes to
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
    /// Bytes handed over with a connection that then closed normally (its `closed` stats
    /// count them) but whose output failed afterwards: not written after all. Exact once
    /// [`Sink::drain`] returned.
    fn failed_after_close(&self) -> u64 {
        0
    }
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
pub(super) struct Guard<'s> {
    pub(super) inner: &'s mut dyn Sink,
    pub(super) failed: Vec<Failure>,
}

impl Guard<'_> {
    pub(super) fn dead(&self, flow: &FlowInfo) -> bool {
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
    fn failed_after_close(&self) -> u64 {
        self.inner.failed_after_close()
    }
}
