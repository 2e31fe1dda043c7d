//! `nsdebug audit [TARGET...]`: what each container is really isolated from, as the kernel
//! enforces it (the nsdebug-audit crate): a host section, one section per container (or the
//! reason it could not be audited), and a closing verdict line.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use nsdebug_audit::{
    audit_with, Finding, Host, HostReport, Powers, Record, Report, Severity, Unknown, FINDING_IDS,
};
use nsenter_core::{Pid, Target};
use serde::Serialize;

use super::resolve;
use super::shown;
use crate::cli::{block_on, Failure, LookupArgs, EXIT_NSDEBUG_FAILED};
use nsdebug_resolve::{
    containerd, cri, docker, host_reference, list_all, pin, ContainerInfo, Lookup,
};

/// The exit status when `--fail-on` is reached.
pub(crate) const EXIT_FAIL_ON: u8 = 3;

// Arguments of `nsdebug audit`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::AUDIT, long_about = None)]
#[command(
    after_help = "Exit status: 0; 3 when --fail-on is given and a finding is at least that severe, a fact is \
unknown or a container could not be audited; 125 when a container could not be audited (without --fail-on)."
)]
pub struct AuditArgs {
    /// Containers (pods, pids...) to audit; none: every container nsdebug can see.
    targets: Vec<String>,
    /// One JSON document (schema in the nsdebug-audit README) instead of tables.
    #[arg(long)]
    json: bool,
    /// Exit with status 3 if a finding is at least this severe (info, low, medium, high,
    /// critical), a fact is unknown, or a container could not be audited.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Accepted findings: their ids (e.g. `root,no-new-privs`) are listed as ignored and do
    /// not count for --fail-on.
    #[arg(long, value_name = "ID[,ID]", value_delimiter = ',')]
    ignore: Vec<String>,
    /// A file of finding ids to ignore: one per line (or comma-separated), `#` comments.
    #[arg(long, value_name = "FILE")]
    ignore_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    lookup: LookupArgs,
}

fn parse_severity(word: &str) -> Result<Severity, String> {
    Severity::parse(word)
        .ok_or_else(|| format!("{word:?}: use info, low, medium, high or critical"))
}

/// One container in the JSON output (schema version 2: `target` is the object every
/// `--json` names a target with; version 1 had a string and a separate `pid`).
#[derive(Serialize)]
struct ContainerJson<'a> {
    target: &'a serde_json::Value,
    /// Why it could not be audited; `null` when it was.
    error: Option<&'a str>,
    processes: &'a [i32],
    most_powerful: Option<&'a Powers>,
    findings: Vec<&'a Finding>,
    ignored: Vec<&'a Finding>,
    unknowns: &'a [Unknown],
}

#[derive(Serialize)]
struct HostJson<'a> {
    pid: i32,
    findings: Vec<&'a Finding>,
    ignored: Vec<&'a Finding>,
    unknowns: &'a [Unknown],
}

#[derive(Serialize, Default)]
struct Verdict {
    containers: usize,
    not_audited: usize,
    critical: usize,
    high: usize,
    medium: usize,
    low: usize,
    info: usize,
    unknown: usize,
    ignored: usize,
    exit: u8,
    line: String,
}

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    host: HostJson<'a>,
    containers: Vec<ContainerJson<'a>>,
    verdict: &'a Verdict,
}

/// A target and what became of it.
struct Outcome {
    what: String,
    json: serde_json::Value,
    result: Result<Report, String>,
}

