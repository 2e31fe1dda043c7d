//! Why links could not be read or changed.

use std::io;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a netlink request, or entering the namespace to make it, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A netlink request failed.
    #[error("netlink {request} failed")]
    Netlink {
        /// The request (`RTM_GETLINK`, `RTM_SETLINK`...).
        request: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A network namespace could not be entered or opened.
    #[error(transparent)]
    Namespace(#[from] nsenter_core::Error),
    /// The calling thread's own network namespace could not be opened.
    #[error("cannot open the calling thread's network namespace")]
    OwnNamespace(#[source] io::Error),
}
