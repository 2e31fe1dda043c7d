//! `nsdebug why TARGET`: how a container ended, on one screen: exit code or signal, OOM kill
//! (the runtime's record, and the cgroup's `oom_kill` counter while the cgroup exists), when it
//! started and finished, restarts and restart policy (for a pod: the attempt shown and the
//! previous one), its memory and pids limits, the last lines of its log, and for a running
//! container what `audit` says. Read from the runtime's API and the kernel; a container that
//! is not running is never started.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use nsenter_core::Pid;
use serde::Serialize;

use crate::cli::{block_on, Failure, LookupArgs};
use nsdebug_resolve::{docker::Engine, ContainerInfo, API_TIMEOUT};

// Arguments of `nsdebug why`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::WHY, long_about = None)]
pub struct WhyArgs {
    /// The container or pod (running, exited, restarting or crash-looping).
    target: String,
    /// JSON instead of a page.
    #[arg(long)]
    json: bool,
    /// How many of the last log lines to show (at most 1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(0..=1000))]
    lines: u16,
    #[command(flatten)]
    lookup: LookupArgs,
}

/// The most of a log nsdebug reads (its end), whatever the container wrote.
const LOG_BYTES: usize = 64 * 1024;
/// The most of one log line shown.
const LINE_CHARS: usize = 512;

/// How one run (a CRI attempt) of the container went.
#[derive(Serialize, Debug, Default)]
struct Run {
    /// `running`, `exited`, `created`, `restarting`...
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    /// The signal an exit code above 128 stands for (`SIGKILL` for 137).
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    /// The runtime's record: Docker's `OOMKilled`, the CRI's reason `OOMKilled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_killed: Option<bool>,
    /// The runtime's word on the end (CRI reason and message, Docker's error).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
}

/// The last lines of a log and where they came from.
#[derive(Serialize, Debug, Default)]
struct Log {
    /// `docker API`, `podman API` or the CRI log file.
    source: String,
    /// As the container wrote them (`--json`); escaped on a terminal.
    lines: Vec<String>,
    /// More was there than was read.
    truncated: bool,
    /// Why there is no log, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What `audit` says of a running container, in short.
#[derive(Serialize, Debug, Default)]
struct AuditSummary {
    /// `severity id`, worst first.
    findings: Vec<String>,
    unknowns: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Everything `why` says.
#[derive(Serialize, Debug, Default)]
struct Why {
    target: serde_json::Value,
    /// The run shown (for a pod: the current attempt).
    current: Run,
    /// The run before (a pod's previous attempt, `kubectl`'s lastState).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_policy: Option<String>,
    /// Bytes; `None` when there is none or it is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pids_limit: Option<i64>,
    /// The cgroup's `oom_kill` counter, while the cgroup exists (a running container).
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_oom_kills: Option<u64>,
    /// The kernel log's `oom-kill` records of a task in the container's cgroup (since boot, as
    /// far as the log reaches back): the kernel's word after the cgroup is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_oom_kills: Option<u64>,
    log: Log,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<AuditSummary>,
}

/// Runs `nsdebug why`.
pub fn run(args: WhyArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let lines = usize::from(args.lines);
    let digits = args.target.strip_prefix("pid:").unwrap_or(&args.target);
    if args.target.starts_with('/')
        || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(anyhow!(
            "{}: why needs a container or a pod (a process or namespace file keeps no record of how it ended)",
            super::shown(&args.target)
        )
        .into());
    }
    let (info, mut why) = block_on(async {
        let info = super::record(&args.target, &options).await?;
        let why = match (info.runtime, &info.cri) {
            ("cri", Some(cri)) => from_cri(&info, &cri.endpoint, lines).await?,
            ("docker", _) => from_engine(&Engine::docker(), &info, lines).await?,
            ("podman", _) => from_engine(&Engine::podman(), &info, lines).await?,
            (runtime, _) => {
                return Err(anyhow!(
                    "{}: why needs Docker, Podman or the CRI; {runtime} keeps no exit record nsdebug reads",
                    info.describe()
                ))
            }
        };
        Ok::<_, anyhow::Error>((info, why))
    })??;
    let what = info.describe();
    why.target = super::unresolved_target_json(&what, Some(&info));
    why.kernel_oom_kills = crate::kernel_log::oom_kills(&info.id);
    if info.pid.is_some() {
        running_facts(&info, &mut why);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&why)?);
    } else {
        print_page(&what, &why);
    }
    Ok(ExitCode::SUCCESS)
}