/// The ids to ignore, from `--ignore` and `--ignore-file`.
fn ignore_list(args: &AuditArgs) -> anyhow::Result<BTreeSet<String>> {
    let mut ids: BTreeSet<String> = args
        .ignore
        .iter()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .collect();
    if let Some(path) = &args.ignore_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--ignore-file {}: {e}", path.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            ids.extend(
                line.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    let unknown: Vec<&String> = ids
        .iter()
        .filter(|id| !FINDING_IDS.contains(&id.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(anyhow::anyhow!(
            "--ignore: no finding has the id {}; the ids are: {}",
            unknown
                .iter()
                .map(|id| format!("{:?}", shown(id)))
                .collect::<Vec<_>>()
                .join(", "),
            FINDING_IDS.join(", ")
        ));
    }
    Ok(ids)
}

/// A target to audit: what to call it, the container it is when listed (not named), and the
/// pinned process or why it could not be pinned.
struct Pending {
    what: String,
    /// The target object of `--json`.
    json: serde_json::Value,
    listed: Option<ContainerInfo>,
    /// What its runtime recorded of it.
    record: Record,
    target: Result<Target, String>,
}

/// The runtime's record of a container, as the audit takes it.
fn record_of(info: Option<&ContainerInfo>) -> Record {
    info.map(|info| {
        let mut record = Record {
            runtime: info.runtime.to_owned(),
            ids: std::iter::once(info.id.clone())
                .chain(info.cri.as_ref().map(|cri| cri.pod_sandbox_id.clone()))
                .collect(),
            mounts: info
                .details
                .mounts
                .iter()
                .map(|m| nsdebug_audit::RecordedMount {
                    kind: m.kind.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    writable: m.writable,
                })
                .collect(),
            privileged: info.details.privileged,
            cap_add: info.details.cap_add.clone(),
            devices: info.details.devices.as_ref().map(|devices| {
                devices
                    .iter()
                    .map(|(path, permissions)| nsdebug_audit::RecordedDevice {
                        path_on_host: path.clone(),
                        permissions: permissions.clone(),
                    })
                    .collect()
            }),
            device_cgroup_rules: info.details.device_cgroup_rules.clone(),
            ..Record::default()
        };
        // Docker and Podman always record it (empty: their defaults); the CRI's is read
        // from the runtime spec, and empty when that could not be read.
        if matches!(info.runtime, "docker" | "podman") || !info.details.security_opt.is_empty() {
            record.set_security_opt(&info.details.security_opt);
        }
        record
    })
    .unwrap_or_default()
}

/// The targets to audit: each pinned, or the reason it could not be.
fn targets(args: &AuditArgs) -> anyhow::Result<Vec<Pending>> {
    let options = args.lookup.options();
    block_on(async {
        let mut targets = Vec::new();
        if args.targets.is_empty() {
            let (containers, unreachable) = list_all(options.cri_endpoint.as_deref(), false).await;
            for why in unreachable {
                targets.push(Pending {
                    what: "the containers of a runtime".to_owned(),
                    json: serde_json::json!({ "description": "the containers of a runtime" }),
                    listed: None,
                    record: Record::default(),
                    target: Err(why),
                });
            }
            for container in containers {
                let what = container.describe();
                let listed = Some(container.clone());
                match pin(container).await {
                    Ok(resolved) => targets.push(Pending {
                        json: super::target_json(&resolved),
                        record: record_of(resolved.container.as_ref().or(listed.as_ref())),
                        what: resolved.description,
                        listed,
                        target: Ok(resolved.target),
                    }),
                    Err(why) => targets.push(Pending {
                        json: super::unresolved_target_json(&what, listed.as_ref()),
                        record: Record::default(),
                        what,
                        listed,
                        target: Err(format!("{why:#}")),
                    }),
                }
            }
        } else {
            for spec in &args.targets {
                match resolve(spec, &options).await {
                    Ok(resolved) => targets.push(Pending {
                        json: super::target_json(&resolved),
                        record: record_of(resolved.container.as_ref()),
                        what: resolved.description,
                        listed: None,
                        target: Ok(resolved.target),
                    }),
                    Err(why) => targets.push(Pending {
                        json: super::unresolved_target_json(spec, None),
                        record: Record::default(),
                        what: spec.clone(),
                        listed: None,
                        target: Err(format!("{why:#}")),
                    }),
                }
            }
        }
        targets
    })
}

/// Whether a listed container is gone for good (removed, or stopped with no restart coming):
/// its runtime, asked again, no longer knows it or says it exited. A restarting container is
/// not gone.
fn gone_for_good(info: &ContainerInfo) -> bool {
    let again = block_on(async {
        match info.runtime {
            "docker" => docker::Engine::docker().lookup(&info.id).await,
            "podman" => docker::Engine::podman().lookup(&info.id).await,
            "cri" => match &info.cri {
                // A container whose status cannot be had or that has no pid left is gone.
                Some(cri) => Ok(match cri::pid_again(cri, &info.id).await {
                    Ok(Some(_)) => Lookup::Found(info.clone()),
                    _ => Lookup::NotFound(String::new()),
                }),
                None => Ok(Lookup::NotFound(String::new())),
            },
            _ => containerd::lookup(&info.id).await,
        }
    });
    match again {
        Ok(Ok(Lookup::NotFound(_))) => true,
        Ok(Ok(Lookup::Found(now))) => matches!(now.status.as_str(), "exited" | "dead" | "stopped"),
        _ => false,
    }
}

/// Runs `nsdebug audit`.
pub fn run(args: AuditArgs) -> Result<ExitCode, Failure> {
    // A misspelt id would accept nothing while looking accepted: a usage error (exit 2,
    // like clap's).
    let ignore = ignore_list(&args).map_err(|error| Failure {
        error,
        exit_code: 2,
    })?;
    let targets = targets(&args)?;
    let reference = host_reference()?;
    let host = Host::read(reference.pid().map_or(1, Pid::get));
    let host_report = host.report();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for Pending {
        what,
        json,
        listed,
        record,
        target,
    } in targets
    {
        let result = target
            .and_then(|target| audit_with(&target, &host, &record).map_err(|e| e.to_string()));
        // Listed (not named) and stopped meanwhile for good: nothing is left to audit or fear.
        if let (Err(why), Some(info)) = (&result, &listed) {
            if gone_for_good(info) {
                eprintln!(
                    "nsdebug: {} stopped before it could be audited ({}): left out",
                    shown(&what),
                    shown(why)
                );
                continue;
            }
        }
        outcomes.push(Outcome { what, json, result });
    }
    let ignored = |f: &Finding| ignore.contains(&f.id);
    let verdict = verdict(&args, &host_report, &outcomes, &ignored);
    let mut out = std::io::stdout().lock();
    if args.json {
        let (findings, host_ignored) = split(&host_report.findings, &ignored);
        let containers = outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(report) => {
                    let (findings, ignored) = split(&report.findings, &ignored);
                    ContainerJson {
                        target: &o.json,
                        error: None,
                        processes: &report.processes,
                        most_powerful: report.most_powerful.as_ref(),
                        findings,
                        ignored,
                        unknowns: &report.unknowns,
                    }
                }
                Err(why) => ContainerJson {
                    target: &o.json,
                    error: Some(why),
                    processes: &[],
                    most_powerful: None,
                    findings: vec![],
                    ignored: vec![],
                    unknowns: &[],
                },
            })
            .collect();
        let document = Document {
            schema: 2,
            host: HostJson {
                pid: host_report.pid,
                findings,
                ignored: host_ignored,
                unknowns: &host_report.unknowns,
            },
            containers,
            verdict: &verdict,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let section = |out: &mut dyn Write,
                       findings: &[Finding],
                       unknowns: &[Unknown]|
         -> std::io::Result<()> {
            for f in findings.iter().filter(|f| !ignored(f)) {
                let (on, off) = match (colour, f.severity) {
                    (false, _) => ("", ""),
                    (true, Severity::Critical) => ("\x1b[1;31m", "\x1b[0m"),
                    (true, Severity::High) => ("\x1b[31m", "\x1b[0m"),
                    (true, Severity::Medium) => ("\x1b[33m", "\x1b[0m"),
                    (true, _) => ("\x1b[2m", "\x1b[0m"),
                };
                writeln!(
                    out,
                    "  {on}{:<8}{off} {:<22} {}  [{}]",
                    f.severity,
                    f.id,
                    shown(&f.title),
                    shown(&f.evidence)
                )?;
            }
            for u in unknowns {
                let pid = u.pid.map(|p| format!("pid {p}: ")).unwrap_or_default();
                writeln!(
                    out,
                    "  {:<8} {:<22} {pid}{}",
                    "unknown",
                    u.id,
                    shown(&u.reason)
                )?;
            }
            let hidden = findings
                .iter()
                .filter(|f| ignored(f))
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>();
            if !hidden.is_empty() {
                writeln!(out, "  ignored: {}", hidden.join(", "))?;
            }
            Ok(())
        };
        writeln!(
            out,
            "the host, seen from nsdebug's own process (pid {}):",
            host_report.pid
        )?;
        section(&mut out, &host_report.findings, &host_report.unknowns)?;
        for o in &outcomes {
            match &o.result {
                Ok(report) => {
                    let strongest = match &report.most_powerful {
                        Some(p) if !p.powers.is_empty() => {
                            let who = p.thread_of.map_or_else(
                                || format!("pid {}", p.pid),
                                |of| format!("thread {} of pid {of}", p.pid),
                            );
                            format!(
                                "; most powerful: {who} ({}): {}",
                                shown(&p.comm),
                                shown(&p.powers.join(", "))
                            )
                        }
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "{}: {}{strongest}",
                        shown(&o.what),
                        plural(report.processes.len(), "process")
                    )?;
                    section(&mut out, &report.findings, &report.unknowns)?;
                }
                Err(why) => writeln!(out, "could not audit {}: {}", shown(&o.what), shown(why))?,
            }
        }
        writeln!(out, "{}", verdict.line)?;
    }
    for o in &outcomes {
        if let (Err(why), true) = (&o.result, args.json) {
            eprintln!(
                "nsdebug: could not audit {}: {}",
                shown(&o.what),
                shown(why)
            );
        }
    }
    Ok(ExitCode::from(verdict.exit))
}

