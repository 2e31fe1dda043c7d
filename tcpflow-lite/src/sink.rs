//! Where reassembled bytes go: one file per direction with tcpflow's names, the console,
//! or JSON events.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::beneath::Dir;
use crate::flow::{CloseReason, Failure, FlowInfo, Sink};
use crate::hash::FlowMap;
use crate::reassembly::DirectionStats;
use crate::writer::{self, Key, Op, Writer};

/// Bytes gathered per direction before they are handed to the writer: small segments become
/// one `pwrite`. Also the most one message to the writer holds ([`writer::MESSAGE_BYTES`]).
const WRITE_BUFFER: usize = writer::MESSAGE_BYTES;

/// Bytes held for output in all directions together, those on their way to the writer
/// included: beyond it every buffer is handed over, so memory does not grow with the number
/// of open connections.
const WRITE_BUFFER_TOTAL: usize = 4 * 1024 * 1024;

/// Of [`WRITE_BUFFER_TOTAL`], what the per-direction buffers may hold: the rest is in flight.
const BUFFERED_TOTAL: usize = WRITE_BUFFER_TOTAL - writer::IN_FLIGHT_BYTES;

/// Descriptors left for everything else (the capture, stdio, libpcap, a pcap being written).
const RESERVED_FDS: u64 = 16;

/// The most files the process can keep open: RLIMIT_NOFILE's soft limit less a reserve for
/// its other descriptors (at least 1).
pub fn open_files_limit() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The default of `--max-open-files`: 512, or fewer when RLIMIT_NOFILE is lower.
pub fn default_max_open_files() -> usize {
    open_files_limit().min(512)
}

/// A direction's bytes not yet handed to the writer, continuing at `offset`.
#[derive(Default)]
struct Pending {
    buffer: Vec<u8>,
    offset: u64,
    /// A buffer of it went over full: it streams, and its next buffer is allocated whole
    /// (growing one by doubling copies its bytes about once more on the way).
    streaming: bool,
    /// `buffer` was allocated whole ahead of its bytes (counted in [`Held::reserved`]).
    reserved: bool,
    /// Not written: its file would have been beyond `--max-files`.
    dropped: bool,
    /// The size of its file: the end of the furthest byte sent to it, holes included.
    extent: u64,
}

/// Bounds on what the files of a capture take on disk: a sender opening flows without end,
/// or sending without end, fills neither the directory's inodes nor its filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskBounds {
    /// Files created at most (`--max-files`); the directions beyond it are not written.
    pub max_files: Option<u64>,
    /// The sizes of all files together at most (`--max-disk-bytes`), holes included: a file
    /// of zeros fills a disk as soon as it is copied. What would grow them beyond it is not
    /// written.
    pub max_bytes: Option<u64>,
}

/// Which bound of [`DiskBounds`] was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskBound {
    /// `--max-files`.
    Files,
    /// `--max-disk-bytes`.
    Bytes,
}

impl DiskBound {
    /// The option that sets it.
    pub fn option(self) -> &'static str {
        match self {
            DiskBound::Files => "--max-files",
            DiskBound::Bytes => "--max-disk-bytes",
        }
    }
}

/// What the files of a capture took, and what the bounds kept off the disk. Shared with
/// the caller of [`FileSink`] (cheap to read at any time, from any thread).
#[derive(Debug, Default)]
pub struct DiskUsage {
    files: AtomicU64,
    bytes: AtomicU64,
    dropped_files: AtomicU64,
    dropped_bytes: AtomicU64,
    /// 0 none, 1 files, 2 bytes: the first bound reached.
    first_hit: AtomicU8,
}

/// A snapshot of [`DiskUsage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskTotals {
    /// Files created.
    pub files: u64,
    /// The files' sizes together, holes included.
    pub bytes: u64,
    /// Directions not written, their file beyond `--max-files`.
    pub dropped_files: u64,
    /// Bytes not written: those of the directions above, and those beyond `--max-disk-bytes`.
    pub dropped_bytes: u64,
    /// The first bound reached, if any.
    pub first_hit: Option<DiskBound>,
}

