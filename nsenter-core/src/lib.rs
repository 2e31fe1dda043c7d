#![doc = include_str!("../README.md")]
//! Enter the Linux namespaces of another process from Rust.
//!
//! Three ways in, for three kinds of work:
//! - [`NsGuard`]: the current thread enters a [`Target`]'s namespaces and returns to its own
//!   when the guard is dropped, also during a panic (the Rust form of Python's
//!   `with Namespace(pid, 'net'):`). For short work on a thread you own.
//! - [`run_in`]: a closure runs inside the namespaces on a fresh thread and its result comes
//!   back. Safe from any program, multi-threaded or async: the main way to embed this crate.
//! - [`Command`]: a program runs inside any set of namespaces (user and pid included), like
//!   util-linux `nsenter`, with root, working directory, credentials and environment. A
//!   program taken from the target's filesystem runs as the container would run it
//!   ([`Confinement`]: its capabilities, seccomp filters, cgroups, ids, environment); a
//!   program with the caller's powers is never started where the target could reach it.
//!
//! [`pty::open_in_target`] gives a program started there a terminal of the target's own devpts.
//!
//! A [`Target`] pins the process with a pidfd, so a recycled pid is never entered.
//!
//! ```no_run
//! use nsenter_core::{run_in, Namespace, Pid, Target};
//! let target = Target::open(Pid::try_from(1234)?)?;
//! // A socket opened inside stays in the container's network namespace for its whole life.
//! let listener = run_in(&target, Namespace::Net.into(), || std::net::TcpListener::bind("127.0.0.1:0"))??;
//! println!("listening inside the container on {}", listener.local_addr()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything here needs root (CAP_SYS_ADMIN) to enter another process's namespaces, and
//! Linux >= 5.8 for pidfds (older kernels fall back to namespace files).
#![deny(missing_docs)]

pub mod cgroup;
mod child;
mod command;
mod confine;
mod error;
mod guard;
mod kind;
pub mod mountinfo;
mod pid;
pub mod powers;
pub mod pty;
mod relay;
pub use relay::SignalsBlocked;
mod scoped;
mod signal;
pub mod status;
mod sys;
mod target;
pub mod trust;
pub mod user;

pub use command::{Child, Command, RootDir, SignalForwarding, Stdio, WaitEvent, WorkDir};
pub use confine::Confinement;
pub use error::{Error, Result, SpawnStep};
pub use guard::{NsGuard, ThreadNamespaces};
pub use kind::{Namespace, NamespaceSet};
pub use pid::Pid;
pub use scoped::run_in;
pub use signal::Signal;
pub use target::{kernel_supports, NamespaceId, Target, TargetId};
pub use trust::Trust;