/// The findings that count, and those the user accepted (`--ignore`).
fn split<'a>(
    findings: &'a [Finding],
    ignored: &dyn Fn(&Finding) -> bool,
) -> (Vec<&'a Finding>, Vec<&'a Finding>) {
    findings.iter().partition(|f| !ignored(f))
}

fn verdict(
    args: &AuditArgs,
    host: &HostReport,
    outcomes: &[Outcome],
    ignored: &dyn Fn(&Finding) -> bool,
) -> Verdict {
    let mut v = Verdict {
        containers: outcomes.len(),
        ..Verdict::default()
    };
    let audited: Vec<&Report> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .collect();
    v.not_audited = outcomes.len() - audited.len();
    let all = host
        .findings
        .iter()
        .chain(audited.iter().flat_map(|r| r.findings.iter()));
    let mut worst = None;
    for f in all {
        if ignored(f) {
            v.ignored += 1;
            continue;
        }
        worst = worst.max(Some(f.severity));
        *match f.severity {
            Severity::Critical => &mut v.critical,
            Severity::High => &mut v.high,
            Severity::Medium => &mut v.medium,
            Severity::Low => &mut v.low,
            Severity::Info => &mut v.info,
        } += 1;
    }
    v.unknown = host.unknowns.len() + audited.iter().map(|r| r.unknowns.len()).sum::<usize>();
    let (exit, why) = match args.fail_on {
        Some(limit) if worst.is_some_and(|w| w >= limit) || v.unknown > 0 || v.not_audited > 0 => {
            let mut causes = Vec::new();
            if let Some(w) = worst.filter(|w| *w >= limit) {
                causes.push(format!("a {w} finding"));
            }
            if v.unknown > 0 {
                causes.push("unknown facts".to_owned());
            }
            if v.not_audited > 0 {
                causes.push("containers not audited".to_owned());
            }
            (
                EXIT_FAIL_ON,
                format!(" because of --fail-on {limit} ({})", causes.join(", ")),
            )
        }
        Some(limit) => (0, format!(": nothing reaches --fail-on {limit}")),
        None if v.not_audited > 0 => (
            EXIT_NSDEBUG_FAILED,
            format!(
                " because {} could not be audited",
                plural(v.not_audited, "container")
            ),
        ),
        None => (0, String::new()),
    };
    v.exit = exit;
    let not_audited = if v.not_audited > 0 {
        format!(" ({} not audited)", v.not_audited)
    } else {
        String::new()
    };
    v.line = format!(
        "{}{not_audited}, {} critical, {} high, {} medium, {} low, {} info, {} unknown, {} ignored: exit {exit}{why}",
        plural(v.containers, "container"),
        v.critical,
        v.high,
        v.medium,
        v.low,
        v.info,
        v.unknown,
        v.ignored
    );
    v
}

