#![doc = include_str!("../README.md")]
//! TCP stream reassembly from live or saved captures: a tcpflow replacement.
//!
//! Frames are decoded ([`decode`]), grouped into connections with both directions
//! ([`flow::FlowTable`]), each direction reassembled in sequence space ([`reassembly`]), and
//! the bytes handed to a [`flow::Sink`]: per-direction files named as tcpflow names them,
//! console, or JSON events.
#![deny(missing_docs)]

pub mod beneath;
#[cfg(feature = "cli")]
pub mod cli;
pub mod decode;
pub mod flow;
mod hash;
pub mod libpcap;
pub mod reassembly;
pub mod sink;
pub mod source;
mod writer;
