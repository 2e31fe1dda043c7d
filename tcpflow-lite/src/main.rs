//! `tcpflow-lite`: TCP stream reassembly from captures, with tcpflow's options and names.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context};
use clap::Parser;
use tcpflow_lite::cli::{CaptureArgs, OutputArgs};
use tcpflow_lite::flow::FlowTable;
use tcpflow_lite::libpcap::Savefile;
use tcpflow_lite::sink::{Counting, DiskBounds, Tee};
use tcpflow_lite::source::{open_live, read, read_live, stop_on_signals, Drain, ReadStats, Source};

/// Reassemble TCP streams from pcap/pcapng files or live interfaces.
#[derive(Parser, Debug)]
#[command(
    name = "tcpflow-lite",
    version,
    about,
    after_help = "Exit status: 0 done; 1 a flow could not be written (the others were, and the \
                  summary is printed); 2 usage error; 125 tcpflow-lite could not run (libpcap \
                  missing, a capture it cannot open or read, a bad filter, no output directory: \
                  one line, no summary)."
)]
struct Args {
    /// Read packets from FILE (pcap or pcapng; `-` for standard input); repeatable.
    #[arg(short = 'r', value_name = "FILE")]
    read: Vec<PathBuf>,
    /// Capture live on IFACE (`any` for every interface).
    #[arg(short = 'i', value_name = "IFACE")]
    interface: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    capture: CaptureArgs,
    /// A tcpdump-syntax filter expression.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    expression: Vec<String>,
}

/// tcpflow-lite could not run at all (as nsdebug's own failures, and `docker run`'s).
const EXIT_COULD_NOT_RUN: u8 = 125;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            // Not 1: that says some flows were written and one was not.
            eprintln!("tcpflow-lite: {error:#}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
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
    if args.capture.write.is_some() && args.interface.is_none() {
        bail!("-w saves a live capture: give -i IFACE");
    }
    let filter = args.expression.join(" ");
    // Every output is checked (and the -w file created) before any packet is read.
    let outputs = args.output.sinks(DiskBounds::default())?;
    let mut savefile_fd = args.capture.create_savefile()?;
    let mut table = FlowTable::new(args.output.policy(), args.output.limits());
    let mut sink = Counting {
        inner: Tee(outputs.sinks),
        totals: Default::default(),
    };
    let mut stats = ReadStats::default();
    let signalled = stop_on_signals();
    let limits = args.capture.stop();
    let mut outcome = Ok(());
    let mut saved: Option<Savefile> = None;
    let show_progress = std::io::stderr().is_terminal();
    for source in &sources {
        let size = match source {
            Source::File(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Source::Live(_) => 0,
        };
        let progress_shown = show_progress && size >= 100 << 20;
        // Ctrl-C leaves a live capture's last kernel block to read (see `Drain`).
        let mut drain = Drain::default();
        // A progress line on a terminal for files large enough to wait for (100 MB and up).
        let mut stop = |s: &ReadStats| {
            if progress_shown && s.packets % 8192 == 0 {
                let percent = (s.file_bytes * 100 / size).min(100);
                eprint!(
                    "\r{source}: {percent:3}% ({} MB of {} MB)",
                    s.file_bytes >> 20,
                    size >> 20
                );
            }
            drain.stop(signalled.load(Ordering::Relaxed)) || limits.reached(s)
        };
        outcome = match source {
            Source::Live(interface) if savefile_fd.is_some() => match open_live(interface) {
                Ok(capture) => {
                    if let Some(fd) = savefile_fd.take() {
                        saved = Some(capture.savefile_fd(fd.into()).context("-w")?);
                    }
                    let mut save = |p: &tcpflow_lite::libpcap::Packet<'_>| {
                        if let Some(file) = saved.as_mut() {
                            file.write(p);
                        }
                    };
                    let name = source.to_string();
                    read_live(
                        capture,
                        &name,
                        Some(&filter),
                        &mut table,
                        &mut sink,
                        &mut stats,
                        &mut stop,
                        &mut save,
                    )
                }
                Err(e) => Err(e),
            },
            _ => read(
                source,
                Some(&filter),
                &mut table,
                &mut sink,
                &mut stats,
                &mut stop,
                &mut |_| {},
            ),
        }
        .map_err(anyhow::Error::from);
        if progress_shown {
            eprint!("\r\x1b[K");
        }
        if outcome.is_err() || signalled.load(Ordering::Relaxed) || limits.reached(&stats) {
            break;
        }
    }
    // Whatever happened, nothing captured is lost: flush every open flow. An error is then
    // the one line printed (by main), without the summary.
    let flushed = table.finish(&mut sink).context("writing output");
    let packets_saved = saved.as_mut().map_or(Ok(()), |file| {
        file.flush().context("writing the packet file")
    });
    let _ = std::io::stdout().flush();
    outcome?;
    flushed?;
    packets_saved?;
    // Flows the output failed for were dropped one by one; each is reported, the summary
    // still printed, and the exit status says the output is incomplete.
    for failure in table.failures() {
        eprintln!(
            "tcpflow-lite: flow {} dropped: {}",
            failure.flow.name(0),
            failure.error
        );
    }
    let mut summary = sink.totals.summary("tcpflow-lite", &stats, &table.stats);
    if let Some(disk) = &outputs.disk {
        let disk = disk.totals();
        summary.push_str(&disk.summary());
        if let Some(bound) = disk.first_hit {
            eprintln!(
                "tcpflow-lite: {} reached: later output was not written",
                bound.option()
            );
        }
    }
    eprintln!("{summary}");
    Ok(if table.stats.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
