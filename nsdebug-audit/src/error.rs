//! Why a target could not be audited at all. A single fact that cannot be read is not an
//! error: it is an [`Unknown`](crate::Unknown) in the report.

use std::io;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a target could not be audited.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target is a namespace file, not a process: it has no capabilities, mounts or cgroups.
    #[error("{target} is a namespace file, not a process: nothing to audit")]
    NotAProcess {
        /// The target, as nsenter-core names it.
        target: String,
    },
    /// The process exited before or during the audit (its container stopped or restarted).
    #[error("pid {pid} exited during the audit (the container stopped or restarted)")]
    Gone {
        /// The pid that was audited.
        pid: i32,
    },
    /// Its `/proc/PID` directory could not be opened.
    #[error("cannot open /proc/{pid}")]
    Proc {
        /// The pid.
        pid: i32,
        /// Why.
        #[source]
        source: io::Error,
    },
}
