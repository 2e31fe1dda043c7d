//! What an audit produces: findings with severities and evidence, and the facts that could
//! not be established ("unknown"), each with the pid it is about. This is the JSON schema
//! `nsdebug audit --json` prints (see the crate README).

use std::fmt;

use serde::Serialize;

/// A size as every nsdebug command shows it: `512 B`, `64.0 MiB` (binary units, one
/// decimal). `nsdebug mem` uses it too.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Weakens isolation a little.
    Low,
    /// Weakens isolation.
    Medium,
    /// Breaks an isolation boundary.
    High,
    /// Hands the container the host.
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Parses `info`, `low`, `medium`, `high`, `critical`.
    pub fn parse(word: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One finding: a stable id, its severity, what it means, the kernel's evidence and the
/// process it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `namespace.net`, `caps.extra`, `cgroup.cpu`.
    pub id: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it means.
    pub title: String,
    /// What the kernel said.
    pub evidence: String,
    /// The process the finding is about (the most powerful holder), if it is about one: a
    /// thread id when only a thread (not its process's main thread) holds it.
    pub pid: Option<i32>,
    /// Every process (or thread) of the container the finding applies to (empty when not
    /// about processes).
    pub pids: Vec<i32>,
}

impl Finding {
    /// A finding about no particular process.
    pub fn new(
        id: &str,
        severity: Severity,
        title: impl Into<String>,
        evidence: impl Into<String>,
    ) -> Finding {
        Finding {
            id: id.to_owned(),
            severity,
            title: title.into(),
            evidence: evidence.into(),
            pid: None,
            pids: Vec::new(),
        }
    }

    /// The same finding about process `pid` (and `pids`, all the processes it applies to).
    pub fn about(mut self, pid: i32, pids: Vec<i32>) -> Finding {
        self.pid = Some(pid);
        self.pids = pids;
        self
    }
}

/// A fact that could not be read or parsed: neither a finding nor a pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unknown {
    /// What was to be established, e.g. `process.status`, `cgroup.cpu`, `mounts`.
    pub id: String,
    /// The process it is about, if any.
    pub pid: Option<i32>,
    /// Why it is unknown: what could not be read or parsed, and the error.
    pub reason: String,
}

impl Unknown {
    /// An unknown fact.
    pub fn new(id: &str, pid: Option<i32>, reason: impl Into<String>) -> Unknown {
        Unknown {
            id: id.to_owned(),
            pid,
            reason: reason.into(),
        }
    }
}

/// The powers one process holds: what makes it the most powerful one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Powers {
    /// Its host pid (a thread id when the power is a thread's own).
    pub pid: i32,
    /// The process the thread `pid` belongs to, when it is not the process's main thread.
    pub thread_of: Option<i32>,
    /// Its command name (`Name:` of its status).
    pub comm: String,
    /// Its powers, e.g. `CAP_SYS_ADMIN`, `seccomp off`, `no NoNewPrivs`, `uid 0`.
    pub powers: Vec<String>,
    /// The most severe of them (none: it holds nothing worth a finding).
    pub severity: Option<Severity>,
}

/// The audit of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The host pid of the audited (init) process.
    pub pid: i32,
    /// The host pids of every process audited: the container's cgroups and pid namespace.
    pub processes: Vec<i32>,
    /// The process holding the most powers, and which.
    pub most_powerful: Option<Powers>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Facts that could not be established.
    pub unknowns: Vec<Unknown>,
}

impl Report {
    pub(crate) fn sort(&mut self) {
        self.findings
            .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    }
}
