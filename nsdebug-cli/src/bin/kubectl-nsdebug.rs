//! `kubectl nsdebug POD [-n NS] [-c C] [NSDEBUG-ENTER-OPTIONS] -- CMD...`: a kubectl plugin.
//!
//! It finds the pod's node, creates there a pod of the node image (host pid and network
//! namespaces, privileged, the node's root at /host, where nsdebug finds the CRI socket), which
//! runs `nsdebug enter pod/POD -n NS [--container C] OPTIONS -- CMD...`; it streams that pod's
//! output, exits with its command's status and deletes the pod, also on Ctrl-C.

use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

/// Run a command in a pod's namespaces from its node, with the host's view of the node
/// (nsdebug enter through a short-lived privileged pod of the nsdebug node image).
#[derive(Parser, Debug)]
#[command(
    name = "kubectl nsdebug",
    version,
    after_help = "Example: kubectl nsdebug web-0 -n shop --net -- ss -tlnp"
)]
struct Args {
    /// The pod to debug.
    pod: String,
    /// Its namespace.
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    namespace: String,
    /// Its container, when it has several.
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// The node image to run.
    #[arg(long, default_value = "nsdebug:latest")]
    image: String,
    /// Namespace of the node pod (it must allow privileged pods).
    #[arg(long, default_value = "default")]
    debug_namespace: String,
    /// Give up when the node pod has not started after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Options of `nsdebug enter` (--net, --all, ...), then `--` and the command.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "OPTIONS -- CMD"
    )]
    rest: Vec<String>,
}

/// The node pod that runs `nsdebug enter` against `args.pod` on `node`.
fn node_pod(args: &Args, node: &str) -> Value {
    // `OPTIONS -- CMD`, or just `CMD` (clap drops a leading `--`).
    let (options, cmd) = match args.rest.iter().position(|arg| arg == "--") {
        Some(at) => (&args.rest[..at], &args.rest[at + 1..]),
        None => (&args.rest[..0], &args.rest[..]),
    };
    let mut command = vec!["nsdebug".to_owned(), "enter".to_owned()];
    command.extend(options.iter().cloned());
    command.extend(["-n".to_owned(), args.namespace.clone()]);
    if let Some(container) = &args.container {
        command.extend(["--container".to_owned(), container.clone()]);
    }
    command.extend([format!("pod/{}", args.pod), "--".to_owned()]);
    command.extend(cmd.iter().cloned());
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "nsdebug-",
            "namespace": args.debug_namespace,
            "labels": { "app.kubernetes.io/name": "nsdebug", "app.kubernetes.io/managed-by": "kubectl-nsdebug" },
            "annotations": { "nsdebug/target": format!("{}/{}", args.namespace, args.pod) },
        },
        "spec": {
            "nodeName": node,
            "hostPID": true,
            "hostNetwork": true,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{ "operator": "Exists" }],
            "containers": [{
                "name": "nsdebug",
                "image": args.image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "securityContext": { "privileged": true },
                "volumeMounts": [{ "name": "host-root", "mountPath": "/host", "readOnly": true }],
            }],
            "volumes": [{ "name": "host-root", "hostPath": { "path": "/" } }],
        },
    })
}

