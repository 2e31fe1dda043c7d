//! The `--json` contract of every `nsdebug` subcommand, as types: the tables of
//! `docs/json.md` written once more in Rust. Every struct denies unknown fields and every field a
//! command always prints is required, so a test that parses real output into these types
//! fails when a field is added, renamed, dropped or changes type without `docs/json.md`
//! (and these types) being changed with it.

use serde::Deserialize;

/// The target, as every `--json` output names it (and `ps --json` lists containers).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// One line for people: `docker container web (3f2a1b0c9d8e), pid 4242`.
    pub description: String,
    /// The host pid entered (`null` for a namespace file).
    pub pid: Option<i32>,
    /// `docker`, `podman`, `containerd` or `cri`; absent for a pid or namespace file.
    pub runtime: Option<String>,
    /// The runtime's full container ID.
    pub id: Option<String>,
    /// The runtime's name (`NS/POD/CONTAINER` through the CRI).
    pub name: Option<String>,
    /// containerd namespace, or the Kubernetes namespace through the CRI.
    pub namespace: Option<String>,
    /// The runtime's status word.
    pub status: Option<String>,
    /// Docker/Podman network mode.
    pub network_mode: Option<String>,
    /// Image.
    pub image: Option<String>,
    /// IPv4 address on its first network.
    pub ip: Option<String>,
    /// Exit code, once stopped.
    pub exit_code: Option<i64>,
    /// Docker's OOMKilled.
    pub oom_killed: Option<bool>,
    /// When it stopped, once it stopped.
    pub finished_at: Option<String>,
    /// Its memory limit in bytes, when it has one.
    pub memory_limit: Option<i64>,
    /// Kubernetes names, when known.
    pub kubernetes: Option<Kubernetes>,
    /// The attempt of a CRI container (0 first, one more per restart).
    pub attempt: Option<u32>,
}

/// `why --json`: how a container ended (or that it runs).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Why {
    /// The target object.
    pub target: Target,
    /// The run shown (for a pod: the attempt found).
    pub current: Run,
    /// A pod's attempt before it.
    pub previous: Option<Run>,
    /// Docker's RestartCount; kubelet's restart count (else the attempt) through the CRI.
    pub restart_count: Option<u64>,
    /// Docker's restart policy (`no`, `always`, `on-failure:3`...); absent through the CRI.
    pub restart_policy: Option<String>,
    /// Bytes; absent when there is none.
    pub memory_limit: Option<u64>,
    /// Absent when there is none.
    pub pids_limit: Option<i64>,
    /// The cgroup's OOM-kill counter (a running container).
    pub cgroup_oom_kills: Option<u64>,
    /// `oom-kill` records of the kernel log naming the container's cgroup.
    pub kernel_oom_kills: Option<u64>,
    /// The end of its log.
    pub log: WhyLog,
    /// What audit says (a running container).
    pub audit: Option<WhyAudit>,
}

/// One run of a container in `why --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// `running`, `exited`, `created`, `restarting`...
    pub state: String,
    /// The CRI attempt.
    pub attempt: Option<u32>,
    /// Once it ended.
    pub exit_code: Option<i64>,
    /// `SIGKILL` for exit code 137.
    pub signal: Option<String>,
    /// The runtime's record.
    pub oom_killed: Option<bool>,
    /// The runtime's word (CRI reason: message, Docker's error).
    pub reason: Option<String>,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
}

/// The end of a log in `why --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WhyLog {
    /// `docker API`, `podman API`, `CRI log PATH, attempt N`.
    pub source: String,
    /// The last lines, as written.
    pub lines: Vec<String>,
    /// More was there.
    pub truncated: bool,
    /// Why there is none.
    pub error: Option<String>,
}

/// `audit` in short in `why --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WhyAudit {
    /// `severity id`, worst first.
    pub findings: Vec<String>,
    /// How many facts could not be read.
    pub unknowns: usize,
    /// Why it could not be audited.
    pub error: Option<String>,
}

/// Where a CRI container sits in Kubernetes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container; `null` for the pod's sandbox.
    pub container: Option<String>,
}

/// One row of `ps --json` (an array of them): the target's runtime fields and two of its own.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PsRow {
    /// As in [`Target`].
    pub runtime: String,
    /// As in [`Target`].
    pub id: String,
    /// As in [`Target`].
    pub name: String,
    /// As in [`Target`].
    pub namespace: Option<String>,
    /// As in [`Target`]: `null` when not running.
    pub pid: Option<i32>,
    /// As in [`Target`].
    pub status: String,
    /// As in [`Target`].
    pub network_mode: Option<String>,
    /// As in [`Target`].
    pub image: Option<String>,
    /// As in [`Target`].
    pub ip: Option<String>,
    /// As in [`Target`].
    pub exit_code: Option<i64>,
    /// As in [`Target`].
    pub oom_killed: Option<bool>,
    /// When it stopped, once it stopped.
    pub finished_at: Option<String>,
    /// Its memory limit in bytes, when it has one.
    pub memory_limit: Option<i64>,
    /// As in [`Target`].
    pub kubernetes: Option<Kubernetes>,
    /// Namespaces identical to the host's; `null` when they could not be compared.
    pub shared_with_host: Option<Vec<String>>,
    /// OOM kills counted in its memory cgroup (running containers).
    pub oom_kills: Option<u64>,
}

