//! Docker and Podman through the Docker Engine API (bollard).

use bollard::errors::Error as ApiError;
use bollard::query_parameters::ListContainersOptions;
use bollard::{ClientVersion, Docker};

use super::{ContainerInfo, Details, Error, Lookup, Result, API_TIMEOUT};

/// API 1.41 (Docker 20.10): old enough for every engine in use, Podman's compat API
/// included, and it has everything nsdebug asks. A fixed version spares a negotiation round trip.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// One Docker-compatible engine: Docker's own socket, or Podman's.
pub struct Engine {
    runtime: &'static str,
    /// `unix:///path` or `tcp://host:port`; `None` when no socket was found.
    address: Option<String>,
    /// Where it was looked for, when not found.
    looked: String,
}

impl Engine {
    /// Docker: `DOCKER_HOST`, else `/var/run/docker.sock` (when root's or the user's).
    pub fn docker() -> Engine {
        if let Ok(address) = std::env::var("DOCKER_HOST") {
            return Engine {
                runtime: "docker",
                looked: address.clone(),
                address: Some(address),
            };
        }
        Engine::found("docker", &["/var/run/docker.sock".to_owned()])
    }

    /// The first of `candidates` (found by looking, not named by the user) that is there and
    /// belongs to root or to the user; a socket we may not look at counts as there (the
    /// error then says permission denied).
    fn found(runtime: &'static str, candidates: &[String]) -> Engine {
        let mut refused = Vec::new();
        let found = candidates.iter().find(|path| {
            let there = match std::fs::symlink_metadata(path) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
            };
            match super::verify::found_socket_trusted(std::path::Path::new(path)) {
                Err(why) if there => {
                    refused.push(why);
                    false
                }
                _ => there,
            }
        });
        let mut looked = candidates.join(" or ");
        if !refused.is_empty() {
            looked = format!("{looked} ({})", refused.join("; "));
        }
        Engine {
            runtime,
            address: found.map(|path| format!("unix://{path}")),
            looked,
        }
    }

    /// Podman: `CONTAINER_HOST`, else its rootful socket, else the user's.
    pub fn podman() -> Engine {
        if let Ok(address) = std::env::var("CONTAINER_HOST") {
            return Engine {
                runtime: "podman",
                looked: address.clone(),
                address: Some(address),
            };
        }
        let mut candidates = vec!["/run/podman/podman.sock".to_owned()];
        if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
            candidates.push(format!("{dir}/podman/podman.sock"));
        }
        Engine::found("podman", &candidates)
    }

    /// Where it was looked for, for -v: `docker (unix:///var/run/docker.sock)`.
    pub fn where_looked(&self) -> String {
        self.label()
    }

    /// Whether there is anything to ask: a TCP address, or a unix socket that exists.
    pub fn is_present(&self) -> bool {
        match &self.address {
            None => false,
            Some(address) => match address.strip_prefix("unix://") {
                Some(path) => std::path::Path::new(path).exists(),
                None => true,
            },
        }
    }

    /// Why a unix socket cannot be used, named as the user can act on it (not the HTTP
    /// client's "client error (Connect)"): permission denied, nothing listening, no socket.
    fn socket_problem(&self) -> Option<String> {
        let path = self.address.as_deref()?.strip_prefix("unix://")?;
        // Not "join the docker group": entering a namespace needs CAP_SYS_ADMIN all the same.
        let denied = || {
            format!(
                "{}: permission denied on {path} (run as root)",
                self.runtime
            )
        };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Some(denied()),
            Err(_) => return Some(format!("{}: no socket at {path}", self.runtime)),
            Ok(_) => {}
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(denied()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(format!(
                "{}: nothing listens on {path} (is the daemon running?)",
                self.runtime
            )),
            Err(e) => Some(format!("{}: {path}: {e}", self.runtime)),
        }
    }

    /// The uid owning the unix socket asked.
    fn socket_owner(&self) -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        let path = self.address.as_deref()?;
        let path = path.strip_prefix("unix://").unwrap_or(path);
        std::fs::metadata(path).ok().map(|m| m.uid())
    }

    fn label(&self) -> String {
        format!(
            "{} ({})",
            self.runtime,
            self.address.as_deref().unwrap_or(&self.looked)
        )
    }

    /// A client of the engine (a local unix socket only), or why there is none.
    pub fn connect(&self) -> std::result::Result<Docker, String> {
        let Some(address) = &self.address else {
            return Err(format!("{}: no socket at {}", self.runtime, self.looked));
        };
        let timeout = API_TIMEOUT.as_secs();
        if !(address.starts_with("unix://") || address.starts_with('/')) {
            // A TCP engine may be another machine: its pids mean nothing here.
            return Err(format!(
                "{}: not a local unix socket, so its pids cannot be entered here",
                self.label()
            ));
        }
        let client = Docker::connect_with_unix(address, timeout, &API_VERSION);
        client.map_err(|e| format!("{}: {}", self.label(), one_line(&e)))
    }

    /// The name of a container by ID (for `container:ID` network modes), if the engine knows it.
    pub async fn name_of(&self, id: &str) -> Option<String> {
        match self.lookup(id).await {
            Ok(Lookup::Found(info)) => Some(info.name),
            _ => None,
        }
    }

    /// Looks a name, ID or unique ID prefix up (the engine itself resolves all three).
    pub async fn lookup(&self, name: &str) -> Result<Lookup> {
        // The name goes into the API's URL path: one Docker or Podman could never give
        // (`%72t2`, `web?size=1`, `a/b`) is not asked at all, so it cannot be decoded or
        // reparsed into another name or query on the way.
        if !is_container_name(name) {
            return Ok(Lookup::NotFound(format!(
                "{}: {} is not a container name or ID",
                self.label(),
                name.escape_debug()
            )));
        }
        let client = match self.connect() {
            Ok(client) => client,
            Err(why) => return Ok(Lookup::Unreachable(why)),
        };
        let answer = tokio::time::timeout(API_TIMEOUT, client.inspect_container(name, None)).await;
        let response = match answer {
            Err(_) => {
                return Ok(Lookup::Unreachable(format!(
                    "{}: no answer within {API_TIMEOUT:?}",
                    self.label()
                )))
            }
            Ok(Ok(response)) => response,
            Ok(Err(ApiError::DockerResponseServerError {
                status_code: 404 | 301,
                ..
            })) => {
                return Ok(Lookup::NotFound(format!(
                    "{}: no such container",
                    self.label()
                )));
            }
            // The engine's own word, e.g. an ambiguous ID prefix: final.
            Ok(Err(ApiError::DockerResponseServerError { message, .. })) => {
                return Err(Error::Runtime {
                    runtime: self.runtime,
                    spec: name.to_owned(),
                    message: message.trim().to_owned(),
                })
            }
            Ok(Err(e)) => {
                let why = self
                    .socket_problem()
                    .unwrap_or_else(|| format!("{}: {}", self.label(), one_line(&e)));
                return Ok(Lookup::Unreachable(why));
            }
        };
        let host_config = response.host_config.unwrap_or_default();
        let memory_limit = host_config.memory.filter(|m| *m > 0);
        let network_mode = host_config.network_mode;
        let pid_mode = host_config.pid_mode.clone();
        let networks: Vec<(String, String)> = response
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|networks| {
                networks
                    .iter()
                    .map(|(name, n)| (name.clone(), n.network_id.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let ip = response
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|networks| {
                networks
                    .into_values()
                    .filter_map(|n| n.ip_address)
                    .find(|ip| !ip.is_empty())
            });
        let image = response.config.and_then(|c| c.image);
        let mounts = response
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| crate::RecordedMount {
                kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                source: m.source.unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                writable: m.rw.unwrap_or(true),
            })
            .collect();
        let state = response.state.unwrap_or_default();
        let stopped = !state.running.unwrap_or(false);
        let details = Details {
            image,
            ip,
            exit_code: state.exit_code.filter(|_| stopped),
            oom_killed: state.oom_killed.filter(|_| stopped),
            mounts,
            privileged: host_config.privileged.unwrap_or(false),
            cap_add: host_config.cap_add.unwrap_or_default(),
            security_opt: host_config.security_opt.unwrap_or_default(),
            devices: Some(
                host_config
                    .devices
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| {
                        (
                            d.path_on_host.unwrap_or_default(),
                            d.cgroup_permissions.unwrap_or_else(|| "rwm".to_owned()),
                        )
                    })
                    .collect(),
            ),
            device_cgroup_rules: host_config.device_cgroup_rules.unwrap_or_default(),
            attempt: None,
            finished_at: state.finished_at.clone().filter(|_| stopped),
            memory_limit,
            networks,
            pid_mode,
            socket_owner: self.socket_owner(),
            spec_network_mode: None,
        };
        // A paused container is "running" to Docker, but frozen: its pid is kept (its
        // namespaces can be read) and pinning refuses it unless reading is all that is asked.
        let running = state.running.unwrap_or(false);
        Ok(Lookup::Found(ContainerInfo {
            runtime: self.runtime,
            id: response.id.unwrap_or_default(),
            name: response
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            namespace: None,
            kubernetes: None,
            // A restarting container is "running" with pid 0: no process to enter yet.
            pid: state
                .pid
                .filter(|pid| running && *pid > 0)
                .and_then(|pid| i32::try_from(pid).ok()),
            status: match state.paused {
                Some(true) => "paused".to_owned(),
                _ => state
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".to_owned()),
            },
            network_mode,
            cri: None,
            details: Box::new(details),
        }))
    }

    /// The running containers.
    pub async fn list(&self, stopped_too: bool) -> std::result::Result<Vec<ContainerInfo>, String> {
        let client = self.connect()?;
        let options = ListContainersOptions {
            all: stopped_too,
            ..Default::default()
        };
        let listed = tokio::time::timeout(API_TIMEOUT, client.list_containers(Some(options)))
            .await
            .map_err(|_| format!("{}: no answer within {API_TIMEOUT:?}", self.label()))?
            .map_err(|e| {
                self.socket_problem()
                    .unwrap_or_else(|| format!("{}: {}", self.label(), one_line(&e)))
            })?;
        tracing::info!("{}: {} containers", self.label(), listed.len());
        let mut containers = Vec::new();
        for summary in listed {
            let Some(id) = summary.id else { continue };
            // Inspect for the pid; a container that vanished meanwhile is simply not listed.
            if let Ok(Lookup::Found(info)) = self.lookup(&id).await {
                containers.push(info);
            }
        }
        Ok(containers)
    }
}

/// A name Docker and Podman accept (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), or an ID (prefix).
pub fn is_container_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}