impl DiskUsage {
    /// What was taken and dropped so far.
    pub fn totals(&self) -> DiskTotals {
        DiskTotals {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            dropped_files: self.dropped_files.load(Ordering::Relaxed),
            dropped_bytes: self.dropped_bytes.load(Ordering::Relaxed),
            first_hit: match self.first_hit.load(Ordering::Relaxed) {
                1 => Some(DiskBound::Files),
                2 => Some(DiskBound::Bytes),
                _ => None,
            },
        }
    }

    fn hit(&self, bound: DiskBound) {
        let code = match bound {
            DiskBound::Files => 1,
            DiskBound::Bytes => 2,
        };
        let _ = self
            .first_hit
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl DiskTotals {
    /// The summary's words for what the bounds dropped (empty when nothing was).
    pub fn summary(&self) -> String {
        match self.first_hit {
            Some(bound) => format!(
                ", {} directions and {} bytes not written ({} reached at {} files, {} bytes)",
                self.dropped_files,
                self.dropped_bytes,
                bound.option(),
                self.files,
                self.bytes
            ),
            None => String::new(),
        }
    }
}

/// One file per direction in a directory, named and filled as tcpflow does: bytes at their
/// stream offset (holes read as zeros), created with `O_EXCL` (nothing is ever overwritten:
/// a taken name gets the next `cN`), at most `max_open` files open at once (the least
/// recently used is closed and reopened when needed).
///
/// The directory is opened once; every file is created and reopened beneath that open
/// directory without following any symbolic link ([`Dir::open_beneath`]), so replacing the
/// directory's path, or planting links in it, during a capture redirects nothing.
///
/// The files are created, written and closed by a thread of their own, fed with batched
/// buffers through a bounded queue; a write error reaches the flow table at its next call
/// ([`Sink::take_failures`]), and [`Sink::drain`] waits until everything is written.
pub struct FileSink {
    max_bytes: Option<u64>,
    bounds: DiskBounds,
    usage: Arc<DiskUsage>,
    directions: FlowMap<Key, Pending>,
    held: Held,
    writer: Writer,
}

/// What the buffers of a [`FileSink`]'s directions hold.
#[derive(Default)]
struct Held {
    /// Bytes in them (bounded by [`BUFFERED_TOTAL`]).
    bytes: usize,
    /// Buffers of streaming directions allocated whole ahead of their bytes, in bytes:
    /// at most [`BUFFERED_TOTAL`] more, so that memory stays bounded with many streams.
    reserved: usize,
}

impl FileSink {
    /// Files in `handle`, the directory opened at `dir` (named in messages); `max_bytes`
    /// keeps only the first bytes of each direction (`-b`); at most `max_open` files open at
    /// once, and never more than RLIMIT_NOFILE allows ([`open_files_limit`]); `bounds` on
    /// the files and bytes of the whole capture.
    pub fn open(
        handle: Dir,
        dir: PathBuf,
        max_bytes: Option<u64>,
        max_open: usize,
        bounds: DiskBounds,
    ) -> io::Result<FileSink> {
        let max_open = max_open.min(open_files_limit()).max(1);
        Ok(FileSink {
            max_bytes,
            bounds,
            usage: Arc::default(),
            directions: FlowMap::default(),
            held: Held::default(),
            writer: Writer::spawn(handle, dir, max_open)?,
        })
    }

    /// What the files took so far, and what the bounds dropped.
    pub fn usage(&self) -> Arc<DiskUsage> {
        Arc::clone(&self.usage)
    }

    /// Forgets a direction for good (what follows goes to a new file): its buffer is handed
    /// over and its file retired.
    fn retire(&mut self, key: Key) -> io::Result<()> {
        let Some(mut d) = self.directions.remove(&key) else {
            return Ok(());
        };
        hand_over(&self.writer, &mut self.held, key, &mut d)?;
        self.writer.send(Op::Retire { key, counted: 0 })
    }
}

/// Hands a direction's buffer to the writer; `held` drops by what it held.
fn hand_over(writer: &Writer, held: &mut Held, key: Key, d: &mut Pending) -> io::Result<()> {
    if d.buffer.is_empty() {
        return Ok(());
    }
    held.bytes -= d.buffer.len();
    if std::mem::take(&mut d.reserved) {
        held.reserved -= WRITE_BUFFER;
    }
    let bytes = std::mem::take(&mut d.buffer);
    writer.send(Op::Write {
        key,
        offset: d.offset,
        bytes,
    })
}

/// Appends `bytes` to `buffer`, which never grows beyond [`WRITE_BUFFER`] allocated (the
/// caller hands it over before it would): the queue to the writer is bounded in bytes.
fn append(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let needed = buffer.len() + bytes.len();
    if needed > buffer.capacity() {
        let capacity = needed.max(buffer.capacity() * 2).min(WRITE_BUFFER);
        buffer.reserve_exact(capacity - buffer.len());
    }
    buffer.extend_from_slice(bytes);
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
        let key = (flow.id, dir);
        let usage = &self.usage;
        let mut created = false;
        let d = match self.directions.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let files = usage.files.load(Ordering::Relaxed);
                let full = |max: Option<u64>, used: &AtomicU64| {
                    max.is_some_and(|max| used.load(Ordering::Relaxed) >= max)
                };
                // No new file once either bound is reached: an empty file is an inode too.
                let over = if full(self.bounds.max_files, &usage.files) {
                    Some(DiskBound::Files)
                } else if full(self.bounds.max_bytes, &usage.bytes) {
                    Some(DiskBound::Bytes)
                } else {
                    None
                };
                if let Some(bound) = over {
                    usage.hit(bound);
                    usage.dropped_files.fetch_add(1, Ordering::Relaxed);
                    entry.insert(Pending {
                        dropped: true,
                        ..Pending::default()
                    })
                } else {
                    usage.files.store(files + 1, Ordering::Relaxed);
                    self.writer.send(Op::Create {
                        key,
                        flow: Box::new(flow.clone()),
                    })?;
                    created = true;
                    entry.insert(Pending::default())
                }
            }
        };
        let written = usage.bytes.load(Ordering::Relaxed);
        let room = self
            .bounds
            .max_bytes
            .map_or(u64::MAX, |max| max.saturating_sub(written));
        // What the file grows by, the hole before these bytes included; bytes rewritten
        // within it cost nothing.
        let growth = (offset + bytes.len() as u64).saturating_sub(d.extent);
        let bytes = if d.dropped {
            usage
                .dropped_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            return Ok(());
        } else if growth > room {
            usage.hit(DiskBound::Bytes);
            let keep = (d.extent + room)
                .saturating_sub(offset)
                .min(bytes.len() as u64);
            usage
                .dropped_bytes
                .fetch_add(bytes.len() as u64 - keep, Ordering::Relaxed);
            &bytes[..keep as usize]
        } else {
            bytes
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let end = offset + bytes.len() as u64;
        usage
            .bytes
            .store(written + end.saturating_sub(d.extent), Ordering::Relaxed);
        d.extent = d.extent.max(end);
        let end = d.offset + d.buffer.len() as u64;
        if offset != end || d.buffer.len() + bytes.len() > WRITE_BUFFER {
            d.streaming = offset == end;
            hand_over(&self.writer, &mut self.held, key, d)?;
        }
        // A chunk larger than a buffer goes over in buffer-sized pieces.
        let mut offset = offset;
        let mut rest = bytes;
        while rest.len() > WRITE_BUFFER {
            let (piece, after) = rest.split_at(WRITE_BUFFER);
            self.writer.send(Op::Write {
                key,
                offset,
                bytes: piece.to_vec(),
            })?;
            offset += piece.len() as u64;
            rest = after;
        }
        if d.buffer.is_empty() {
            d.offset = offset;
            if d.streaming && self.held.reserved + WRITE_BUFFER <= BUFFERED_TOTAL {
                d.buffer.reserve_exact(WRITE_BUFFER);
                d.reserved = true;
                self.held.reserved += WRITE_BUFFER;
            }
        }
        append(&mut d.buffer, rest);
        self.held.bytes += rest.len();
        // A new file's first bytes follow it at once, while it is open: held back, they
        // would often find it closed for the open-files limit (many flows opening at once)
        // and reopen it, two more system calls per file.
        if d.buffer.len() == WRITE_BUFFER || created {
            d.streaming |= d.buffer.len() == WRITE_BUFFER;
            hand_over(&self.writer, &mut self.held, key, d)?;
        }
        if self.held.bytes > BUFFERED_TOTAL {
            for (key, d) in self.directions.iter_mut() {
                hand_over(&self.writer, &mut self.held, *key, d)?;
            }
        }
        Ok(())
    }

