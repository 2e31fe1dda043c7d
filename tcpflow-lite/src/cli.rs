//! The output and limit options of `tcpflow-lite`, declared once for every front end (the
//! `cli` feature): `tcpflow-lite` and `nsdebug flow` flatten [`OutputArgs`] into their own
//! arguments and build their sinks and limits from it.

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::flow::{Limits, Sink};
use crate::reassembly::Overlap;
use crate::sink::{default_max_open_files, ConsoleSink, FileSink, JsonSink};

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
    /// Seconds of silence (capture time) after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().idle_seconds)]
    pub idle: f64,
    /// Files open at once (the least recently used is closed and reopened when needed);
    /// default 512, fewer when RLIMIT_NOFILE (ulimit -n) is lower, never more than it allows.
    #[arg(long, value_name = "N")]
    pub max_open_files: Option<usize>,
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
            flows: self.max_flows.max(1),
            idle_seconds: self.idle,
        }
    }

    /// The sinks asked for, each checked before any packet is read: the output directory
    /// (created when missing, its parent must exist), the console, JSON events.
    pub fn sinks(&self) -> io::Result<Vec<Box<dyn Sink>>> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if self.output.is_some() || (!self.console && !self.json) {
            let dir = self.output.clone().unwrap_or_else(|| PathBuf::from("."));
            let context = |e: io::Error| {
                io::Error::new(e.kind(), format!("output directory {}: {e}", dir.display()))
            };
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(context(e)),
                _ => {}
            }
            let max_open = self.max_open_files.unwrap_or_else(default_max_open_files);
            let files =
                FileSink::open(dir.clone(), self.max_bytes_per_flow, max_open).map_err(context)?;
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
        Ok(sinks)
    }
}
