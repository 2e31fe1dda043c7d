//! Why a TARGET could not be resolved and pinned.

/// Why a TARGET could not be resolved to a pinned process or namespace file.
///
/// Each message is one line that names the target; a caller matches on the variant to decide
/// (retry after [`Error::Restarted`], tell the user to unpause after [`Error::Frozen`]...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// TARGET is no target any resolver takes (empty, control characters, `pid:` without a
    /// number, a malformed pod name, a pod whose namespace or container the options
    /// contradict, a pod with the CRI excluded).
    #[error("{message}")]
    InvalidTarget {
        /// TARGET as given.
        spec: String,
        /// What is wrong with it, naming it.
        message: String,
    },
    /// Nothing knows TARGET.
    #[error("{spec}: no such container or namespace{hint}; tried {}", tried.join("; "))]
    NotFound {
        /// TARGET as given (for a pod, `pod NAMESPACE/NAME`).
        spec: String,
        /// A suggestion, with its leading space: ` (did you mean ux-web?)`, or empty.
        hint: String,
        /// Every place asked and what each said, unreachable runtimes included.
        tried: Vec<String>,
    },
    /// TARGET names more than one thing: a pid and a container, or several containers.
    #[error("{message}")]
    Ambiguous {
        /// TARGET as given.
        spec: String,
        /// What it names, and how to say which one.
        message: String,
    },
    /// A bare number that names a process of the host itself (its init, a kernel thread):
    /// refused unless the caller says `pid:N` (or [`RuntimeKind::Pid`](crate::RuntimeKind)).
    #[error("{message}")]
    HostProcess {
        /// The pid.
        pid: i32,
        /// Which process it is and how to enter it anyway.
        message: String,
    },
    /// The container (or pod sandbox) exists and is not running.
    #[error("{what} is not running (status: {status})")]
    NotRunning {
        /// The container, as [`ContainerInfo::describe`](crate::ContainerInfo::describe) says.
        what: String,
        /// The runtime's status word (`exited`, `paused`, `created`...).
        status: String,
    },
    /// A pod's newest sandbox is not ready (stopped): nothing of it runs.
    #[error("{pod}: its sandbox {sandbox} is not ready (stopped): nothing to enter")]
    SandboxNotReady {
        /// `pod NAMESPACE/NAME (CRI ENDPOINT)`.
        pod: String,
        /// The sandbox's short ID.
        sandbox: String,
    },
    /// A pod has no container of the name asked for (or none at all yet).
    #[error("{pod} has no {}; containers: {}",
        container.as_ref().map_or("containers yet".to_owned(), |c| format!("container {c}")),
        if containers.is_empty() { "none".to_owned() } else { containers.join(", ") })]
    NoSuchContainer {
        /// `pod NAMESPACE/NAME`.
        pod: String,
        /// The container asked for; `None` when the pod has none to choose from.
        container: Option<String>,
        /// The pod's containers.
        containers: Vec<String>,
    },
    /// The container restarted between the runtime's answer and the pinning of its process:
    /// the pid the runtime gave now belongs to someone else (or to nobody). Ask again.
    #[error("{what} restarted while nsdebug was looking it up; try again")]
    Restarted {
        /// The container.
        what: String,
    },
    /// The target's cgroup is frozen (`docker pause`, a paused task): entering it would hang.
    #[error("{what} is paused (its cgroup is frozen): unpause it first")]
    Frozen {
        /// The target.
        what: String,
    },
    /// A runtime that had to answer could not be asked (no socket, permission denied,
    /// nothing listening, no answer in time).
    #[error("{what}: {cause}")]
    Unreachable {
        /// What was being looked up.
        what: String,
        /// The runtime and why it could not be asked, e.g. `docker (unix:///var/run/docker.sock):
        /// nothing listens on /var/run/docker.sock (is the daemon running?)`.
        cause: String,
    },
    /// What a runtime answered is not what the kernel shows (a pid outside the container, a
    /// namespace path where runtimes keep none, a socket of another user): refused.
    #[error("{message}")]
    Unconfirmed {
        /// What did not match, naming the container and the pid or path.
        message: String,
    },
    /// A runtime answered with an error of its own (an ambiguous ID prefix, say).
    #[error("{runtime} {spec}: {message}")]
    Runtime {
        /// `docker`, `podman`, `containerd` or `cri`.
        runtime: &'static str,
        /// What it was asked about.
        spec: String,
        /// Its answer.
        message: String,
    },
    /// The process or namespace file could not be opened (gone, permission denied...).
    #[error(transparent)]
    Open(#[from] nsenter_core::Error),
    /// A container's process or namespace file could not be opened.
    #[error("{what}: {error}")]
    OpenContainer {
        /// The container.
        what: String,
        /// Why.
        error: nsenter_core::Error,
    },
}

/// A [`Result`](std::result::Result) with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
