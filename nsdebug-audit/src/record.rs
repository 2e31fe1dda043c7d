//! What the container's runtime recorded of it (Docker's and Podman's inspect, the CRI's
//! status), handed to the audit as plain data by the caller that asked the runtime: the
//! audit reads the kernel, and this is what the kernel's view is checked against.

/// The runtime's record of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// `docker`, `podman`, `cri`, `containerd`; empty when no runtime knows the target.
    pub runtime: String,
    /// The container's own ids (container, pod sandbox): its runtime mounts are recognised
    /// only in the directories named after them.
    pub ids: Vec<String>,
    /// The bind mounts the runtime made (Docker's and Podman's `Mounts`).
    pub mounts: Vec<RecordedMount>,
    /// Whether it was run privileged (`--privileged`).
    pub privileged: bool,
    /// The capabilities it was given beyond the default (`--cap-add`), as the runtime
    /// spells them (`SYS_ADMIN`, `CAP_SYS_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
}

/// One mount the runtime recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMount {
    /// `bind`, `volume`, `tmpfs`...
    pub kind: String,
    /// The host path it shows (for a bind mount).
    pub source: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// Whether it was made writable.
    pub writable: bool,
}
