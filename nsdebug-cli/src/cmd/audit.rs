//! `nsdebug audit [TARGET...]`: what each container is really isolated from, as the kernel
//! enforces it (nsenter-core's audit module), with severities and evidence.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use nsenter_core::audit::{audit, Finding, Severity};
use nsenter_core::Target;
use serde::Serialize;

use crate::cli::{block_on, Failure, LookupArgs};
use crate::resolve::{host_reference, list_all, resolve};

/// Arguments of `nsdebug audit`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0, or 3 when --fail-on is given and a finding is at least that severe.")]
pub struct AuditArgs {
    /// Containers (pods, pids...) to audit; none: every container nsdebug can see.
    targets: Vec<String>,
    /// One JSON array instead of tables.
    #[arg(long)]
    json: bool,
    /// Exit with status 3 if any finding is at least this severe (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    #[command(flatten)]
    lookup: LookupArgs,
}

fn parse_severity(word: &str) -> Result<Severity, String> {
    Severity::parse(word).ok_or_else(|| format!("{word:?}: use info, low, medium, high or critical"))
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    id: &'a str,
    severity: String,
    title: &'a str,
    evidence: &'a str,
}

#[derive(Serialize)]
struct Report<'a> {
    target: &'a str,
    pid: Option<i32>,
    findings: Vec<JsonFinding<'a>>,
}

/// Runs `nsdebug audit`.
pub fn run(args: AuditArgs) -> Result<ExitCode, Failure> {
    let options = args.lookup.options();
    let targets: Vec<(String, Target)> = block_on(async {
        let mut targets = Vec::new();
        if args.targets.is_empty() {
            let (containers, unreachable) = list_all().await;
            for why in &unreachable {
                eprintln!("nsdebug: skipped {why}");
            }
            for container in containers {
                if let Some(pid) = container.pid {
                    if let Ok(target) = Target::open(pid) {
                        targets.push((container.describe(), target));
                    }
                }
            }
        } else {
            for spec in &args.targets {
                let resolved = resolve(spec, &options).await?;
                targets.push((resolved.description, resolved.target));
            }
        }
        anyhow::Ok(targets)
    })??;
    let host = host_reference()?;
    let mut reports: Vec<(String, Option<i32>, Vec<Finding>)> = Vec::new();
    for (what, target) in &targets {
        let findings = audit(target, &host).with_context(|| what.clone())?;
        reports.push((what.clone(), target.pid(), findings));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json: Vec<Report<'_>> = reports
            .iter()
            .map(|(what, pid, findings)| Report {
                target: what,
                pid: *pid,
                findings: findings
                    .iter()
                    .map(|f| JsonFinding { id: &f.id, severity: f.severity.to_string(), title: &f.title, evidence: &f.evidence })
                    .collect(),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        for (what, _, findings) in &reports {
            writeln!(out, "{what}: {} findings", findings.len())?;
            for f in findings {
                let (on, off) = match (colour, f.severity) {
                    (false, _) => ("", ""),
                    (true, Severity::Critical) => ("\x1b[1;31m", "\x1b[0m"),
                    (true, Severity::High) => ("\x1b[31m", "\x1b[0m"),
                    (true, Severity::Medium) => ("\x1b[33m", "\x1b[0m"),
                    (true, _) => ("\x1b[2m", "\x1b[0m"),
                };
                writeln!(out, "  {on}{:<8}{off} {:<22} {}  [{}]", f.severity, f.id, f.title, f.evidence)?;
            }
        }
    }
    let failed = args.fail_on.is_some_and(|limit| reports.iter().any(|(_, _, fs)| fs.iter().any(|f| f.severity >= limit)));
    Ok(if failed { ExitCode::from(3) } else { ExitCode::SUCCESS })
}
