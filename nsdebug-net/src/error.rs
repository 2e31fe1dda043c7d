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
    /// A peer could not be set up or down.
    #[error("setting {name} ({place}) {direction}")]
    SetLink {
        /// The peer's name.
        name: String,
        /// Its namespace ([`Place::name`](crate::peer::Place::name)).
        place: String,
        /// `up` or `down`.
        direction: &'static str,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// The interface's other end is its parent device: taking that down or up would change
    /// everything on it, the host's own traffic included.
    #[error("{interface} is a {kind} on {parent} ({place}): taking {parent} {direction} would cut off everything on it, the host included; refusing")]
    ParentDevice {
        /// The container's interface.
        interface: String,
        /// Its kind (`macvlan`...).
        kind: String,
        /// The parent device.
        parent: String,
        /// The parent's namespace.
        place: String,
        /// `up` or `down`.
        direction: &'static str,
    },
    /// The interface's peer is in a namespace none of those found has the id of.
    #[error("the peer of {interface} is in a namespace (netnsid {netnsid}) that cannot be found")]
    PeerUnreachable {
        /// The container's interface.
        interface: String,
        /// The id its namespace gives the peer's.
        netnsid: i32,
    },
    /// The interface named has no peer.
    #[error("{interface} has no peer (kind {kind})")]
    NoPeer {
        /// The container's interface.
        interface: String,
        /// Its kind (`none` when it has none).
        kind: String,
    },
    /// A record of what was taken down could not be read or written.
    #[error("{what}")]
    Record {
        /// What was being done (`reading /run/nsdebug/veth-down-4-4026532290`).
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The records' directory could be written by someone else, who could make a peer be
    /// brought up, or kept down.
    #[error("{}: owned by uid {uid} with mode {mode:o}: not ours alone; refusing to use it", path.display())]
    UnsafeRecordDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
}