/// The kernel's view of a running container: its cgroup's OOM kills and limit, and `audit`.
fn running_facts(info: &ContainerInfo, why: &mut Why) {
    let resolved = match block_on(nsdebug_resolve::pin(info.clone())) {
        Ok(Ok(resolved)) => resolved,
        // It stopped meanwhile: the runtime's record stands alone.
        _ => return,
    };
    // The same target object as every command gives a running container (its pid named).
    why.target = super::target_json(&resolved);
    if let Some(pid) = resolved.target.pid().map(Pid::get) {
        if let Ok(memory) = super::mem::memory_of(pid) {
            why.cgroup_oom_kills = memory.oom_kills;
            why.memory_limit = why.memory_limit.or(memory.limit);
        }
    }
    let mut summary = AuditSummary::default();
    match nsdebug_resolve::host_reference()
        .map_err(|e| e.to_string())
        .and_then(|host| {
            let host = nsdebug_audit::Host::read(host.pid().map_or(1, Pid::get));
            nsdebug_audit::audit(&resolved.target, &host).map_err(|e| e.to_string())
        }) {
        Ok(mut report) => {
            report
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
            summary.findings = report
                .findings
                .iter()
                .map(|f| format!("{} {}", f.severity, f.id))
                .collect();
            summary.unknowns = report.unknowns.len();
        }
        Err(why) => summary.error = Some(why),
    }
    why.audit = Some(summary);
}

/// Docker and Podman: the inspect record and the log through the engine's API.
async fn from_engine(engine: &Engine, info: &ContainerInfo, lines: usize) -> anyhow::Result<Why> {
    let client = engine.connect().map_err(|e| anyhow!(e))?;
    let inspected = tokio::time::timeout(API_TIMEOUT, client.inspect_container(&info.id, None))
        .await
        .map_err(|_| anyhow!("{}: no answer within {API_TIMEOUT:?}", info.describe()))?
        .with_context(|| info.describe())?;
    let state = inspected.state.unwrap_or_default();
    let host = inspected.host_config.unwrap_or_default();
    let ran = state
        .started_at
        .as_deref()
        .is_some_and(|t| !t.starts_with("0001-"));
    // A restarting container is "running" to Docker between two attempts: its last end counts.
    let stopped = !state.running.unwrap_or(false) || state.restarting.unwrap_or(false);
    let exit_code = state.exit_code.filter(|_| stopped && ran);
    let time = |t: Option<String>| t.filter(|t| !t.starts_with("0001-"));
    let current = Run {
        state: info.status.clone(),
        attempt: None,
        exit_code,
        signal: exit_code.and_then(signal_of),
        oom_killed: state.oom_killed.filter(|_| ran),
        reason: state.error.filter(|e| !e.is_empty()),
        started_at: time(state.started_at),
        finished_at: time(state.finished_at).filter(|_| stopped),
    };
    let policy = host.restart_policy.map(|p| {
        let name = p
            .name
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "no".to_owned());
        match p.maximum_retry_count {
            Some(n) if n > 0 => format!("{name}:{n}"),
            _ => name,
        }
    });
    let log = engine_log(&client, engine_name(info), &info.id, lines).await;
    Ok(Why {
        current,
        restart_count: inspected.restart_count.and_then(|n| u64::try_from(n).ok()),
        restart_policy: policy,
        memory_limit: host
            .memory
            .and_then(|m| u64::try_from(m).ok())
            .filter(|m| *m > 0),
        pids_limit: host.pids_limit.filter(|p| *p > 0),
        log,
        ..Default::default()
    })
}

fn engine_name(info: &ContainerInfo) -> &'static str {
    if info.runtime == "podman" {
        "podman API"
    } else {
        "docker API"
    }
}

