//! `nsdebug ps`: the containers nsdebug can see.

use std::process::ExitCode;

use nsenter_core::{Pid, Target};
use serde::Serialize;

use super::shown;
use crate::cli::{block_on, Failure};
use nsdebug_resolve::{host_reference, list_all, short_id, ContainerInfo};

// Arguments of `nsdebug ps`.
#[derive(clap::Args, Debug)]
#[command(about = crate::cli::about::PS, long_about = None)]
pub struct PsArgs {
    /// Only containers whose name (or ID) contains this.
    filter: Option<String>,
    /// Stopped containers too, with their exit code and whether the OOM killer killed them.
    #[arg(short = 'a', long)]
    all: bool,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// CRI socket to list pods from (default: $CONTAINER_RUNTIME_ENDPOINT, else the
    /// containerd, k3s/RKE2 and CRI-O sockets that exist).
    #[arg(long, value_name = "ENDPOINT")]
    cri_endpoint: Option<String>,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    container: ContainerInfo,
    /// Namespaces identical to the host's (PID 1's): `net` means `--net=host`; null when
    /// they could not be compared.
    shared_with_host: Option<Vec<String>>,
    /// OOM kills the kernel counted in its memory cgroup (running containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_kills: Option<u64>,
}

/// The namespaces that isolate, in the table: net, pid, ipc, uts, mnt shared with the host,
/// else `-`. User, cgroup and time are shared by nearly every container without a user
/// namespace (Docker's default), so showing them on every row hid the ones that matter;
/// --json lists every namespace.
fn isolating_shared(shared: &[String]) -> String {
    const ISOLATING: [&str; 5] = ["net", "pid", "ipc", "uts", "mnt"];
    let listed: Vec<&str> = ISOLATING
        .into_iter()
        .filter(|ns| shared.iter().any(|s| s == ns))
        .collect();
    if listed.is_empty() {
        "-".to_owned()
    } else {
        listed.join(",")
    }
}

/// Runs `nsdebug ps`.
pub fn run(args: PsArgs) -> Result<ExitCode, Failure> {
    let (mut containers, unreachable) = block_on(list_all(args.cri_endpoint.as_deref(), args.all))?;
    if let Some(part) = &args.filter {
        containers.retain(|c| c.name.contains(part.as_str()) || c.id.starts_with(part.as_str()));
    }
    if containers.is_empty() && !unreachable.is_empty() {
        return Err(anyhow::anyhow!(
            "no container runtime could be asked: {}",
            unreachable.join("; ")
        )
        .into());
    }
    for why in &unreachable {
        eprintln!("nsdebug: skipped {why}");
    }
    let host = host_reference()?;
    let rows: Vec<Row> = containers
        .into_iter()
        .map(|container| {
            let Some(pid) = container.pid else {
                // Stopped (ps -a): nothing to compare, nothing to say about it.
                return Row {
                    container,
                    shared_with_host: None,
                    oom_kills: None,
                };
            };
            let oom_kills = super::mem::memory_of(pid).ok().and_then(|m| m.oom_kills);
            let shared = Some(pid)
                .ok_or_else(|| "not running".to_owned())
                .and_then(|pid| {
                    Pid::try_from(pid)
                        .and_then(Target::open)
                        .map_err(|e| e.to_string())
                })
                .and_then(|target| target.shared_with(&host).map_err(|e| e.to_string()));
            let shared_with_host = match shared {
                Ok(set) => Some(set.iter().map(|ns| ns.to_string()).collect()),
                Err(why) => {
                    eprintln!(
                        "nsdebug: {}: cannot compare namespaces with the host: {why}",
                        container.describe()
                    );
                    None
                }
            };
            Row {
                container,
                shared_with_host,
                oom_kills,
            }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut cells = Vec::new();
    for row in &rows {
        let c = &row.container;
        let name = match &c.namespace {
            Some(ns) if c.name == c.id => format!("{ns}/{}", short_id(&c.id)),
            _ => c.name.clone(),
        };
        let shared = match (&row.shared_with_host, c.pid) {
            (_, None) => "-".to_owned(),
            (None, _) => "?".to_owned(),
            (Some(list), _) => isolating_shared(list),
        };
        // How it ended (ps -a), or how often the OOM killer struck while it runs.
        let status = match (&c.details.exit_code, c.details.oom_killed, row.oom_kills) {
            (Some(code), Some(true), _) => format!("{} ({code}, OOM-killed)", c.status),
            (Some(code), _, _) => format!("{} ({code})", c.status),
            (None, _, Some(kills)) if kills > 0 => format!(
                "{} ({kills} OOM kill{})",
                c.status,
                if kills == 1 { "" } else { "s" }
            ),
            _ => c.status.clone(),
        };
        cells.push(vec![
            c.runtime.to_owned(),
            shown(short_id(&c.id)),
            shown(&name),
            shown(c.details.image.as_deref().unwrap_or("-")),
            c.pid.map_or("-".to_owned(), |p| p.to_string()),
            c.details.ip.clone().unwrap_or_else(|| "-".into()),
            shown(&status),
            shared,
        ]);
    }
    super::print_table(
        &[
            "RUNTIME",
            "ID",
            "NAME",
            "IMAGE",
            "PID",
            "IP",
            "STATUS",
            "SHARED WITH HOST",
        ],
        &[false, false, false, false, true, false, false, false],
        &cells,
    );
    Ok(ExitCode::SUCCESS)
}
