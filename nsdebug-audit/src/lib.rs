#![doc = include_str!("../README.md")]
//! What a container is really isolated from, read from the kernel (procfs, cgroupfs), not
//! from what a runtime was asked for — and built not to be fooled by the container:
//!
//! - every process of the container is audited (its cgroups' processes and its pid
//!   namespace's), and the most powerful one is named with its powers; the bounding set and
//!   NoNewPrivs say what a process could regain;
//! - mounts are judged by what they expose: each is traced to the host path it shows
//!   (device and mountinfo root against the host's mounts), runtime sockets reachable
//!   beneath any mount are found by looking them up inside the container;
//! - what every process and thread holds (fds, cwd, root, mapped files) is placed, also on
//!   a mount in no table (lazily unmounted): by device and inode against the host's mounts;
//! - the runtime's [`Record`] (its recorded mounts) is checked against the kernel's mount
//!   tables ([`audit_with`]), and the runtimes' own mounts are known by their source;
//! - it fails closed: a fact that cannot be read or parsed is an [`Unknown`] with the reason,
//!   never a finding and never a pass.
//!
//! ```no_run
//! use nsdebug_audit::{audit, Host};
//! let host = Host::read(1);
//! let container = nsenter_core::Target::open(nsenter_core::Pid::try_from(4242)?)?;
//! let report = audit(&container, &host)?;
//! for finding in &report.findings {
//!     println!("{} {} {} [{}]", finding.severity, finding.id, finding.title, finding.evidence);
//! }
//! for unknown in &report.unknowns {
//!     println!("unknown {}: {}", unknown.id, unknown.reason);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Reading other processes' `/proc` files and cgroups needs root on the host.
#![deny(missing_docs)]

mod audit;
pub mod cgroup;
mod error;
pub mod mounts;
mod record;
mod report;
pub mod status;
mod sys;

pub use audit::{audit, audit_with, powers_of, Host, HostReport, FINDING_IDS};
pub use error::{Error, Result};
pub use record::{Record, RecordedDevice, RecordedMount};
pub use report::{human_size, Finding, Powers, Report, Severity, Unknown};
