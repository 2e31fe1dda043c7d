//! The output and limit options of `tcpflow-lite`, declared once for every front end (the
//! `cli` feature): `tcpflow-lite` and `nsdebug flow` flatten [`OutputArgs`] into their own
//! arguments and build their sinks and limits from it.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::beneath::Dir;
use crate::flow::{Limits, Sink};
use crate::reassembly::Overlap;
use crate::sink::{default_max_open_files, ConsoleSink, DiskBounds, DiskUsage, FileSink, JsonSink};
use crate::source::ReadStats;

/// Where reassembled streams go, and the bounds on what a capture may cost.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Write one file per direction into DIR (created if missing, as tcpflow does; default
    /// when no other output is asked for: the current directory).
    #[arg(short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the reassembled streams on standard output instead of writing files (on a
    /// terminal, control characters are shown as \xNN unless --raw).
    #[arg(short = 'c')]
    pub console: bool,
    /// With -c on a terminal: print the payload's bytes as they are, control characters too.
    #[arg(long, requires = "console")]
    pub raw: bool,
    /// Colour the two directions on the console (not when stdout is not a terminal or
    /// NO_COLOR is set).
    #[arg(short = 'g')]
    pub colour: bool,
    /// Keep at most N bytes of each direction.
    #[arg(short = 'b', value_name = "N")]
    pub max_bytes_per_flow: Option<u64>,
    /// One JSON event per line on standard output (flow open/close with counts, gaps); not
    /// with -c, which writes text to the same standard output.
    #[arg(long, conflicts_with = "console")]
    pub json: bool,
    /// Which bytes win where retransmissions disagree: first (Linux, Wireshark) or last
    /// (tcpflow).
    #[arg(long, value_enum, default_value = "first")]
    pub overlap: OverlapArg,
    /// Connections tracked at once; the least recently active is closed beyond it.
    #[arg(long, value_name = "N", default_value_t = Limits::default().flows)]
    pub max_flows: usize,
    /// Memory for out-of-order segments per direction (bytes, with ~96 B per segment)
    /// before a gap is declared.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().pending_per_direction)]
    pub max_pending: usize,
    /// Memory for out-of-order segments and retransmission histories in all flows.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().pending_total)]
    pub max_pending_total: usize,
    /// Of --max-pending-total, what the last delivered bytes of each direction (kept to find
    /// retransmissions that disagree) may hold in all flows; the least recently active
    /// connections forget theirs beyond it.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().history_total)]
    pub max_history_total: usize,
    /// Seconds of silence (capture time) after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().idle_seconds)]
    pub idle: f64,
    /// Files open at once (the least recently used is closed and reopened when needed);
    /// default 512, fewer when RLIMIT_NOFILE (ulimit -n) is lower, never more than it allows.
    #[arg(long, value_name = "N")]
    pub max_open_files: Option<usize>,
    /// Files created at most in the output directory; the directions beyond are not
    /// written, counted in the summary (0: no bound; `nsdebug flow`'s default: 10000).
    #[arg(long, value_name = "N")]
    pub max_files: Option<u64>,
    /// The files' sizes together at most, holes included (as a copy of them takes); what
    /// would grow them beyond is not written, counted in the summary (0: no bound;
    /// `nsdebug flow`'s default: 1 GiB).
    #[arg(long, value_name = "BYTES")]
    pub max_disk_bytes: Option<u64>,
}

/// The sinks of [`OutputArgs::sinks`], and what the files take on disk (with `-o`).
pub struct Outputs {
    /// Every output asked for.
    pub sinks: Vec<Box<dyn Sink>>,
    /// The files' use of the disk and what the bounds dropped, when writing files.
    pub disk: Option<Arc<DiskUsage>>,
}

/// `--overlap`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OverlapArg {
    /// The bytes that arrived first.
    First,
    /// The bytes that arrived last.
    Last,
}

impl OutputArgs {
    /// The overlap policy asked for.
    pub fn policy(&self) -> Overlap {
        match self.overlap {
            OverlapArg::First => Overlap::First,
            OverlapArg::Last => Overlap::Last,
        }
    }

