//! TCP stream reassembly from live or saved captures (a tcpflow replacement).
//!
//! Not built yet: the workspace reserves the crate; reassembly arrives with its own issue.
#![deny(missing_docs)]