/// `veth --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Veth {
    /// The target.
    pub target: Target,
    /// `own`, `host` or `none`.
    pub network: String,
    /// Why there is nothing to list (`host`, `none`).
    pub message: Option<String>,
    /// Its interfaces.
    pub interfaces: Vec<Interface>,
}

/// One interface in `veth --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Name inside.
    pub name: String,
    /// Index inside.
    pub ifindex: u32,
    /// Link kind (`veth`, `macvlan`...).
    pub kind: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// Addresses with prefix length.
    pub addresses: Vec<String>,
    /// Operational state.
    pub state: String,
    /// The veth peer.
    pub peer: Option<Peer>,
    /// The parent of a macvlan/ipvlan/vlan.
    pub parent: Option<Peer>,
    /// Why the other end could not be found.
    pub unreachable: Option<String>,
}

/// The other end of an interface.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its name.
    pub name: String,
    /// Its index in its namespace.
    pub ifindex: u32,
    /// `host`, or which other namespace.
    pub namespace: String,
    /// Bridge it is enslaved to.
    pub master: Option<String>,
    /// The Docker network whose bridge `master` is.
    pub network: Option<String>,
    /// `veth --down` took it down.
    pub taken_down_by_nsdebug: bool,
    /// Operational state.
    pub state: String,
    /// Counters.
    pub rx_bytes: u64,
    /// Counters.
    pub tx_bytes: u64,
    /// Counters.
    pub rx_dropped: u64,
    /// Counters.
    pub tx_dropped: u64,
}

/// `mem --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mem {
    /// The target.
    pub target: Target,
    /// Its memory cgroup.
    pub memory: Memory,
    /// Its processes by RSS.
    pub processes: Vec<MemProcess>,
}

/// The memory cgroup in `mem --json`; `null` where the cgroup version has no such file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// `v1` or `v2`.
    pub cgroup: String,
    /// Bytes.
    pub usage: Option<u64>,
    /// Bytes; `null`: no limit.
    pub limit: Option<u64>,
    /// Bytes.
    pub peak: Option<u64>,
    /// Bytes.
    pub page_cache: Option<u64>,
    /// Bytes.
    pub anonymous: Option<u64>,
    /// Count.
    pub oom_kills: Option<u64>,
    /// Count (v2).
    pub oom_group_kills: Option<u64>,
    /// Whether it is under OOM now.
    pub under_oom: Option<bool>,
    /// Whether the OOM killer is disabled (v1).
    pub oom_kill_disabled: Option<bool>,
}

/// One process in `mem --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemProcess {
    /// Its pid in the container.
    pub container_pid: i32,
    /// Its pid on the host.
    pub host_pid: i32,
    /// Its command name.
    pub command: String,
    /// Resident bytes.
    pub rss: u64,
}

/// `pid --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pids {
    /// The target.
    pub target: Target,
    /// The pids asked for (every process without arguments).
    pub processes: Vec<PidProcess>,
}

/// One process in `pid --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PidProcess {
    /// Its pid in the container.
    pub container_pid: i32,
    /// Its pid on the host.
    pub host_pid: i32,
    /// Its command name.
    pub command: String,
}

/// `audit --json` (schema 2).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// 2.
    pub schema: u32,
    /// What holds for every container on this host.
    pub host: AuditHost,
    /// One entry per target.
    pub containers: Vec<AuditContainer>,
    /// The counts and the exit status.
    pub verdict: Verdict,
}

/// The host section of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditHost {
    /// The host process the facts were read from.
    pub pid: i32,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Findings accepted with `--ignore`.
    pub ignored: Vec<Finding>,
    /// Facts that could not be read.
    pub unknowns: Vec<Unknown>,
}

/// One container of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditContainer {
    /// The target.
    pub target: Target,
    /// Why it was not audited; `null` when it was.
    pub error: Option<String>,
    /// Host pids audited.
    pub processes: Vec<i32>,
    /// The process holding most powers.
    pub most_powerful: Option<Powers>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Findings accepted with `--ignore`.
    pub ignored: Vec<Finding>,
    /// Facts that could not be read.
    pub unknowns: Vec<Unknown>,
}

