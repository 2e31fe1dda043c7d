//! Where packets come from: libpcap savefiles (pcap and pcapng, `-` for stdin) and live
//! interfaces, with a tcpdump-syntax filter.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::decode::{decode, LinkType, Skip};
use crate::flow::{FlowTable, Sink};
use crate::libpcap::{self, Capture, Packet, PacketHeader};

/// A packet source.
#[derive(Clone, Debug)]
pub enum Source {
    /// A pcap or pcapng file (`-` for standard input).
    File(PathBuf),
    /// A live interface (`any` for all).
    Live(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Live(interface) => write!(f, "interface {interface}"),
        }
    }
}

/// What went wrong reading packets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The file or interface could not be opened.
    #[error("{source_name}: {message}")]
    Open {
        /// The source.
        source_name: String,
        /// libpcap's message.
        message: String,
    },
    /// The filter expression does not compile.
    #[error("bad filter expression {expression:?}: {message}")]
    Filter {
        /// The expression.
        expression: String,
        /// libpcap's message.
        message: String,
    },
    /// The capture's link type is not one this crate decodes.
    #[error("{source_name}: unsupported link type {dlt} ({name})")]
    LinkType {
        /// The source.
        source_name: String,
        /// The `DLT_*` number.
        dlt: i32,
        /// Its name.
        name: String,
    },
    /// Reading failed mid-way.
    #[error("{source_name}: {message}")]
    Read {
        /// The source.
        source_name: String,
        /// libpcap's message.
        message: String,
    },
    /// The sink failed (a write error).
    #[error("writing output")]
    Sink(#[from] std::io::Error),
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: std::ffi::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// For a tool: SIGINT, SIGTERM and SIGHUP set the returned flag instead of killing the
/// process, so that [`read`] and [`read_live`] return and every open flow can be flushed.
pub fn stop_on_signals() -> &'static AtomicBool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    // No SA_RESTART: a blocking wait returns at once.
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe (nix's
        // sigaction is unsafe for handlers that are not).
        let _ = unsafe { sigaction(signal, &action) };
    }
    &STOP
}

/// Counters of reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Frames read.
    pub packets: u64,
    /// Frames that were not TCP.
    pub not_tcp: u64,
    /// Frames too short or malformed to decode.
    pub malformed: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Packets the kernel dropped (live captures: libpcap's `ps_drop` + `ps_ifdrop`).
    pub kernel_dropped: u64,
    /// Bytes consumed: of the current file (records and their headers), or captured live.
    pub file_bytes: u64,
}