fn plural(n: usize, word: &str) -> String {
    match (n, word.ends_with('s')) {
        (1, _) => format!("1 {word}"),
        (_, true) => format!("{n} {word}es"),
        _ => format!("{n} {word}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(fail_on: Option<Severity>) -> AuditArgs {
        let lookup = LookupArgs {
            runtime: None,
            k8s_namespace: None,
            container: None,
            cri_endpoint: None,
        };
        AuditArgs {
            targets: vec![],
            json: false,
            fail_on,
            ignore: vec![],
            ignore_file: None,
            lookup,
        }
    }

    fn audited(findings: Vec<Finding>, unknowns: Vec<Unknown>) -> Outcome {
        Outcome {
            what: "docker container c (0123456789ab)".into(),
            json: serde_json::Value::Null,
            result: Ok(Report {
                pid: 42,
                findings,
                unknowns,
                ..Report::default()
            }),
        }
    }

    #[test]
    fn an_unknown_fact_fails_fail_on_like_a_finding_and_is_counted() {
        let host = HostReport::default();
        let outcomes = [audited(
            vec![Finding::new(
                "cgroup.cpu",
                Severity::Low,
                "no CPU quota",
                "-1",
            )],
            vec![Unknown::new("seccomp", Some(42), "no Seccomp line")],
        )];
        let none = |_: &Finding| false;
        let v = verdict(&args(Some(Severity::Critical)), &host, &outcomes, &none);
        assert_eq!((v.exit, v.unknown, v.low), (3, 1, 1));
        assert_eq!(v.line, "1 container, 0 critical, 0 high, 0 medium, 1 low, 0 info, 1 unknown, 0 ignored: exit 3 because of --fail-on critical (unknown facts)");
        assert_eq!(
            verdict(&args(None), &host, &outcomes, &none).exit,
            0,
            "without --fail-on an unknown is reported, not an error"
        );
    }

    #[test]
    fn ignored_findings_do_not_count_and_not_audited_containers_do() {
        let host = HostReport {
            pid: 1,
            findings: vec![Finding::new("lsm", Severity::Medium, "no LSM", "EINVAL")],
            unknowns: vec![],
        };
        let outcomes = [
            audited(
                vec![Finding::new("root", Severity::High, "uid 0", "Uid 0")],
                vec![],
            ),
            Outcome {
                what: "docker container r".into(),
                json: serde_json::Value::Null,
                result: Err("not running (status: restarting)".into()),
            },
        ];
        let root = |f: &Finding| f.id == "root";
        let v = verdict(&args(Some(Severity::High)), &host, &outcomes, &root);
        assert_eq!(
            (
                v.containers,
                v.not_audited,
                v.high,
                v.medium,
                v.ignored,
                v.exit
            ),
            (2, 1, 0, 1, 1, 3)
        );
        assert!(
            v.line
                .starts_with("2 containers (1 not audited), 0 critical, 0 high, 1 medium,")
                && v.line.ends_with("(containers not audited)"),
            "{}",
            v.line
        );
        let v = verdict(&args(None), &host, &outcomes, &root);
        assert_eq!(v.exit, EXIT_NSDEBUG_FAILED, "{}", v.line);
        let v = verdict(&args(Some(Severity::High)), &host, &outcomes[..1], &root);
        assert_eq!(v.exit, 0, "{}", v.line);
        assert!(
            v.line.ends_with("exit 0: nothing reaches --fail-on high"),
            "{}",
            v.line
        );
    }
}