/// A finding of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Stable id (`root`, `caps.extra`...).
    pub id: String,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    /// One line.
    pub title: String,
    /// What was read.
    pub evidence: String,
    /// The process it is about.
    pub pid: Option<i32>,
    /// Every process it holds for.
    pub pids: Vec<i32>,
}

/// An unknown fact of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Unknown {
    /// What was to be established.
    pub id: String,
    /// The process it is about.
    pub pid: Option<i32>,
    /// Why it is unknown.
    pub reason: String,
}

/// The most powerful process of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Powers {
    /// Host pid (a thread's when the power is a thread's own).
    pub pid: i32,
    /// Its process, when `pid` is a thread.
    pub thread_of: Option<i32>,
    /// Command name.
    pub comm: String,
    /// Its powers.
    pub powers: Vec<String>,
    /// The most severe.
    pub severity: Option<String>,
}

/// The verdict of `audit --json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Targets.
    pub containers: usize,
    /// Targets that could not be audited.
    pub not_audited: usize,
    /// Findings by severity.
    pub critical: usize,
    /// Findings by severity.
    pub high: usize,
    /// Findings by severity.
    pub medium: usize,
    /// Findings by severity.
    pub low: usize,
    /// Findings by severity.
    pub info: usize,
    /// Unknown facts.
    pub unknown: usize,
    /// Ignored findings.
    pub ignored: usize,
    /// nsdebug's exit status.
    pub exit: u8,
    /// The closing line.
    pub line: String,
}

/// One line of `flow --json` (and `tcpflow-lite --json`, without `summary`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase", deny_unknown_fields)]
pub enum FlowEvent {
    /// A connection's first packet.
    Open {
        /// Capture time of that packet, seconds since the epoch.
        ts: f64,
        /// tcpflow's name of its first direction.
        flow: String,
        /// Unique within the run.
        id: u64,
        /// Its addresses and ports.
        endpoints: Endpoints,
    },
    /// Bytes that never came.
    Gap {
        /// Capture time of the packet that made the gap final.
        ts: f64,
        /// tcpflow's name of the direction.
        flow: String,
        /// The connection.
        id: u64,
        /// Where in the stream.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// A connection's end.
    Close {
        /// Capture time of its last packet.
        ts: f64,
        /// tcpflow's name of its first direction.
        flow: String,
        /// The connection.
        id: u64,
        /// `fin`, `rst`, `idle`, `evicted`, `end of capture`...
        reason: String,
        /// Per direction counts.
        directions: [Direction; 2],
    },
    /// The last line of `nsdebug flow --json`.
    Summary {
        /// When the capture ended (wall clock), seconds since the epoch.
        ts: f64,
        /// The target (boxed: the largest variant by far).
        target: Box<Target>,
        /// Packets read.
        packets: u64,
        /// Packets the kernel dropped.
        kernel_dropped: u64,
        /// Connections.
        flows: u64,
        /// Bytes reassembled.
        bytes: u64,
        /// Gaps.
        gaps: u64,
        /// Bytes missing.
        gap_bytes: u64,
        /// Overlaps whose bytes disagreed.
        conflicts: u64,
        /// Flows dropped on a write error.
        failed_flows: u64,
        /// The files' use of the disk (null without `-o` files).
        disk: Option<Box<Disk>>,
        /// `signal`, `target exited` or `limit`.
        stopped_by: String,
    },
}

/// What the files of `nsdebug flow` took, and what `--max-files`/`--max-disk-bytes` kept off
/// the disk.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Files created.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Directions not written (a bound was reached before their file).
    pub directions_not_written: u64,
    /// Bytes not written.
    pub bytes_not_written: u64,
    /// `--max-files` or `--max-disk-bytes`, the first bound reached, or null.
    pub bound_reached: Option<String>,
}

/// Addresses and ports of a connection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Source address of the first direction.
    pub src: String,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: String,
    /// Destination port.
    pub dport: u16,
    /// 802.1Q VLAN id.
    pub vlan: Option<u16>,
}

/// One direction of a closed connection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Direction {
    /// tcpflow's name.
    pub name: String,
    /// Bytes reassembled.
    pub bytes: u64,
    /// Gaps.
    pub gaps: u64,
    /// Bytes missing.
    pub gap_bytes: u64,
    /// Bytes received twice.
    pub duplicate_bytes: u64,
    /// Overlaps whose bytes disagreed.
    pub conflicts: u64,
    /// Bytes in those overlaps.
    pub conflict_bytes: u64,
    /// Gaps declared early for the out-of-order limit.
    pub forced_gaps: u64,
}

/// Parses `text` as `T`, or panics with the text and serde's complaint (which field).
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &[u8]) -> T {
    serde_json::from_slice(text).unwrap_or_else(|error| {
        panic!(
            "{what}: not the documented JSON ({error}):\n{}",
            String::from_utf8_lossy(text)
        )
    })
}