/// Reads every packet of `source` through `table` into `sink`, until the end of the file or
/// until `stop` says so (asked before every packet, and for a live capture at least every
/// 200 ms); `each_packet` sees every packet first (to save it, say).
pub fn read(
    source: &Source,
    filter: Option<&str>,
    table: &mut FlowTable,
    sink: &mut dyn Sink,
    stats: &mut ReadStats,
    stop: &mut dyn FnMut(&ReadStats) -> bool,
    each_packet: &mut dyn FnMut(&Packet<'_>),
) -> Result<(), SourceError> {
    let name = source.to_string();
    let open_error = |e: libpcap::Error| SourceError::Open {
        source_name: name.clone(),
        message: e.to_string(),
    };
    match source {
        Source::File(path) => {
            let mut capture = Capture::from_file(path).map_err(open_error)?;
            apply_filter(&mut capture, filter)?;
            let link = link_type(&name, capture.datalink())?;
            stats.file_bytes = 24;
            loop {
                if stop(stats) {
                    return Ok(());
                }
                match capture.next_packet() {
                    Ok(packet) => {
                        each_packet(&packet);
                        stats.file_bytes += 16 + u64::from(packet.header.caplen);
                        feed(link, packet.header, packet.data, table, sink, stats)?
                    }
                    Err(libpcap::Error::NoMorePackets) => return Ok(()),
                    Err(e) => {
                        return Err(SourceError::Read {
                            source_name: name,
                            message: e.to_string(),
                        })
                    }
                }
            }
        }
        Source::Live(interface) => {
            let capture = open_live(interface)?;
            read_live(
                capture,
                &name,
                filter,
                table,
                sink,
                stats,
                stop,
                each_packet,
            )
        }
    }
}

/// Opens a live capture on `interface` in the calling thread's network namespace (the
/// packet socket stays in it, wherever the capture is used afterwards). Non-blocking, waited
/// for with our own poll: a blocking read in immediate mode would not return for a signal,
/// and Ctrl-C must stop the capture.
pub fn open_live(interface: &str) -> Result<Capture, SourceError> {
    Capture::live(interface).map_err(|e| match e {
        // Not about the interface: the one line says what to install.
        libpcap::Error::Missing(_) => SourceError::Open {
            source_name: "cannot capture".to_owned(),
            message: e.to_string(),
        },
        e => SourceError::Open {
            source_name: format!("interface {interface}"),
            message: e.to_string(),
        },
    })
}

/// How long a live capture is still read after it was asked to stop: TPACKET_V3 hands a
/// block of packets over when it is full or after the capture's timeout (100 ms), so the
/// packets that arrived last are readable only that long after they came.
pub const DRAIN: std::time::Duration = std::time::Duration::from_millis(250);

/// Turns "stop" (Ctrl-C, the target gone) into "stop once what the kernel holds is read":
/// [`Drain::stop`] says `true` only [`DRAIN`] after it was first asked to. Limits the user
/// set in packets or bytes are not drained: they stop at once.
#[derive(Debug, Default)]
pub struct Drain {
    asked: Option<std::time::Instant>,
}

impl Drain {
    /// Whether to stop now, `asked` being whether stopping was asked for (it stays asked).
    pub fn stop(&mut self, asked: bool) -> bool {
        if asked {
            let since = *self.asked.get_or_insert_with(std::time::Instant::now);
            since.elapsed() >= DRAIN
        } else {
            self.asked.is_some_and(|since| since.elapsed() >= DRAIN)
        }
    }
}

/// Reads an opened live capture until `stop` says so (asked at least every 200 ms), handing
/// each raw packet to `each_packet` too (to save it, say). Kernel drops are added to `stats`.
#[allow(clippy::too_many_arguments)]
pub fn read_live(
    mut capture: Capture,
    name: &str,
    filter: Option<&str>,
    table: &mut FlowTable,
    sink: &mut dyn Sink,
    stats: &mut ReadStats,
    stop: &mut dyn FnMut(&ReadStats) -> bool,
    each_packet: &mut dyn FnMut(&Packet<'_>),
) -> Result<(), SourceError> {
    apply_filter(&mut capture, filter)?;
    let link = link_type(name, capture.datalink())?;
    let result = loop {
        if stop(stats) {
            break Ok(());
        }
        match capture.next_packet() {
            Ok(packet) => {
                each_packet(&packet);
                stats.file_bytes += u64::from(packet.header.caplen);
                feed(link, packet.header, packet.data, table, sink, stats)?
            }
            Err(libpcap::Error::TimeoutExpired) => {
                wait_readable(&capture, 200);
                // Quiet: let time close finished and idle connections.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                table.tick(now, sink)?;
            }
            Err(e) => {
                break Err(SourceError::Read {
                    source_name: name.to_owned(),
                    message: e.to_string(),
                })
            }
        }
    };
    if let Ok(kernel) = capture.stats() {
        stats.kernel_dropped += u64::from(kernel.dropped) + u64::from(kernel.if_dropped);
    }
    result
}

/// Waits until the capture has packets, at most `ms` milliseconds (or until a signal).
fn wait_readable(capture: &Capture, ms: u16) {
    use nix::poll::{poll, PollFd, PollFlags};
    match capture.selectable_fd() {
        Some(fd) => {
            let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], ms);
        }
        None => std::thread::sleep(std::time::Duration::from_millis(ms.into())),
    }
}

fn apply_filter(capture: &mut Capture, filter: Option<&str>) -> Result<(), SourceError> {
    match filter {
        Some(expression) if !expression.trim().is_empty() => capture
            .filter(expression, true)
            .map_err(|e| SourceError::Filter {
                expression: expression.to_owned(),
                message: e.to_string(),
            }),
        _ => Ok(()),
    }
}

fn link_type(name: &str, dlt: i32) -> Result<LinkType, SourceError> {
    LinkType::from_dlt(dlt).ok_or_else(|| SourceError::LinkType {
        source_name: name.to_owned(),
        dlt,
        name: Capture::datalink_name(dlt).unwrap_or_else(|| "unknown".to_owned()),
    })
}

fn feed(
    link: LinkType,
    header: &PacketHeader,
    data: &[u8],
    table: &mut FlowTable,
    sink: &mut dyn Sink,
    stats: &mut ReadStats,
) -> Result<(), SourceError> {
    stats.packets += 1;
    match decode(link, data) {
        Ok(segment) => {
            let time = header.ts.tv_sec as f64 + header.ts.tv_usec as f64 / 1e6;
            table.segment(time, &segment, sink)?;
        }
        Err(Skip::NotTcp) => stats.not_tcp += 1,
        Err(Skip::Malformed) => stats.malformed += 1,
        Err(Skip::Fragment) => stats.fragments += 1,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_asked_for_waits_for_the_kernels_last_block() {
        let mut drain = Drain::default();
        assert!(!drain.stop(false), "nothing asked");
        assert!(!drain.stop(true), "asked: the last block is still to read");
        std::thread::sleep(DRAIN);
        // Asked once is asked: the flag that asked may be read again as false.
        assert!(drain.stop(false));
        assert!(drain.stop(true));
    }
}
