//! Where reassembled bytes go: one file per direction with tcpflow's names, the console,
//! or JSON events.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::beneath::Dir;
use crate::flow::{tcpflow_name, CloseReason, FastMap, FlowInfo, Sink};
use crate::reassembly::DirectionStats;

/// Bytes gathered per direction before a file write: small segments become one `pwrite`.
const WRITE_BUFFER: usize = 64 * 1024;

/// Bytes at once from which a segment is written straight to its file: a copy would cost
/// more than the system call it saves.
const DIRECT_WRITE: usize = 16 * 1024;

/// Bytes gathered in all directions together: beyond it every buffer is written, so memory
/// does not grow with the number of open connections.
const WRITE_BUFFER_TOTAL: usize = 4 * 1024 * 1024;

/// Descriptors left for everything else (the capture, stdio, libpcap, a pcap being written).
const RESERVED_FDS: u64 = 16;

/// The most files the process can keep open: RLIMIT_NOFILE's soft limit less a reserve for
/// its other descriptors (at least 1).
pub fn open_files_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills one rlimit that lives on our stack for the call.
    let soft = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur,
        _ => 1024,
    };
    usize::try_from(soft.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The default of `--max-open-files`: 512, or fewer when RLIMIT_NOFILE is lower.
pub fn default_max_open_files() -> usize {
    open_files_limit().min(512)
}

struct OpenDirection {
    file: Option<File>,
    path: PathBuf,
    /// Unwritten bytes, continuing at `buffer_offset`.
    buffer: Vec<u8>,
    buffer_offset: u64,
    last_use: u64,
    /// A write failed while flushing for another direction: reported at this one's next use.
    broken: Option<io::Error>,
}

/// One file per direction in a directory, named and filled as tcpflow does: bytes at their
/// stream offset (holes read as zeros), created with `O_EXCL` (nothing is ever overwritten:
/// a taken name gets the next `cN`), at most `max_open` files open at once (the least
/// recently used is closed and reopened when needed).
///
/// The directory is opened once; every file is created and reopened beneath that open
/// directory without following any symbolic link ([`Dir::open_beneath`]), so replacing the
/// directory's path, or planting links in it, during a capture redirects nothing.
pub struct FileSink {
    dir: PathBuf,
    handle: Dir,
    max_bytes: Option<u64>,
    max_open: usize,
    open_count: usize,
    clock: u64,
    directions: FastMap<(u64, usize), OpenDirection>,
    buffered: usize,
    /// Files written.
    pub files: u64,
}

impl FileSink {
    /// Files in `dir`; `max_bytes` keeps only the first bytes of each direction (`-b`); at
    /// most `max_open` files open at once, and never more than RLIMIT_NOFILE allows
    /// ([`open_files_limit`]).
    pub fn open(dir: PathBuf, max_bytes: Option<u64>, max_open: usize) -> io::Result<FileSink> {
        let handle = Dir::open(&dir)?;
        Ok(FileSink {
            dir,
            handle,
            max_bytes,
            max_open: max_open.min(open_files_limit()).max(1),
            open_count: 0,
            clock: 0,
            directions: FastMap::default(),
            buffered: 0,
            files: 0,
        })
    }

    /// Creates the file of direction `dir`: tcpflow's name, with the first `cN` suffix not
    /// taken on disk (so `cN` depends on the files written, not on connections seen). In an
    /// empty directory that is [`FlowInfo::name`]; files already there move it on, as they
    /// move tcpflow's.
    fn create(&self, flow: &FlowInfo, dir: usize) -> io::Result<(File, PathBuf)> {
        let mut reuse = 0;
        loop {
            let name = tcpflow_name(&flow.direction(dir), reuse);
            let path = self.dir.join(&name);
            match self.handle.open_beneath(
                &name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o644,
            ) {
                Ok(file) => return Ok((file, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && reuse < u32::MAX => {
                    reuse += 1
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
    }

    fn entry(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<&mut OpenDirection> {
        self.clock += 1;
        let key = (flow.id, dir);
        if !self.directions.contains_key(&key) {
            let (file, path) = self.create(flow, dir)?;
            self.files += 1;
            self.open_count += 1;
            self.directions.insert(
                key,
                OpenDirection {
                    file: Some(file),
                    path,
                    buffer: Vec::new(),
                    buffer_offset: 0,
                    last_use: 0,
                    broken: None,
                },
            );
        } else if self.directions.get(&key).is_some_and(|d| d.file.is_none()) {
            let path = self
                .directions
                .get(&key)
                .map(|d| d.path.clone())
                .unwrap_or_default();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = self
                .handle
                .open_beneath(&name, libc::O_WRONLY, 0)
                .map_err(|e| in_file(e, &path))?;
            self.open_count += 1;
            if let Some(d) = self.directions.get_mut(&key) {
                d.file = Some(file);
            }
        }
        if self.open_count > self.max_open {
            self.close_least_recent(key)?;
        }
        let clock = self.clock;
        let entry = self
            .directions
            .get_mut(&key)
            .ok_or_else(|| io::Error::other("direction vanished"))?;
        entry.last_use = clock;
        Ok(entry)
    }

    /// Over the open-file limit: closes the least recently used quarter of the open files in
    /// one pass (so the scan is paid once per many files, not once per file).
    fn close_least_recent(&mut self, keep: (u64, usize)) -> io::Result<()> {
        let mut open: Vec<(u64, (u64, usize))> = self
            .directions
            .iter()
            .filter(|(k, d)| **k != keep && d.file.is_some())
            .map(|(k, d)| (d.last_use, *k))
            .collect();
        let count = (open.len() / 4).max(1).min(open.len());
        if count == 0 {
            return Ok(());
        }
        open.select_nth_unstable(count - 1);
        for (_, key) in &open[..count] {
            self.close_file(*key)?;
        }
        Ok(())
    }

    /// Forgets a direction for good (its flow closed, or what follows goes to a new file):
    /// its buffer is flushed, its file closed, and a write error it met is returned.
    fn retire(&mut self, key: (u64, usize)) -> io::Result<()> {
        let Some(mut d) = self.directions.remove(&key) else {
            return Ok(());
        };
        self.buffered = self.buffered.saturating_sub(d.buffer.len());
        let flushed = flush(&mut d);
        if d.file.take().is_some() {
            self.open_count -= 1;
        }
        match d.broken.take() {
            Some(error) => Err(error),
            None => flushed,
        }
    }

    fn close_file(&mut self, key: (u64, usize)) -> io::Result<()> {
        if let Some(d) = self.directions.get_mut(&key) {
            self.buffered = self.buffered.saturating_sub(d.buffer.len());
            flush_for_later(d);
            if d.file.take().is_some() {
                self.open_count -= 1;
            }
        }
        Ok(())
    }
}

fn in_file(error: io::Error, path: &std::path::Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn flush(d: &mut OpenDirection) -> io::Result<()> {
    if d.buffer.is_empty() {
        return Ok(());
    }
    let written = match &d.file {
        Some(file) => file
            .write_all_at(&d.buffer, d.buffer_offset)
            .map_err(|e| in_file(e, &d.path)),
        None => Ok(()),
    };
    // Give the memory back: a connection that lingers or goes quiet holds none.
    d.buffer = Vec::new();
    written
}

/// Flushes a direction other than the one being written to: an error waits for its own
/// next use, so that it is that direction's connection that fails.
fn flush_for_later(d: &mut OpenDirection) {
    if let Err(error) = flush(d) {
        d.broken.get_or_insert(error);
    }
}

impl Sink for FileSink {
    fn takes_early_data(&self) -> bool {
        true // each chunk is written at its offset, holes left sparse
    }

    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let bytes = match self.max_bytes {
            Some(max) if offset >= max => return Ok(()),
            Some(max) => &bytes[..bytes.len().min((max - offset) as usize)],
            None => bytes,
        };
        let d = self.entry(flow, dir)?;
        if let Some(error) = d.broken.take() {
            return Err(error);
        }
        let before = d.buffer.len();
        if !d.buffer.is_empty() && offset != d.buffer_offset + d.buffer.len() as u64 {
            flush(d)?;
        }
        if bytes.len() >= DIRECT_WRITE {
            // Large segments (GRO) go straight to the file, without a copy.
            flush(d)?;
            if let Some(file) = &d.file {
                file.write_all_at(bytes, offset)
                    .map_err(|e| in_file(e, &d.path))?;
            }
        } else {
            if d.buffer.is_empty() {
                d.buffer_offset = offset;
            }
            d.buffer.extend_from_slice(bytes);
            if d.buffer.len() >= WRITE_BUFFER {
                flush(d)?;
            }
        }
        // The total moves by what this direction's buffer gained or lost.
        let after = d.buffer.len();
        self.buffered = (self.buffered + after).saturating_sub(before);
        if self.buffered > WRITE_BUFFER_TOTAL {
            for d in self.directions.values_mut() {
                flush_for_later(d);
            }
            self.buffered = 0;
        }
        Ok(())
    }

    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        // What follows goes to a new file: the next free name.
        self.retire((flow.id, dir))
    }

    fn finished(&mut self, flow: &FlowInfo) -> io::Result<()> {
        for dir in 0..2 {
            self.close_file((flow.id, dir))?;
            if let Some(error) = self
                .directions
                .get_mut(&(flow.id, dir))
                .and_then(|d| d.broken.take())
            {
                return Err(error);
            }
        }
        Ok(())
    }

    fn closed(
        &mut self,
        flow: &FlowInfo,
        _stats: &[DirectionStats; 2],
        _reason: CloseReason,
    ) -> io::Result<()> {
        let mut result = Ok(());
        for dir in 0..2 {
            result = result.and(self.retire((flow.id, dir)));
        }
        result
    }
}

/// The reassembled streams on a terminal (or pipe): each chunk under its direction's name,
/// in stream order (tcpflow -c prints packets in arrival order instead), coloured per
/// direction when asked.
pub struct ConsoleSink<W: Write> {
    out: W,
    colour: bool,
    escape: bool,
    /// Per (flow, direction): the next offset printed, to skip rewrites of earlier bytes.
    printed: HashMap<(u64, usize), u64>,
    max_bytes: Option<u64>,
}

impl<W: Write> ConsoleSink<W> {
    /// Prints to `out`; `colour` adds ANSI colours (blue one way, red the other).
    pub fn new(out: W, colour: bool, max_bytes: Option<u64>) -> ConsoleSink<W> {
        ConsoleSink {
            out,
            colour,
            escape: false,
            printed: HashMap::new(),
            max_bytes,
        }
    }

    /// With `on`, control characters of the payload (ESC and every other C0/C1 control but
    /// newline, tab and the CR of a CRLF) and bytes that are not UTF-8 are printed as `\xNN`,
    /// so that traffic cannot drive the terminal showing it. For a terminal; raw bytes
    /// otherwise.
    pub fn escape_controls(mut self, on: bool) -> ConsoleSink<W> {
        self.escape = on;
        self
    }

    fn header(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        let (on, off) = match (self.colour, dir) {
            (false, _) => ("", ""),
            (true, 0) => ("\x1b[34m", "\x1b[0m"),
            (true, _) => ("\x1b[31m", "\x1b[0m"),
        };
        write!(self.out, "{on}{}: {off}", flow.name(dir))
    }
}

impl<W: Write> Sink for ConsoleSink<W> {
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let printed = self.printed.entry((flow.id, dir)).or_insert(0);
        if offset < *printed {
            return Ok(()); // already on the screen; files get such rewrites, a console cannot
        }
        let end = offset + bytes.len() as u64;
        let bytes = match self.max_bytes {
            Some(max) if offset >= max => return Ok(()),
            Some(max) => &bytes[..bytes.len().min((max - offset) as usize)],
            None => bytes,
        };
        *printed = end;
        self.header(flow, dir)?;
        if self.escape {
            self.out.write_all(&escape_controls(bytes))?;
        } else {
            self.out.write_all(bytes)?;
        }
        if !bytes.ends_with(b"\n") {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        self.printed.remove(&(flow.id, dir));
        Ok(())
    }

    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
        self.printed.insert((flow.id, dir), offset + len);
        self.header(flow, dir)?;
        writeln!(self.out, "[{len} bytes missing at offset {offset}]")
    }

    fn closed(
        &mut self,
        flow: &FlowInfo,
        _stats: &[DirectionStats; 2],
        _reason: CloseReason,
    ) -> io::Result<()> {
        self.printed.remove(&(flow.id, 0));
        self.printed.remove(&(flow.id, 1));
        self.out.flush()
    }
}

/// `bytes` with terminal controls made visible: every C0 and C1 control character but
/// newline, tab and the CR of a CRLF, DEL, and every byte that is not part of valid UTF-8,
/// become `\xNN`.
pub fn escape_controls(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            let crlf = c == '\r' && chars.peek() == Some(&'\n');
            if c.is_control() && c != '\n' && c != '\t' && !crlf {
                out.extend_from_slice(format!("\\x{:02x}", u32::from(c)).as_bytes());
            } else {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
        for byte in chunk.invalid() {
            out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
        }
    }
    out
}

/// One JSON object per line for each event: `open`, `gap`, `close` (with byte counts, gaps,
/// duplicates and conflicting overlaps per direction). Each has `ts`, the capture time of
/// the packet behind it (the first for `open`, the latest for `gap` and `close`) in seconds
/// since the epoch.
pub struct JsonSink<W: Write> {
    out: W,
}

impl<W: Write> JsonSink<W> {
    /// Writes events to `out`.
    pub fn new(out: W) -> JsonSink<W> {
        JsonSink { out }
    }
}

fn endpoints(flow: &FlowInfo) -> serde_json::Value {
    let key = flow.key;
    serde_json::json!({
        "src": key.src.to_string(), "sport": key.src_port,
        "dst": key.dst.to_string(), "dport": key.dst_port,
        "vlan": key.vlan,
    })
}

impl<W: Write> Sink for JsonSink<W> {
    fn takes_early_data(&self) -> bool {
        true // bytes are not shown, only counted
    }

    fn opened(&mut self, flow: &FlowInfo) -> io::Result<()> {
        let event = serde_json::json!({"event": "open", "ts": flow.first_seen, "flow": flow.name(0), "id": flow.id, "endpoints": endpoints(flow)});
        writeln!(self.out, "{event}")
    }

    fn data(
        &mut self,
        _flow: &FlowInfo,
        _dir: usize,
        _offset: u64,
        _bytes: &[u8],
    ) -> io::Result<()> {
        Ok(())
    }

    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
        let event = serde_json::json!({"event": "gap", "ts": flow.last_seen, "flow": flow.name(dir), "id": flow.id, "offset": offset, "len": len});
        writeln!(self.out, "{event}")
    }

    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()> {
        let direction = |dir: usize| {
            let s = stats[dir];
            serde_json::json!({
                "name": flow.name(dir), "bytes": s.bytes, "gaps": s.gaps, "gap_bytes": s.gap_bytes,
                "duplicate_bytes": s.duplicate_bytes, "conflicts": s.conflicts,
                "conflict_bytes": s.conflict_bytes, "forced_gaps": s.forced_gaps,
            })
        };
        let event = serde_json::json!({
            "event": "close", "ts": flow.last_seen, "flow": flow.name(0), "id": flow.id, "reason": reason.to_string(),
            "directions": [direction(0), direction(1)],
        });
        writeln!(self.out, "{event}")
    }
}

/// Totals over every closed connection, for the summary on stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    /// Connections closed.
    pub flows: u64,
    /// Bytes each way summed over directions.
    pub bytes: u64,
    /// Gaps and their bytes.
    pub gaps: u64,
    /// Bytes missing in gaps.
    pub gap_bytes: u64,
    /// Overlaps whose bytes disagreed.
    pub conflicts: u64,
    /// Gaps declared early for the out-of-order limit.
    pub forced_gaps: u64,
    /// Keep-alive probes ignored.
    pub keepalives: u64,
    /// Directions started over (sequence jump beyond 16 MiB, new data after a RST).
    pub restarts: u64,
}

impl Totals {
    /// The one-line summary a tool prints at the end: packets, flows, bytes, gaps, conflicts,
    /// and every count of something lost or limited that is not zero.
    pub fn summary(
        &self,
        tool: &str,
        read: &crate::source::ReadStats,
        table: &crate::flow::TableStats,
    ) -> String {
        let mut summary = format!(
            "{tool}: {} packets, {} TCP segments, {} flows, {} bytes reassembled, {} gaps ({} bytes missing), {} conflicting overlaps",
            read.packets, table.segments, self.flows, self.bytes, self.gaps, self.gap_bytes, self.conflicts
        );
        let counts = [
            (read.kernel_dropped, "dropped by the kernel"),
            (table.late, "late segments after close ignored"),
            (table.failed, "flows dropped for output errors"),
            (table.evicted, "flows closed by --max-flows"),
            (table.expired, "flows closed idle"),
            (self.forced_gaps, "gaps forced by --max-pending"),
            (table.forced_by_total, "gaps forced by --max-pending-total"),
            (
                table.histories_dropped,
                "retransmission histories dropped for --max-pending-total",
            ),
            (read.malformed, "malformed frames"),
            (read.fragments, "IP fragments skipped"),
            (
                self.restarts,
                "streams restarted in a new file (sequence jump over 16 MiB or data after RST)",
            ),
            (
                table.stale_syns,
                "SYNs with a stale sequence number ignored",
            ),
            (self.keepalives, "keep-alive probes ignored"),
        ];
        for (count, what) in counts {
            if count > 0 {
                summary.push_str(&format!(", {count} {what}"));
            }
        }
        summary
    }
}

/// A sink that counts, then passes everything on.
pub struct Counting<S> {
    /// The sink passed on to.
    pub inner: S,
    /// What was counted.
    pub totals: Totals,
}

impl<S: Sink> Sink for Counting<S> {
    fn takes_early_data(&self) -> bool {
        self.inner.takes_early_data()
    }
    fn opened(&mut self, flow: &FlowInfo) -> io::Result<()> {
        self.inner.opened(flow)
    }
    fn finished(&mut self, flow: &FlowInfo) -> io::Result<()> {
        self.inner.finished(flow)
    }
    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        self.inner.restarted(flow, dir)
    }
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.inner.data(flow, dir, offset, bytes)
    }
    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
        self.inner.gap(flow, dir, offset, len)
    }
    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()> {
        self.totals.flows += 1;
        for s in stats {
            self.totals.bytes += s.bytes;
            self.totals.gaps += s.gaps;
            self.totals.gap_bytes += s.gap_bytes;
            self.totals.conflicts += s.conflicts;
            self.totals.forced_gaps += s.forced_gaps;
            self.totals.keepalives += s.keepalives;
            self.totals.restarts += s.restarts;
        }
        self.inner.closed(flow, stats, reason)
    }
}

/// Several sinks fed alike.
pub struct Tee(pub Vec<Box<dyn Sink>>);

impl Sink for Tee {
    fn takes_early_data(&self) -> bool {
        self.0.iter().all(|s| s.takes_early_data())
    }
    fn opened(&mut self, flow: &FlowInfo) -> io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.opened(flow))
    }
    fn data(&mut self, flow: &FlowInfo, dir: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0
            .iter_mut()
            .try_for_each(|s| s.data(flow, dir, offset, bytes))
    }
    fn gap(&mut self, flow: &FlowInfo, dir: usize, offset: u64, len: u64) -> io::Result<()> {
        self.0
            .iter_mut()
            .try_for_each(|s| s.gap(flow, dir, offset, len))
    }
    fn finished(&mut self, flow: &FlowInfo) -> io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.finished(flow))
    }
    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.restarted(flow, dir))
    }
    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()> {
        self.0
            .iter_mut()
            .try_for_each(|s| s.closed(flow, stats, reason))
    }
}