/// The end of a container's log through `GET /containers/ID/logs?tail=N`, bounded in bytes and
/// time whatever the container wrote.
async fn engine_log(client: &bollard::Docker, source: &str, id: &str, lines: usize) -> Log {
    use futures_util::StreamExt;
    let mut log = Log {
        source: source.to_owned(),
        ..Default::default()
    };
    if lines == 0 {
        return log;
    }
    let options = bollard::query_parameters::LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = client.logs(id, Some(options));
    let mut tail = Tail::default();
    let read = tokio::time::timeout(API_TIMEOUT, async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => {
                    if !tail.push(&output.into_bytes()) {
                        break;
                    }
                }
                Err(error) => return Err(error.to_string().replace('\n', " ")),
            }
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => {}
        Ok(Err(error)) => log.error = Some(error),
        Err(_) => log.error = Some(format!("no answer within {API_TIMEOUT:?}")),
    }
    (log.lines, log.truncated) = tail.lines(lines);
    log
}

/// The end of a byte stream: keeps the last [`LOG_BYTES`] of at most 16 times as many read.
#[derive(Default)]
struct Tail {
    kept: std::collections::VecDeque<u8>,
    read: usize,
    dropped: bool,
}

impl Tail {
    /// Adds bytes; false once enough was read.
    fn push(&mut self, bytes: &[u8]) -> bool {
        self.read += bytes.len();
        self.kept.extend(bytes);
        if self.kept.len() > LOG_BYTES {
            let extra = self.kept.len() - LOG_BYTES;
            self.kept.drain(..extra);
            self.dropped = true;
        }
        self.read < 16 * LOG_BYTES
    }

    /// The last `count` lines (a first line cut by the bound is left out), and whether
    /// anything was left out.
    fn lines(self, count: usize) -> (Vec<String>, bool) {
        let bytes: Vec<u8> = self.kept.into_iter().collect();
        let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut truncated = self.dropped;
        if self.dropped && lines.len() > 1 {
            lines.remove(0);
        }
        if lines.len() > count {
            lines.drain(..lines.len() - count);
            truncated = true;
        }
        let lines = lines
            .into_iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        (lines, truncated)
    }
}

/// A pod's container through the CRI: the attempt found and the one before, with kubelet's
/// restart count and the log file the runtime reports.
async fn from_cri(info: &ContainerInfo, endpoint: &str, lines: usize) -> anyhow::Result<Why> {
    use nsdebug_cri::v1::{ContainerFilter, ContainerStatusRequest, ListContainersRequest};
    let channel = tokio::time::timeout(API_TIMEOUT, nsdebug_cri::connect(endpoint))
        .await
        .map_err(|_| anyhow!("CRI ({endpoint}): no answer within {API_TIMEOUT:?}"))?
        .map_err(|e| anyhow!("CRI ({endpoint}): {e}"))?;
    let mut client = nsdebug_cri::RuntimeClient::new(channel);
    let asker = client.clone();
    let status = |id: String| {
        let mut client = asker.clone();
        async move {
            let request = ContainerStatusRequest {
                container_id: id,
                verbose: false,
            };
            let answer = tokio::time::timeout(API_TIMEOUT, client.container_status(request))
                .await
                .map_err(|_| anyhow!("CRI ({endpoint}): ContainerStatus: no answer"))?
                .map_err(|e| anyhow!("CRI ({endpoint}): ContainerStatus: {}", e.message()))?;
            answer
                .into_inner()
                .status
                .ok_or_else(|| anyhow!("CRI ({endpoint}): ContainerStatus without a status"))
        }
    };
    let current = status(info.id.clone()).await?;
    // Its earlier attempts: the containers of the same name in the same sandbox.
    let request = ListContainersRequest {
        filter: Some(ContainerFilter {
            id: info.id.clone(),
            ..Default::default()
        }),
    };
    let listed = tokio::time::timeout(API_TIMEOUT, client.list_containers(request))
        .await
        .map_err(|_| anyhow!("CRI ({endpoint}): ListContainers: no answer"))?
        .map_err(|e| anyhow!("CRI ({endpoint}): ListContainers: {}", e.message()))?
        .into_inner()
        .containers;
    let mut previous = None;
    if let Some(sandbox) = listed.first().map(|c| c.pod_sandbox_id.clone()) {
        let request = ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: sandbox,
                ..Default::default()
            }),
        };
        let siblings = tokio::time::timeout(API_TIMEOUT, client.list_containers(request))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|r| r.into_inner().containers)
            .unwrap_or_default();
        let name = current.metadata.as_ref().map(|m| m.name.clone());
        let attempt = current.metadata.as_ref().map_or(0, |m| m.attempt);
        let before = siblings
            .into_iter()
            .filter(|c| c.metadata.as_ref().map(|m| m.name.clone()) == name)
            .filter(|c| c.metadata.as_ref().is_some_and(|m| m.attempt < attempt))
            .max_by_key(|c| c.metadata.as_ref().map_or(0, |m| m.attempt));
        if let Some(before) = before {
            previous = status(before.id).await.ok();
        }
    }
    // kubelet's own count when it left one (its annotation), else the attempt number.
    let restart_count = current
        .annotations
        .get("io.kubernetes.container.restartCount")
        .and_then(|n| n.parse().ok())
        .or_else(|| current.metadata.as_ref().map(|m| u64::from(m.attempt)));
    let memory_limit = current
        .resources
        .as_ref()
        .and_then(|r| r.linux.as_ref())
        .and_then(|l| u64::try_from(l.memory_limit_in_bytes).ok())
        .filter(|m| *m > 0);
    // The log that explains the end: this attempt's once it ended, else the previous one's.
    let explains = match (&previous, cri_state(current.state)) {
        (Some(before), "running" | "created") => before,
        _ => &current,
    };
    let log = cri_log(&explains.log_path, explains_attempt(explains), lines);
    Ok(Why {
        current: cri_run(&current),
        previous: previous.as_ref().map(cri_run),
        restart_count,
        // Kubernetes keeps the policy in the pod spec, which the CRI does not carry.
        restart_policy: None,
        memory_limit,
        log,
        ..Default::default()
    })
}