    /// The limits asked for.
    pub fn limits(&self) -> Limits {
        Limits {
            pending_per_direction: self.max_pending,
            pending_total: self.max_pending_total,
            history_total: self.max_history_total.min(self.max_pending_total),
            flows: self.max_flows.max(1),
            idle_seconds: self.idle,
        }
    }

    /// The disk bounds asked for, `defaults` where none is given (0: no bound).
    pub fn disk_bounds(&self, defaults: DiskBounds) -> DiskBounds {
        let pick = |asked: Option<u64>, default| match asked {
            Some(0) => None,
            Some(n) => Some(n),
            None => default,
        };
        DiskBounds {
            max_files: pick(self.max_files, defaults.max_files),
            max_bytes: pick(self.max_disk_bytes, defaults.max_bytes),
        }
    }

    /// The sinks asked for, each checked before any packet is read: the output directory
    /// (created when missing, its parent must exist; no symbolic link followed anywhere on
    /// its path, see [`Dir::open_without_links`]; writable), the console, JSON events.
    /// `defaults`: the disk bounds where none is given.
    pub fn sinks(&self, defaults: DiskBounds) -> io::Result<Outputs> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        let mut disk = None;
        if self.output.is_some() || (!self.console && !self.json) {
            let dir = self.output.clone().unwrap_or_else(|| PathBuf::from("."));
            let context = |e: io::Error| io::Error::new(e.kind(), format!("output directory: {e}"));
            let handle = Dir::open_without_links(&dir, true).map_err(context)?;
            handle.check_writable().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("output directory {}: not writable ({e})", dir.display()),
                )
            })?;
            let max_open = self.max_open_files.unwrap_or_else(default_max_open_files);
            let bounds = self.disk_bounds(defaults);
            let files = FileSink::open(handle, dir, self.max_bytes_per_flow, max_open, bounds)
                .map_err(context)?;
            disk = Some(files.usage());
            sinks.push(Box::new(files));
        }
        if self.console {
            let terminal = io::stdout().is_terminal();
            let colour = self.colour && terminal && std::env::var_os("NO_COLOR").is_none();
            let console = ConsoleSink::new(
                io::BufWriter::new(io::stdout()),
                colour,
                self.max_bytes_per_flow,
            );
            sinks.push(Box::new(console.escape_controls(terminal && !self.raw)));
        }
        if self.json {
            sinks.push(Box::new(JsonSink::new(io::BufWriter::new(io::stdout()))));
        }
        Ok(Outputs { sinks, disk })
    }
}

/// When a live capture stops and where its raw packets are saved, declared once for
/// `tcpflow-lite` and `nsdebug flow`.
#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// Also save the raw packets to FILE (pcap, for Wireshark or tcpdump): created new,
    /// never overwritten, no symbolic link followed anywhere on its path.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Stop after N packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long (30, 30s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after N captured bytes.
    #[arg(long, value_name = "N")]
    pub max_bytes: Option<u64>,
}

impl CaptureArgs {
    /// The `-w` file, created now (before any packet is read) so that a taken name or a
    /// link on its path is refused at once ([`Dir::create_without_links`]).
    pub fn create_savefile(&self) -> io::Result<Option<std::fs::File>> {
        match &self.write {
            Some(path) => Dir::create_without_links(path, 0o644).map(Some),
            None => Ok(None),
        }
    }

    /// The limits of `--count`, `--duration` and `--max-bytes`, the clock starting now.
    pub fn stop(&self) -> Stop {
        Stop {
            count: self.count,
            max_bytes: self.max_bytes,
            deadline: self.duration.map(|d| Instant::now() + d),
        }
    }
}

/// [`CaptureArgs`]' limits on a running capture.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    count: Option<u64>,
    max_bytes: Option<u64>,
    deadline: Option<Instant>,
}

impl Stop {
    /// Whether a limit is reached.
    pub fn reached(&self, stats: &ReadStats) -> bool {
        self.count.is_some_and(|n| stats.packets >= n)
            || self.max_bytes.is_some_and(|n| stats.file_bytes >= n)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A duration: a number and a unit (ms, s, m, h; seconds without one).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 && value * scale < 1e9 => {
            Ok(Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!(
            "{text:?} is not a duration (e.g. 30, 30s, 500ms, 2m)"
        )),
    }
}
