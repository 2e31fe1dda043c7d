//! Runtime sockets that lie: a Docker API that answers a container name with a host process
//! (pid 1, dockerd), and a Podman socket planted in another user's `$XDG_RUNTIME_DIR`. What
//! they say is checked against the kernel; nothing is entered on their word.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::{Duration, Instant};

use nsdebug_tests::{nsdebug, require_root_and_docker, unique_name, Container, Spawned};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Docker Engine API on a unix socket that answers every `/containers/NAME/json` with a
/// running container whose pid is `pid` (a few lines of Python's standard library).
const LYING_ENGINE: &str = r#"
import json, os, socketserver, sys
from http.server import BaseHTTPRequestHandler
path, pid = sys.argv[1], int(sys.argv[2])
class Lie(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def address_string(self): return "unix"
    def do_GET(self):
        name = self.path.split("?")[0].rstrip("/").split("/")
        if len(name) >= 2 and name[-1] == "json" and "containers" in name:
            body = json.dumps({"Id": "f" * 64, "Name": "/" + name[-2],
                "State": {"Status": "running", "Running": True, "Paused": False, "Pid": pid},
                "HostConfig": {"NetworkMode": "bridge", "PidMode": ""},
                "Config": {"Image": "lie"}, "NetworkSettings": {"Networks": {}}}).encode()
            self.send_response(200)
        else:
            body = json.dumps({"message": "no such container"}).encode()
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
if os.path.exists(path): os.unlink(path)
Server(path, Lie).serve_forever()
"#;

/// Starts the lying engine on `socket`, naming `pid`; returns once it listens.
fn lying_engine(socket: &str, pid: i32) -> Spawned {
    let server = Spawned(
        std::process::Command::new("python3")
            .args(["-c", LYING_ENGINE, socket, &pid.to_string()])
            .spawn()
            .expect("python3"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the lying engine did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn pid_of(program: &str) -> Option<i32> {
    let out = std::process::Command::new("pidof")
        .args(["-s", program])
        .output()
        .ok()?;
    text(&out.stdout).trim().parse().ok()
}

/// Runs nsdebug with `env` set and only the named runtime asked.
fn nsdebug_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = nsdebug();
    command
        .env_remove("DOCKER_HOST")
        .env_remove("CONTAINER_HOST");
    for (key, value) in env {
        command.env(key, value);
    }
    command.args(args).output().unwrap()
}

#[test]
fn a_docker_socket_naming_a_host_process_is_refused_by_enter_and_audit() {
    require_root_and_docker!();
    let dir = std::env::temp_dir().join(unique_name("lying"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("docker.sock").display().to_string();
    let host = format!("unix://{socket}");
    // Another container's init: a real container, but not the one named.
    let other = Container::start_with(&[], &["sleep", "3600"]);
    let mut victims = vec![("pid 1", 1), ("another container", other.pid)];
    if let Some(dockerd) = pid_of("dockerd") {
        victims.push(("dockerd", dockerd));
    }
    for (what, pid) in victims {
        let _server = lying_engine(&socket, pid);
        let name = unique_name("liar");
        // Were pid 1 entered, `readlink /proc/self/ns/mnt` would print the host's own.
        let enter = nsdebug_with(
            &[("DOCKER_HOST", &host)],
            &[
                "enter",
                &name,
                "--runtime",
                "docker",
                "--",
                "readlink",
                "/proc/self/ns/mnt",
            ],
        );
        let stderr = text(&enter.stderr);
        assert_eq!(enter.status.code(), Some(125), "{what}: {enter:?}");
        assert!(
            enter.stdout.is_empty() && stderr.lines().count() == 1 && stderr.contains("cgroup"),
            "{what}: one line naming what did not match: {enter:?}"
        );
        let audit = nsdebug_with(
            &[("DOCKER_HOST", &host)],
            &["audit", &name, "--runtime", "docker"],
        );
        let report = text(&audit.stdout);
        assert_eq!(audit.status.code(), Some(125), "{what}: {audit:?}");
        assert!(
            report.contains("could not audit") && report.contains("does not name container"),
            "{what}: the lying answer is refused, not audited as the container: {audit:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_podman_socket_planted_in_another_users_runtime_dir_is_ignored() {
    require_root_and_docker!();
    // Another user's XDG_RUNTIME_DIR, as `sudo -E` keeps it, with a socket of theirs in it.
    let xdg = std::env::temp_dir().join(unique_name("xdg"));
    let podman_dir = xdg.join("podman");
    std::fs::create_dir_all(&podman_dir).unwrap();
    let socket = podman_dir.join("podman.sock").display().to_string();
    let _server = lying_engine(&socket, 1);
    for path in [&xdg, &podman_dir, &std::path::PathBuf::from(&socket)] {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = unique_name("planted");
    let out = nsdebug_with(
        &[("XDG_RUNTIME_DIR", &xdg.display().to_string())],
        &["enter", &name, "--runtime", "podman", "--", "true"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        stderr.contains("uid 65534") && stderr.contains("not used"),
        "the planted socket is named as not used: {out:?}"
    );
    let _ = std::fs::remove_dir_all(&xdg);
}

/// A CRI server (Python's grpcio, protobuf encoded by hand) with one ready pod whose sandbox
/// has no process and whose network namespace "path" is `argv[3]`.
const LYING_CRI: &str = r#"
import json, sys, time, grpc
from concurrent import futures
path, pod, netns = sys.argv[1], sys.argv[2], sys.argv[3]
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7f, n >> 7
        out.append(b | 0x80 if n else b)
        if not n: return bytes(out)
def field(num, data):
    data = data.encode() if isinstance(data, str) else data
    return varint(num << 3 | 2) + varint(len(data)) + data
def number(num, n): return varint(num << 3) + varint(n)
sid = "e" * 64
meta = field(1, pod) + field(2, "uid-" + pod) + field(3, "default")
sandbox = field(1, sid) + field(2, meta) + number(3, 0) + number(4, 1)
info = json.dumps({"pid": 0, "runtimeSpec": {"linux": {"namespaces": [
    {"type": "network", "path": netns}]}}})
answers = {
    "ListPodSandbox": field(1, sandbox),
    "ListContainers": b"",
    "PodSandboxStatus": field(1, sandbox) + field(2, field(1, "info") + field(2, info)),
}
handlers = {name: grpc.unary_unary_rpc_method_handler(lambda req, ctx, a=answer: a)
            for name, answer in answers.items()}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers(
    (grpc.method_handlers_generic_handler("runtime.v1.RuntimeService", handlers),))
server.add_insecure_port("unix://" + path)
server.start()
time.sleep(600)
"#;

#[test]
fn a_cri_sandbox_path_outside_the_runtimes_netns_directory_is_refused() {
    require_root_and_docker!();
    let has_grpc = std::process::Command::new("python3")
        .args(["-c", "import grpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_grpc {
        let why = "python3 has no grpc module (pip install grpcio)";
        assert!(
            !nsdebug_tests::in_ci(),
            "{why}; CI=true, so this is a failure"
        );
        return eprintln!("SKIP lying CRI: {why}");
    }
    let dir = std::env::temp_dir().join(unique_name("lying-cri"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("cri.sock").display().to_string();
    let pod = unique_name("pod").to_lowercase();
    // Another container's network namespace: a namespace file all the same (`veth --down`
    // on it would take that container's link down).
    let other = Container::start_with(&[], &["sleep", "3600"]);
    let netns = format!("/proc/{}/ns/net", other.pid);
    let _server = Spawned(
        std::process::Command::new("python3")
            .args(["-c", LYING_CRI, &socket, &pod, &netns])
            .spawn()
            .expect("python3"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the lying CRI did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let endpoint = format!("unix://{socket}");
    let out = nsdebug_with(
        &[],
        &["veth", &format!("pod/{pod}"), "--cri-endpoint", &endpoint],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        out.stdout.is_empty() && stderr.contains(&netns) && stderr.contains("refusing"),
        "another container's network namespace is refused with one line: {out:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