    fn restarted(&mut self, flow: &FlowInfo, dir: usize) -> io::Result<()> {
        // What follows goes to a new file: the next free name.
        self.retire((flow.id, dir))
    }

    fn finished(&mut self, flow: &FlowInfo) -> io::Result<()> {
        for dir in 0..2 {
            let key = (flow.id, dir);
            if let Some(d) = self.directions.get_mut(&key) {
                hand_over(&self.writer, &mut self.held, key, d)?;
                self.writer.send(Op::Close { key })?;
            }
        }
        Ok(())
    }

    fn closed(
        &mut self,
        flow: &FlowInfo,
        stats: &[DirectionStats; 2],
        reason: CloseReason,
    ) -> io::Result<()> {
        if reason == CloseReason::Failed {
            // Its output failed: what is left of it is dropped.
            for dir in 0..2 {
                if let Some(d) = self.directions.remove(&(flow.id, dir)) {
                    self.held.bytes -= d.buffer.len();
                    if d.reserved {
                        self.held.reserved -= WRITE_BUFFER;
                    }
                    self.writer.send(Op::Retire {
                        key: (flow.id, dir),
                        counted: 0,
                    })?;
                }
            }
            return Ok(());
        }
        // Both buffers go over before either direction is retired, and the last operation
        // of the connection carries what the summary counted for it: a write that fails
        // comes before it, and the writer takes those bytes back ([`Sink::failed_after_close`]).
        let mut result = Ok(());
        let mut present = Vec::with_capacity(2);
        for dir in 0..2 {
            let key = (flow.id, dir);
            if let Some(mut d) = self.directions.remove(&key) {
                result = result.and(hand_over(&self.writer, &mut self.held, key, &mut d));
                present.push(key);
            }
        }
        let counted = stats[0].bytes + stats[1].bytes;
        if present.is_empty() && counted > 0 {
            present.push((flow.id, 0));
        }
        let last = present.len().saturating_sub(1);
        for (i, key) in present.into_iter().enumerate() {
            let counted = if i == last { counted } else { 0 };
            result = result.and(self.writer.send(Op::Retire { key, counted }));
        }
        result
    }

