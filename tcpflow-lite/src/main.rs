//! `tcpflow-lite`: TCP stream reassembly from captures, with tcpflow's options and names.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use tcpflow_lite::flow::{FlowTable, Limits, Sink};
use tcpflow_lite::reassembly::Overlap;
use tcpflow_lite::sink::{default_max_open_files, ConsoleSink, Counting, FileSink, JsonSink, Tee};
use tcpflow_lite::source::{read, stop_on_signals, ReadStats, Source};

/// Reassemble TCP streams from pcap/pcapng files or live interfaces.
#[derive(Parser, Debug)]
#[command(name = "tcpflow-lite", version, about)]
struct Args {
    /// Read packets from FILE (pcap or pcapng; `-` for standard input); repeatable.
    #[arg(short = 'r', value_name = "FILE")]
    read: Vec<PathBuf>,
    /// Capture live on IFACE (`any` for every interface).
    #[arg(short = 'i', value_name = "IFACE")]
    interface: Option<String>,
    /// Write one file per direction into DIR (default: the current directory).
    #[arg(short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print the reassembled streams on standard output instead of writing files.
    #[arg(short = 'c')]
    console: bool,
    /// Colour the two directions on the console (not when stdout is not a terminal or NO_COLOR is set).
    #[arg(short = 'g')]
    colour: bool,
    /// Keep at most N bytes of each direction.
    #[arg(short = 'b', value_name = "N")]
    max_bytes: Option<u64>,
    /// One JSON event per line on standard output (flow open/close with counts, gaps).
    #[arg(long)]
    json: bool,
    /// Which bytes win where retransmissions disagree: first (Linux, Wireshark) or last (tcpflow).
    #[arg(long, value_enum, default_value = "first")]
    overlap: OverlapArg,
    /// Connections tracked at once.
    #[arg(long, default_value_t = 100_000)]
    max_flows: usize,
    /// Out-of-order bytes buffered per direction before a gap is declared.
    #[arg(long, default_value_t = 4 << 20)]
    max_pending: usize,
    /// Out-of-order bytes buffered in all.
    #[arg(long, default_value_t = 256 << 20)]
    max_pending_total: usize,
    /// Seconds of silence after which a connection is closed.
    #[arg(long, default_value_t = 300.0)]
    idle: f64,
    /// Files open at once (the least recently used is closed and reopened when needed);
    /// default 512, fewer when RLIMIT_NOFILE (ulimit -n) is lower, never more than it allows.
    #[arg(long, value_name = "N")]
    max_open_files: Option<usize>,
    /// A tcpdump-syntax filter expression.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    expression: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OverlapArg {
    First,
    Last,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tcpflow-lite: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut sources: Vec<Source> = args.read.iter().cloned().map(Source::File).collect();
    if let Some(interface) = &args.interface {
        sources.push(Source::Live(interface.clone()));
    }
    if sources.is_empty() {
        bail!("nothing to read: give -r FILE or -i IFACE");
    }
    let filter = args.expression.join(" ");
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if args.output.is_some() || (!args.console && !args.json) {
        let dir = args.output.clone().unwrap_or_else(|| PathBuf::from("."));
        // A missing directory is created (its parent must exist), as tcpflow does.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => bail!("output directory {}: {e}", dir.display()),
        }
        let meta = std::fs::metadata(&dir).with_context(|| format!("output directory {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("output directory {}: not a directory", dir.display());
        }
        let files = FileSink::open(dir.clone(), args.max_bytes, args.max_open_files.unwrap_or_else(default_max_open_files))
            .with_context(|| format!("output directory {}", dir.display()))?;
        sinks.push(Box::new(files));
    }
    if args.console {
        let colour = args.colour && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        sinks.push(Box::new(ConsoleSink::new(std::io::BufWriter::new(std::io::stdout()), colour, args.max_bytes)));
    }
    if args.json {
        sinks.push(Box::new(JsonSink::new(std::io::BufWriter::new(std::io::stdout()))));
    }
    let policy = match args.overlap {
        OverlapArg::First => Overlap::First,
        OverlapArg::Last => Overlap::Last,
    };
    let limits = Limits {
        pending_per_direction: args.max_pending,
        pending_total: args.max_pending_total,
        flows: args.max_flows.max(1),
        idle_seconds: args.idle,
    };
    let mut table = FlowTable::new(policy, limits);
    let mut sink = Counting { inner: Tee(sinks), totals: Default::default() };
    let mut stats = ReadStats::default();
    let stop = stop_on_signals();
    let mut outcome = Ok(());
    let show_progress = std::io::stderr().is_terminal();
    for source in &sources {
        let size = match source {
            Source::File(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Source::Live(_) => 0,
        };
        // A progress line on a terminal for files large enough to wait for (100 MB and up).
        let mut progress = |s: &ReadStats| {
            if show_progress && size >= 100 << 20 {
                let percent = (s.file_bytes * 100 / size).min(100);
                eprint!("\r{source}: {percent:3}% ({} MB of {} MB)", s.file_bytes >> 20, size >> 20);
            }
        };
        outcome = read(source, Some(&filter), &mut table, &mut sink, stop, &mut stats, &mut progress)
            .map_err(anyhow::Error::from);
        if show_progress && size >= 100 << 20 {
            eprint!("\r\x1b[K");
        }
        if outcome.is_err() || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    // Whatever happened, nothing captured is lost: flush every open flow. An error is then
    // the one line printed (by main), without the summary.
    let flushed = table.finish(&mut sink).context("writing output");
    let _ = std::io::stdout().flush();
    outcome?;
    flushed?;
    // Flows the output failed for were dropped one by one; each is reported, the summary
    // still printed, and the exit status says the output is incomplete.
    for failure in table.failures() {
        eprintln!("tcpflow-lite: flow {} dropped: {}", failure.flow.name(0), failure.error);
    }
    let summary = sink.totals.summary("tcpflow-lite", &stats, &table.stats);
    eprintln!("{summary}");
    Ok(if table.stats.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
