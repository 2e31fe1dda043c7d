#![doc = include_str!("../README.md")]
//! TCP stream reassembly from live or saved captures: a tcpflow replacement.
//!
//! Frames are decoded ([`decode`]), grouped into connections with both directions
//! ([`flow::FlowTable`]), each direction reassembled in sequence space ([`reassembly`]), and
//! the bytes handed to a [`flow::Sink`]: per-direction files named as tcpflow names them,
//! console, or JSON events.
#![deny(missing_docs)]
// System calls go through nix; `unsafe` only where it has no safe call (below).
#![deny(unsafe_code)]

pub mod beneath;
#[cfg(feature = "cli")]
pub mod cli;
pub mod decode;
pub mod flow;
mod hash;
// libpcap's C API, loaded with dlopen, and the stdio streams it reads: neither nix nor rustix
// has them.
#[allow(unsafe_code)]
pub mod libpcap;
pub mod reassembly;
pub mod sink;
// sigaction: unsafe in nix too (a handler must be async-signal-safe).
#[allow(unsafe_code)]
pub mod source;
mod writer;