    fn failed_after_close(&self) -> u64 {
        self.writer.uncounted()
    }

    fn take_failures(&mut self) -> Vec<Failure> {
        self.writer.failures()
    }

    fn drain(&mut self) -> io::Result<()> {
        for (key, d) in self.directions.iter_mut() {
            hand_over(&self.writer, &mut self.held, *key, d)?;
        }
        self.writer.finish()
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Not drained (an embedder that never called FlowTable::finish): what is buffered is
        // still written, and the writer joined by its own drop.
        for (key, d) in self.directions.iter_mut() {
            let _ = hand_over(&self.writer, &mut self.held, *key, d);
        }
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
/// become `\xNN`. The console's policy for payloads, private to it: text nsdebug prints about
/// a container (names, paths) goes through nsdebug's own `shown`, which escapes newlines too.
fn escape_controls(bytes: &[u8]) -> Vec<u8> {
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
        let n = |count: u64, one: &str, many: &str| {
            format!("{count} {}", if count == 1 { one } else { many })
        };
        let mut summary = format!(
            "{tool}: {}, {}, {}, {} reassembled, {} ({} missing), {}",
            n(read.packets, "packet", "packets"),
            n(table.segments, "TCP segment", "TCP segments"),
            n(self.flows, "flow", "flows"),
            n(self.bytes, "byte", "bytes"),
            n(self.gaps, "gap", "gaps"),
            n(self.gap_bytes, "byte", "bytes"),
            n(
                self.conflicts,
                "conflicting overlap",
                "conflicting overlaps"
            ),
        );
        // Packets and not one TCP segment: say so, rather than leave "0 flows" to puzzle over
        // (a filter that matched UDP, ARP or ICMP only).
        if read.packets > 0 && table.segments == 0 {
            summary.push_str(if read.packets == 1 {
                " (the packet was not TCP)"
            } else {
                " (none of the packets was TCP)"
            });
        }
        // (count, singular, plural)
        let counts = [
            (
                read.kernel_dropped,
                "dropped by the kernel",
                "dropped by the kernel",
            ),
            (
                table.late,
                "late segment after close ignored",
                "late segments after close ignored",
            ),
            (
                table.failed,
                "flow dropped for output errors",
                "flows dropped for output errors",
            ),
            (
                table.evicted,
                "flow closed by --max-flows",
                "flows closed by --max-flows",
            ),
            (table.expired, "flow closed idle", "flows closed idle"),
            (
                self.forced_gaps,
                "gap forced by --max-pending",
                "gaps forced by --max-pending",
            ),
            (
                table.forced_by_total,
                "gap forced by --max-pending-total",
                "gaps forced by --max-pending-total",
            ),
            (
                table.histories_dropped,
                "retransmission history dropped for --max-history-total",
                "retransmission histories dropped for --max-history-total",
            ),
            (read.malformed, "malformed frame", "malformed frames"),
            (
                read.fragments,
                "IP fragment skipped",
                "IP fragments skipped",
            ),
            (
                self.restarts,
                "stream restarted in a new file (sequence jump over 16 MiB, holes beyond its bytes, or data after RST)",
                "streams restarted in a new file (sequence jump over 16 MiB, holes beyond its bytes, or data after RST)",
            ),
            (
                table.stale_syns,
                "SYN with a stale sequence number ignored",
                "SYNs with a stale sequence number ignored",
            ),
            (
                self.keepalives,
                "keep-alive probe ignored",
                "keep-alive probes ignored",
            ),
        ];
        for (count, one, many) in counts {
            if count > 0 {
                summary.push_str(&format!(", {}", n(count, one, many)));
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
            // A connection whose output failed: its bytes were not written, not reassembled.
            if reason != CloseReason::Failed {
                self.totals.bytes += s.bytes;
            }
            self.totals.gaps += s.gaps;
            self.totals.gap_bytes += s.gap_bytes;
            self.totals.conflicts += s.conflicts;
            self.totals.forced_gaps += s.forced_gaps;
            self.totals.keepalives += s.keepalives;
            self.totals.restarts += s.restarts;
        }
        self.inner.closed(flow, stats, reason)
    }
    fn take_failures(&mut self) -> Vec<Failure> {
        self.inner.take_failures()
    }
    fn drain(&mut self) -> io::Result<()> {
        let result = self.inner.drain();
        // Everything is written (or failed) now: bytes counted at a close whose output
        // failed later are taken back, so the totals say what was really written.
        self.totals.bytes = self
            .totals
            .bytes
            .saturating_sub(self.inner.failed_after_close());
        result
    }
    fn failed_after_close(&self) -> u64 {
        0 // taken back from these totals already
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
    fn take_failures(&mut self) -> Vec<Failure> {
        self.0.iter_mut().flat_map(|s| s.take_failures()).collect()
    }
    fn failed_after_close(&self) -> u64 {
        self.0.iter().map(|s| s.failed_after_close()).sum()
    }
    fn drain(&mut self) -> io::Result<()> {
        // Every sink is drained, whichever fails; the first error is returned.
        let mut result = Ok(());
        for sink in &mut self.0 {
            let drained = sink.drain();
            result = result.and(drained);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_buffer_never_holds_more_than_a_message() {
        for segment in [1, 7, 536, 1448, 9000, WRITE_BUFFER - 1] {
            let mut buffer = Vec::new();
            while buffer.len() + segment <= WRITE_BUFFER {
                append(&mut buffer, &vec![0u8; segment]);
                assert!(buffer.capacity() <= writer::MESSAGE_BYTES, "{segment}");
            }
        }
    }
}
