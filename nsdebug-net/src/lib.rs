#![doc = include_str!("../README.md")]
//! A network namespace's links and addresses, read and changed through rtnetlink, and where
//! the other end of each interface lives (the host-side peer of a container's veth, the
//! parent of a macvlan) — the part of `nsdebug veth` and `nsdebug flow` an embedder can reuse —
//! and taking a container's peers down and back up with a record of what was changed ([`down`]).
//!
//! A netlink socket belongs to the network namespace it was created in, for its whole life:
//! open a [`RouteSocket`] inside the target's namespace with [`nsenter_core::run_in`] and use
//! it from anywhere afterwards.
//!
//! ```no_run
//! use nsdebug_net::RouteSocket;
//! use nsenter_core::{run_in, Namespace, Pid, Target};
//! let target = Target::open(Pid::try_from(1234)?)?;
//! let mut socket = run_in(&target, Namespace::Net.into(), RouteSocket::open)??;
//! for link in socket.links()? {
//!     println!("{} {}", link.index, link.name);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod down;
mod error;
mod link;
pub mod peer;

pub use error::{Error, Result};
pub use link::{Address, Link, LinkStats, RouteSocket};
