//! `nsdebug ps`: the containers nsdebug can see.

use std::process::ExitCode;

use nsenter_core::Target;
use serde::Serialize;

use super::shown;
use crate::cli::{block_on, Failure};
use crate::resolve::{host_reference, list_all, short_id, ContainerInfo};

/// Arguments of `nsdebug ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
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
}

/// Runs `nsdebug ps`.
pub fn run(args: PsArgs) -> Result<ExitCode, Failure> {
    let (containers, unreachable) = block_on(list_all(args.cri_endpoint.as_deref()))?;
    for why in &unreachable {
        eprintln!("nsdebug: skipped {why}");
    }
    if containers.is_empty() && !unreachable.is_empty() {
        return Err(anyhow::anyhow!("no container runtime could be asked: {}", unreachable.join("; ")).into());
    }
    let host = host_reference()?;
    let rows: Vec<Row> = containers
        .into_iter()
        .map(|container| {
            let shared = container
                .pid
                .ok_or_else(|| "not running".to_owned())
                .and_then(|pid| Target::open(pid).map_err(|e| e.to_string()))
                .and_then(|target| target.shared_with(&host).map_err(|e| e.to_string()));
            let shared_with_host = match shared {
                Ok(set) => Some(set.iter().map(|ns| ns.to_string()).collect()),
                Err(why) => {
                    eprintln!("nsdebug: {}: cannot compare namespaces with the host: {why}", container.describe());
                    None
                }
            };
            Row { container, shared_with_host }
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<11} {:<12} {:<24} {:>8} {:<9} SHARED WITH HOST", "RUNTIME", "ID", "NAME", "PID", "STATUS");
    for row in &rows {
        let c = &row.container;
        let name = match &c.namespace {
            Some(ns) if c.name == c.id => format!("{ns}/{}", short_id(&c.id)),
            _ => c.name.clone(),
        };
        let shared = match &row.shared_with_host {
            None => "?".to_owned(),
            Some(list) if list.is_empty() => "-".to_owned(),
            Some(list) => list.join(","),
        };
        let pid = c.pid.map_or("-".to_owned(), |p| p.to_string());
        println!("{:<11} {:<12} {:<24} {:>8} {:<9} {}", c.runtime, shown(short_id(&c.id)), shown(&name), pid, shown(&c.status), shared);
    }
    Ok(ExitCode::SUCCESS)
}
