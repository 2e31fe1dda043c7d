//! `nsdebug flow TARGET [options] [BPF expression...]`: capture inside a container's network
//! namespace (nothing started in it) and reassemble the TCP streams with tcpflow-lite.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nsdebug_net::peer::{inspect, OtherEnd, Place};
use nsenter_core::{run_in, Namespace, Target};
use tcpflow_lite::cli::{CaptureArgs, OutputArgs};
use tcpflow_lite::flow::FlowTable;
use tcpflow_lite::libpcap::{Capture, Packet};
use tcpflow_lite::sink::{Counting, DiskBounds, Tee};
use tcpflow_lite::source::{open_live, read_live, stop_on_signals, Drain, ReadStats};

use super::resolve;
use crate::cli::{block_on, Failure, LookupArgs};
use nsdebug_resolve::{host_reference, ResolveOptions};

// Arguments of `nsdebug flow`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::FLOW, long_about = None)]
// -c is tcpflow's console option here; the container of a pod is --container.
#[command(
    after_help = "Stops on SIGINT/SIGTERM, --count, --duration or --max-bytes, or when the \
    container stops; every open flow is flushed and a summary printed either way.",
    mut_arg("container", |arg| arg.short(None).help(crate::cli::CONTAINER_OR_SANDBOX))
)]
pub struct FlowArgs {
    /// The container, pod, pid, netns name or namespace file.
    target: String,
    /// Capture on this interface of the container (default: all of them, `any`).
    #[arg(short = 'i', value_name = "IFNAME")]
    interface: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Capture on the container's host-side veth peer instead (what the bridge sees).
    #[arg(long)]
    host_side: bool,
    #[command(flatten)]
    lookup: LookupArgs,
    /// A tcpdump-syntax filter expression.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    expression: Vec<String>,
}

/// The disk bounds where none is given: the container is the sender, and a flood of
/// connections must not fill the host's directory or filesystem.
const DEFAULT_DISK_BOUNDS: DiskBounds = DiskBounds {
    max_files: Some(10_000),
    max_bytes: Some(1 << 30),
};

/// Runs `nsdebug flow`.
pub fn run(args: FlowArgs) -> Result<ExitCode, Failure> {
    // A pod without -c: its sandbox, whose network namespace all its containers share.
    // tcpdump habit: options after the filter. They would be taken as filter text: a usage
    // error (2), found before anything is resolved.
    if let Some(option) = args.expression.iter().find(|word| word.starts_with('-')) {
        return Err(Failure {
            error: anyhow!(
                "{option:?} after the filter: options go before it (nsdebug flow TARGET [OPTIONS] [FILTER])"
            ),
            exit_code: 2,
        });
    }
    let options = ResolveOptions {
        pod_sandbox: true,
        ..args.lookup.options()
    };
    let resolved = block_on(resolve(&args.target, &options))??;
    let target = &resolved.target;
    let what = resolved.description.clone();
    let filter = args.expression.join(" ");
    // Check every output before capturing anything: no link followed on their paths (a
    // container can write under /proc/PID/root), the -w file created new.
    let outputs = args.output.sinks(DEFAULT_DISK_BOUNDS)?;
    let savefile_fd = args.capture.create_savefile()?;
    let (mut capture, place) = open_capture(&args, target, &what)?;
    if !filter.trim().is_empty() {
        capture
            .filter(&filter, true)
            .map_err(|e| anyhow!("bad filter expression {filter:?}: {e}"))?;
    }
    let mut savefile = match savefile_fd {
        Some(fd) => Some(
            capture
                .savefile_fd(fd.into())
                .context("-w: writing the packet file")?,
        ),
        None => None,
    };
    let mut table = FlowTable::new(args.output.policy(), args.output.limits());
    let mut sink = Counting {
        inner: Tee(outputs.sinks),
        totals: Default::default(),
    };
    let mut stats = ReadStats::default();
    let signalled = stop_on_signals();
    crate::cli::notice(format_args!(
        "capturing on {place}{}; Ctrl-C to stop",
        if filter.is_empty() {
            String::new()
        } else {
            format!(" ({filter})")
        }
    ));
    let started = Instant::now();
    let limits = args.capture.stop();
    let mut last_check = Instant::now();
    let mut target_gone = false;
    let bound_told = std::cell::Cell::new(false);
    // A disk bound reached is said once, when it is seen: the capture goes on.
    let tell_bound = || {
        let reached = outputs.disk.as_ref().and_then(|d| d.totals().first_hit);
        if let Some(bound) = reached.filter(|_| !bound_told.replace(true)) {
            crate::cli::notice(format_args!(
                "{} reached: flows are still reassembled and counted, not written",
                bound.option()
            ));
        }
    };
    // Ctrl-C and the container's end leave the packets of the kernel's last block to read.
    let mut drain = Drain::default();
    let mut stop = |stats: &ReadStats| {
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = Instant::now();
            target_gone = !target.is_alive();
            tell_bound();
        }
        drain.stop(signalled.load(Ordering::Relaxed) || target_gone) || limits.reached(stats)
    };
    let mut save = |packet: &Packet<'_>| {
        if let Some(file) = savefile.as_mut() {
            file.write(packet);
        }
    };
    let outcome = read_live(
        capture, &place, None, &mut table, &mut sink, &mut stats, &mut stop, &mut save,
    );
    // Whatever ended the capture, nothing captured is lost; an error is then the one line
    // printed, without the summary.
    let flushed = table.finish(&mut sink).context("writing the flows");
    tell_bound();
    let saved = savefile.as_mut().map_or(Ok(()), |file| {
        file.flush().context("writing the packet file")
    });
    outcome.map_err(|e| anyhow!(e))?;
    flushed?;
    saved?;
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if !target.is_alive() {
        crate::cli::notice(format_args!(
            "{what} stopped during the capture; its flows are flushed"
        ));
    }
    for failure in table.failures() {
        eprintln!(
            "nsdebug: flow {} dropped: {}",
            failure.flow.name(0),
            super::shown(&failure.error.to_string())
        );
    }
    let totals = sink.totals;
    // Every event is out (the sinks' buffers flushed) before the summary follows them.
    drop(sink);
    let _ = std::io::stdout().flush();
    let disk = outputs.disk.as_ref().map(|d| d.totals());
    let mut summary = totals.summary("nsdebug flow", &stats, &table.stats);
    if let Some(disk) = &disk {
        summary.push_str(&disk.summary());
    }
    eprintln!("{summary}");
    if args.output.json {
        // --json ends with the summary as one more event, naming the target as every --json does.
        let ended = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let summary = serde_json::json!({
            "event": "summary",
            "ts": ended,
            "target": super::target_json(&resolved),
            "packets": stats.packets,
            "kernel_dropped": stats.kernel_dropped,
            "flows": totals.flows,
            "bytes": totals.bytes,
            "gaps": totals.gaps,
            "gap_bytes": totals.gap_bytes,
            "conflicts": totals.conflicts,
            "failed_flows": table.stats.failed,
            "disk": disk.map(|d| serde_json::json!({
                "files": d.files,
                "bytes": d.bytes,
                "directions_not_written": d.dropped_files,
                "bytes_not_written": d.dropped_bytes,
                "bound_reached": d.first_hit.map(|b| b.option()),
            })),
            "stopped_by": stopped_by(&args, signalled.load(Ordering::Relaxed), target.is_alive(), &stats, started.elapsed()),
        });
        println!("{summary}");
    }
    Ok(if table.stats.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What ended the capture, for the JSON summary: `signal`, `target exited`, `count`,
/// `duration`, `max-bytes` (each limit by the option's name), else `end` (the source ended).
fn stopped_by(
    args: &FlowArgs,
    signalled: bool,
    target_alive: bool,
    stats: &ReadStats,
    elapsed: Duration,
) -> &'static str {
    if signalled {
        "signal"
    } else if !target_alive {
        "target exited"
    } else if args.capture.count.is_some_and(|n| stats.packets >= n) {
        "count"
    } else if args.capture.duration.is_some_and(|limit| elapsed >= limit) {
        "duration"
    } else if args
        .capture
        .max_bytes
        .is_some_and(|n| stats.file_bytes >= n)
    {
        "max-bytes"
    } else {
        "end"
    }
}