fn explains_attempt(status: &nsdebug_cri::v1::ContainerStatus) -> Option<u32> {
    status.metadata.as_ref().map(|m| m.attempt)
}

fn cri_state(state: i32) -> &'static str {
    use nsdebug_cri::v1::ContainerState;
    ContainerState::try_from(state).map_or("unknown", |s| match s {
        ContainerState::ContainerCreated => "created",
        ContainerState::ContainerRunning => "running",
        ContainerState::ContainerExited => "exited",
        ContainerState::ContainerUnknown => "unknown",
    })
}

fn cri_run(status: &nsdebug_cri::v1::ContainerStatus) -> Run {
    let state = cri_state(status.state);
    let exited = state == "exited";
    let exit_code = Some(i64::from(status.exit_code)).filter(|_| exited);
    let reason = [status.reason.as_str(), status.message.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    Run {
        state: state.to_owned(),
        attempt: status.metadata.as_ref().map(|m| m.attempt),
        exit_code,
        signal: exit_code.and_then(signal_of),
        oom_killed: exited.then_some(status.reason == "OOMKilled"),
        reason: Some(reason).filter(|r| !r.is_empty()),
        started_at: utc(status.started_at),
        finished_at: utc(status.finished_at).filter(|_| exited),
    }
}

/// The end of a CRI log file (`TIME STREAM P|F TEXT` lines, kubelet's format): opened without
/// following a link, only if it is a regular file, at most [`LOG_BYTES`] read from its end.
fn cri_log(path: &str, attempt: Option<u32>, lines: usize) -> Log {
    let attempt = attempt.map_or(String::new(), |n| format!(", attempt {n}"));
    let mut log = Log {
        source: format!("CRI log {path}{attempt}"),
        ..Default::default()
    };
    if path.is_empty() {
        log.source = "CRI".to_owned();
        log.error = Some("the runtime reports no log path".to_owned());
        return log;
    }
    if lines == 0 {
        return log;
    }
    match read_end(path) {
        Ok((bytes, cut)) => {
            let mut tail = Tail {
                dropped: cut,
                ..Default::default()
            };
            tail.push(&join_cri_lines(&bytes, cut));
            (log.lines, log.truncated) = tail.lines(lines);
        }
        Err(error) => log.error = Some(error.to_string()),
    }
    log
}

/// The last [`LOG_BYTES`] of a regular file, and whether its beginning was left out.
fn read_end(path: &str) -> std::io::Result<(Vec<u8>, bool)> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let size = file.metadata()?;
    if !size.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let start = size.len().saturating_sub(LOG_BYTES as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(LOG_BYTES);
    file.take(LOG_BYTES as u64).read_to_end(&mut bytes)?;
    Ok((bytes, start > 0))
}

/// The container's text of CRI log lines: timestamp, stream and tag taken off, partial (`P`)
/// lines joined to the next.
fn join_cri_lines(bytes: &[u8], cut: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut records = bytes.split(|b| *b == b'\n');
    if cut {
        records.next();
    }
    for record in records.filter(|r| !r.is_empty()) {
        let mut fields = record.splitn(4, |b| *b == b' ');
        let (_time, _stream, tag, text) =
            (fields.next(), fields.next(), fields.next(), fields.next());
        match (tag, text) {
            (Some(b"P"), Some(text)) => out.extend_from_slice(text),
            (Some(_), Some(text)) => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            // A record not in the format: shown as it is.
            _ => {
                out.extend_from_slice(record);
                out.push(b'\n');
            }
        }
    }
    out
}

/// The signal an exit status above 128 stands for, as shells and runtimes report it.
fn signal_of(code: i64) -> Option<String> {
    let number = i32::try_from(code.checked_sub(128)?).ok()?;
    nix::sys::signal::Signal::try_from(number)
        .ok()
        .map(|s| s.as_str().to_owned())
}

/// Nanoseconds since the epoch as `2026-01-02T03:04:05Z` (none for 0).
fn utc(nanos: i64) -> Option<String> {
    if nanos <= 0 {
        return None;
    }
    let secs = nanos / 1_000_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

/// What the container wrote, escaped for a terminal and cut to [`LINE_CHARS`].
fn shown_line(line: &str) -> String {
    let mut shown = super::shown(line);
    if let Some((cut, _)) = shown.char_indices().nth(LINE_CHARS) {
        shown.truncate(cut);
        shown.push_str("...");
    }
    shown
}

fn print_run(label: &str, run: &Run, kernel_kills: Option<u64>) {
    let attempt = run
        .attempt
        .map_or(String::new(), |n| format!(" (attempt {n})"));
    let end = match (run.exit_code, &run.signal) {
        (Some(code), Some(signal)) => format!(", exit code {code} (128+{signal})"),
        (Some(code), None) => format!(", exit code {code}"),
        _ => String::new(),
    };
    println!("  {label:<11} {}{attempt}{end}", run.state);
    if let Some(reason) = &run.reason {
        println!("  {:<11} {}", "reason", super::shown(reason));
    }
    let record = run.oom_killed.map(|oom| if oom { "YES" } else { "no" });
    let line = match (record, kernel_kills.filter(|n| *n > 0)) {
        (Some("YES"), Some(n)) => Some(format!(
            "YES (the runtime's record; the kernel log: {n} kill(s) in its cgroup)"
        )),
        (record, Some(n)) => Some(format!(
            "YES (the kernel log: {n} kill(s) in its cgroup; the runtime's record: {})",
            record.unwrap_or("none")
        )),
        (Some(said), None) => Some(format!("{said} (the runtime's record)")),
        (None, None) => None,
    };
    if let Some(line) = line {
        println!("  {:<11} {line}", "OOM-killed");
    }
    for (name, time) in [("started", &run.started_at), ("finished", &run.finished_at)] {
        if let Some(time) = time {
            println!("  {name:<11} {}", super::shown(time));
        }
    }
}

fn print_page(what: &str, why: &Why) {
    println!("{}", super::shown(what));
    print_run("state", &why.current, why.kernel_oom_kills);
    if let Some(kills) = why.cgroup_oom_kills {
        println!("  {:<11} {kills} (its cgroup's OOM-kill count)", "oom_kill");
    }
    if let Some(previous) = &why.previous {
        print_run("previous", previous, None);
    }
    let restarts = why
        .restart_count
        .map_or_else(|| "?".to_owned(), |n| n.to_string());
    let policy = why
        .restart_policy
        .as_deref()
        .map_or(String::new(), |p| format!(" (policy {p})"));
    println!("  {:<11} {restarts}{policy}", "restarts");
    let memory = why
        .memory_limit
        .map_or_else(|| "none".to_owned(), nsdebug_audit::human_size);
    let pids = why
        .pids_limit
        .map_or_else(|| "none".to_owned(), |p| p.to_string());
    println!("  {:<11} memory {memory}, pids {pids}", "limits");
    if let Some(audit) = &why.audit {
        let findings = match (&audit.error, audit.findings.is_empty()) {
            (Some(error), _) => format!("could not audit: {error}"),
            (None, true) => "no findings".to_owned(),
            (None, false) => audit.findings.join(", "),
        };
        println!(
            "  {:<11} {findings}; {} unknown (nsdebug audit for the details)",
            "audit", audit.unknowns
        );
    }
    let log = &why.log;
    let cut = if log.truncated { ", the end" } else { "" };
    match &log.error {
        Some(error) => println!(
            "  log ({}): {}",
            super::shown(&log.source),
            super::shown(error)
        ),
        None if log.lines.is_empty() => println!("  log ({}): empty", super::shown(&log.source)),
        None => {
            println!("  log ({}{cut}):", super::shown(&log.source));
            for line in &log.lines {
                println!("    {}", shown_line(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_above_128_name_their_signal() {
        assert_eq!(signal_of(137).as_deref(), Some("SIGKILL"));
        assert_eq!(signal_of(143).as_deref(), Some("SIGTERM"));
        assert_eq!(signal_of(3), None);
        assert_eq!(signal_of(i64::MIN), None);
    }

    #[test]
    fn a_cri_log_path_that_is_a_link_or_a_fifo_is_not_read() {
        let dir = std::env::temp_dir().join(format!("nsdebug-why-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("0.log");
        std::fs::write(&file, "2024-01-01T00:00:00Z stdout F hello\n").unwrap();
        let link = dir.join("link.log");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
        let fifo = dir.join("fifo.log");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let log = cri_log(file.to_str().unwrap(), Some(0), 5);
        assert_eq!(log.lines, vec!["hello".to_owned()]);
        for bad in [&link, &fifo] {
            let log = cri_log(bad.to_str().unwrap(), Some(0), 5);
            assert!(log.lines.is_empty() && log.error.is_some(), "{log:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cri_times_are_utc() {
        assert_eq!(utc(0), None);
        assert_eq!(utc(1_000_000_000).as_deref(), Some("1970-01-01T00:00:01Z"));
        assert_eq!(
            utc(1_709_251_200_000_000_000).as_deref(),
            Some("2024-03-01T00:00:00Z")
        );
    }

    #[test]
    fn cri_log_records_lose_their_prefix_and_partials_join() {
        let text = b"2024-01-01T00:00:00Z stdout P hel\n2024-01-01T00:00:00Z stdout F lo\n2024-01-01T00:00:01Z stderr F bye\n";
        assert_eq!(join_cri_lines(text, false), b"hello\nbye\n");
        // A cut beginning drops the first, partial record.
        assert_eq!(join_cri_lines(text, true), b"lo\nbye\n");
    }

    #[test]
    fn the_tail_is_bounded_and_says_so() {
        let mut tail = Tail::default();
        for n in 0..100_000 {
            if !tail.push(format!("line {n}\n").as_bytes()) {
                break;
            }
        }
        let (lines, truncated) = tail.lines(3);
        assert!(truncated);
        assert_eq!(lines.len(), 3);
        let mut tail = Tail::default();
        tail.push(b"one\ntwo\n");
        assert_eq!(tail.lines(5), (vec!["one".into(), "two".into()], false));
    }

    #[test]
    fn terminal_escapes_in_a_log_line_are_shown_escaped() {
        let shown = shown_line("boom \x1b]0;pwned\x07 \x1b[2J");
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{shown}"
        );
        assert!(shown_line(&"x".repeat(2000)).len() < 600);
    }
}
