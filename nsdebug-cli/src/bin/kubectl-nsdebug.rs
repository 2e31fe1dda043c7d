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
    /// Its namespace (default: default). One only: also when given among the options.
    #[arg(short = 'n', long = "namespace")]
    namespace: Option<String>,
    /// Its container, when it has several.
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// The node image to run, fully qualified (its registry named: a short name could be
    /// pulled from Docker Hub into a privileged pod); a digest (@sha256:...) pins it. The
    /// default is the image scripts/image builds, never pulled.
    #[arg(long, default_value = DEFAULT_IMAGE)]
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

/// The image scripts/image builds (tagged so too), loaded on the node: never pulled.
const DEFAULT_IMAGE: &str = concat!("localhost/nsdebug:", env!("CARGO_PKG_VERSION"));

/// `OPTIONS -- CMD`, or just `CMD` (clap drops a leading `--`).
fn split_rest(rest: &[String]) -> (&[String], &[String]) {
    match rest.iter().position(|arg| arg == "--") {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&rest[..0], rest),
    }
}

/// Checks the arguments and takes `-n`/`-c` given among nsdebug's options (after the first
/// of them clap leaves everything to OPTIONS): one namespace and one container, each said
/// once; names that Kubernetes could give; a fully qualified image.
fn settle(mut args: Args) -> anyhow::Result<Args> {
    let (options, cmd) = split_rest(&args.rest);
    let (options, cmd) = (options.to_vec(), cmd.to_vec());
    let mut kept = Vec::new();
    let mut words = options.into_iter();
    while let Some(word) = words.next() {
        let (slot, value) = match word.as_str() {
            "-n" | "--namespace" => (&mut args.namespace, words.next()),
            "-c" | "--container" => (&mut args.container, words.next()),
            w if w.starts_with("--namespace=") => (
                &mut args.namespace,
                Some(w["--namespace=".len()..].to_owned()),
            ),
            w if w.starts_with("--container=") => (
                &mut args.container,
                Some(w["--container=".len()..].to_owned()),
            ),
            _ => {
                kept.push(word);
                continue;
            }
        };
        let Some(value) = value else {
            bail!("{word} needs a value");
        };
        match slot {
            Some(given) if *given != value => bail!("{word} {value} and {given}: say one"),
            _ => *slot = Some(value),
        }
    }
    if !is_dns_name(&args.pod, 253) {
        bail!(
            "{:?} is not a pod name (lowercase letters, digits, - and .)",
            args.pod
        );
    }
    for name in args.namespace.iter().chain(&args.container) {
        if !is_dns_name(name, 63) || name.contains('.') {
            bail!("{name:?} is not a Kubernetes namespace or container name");
        }
    }
    let registry = args.image.split('/').next().unwrap_or_default();
    let qualified = args.image.contains('/')
        && (registry.contains('.') || registry.contains(':') || registry == "localhost");
    if !qualified {
        bail!(
            "--image {}: a short name could be pulled from Docker Hub into a privileged pod; \
             name its registry (localhost/nsdebug:TAG, REGISTRY/nsdebug@sha256:...)",
            args.image
        );
    }
    kept.push("--".to_owned());
    kept.extend(cmd);
    args.rest = kept;
    Ok(args)
}

/// A DNS-1123 name as Kubernetes takes it: lowercase alphanumerics, `-` and `.`, beginning
/// and ending with an alphanumeric (never `-`, which kubectl would take as an option).
fn is_dns_name(name: &str, max: usize) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| ok(b) || b == b'-' || b == b'.')
        && name.bytes().next().is_some_and(ok)
        && name.bytes().last().is_some_and(ok)
}

/// The namespace the pod is in.
fn namespace(args: &Args) -> &str {
    args.namespace.as_deref().unwrap_or("default")
}

/// The node pod that runs `nsdebug enter` against `args.pod` on `node`.
fn node_pod(args: &Args, node: &str) -> Value {
    let (options, cmd) = split_rest(&args.rest);
    let mut command = vec!["nsdebug".to_owned(), "enter".to_owned()];
    command.extend(options.iter().cloned());
    command.extend(["-n".to_owned(), namespace(args).to_owned()]);
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
            "annotations": { "nsdebug/target": format!("{}/{}", namespace(args), args.pod) },
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
                // The default image is the node's own; one named by the user may be pulled.
                "imagePullPolicy": if args.image == DEFAULT_IMAGE { "Never" } else { "IfNotPresent" },
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

extern "C" fn on_signal(_: std::ffi::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C and SIGTERM stop the streaming (kubectl gets them too) but not the clean-up.
fn catch_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: a handler that only stores to an atomic (async-signal-safe), with an empty
        // mask; exec'd children get the default disposition back.
        let _ = unsafe { sigaction(signal, &action) };
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
    // The pod's name after `--`: never an option of kubectl's, whatever it is.
    let node = kubectl(
        &[
            "get",
            "pod",
            "-n",
            namespace(&args),
            "-o",
            "jsonpath={.spec.nodeName}",
            "--",
            &args.pod,
        ],
        None,
    )?;
    if node.is_empty() {
        bail!(
            "pod {} in {} is not scheduled on a node yet",
            args.pod,
            namespace(&args)
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
    let args = match settle(Args::parse()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("kubectl-nsdebug: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
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
            "reg.example/nsdebug:1",
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
                    "image": "reg.example/nsdebug:1",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["nsdebug", "enter", "--net", "-n", "shop", "--container", "app", "pod/web-0", "--", "ss", "-tlnp"],
                    "securityContext": { "privileged": true },
                    "volumeMounts": [{ "name": "host-root", "mountPath": "/host", "readOnly": true }],
                }],
                "volumes": [{ "name": "host-root", "hostPath": { "path": "/" } }],
            },
        });
        assert_eq!(node_pod(&settle(args).unwrap(), "node-7"), expected);
    }

    #[test]
    fn defaults_and_a_command_is_required() {
        let args = Args::parse_from(["kubectl-nsdebug", "web-0", "--", "ip", "a"]);
        let pod = node_pod(&settle(args).unwrap(), "n1");
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
            node_pod(&settle(args).unwrap(), "n1")["spec"]["containers"][0]["command"],
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
        assert_eq!(pod["spec"]["containers"][0]["image"], DEFAULT_IMAGE);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert!(Args::try_parse_from(["kubectl-nsdebug", "web-0"]).is_err());
    }

    /// `kubectl nsdebug web --net -n shop -- ip a`: -n after an nsdebug option is still the
    /// pod's one namespace; two different ones, a pod name kubectl would read as an option
    /// and a short image name are refused.
    #[test]
    fn one_namespace_names_kubernetes_could_give_and_a_qualified_image() {
        let parse = |words: &[&str]| {
            settle(Args::parse_from(
                std::iter::once("kubectl-nsdebug").chain(words.iter().copied()),
            ))
        };
        let args = parse(&["web", "--net", "-n", "shop", "--", "ip", "a"]).unwrap();
        assert_eq!(
            node_pod(&args, "n1")["spec"]["containers"][0]["command"],
            json!(["nsdebug", "enter", "--net", "-n", "shop", "pod/web", "--", "ip", "a"])
        );
        assert!(parse(&["web", "-n", "a", "--net", "-n", "b", "--", "true"]).is_err());
        assert!(parse(&["--", "-web", "true"]).is_err());
        assert!(parse(&["web", "--image", "nsdebug:1", "--", "true"]).is_err());
        assert!(parse(&[
            "web",
            "--image",
            "ghcr.io/x/nsdebug@sha256:00",
            "--",
            "true"
        ])
        .is_ok());
    }
}