/// Opens the capture: inside the container's network namespace (the packet socket stays in
/// it), or on its host-side veth peer.
fn open_capture(args: &FlowArgs, target: &Target, what: &str) -> anyhow::Result<(Capture, String)> {
    if !target.kinds().contains(Namespace::Net) {
        bail!("{what} is not a network namespace");
    }
    if target.namespace_id(Namespace::Net)? == host_reference()?.namespace_id(Namespace::Net)? {
        bail!("{what} has no network namespace of its own (--net=host): capture on the host instead (tcpflow-lite -i)");
    }
    if args.host_side {
        let inspection = inspect(target).with_context(|| what.to_owned())?;
        let peer = inspection
            .interfaces
            .iter()
            .find_map(|interface| match &interface.other_end {
                OtherEnd::Found {
                    link,
                    place: Place::Home,
                } if args
                    .interface
                    .as_ref()
                    .is_none_or(|name| name == &interface.link.name) =>
                {
                    Some((interface.link.name.clone(), link.name.clone()))
                }
                _ => None,
            });
        let Some((inside, peer)) = peer else {
            bail!("{what} has no interface with a peer in the host's namespace to capture on");
        };
        let capture = open_live(&peer)?;
        return Ok((
            capture,
            format!("{peer}, the host-side peer of {inside} of {what}"),
        ));
    }
    // A wrong -i: name the interfaces it has (as veth does), not libpcap's "no such device".
    if let Some(wanted) = &args.interface {
        let inspection = inspect(target).with_context(|| what.to_owned())?;
        let names: Vec<&str> = inspection
            .interfaces
            .iter()
            .map(|i| i.link.name.as_str())
            .collect();
        if wanted != "any" && !names.contains(&wanted.as_str()) {
            bail!(
                "{what} has no interface {} (it has {})",
                super::shown(wanted),
                super::shown(&names.join(", "))
            );
        }
    }
    let interface = args.interface.clone().unwrap_or_else(|| "any".to_owned());
    let name = interface.clone();
    let capture = run_in(target, Namespace::Net.into(), move || open_live(&name))
        .with_context(|| what.to_owned())??;
    Ok((capture, format!("{interface} inside {what}")))
}