/// Runs kubectl and returns its trimmed standard output; its error is one line.
fn kubectl(args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run kubectl (is it on PATH?)")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(text.as_bytes())
            .context("writing to kubectl")?;
    }
    let out = child.wait_with_output().context("waiting for kubectl")?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr);
        bail!(
            "kubectl {}: {}",
            args.first().copied().unwrap_or_default(),
            message.trim().replace('\n', "; ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C and SIGTERM stop the streaming (kubectl gets them too) but not the clean-up.
fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a handler that only stores to an atomic (async-signal-safe), installed on a
        // zeroed action with an empty mask; exec'd children get the default disposition back.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The created pod, deleted when dropped.
struct NodePod {
    name: String,
    namespace: String,
}

impl Drop for NodePod {
    fn drop(&mut self) {
        if let Err(e) = kubectl(
            &[
                "delete",
                "pod",
                &self.name,
                "-n",
                &self.namespace,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        ) {
            eprintln!(
                "kubectl-nsdebug: {e:#} (delete pod {} in {} by hand)",
                self.name, self.namespace
            );
        }
    }
}

fn run(args: Args) -> anyhow::Result<u8> {
    let node = kubectl(
        &[
            "get",
            "pod",
            &args.pod,
            "-n",
            &args.namespace,
            "-o",
            "jsonpath={.spec.nodeName}",
        ],
        None,
    )?;
    if node.is_empty() {
        bail!(
            "pod {} in {} is not scheduled on a node yet",
            args.pod,
            args.namespace
        );
    }
    catch_signals();
    let spec = node_pod(&args, &node).to_string();
    let created = kubectl(&["create", "-f", "-", "-o", "name"], Some(&spec))?;
    let pod = NodePod {
        name: created.trim_start_matches("pod/").to_owned(),
        namespace: args.debug_namespace.clone(),
    };
    eprintln!("kubectl-nsdebug: {} on node {node}", pod.name);

    let phase = || {
        kubectl(
            &[
                "get",
                "pod",
                &pod.name,
                "-n",
                &pod.namespace,
                "-o",
                "jsonpath={.status.phase}",
            ],
            None,
        )
    };
    let started = Instant::now();
    loop {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        match phase()?.as_str() {
            "Running" | "Succeeded" | "Failed" => break,
            _ if started.elapsed() > Duration::from_secs(args.timeout) => {
                bail!(
                    "{} did not start within {} s (kubectl describe pod {} -n {})",
                    pod.name,
                    args.timeout,
                    pod.name,
                    pod.namespace
                )
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let status = Command::new("kubectl")
        .args(["logs", "-f", &pod.name, "-n", &pod.namespace])
        .status()
        .context("running kubectl logs")?;
    if INTERRUPTED.load(Ordering::Relaxed) || !status.success() {
        bail!("stopped streaming the output of {}", pod.name);
    }
    let exit_code = "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}";
    for _ in 0..20 {
        let code = kubectl(
            &[
                "get",
                "pod",
                &pod.name,
                "-n",
                &pod.namespace,
                "-o",
                exit_code,
            ],
            None,
        )?;
        if let Ok(code) = code.parse::<i64>() {
            return Ok(u8::try_from(code).unwrap_or(125));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("{} did not report its exit status", pod.name)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("kubectl-nsdebug: {e:#}");
            ExitCode::from(125)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_pod_runs_nsdebug_enter_on_the_pods_node_with_the_host_root_at_host() {
        let args = Args::parse_from([
            "kubectl-nsdebug",
            "web-0",
            "-n",
            "shop",
            "-c",
            "app",
            "--image",
            "reg/nsdebug:1",
            "--net",
            "--",
            "ss",
            "-tlnp",
        ]);
        let expected = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "nsdebug-",
                "namespace": "default",
                "labels": { "app.kubernetes.io/name": "nsdebug", "app.kubernetes.io/managed-by": "kubectl-nsdebug" },
                "annotations": { "nsdebug/target": "shop/web-0" },
            },
            "spec": {
                "nodeName": "node-7",
                "hostPID": true,
                "hostNetwork": true,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "tolerations": [{ "operator": "Exists" }],
                "containers": [{
                    "name": "nsdebug",
                    "image": "reg/nsdebug:1",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["nsdebug", "enter", "--net", "-n", "shop", "--container", "app", "pod/web-0", "--", "ss", "-tlnp"],
                    "securityContext": { "privileged": true },
                    "volumeMounts": [{ "name": "host-root", "mountPath": "/host", "readOnly": true }],
                }],
                "volumes": [{ "name": "host-root", "hostPath": { "path": "/" } }],
            },
        });
        assert_eq!(node_pod(&args, "node-7"), expected);
    }

    #[test]
    fn defaults_and_a_command_is_required() {
        let args = Args::parse_from(["kubectl-nsdebug", "web-0", "--", "ip", "a"]);
        let pod = node_pod(&args, "n1");
        assert_eq!(
            pod["spec"]["containers"][0]["command"],
            json!([
                "nsdebug",
                "enter",
                "-n",
                "default",
                "pod/web-0",
                "--",
                "ip",
                "a"
            ])
        );
        let args = Args::parse_from(["kubectl-nsdebug", "web-0", "ip", "-o", "a"]);
        assert_eq!(
            node_pod(&args, "n1")["spec"]["containers"][0]["command"],
            json!([
                "nsdebug",
                "enter",
                "-n",
                "default",
                "pod/web-0",
                "--",
                "ip",
                "-o",
                "a"
            ])
        );
        assert_eq!(pod["spec"]["containers"][0]["image"], "nsdebug:latest");
        assert!(Args::try_parse_from(["kubectl-nsdebug", "web-0"]).is_err());
    }
}
