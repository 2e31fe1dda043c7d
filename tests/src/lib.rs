//! Helpers for the end-to-end tests: prerequisites, containers and namespaces that clean up
//! after themselves (also when a test fails), and small readers of kernel state.
//!
//! The tests use the `docker` CLI and iproute2 as *oracles* to set up and check the world;
//! the code under test never runs them.

pub mod json;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether this is a CI run, where no test may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks that the test can run for real: root and a reachable dockerd with the test image.
/// Locally a missing prerequisite skips the test with a printed reason; in CI it fails.
pub fn prerequisites_met(test: &str) -> bool {
    let missing = if !is_root() {
        Some("not running as root".to_owned())
    } else if !docker(&["info", "--format", "{{.ServerVersion}}"])
        .status
        .success()
    {
        Some("dockerd is not reachable (run scripts/setup)".to_owned())
    } else if !docker(&["image", "inspect", IMAGE]).status.success() {
        Some(format!("image {IMAGE} is missing (run scripts/setup)"))
    } else {
        None
    };
    match missing {
        None => true,
        Some(reason) if in_ci() => panic!("{test}: {reason}; CI=true, so this is a failure"),
        Some(reason) => {
            eprintln!("SKIP {test}: {reason}");
            false
        }
    }
}

/// Returns from the test (locally) when root or dockerd is missing; fails in CI.
#[macro_export]
macro_rules! require_root_and_docker {
    () => {
        if !$crate::prerequisites_met(module_path!()) {
            return;
        }
    };
}

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The local test image built by scripts/setup (busybox httpd on port 80 serving /www).
pub const IMAGE: &str = "nsdebug-test:latest";

/// A name no other test, run or stale leftover uses: `nsdbg-t-PID-N-SUFFIX`.
pub fn unique_name(suffix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "nsdbg-t-{}-{}-{suffix}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("cannot run the docker CLI")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A running container of the test image, removed (`docker rm -f`) when dropped.
#[derive(Debug)]
pub struct Container {
    /// Its unique name.
    pub name: String,
    /// The host pid of its init process.
    pub pid: i32,
    /// Its hostname.
    pub hostname: String,
}

impl Container {
    /// Starts the test image with `docker run -d` plus `extra` arguments (before the image).
    pub fn start(extra: &[&str]) -> Container {
        Container::start_with(extra, &[])
    }

    /// Starts the test image with `extra` docker arguments and `command` after the image.
    pub fn start_with(extra: &[&str], command: &[&str]) -> Container {
        let name = unique_name("c");
        let hostname = format!("h{}", &name[name.len().saturating_sub(12)..]).replace('-', "");
        let mut args = vec!["run", "-d", "--name", &name];
        // A container joining another's network namespace also shares its UTS settings.
        if !extra.iter().any(|a| a.starts_with("--net=container:")) {
            args.extend(["--hostname", &hostname]);
        }
        args.extend_from_slice(extra);
        args.push(IMAGE);
        // In the host's network namespace httpd would fight every other such container (and
        // the host) for port 80, and the loser exits: such a container just sleeps.
        let command = match (command, extra.contains(&"--net=host")) {
            ([], true) => &["/bin/sleep", "3600"][..],
            _ => command,
        };
        args.extend_from_slice(command);
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Own the container from here on, so a failing assertion below still removes it.
        let mut container = Container {
            name,
            pid: 0,
            hostname,
        };
        container.pid = stdout_of(&docker(&[
            "inspect",
            "-f",
            "{{.State.Pid}}",
            &container.name,
        ]))
        .parse()
        .expect("docker inspect gave no pid");
        container
    }

    /// The container's IPv4 address on its first network, as Docker reports it.
    pub fn ip(&self) -> String {
        stdout_of(&docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &self.name,
        ]))
    }

    /// Removes the container now (its processes are killed).
    pub fn remove(&self) {
        docker(&["rm", "-f", &self.name]);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A process started by the test (e.g. under `unshare`), killed and reaped when dropped.
pub struct Spawned(pub std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `readlink /proc/PID/ns/KIND`-style identity: the inode of a namespace file.
pub fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {path}: {e}"))
        .ino()
}

/// The first child process of `pid` (from `/proc/PID/task/PID/children`), waiting up to 5 s
/// for it to appear: how the tests find the process `unshare --fork` started.
pub fn first_child(pid: u32) -> i32 {
    let path = format!("/proc/{pid}/task/{pid}/children");
    for _ in 0..100 {
        let children = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(child) = children.split_whitespace().next() {
            return child.parse().expect("numeric pid");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("pid {pid} started no child within 5 s");
}

/// The directory holding the workspace's built binaries (`target/debug`), with every
/// binary of the workspace built there (once per test process).
///
/// `cargo test` builds the binaries of the package under test only: `nsdebug`,
/// `tcpflow-lite` and the examples belong to other packages, so on a clean checkout they
/// would be missing (or stale after an edit). The tests build them themselves, into the same
/// target directory and profile as the test, so `cargo test` alone is enough.
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    match BUILT.get_or_init(build_binaries) {
        Ok(dir) => dir.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// Runs `cargo build --workspace --bins` for the target directory and profile this test
/// binary was built in, and returns the profile's directory.
fn build_binaries() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/debug/deps/e2e-HASH -> target/debug
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| format!("{}: not in a cargo target directory", exe.display()))?
        .to_path_buf();
    let target_dir = dir.parent().ok_or("no target directory")?;
    let profile = match dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => return Err(format!("{}: no profile directory", dir.display())),
    };
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    // Cargo's own lock on the target directory orders this after (or before) any other build.
    let output = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--bins",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", PathBuf::from(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "building the workspace's binaries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(dir)
}

/// The host's hostname.
pub fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

/// The `nsdebug` binary under test: this workspace's, or `$NSDEBUG_BIN` (to show that a test
/// fails on another build, e.g. the one before a fix).
pub fn nsdebug_path() -> PathBuf {
    std::env::var_os("NSDEBUG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("nsdebug"))
}

/// Waits up to `limit` for a child; `None` if it is still running then.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

/// The `nsdebug` binary under test ([`nsdebug_path`]).
pub fn nsdebug() -> Command {
    Command::new(nsdebug_path())
}

/// Runs `nsdebug ARGS` and returns its output.
pub fn run_nsdebug(args: &[&str]) -> Output {
    nsdebug()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nsdebug_path().display()))
}

/// The socket of the containerd that Debian's docker.io starts for dockerd.
pub const DOCKER_CONTAINERD: &str = "/var/run/docker/containerd/containerd.sock";

/// A Kubernetes-style container: a containerd task in namespace `k8s.io` with the CRI
/// labels, made with `ctr` (as the kubelet's CRI plugin would label it). Removed on drop.
pub struct PodContainer {
    /// The containerd container ID.
    pub id: String,
    /// The pod name (`io.kubernetes.pod.name`).
    pub pod: String,
    /// The pod's Kubernetes namespace (`io.kubernetes.pod.namespace`).
    pub namespace: String,
}

fn ctr(args: &[&str]) -> Output {
    Command::new("ctr")
        .args(["-a", DOCKER_CONTAINERD, "-n", "k8s.io"])
        .args(args)
        .output()
        .expect("cannot run ctr")
}

impl PodContainer {
    /// Imports the test image into containerd's `k8s.io` namespace if needed and starts
    /// container `container` of pod `namespace/pod_prefix-N` running httpd.
    pub fn start(pod_prefix: &str, namespace: &str, container: &str) -> PodContainer {
        let image = "docker.io/library/nsdebug-test:latest";
        if !String::from_utf8_lossy(&ctr(&["images", "ls", "-q"]).stdout).contains(image) {
            let save = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "docker save {IMAGE} | ctr -a {DOCKER_CONTAINERD} -n k8s.io images import -"
                ))
                .output()
                .expect("sh");
            assert!(save.status.success(), "image import: {save:?}");
        }
        let id = unique_name("k8s");
        let pod = format!("{pod_prefix}-{}", std::process::id());
        let labels = [
            format!("io.kubernetes.pod.name={pod}"),
            format!("io.kubernetes.pod.namespace={namespace}"),
            format!("io.kubernetes.container.name={container}"),
        ];
        let mut args = vec!["run", "-d"];
        for label in &labels {
            args.extend(["--label", label]);
        }
        args.extend([image, &id, "/bin/httpd", "-f", "-p", "80", "-h", "/www"]);
        let run = ctr(&args);
        let started = PodContainer {
            id,
            pod,
            namespace: namespace.to_owned(),
        };
        assert!(run.status.success(), "ctr run: {run:?}");
        started
    }
}

impl Drop for PodContainer {
    fn drop(&mut self) {
        ctr(&["task", "kill", "-s", "KILL", &self.id]);
        for _ in 0..50 {
            if ctr(&["task", "rm", &self.id]).status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ctr(&["container", "rm", &self.id]);
    }
}

/// Runs `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("cannot run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named network namespace (`ip netns add`), deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    /// Creates `nsdbg-<suffix>-PID-N`.
    pub fn new(suffix: &str) -> Netns {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "nsdbg-{suffix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A link in the host's namespace, deleted when dropped (with its veth peer, if any).
pub struct HostLink(pub String);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Whether HTTP to `address` answers within `seconds` (curl, bounded).
pub fn http_answers(address: &str, seconds: u32) -> bool {
    Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            &seconds.to_string(),
            &format!("http://{address}/"),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// The hostile container fixture's files (tests/fixtures/hostile), with its two C programs
/// compiled statically (the image has no libc): built once per test run.
pub fn hostile_fixture_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile");
        let dir = bin_dir().join(format!("hostile-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fixture dir");
        for program in ["watcher", "inject", "pause", "splitcaps", "flood"] {
            let out = Command::new("gcc")
                .args(["-static", "-O2", "-pthread", "-o"])
                .arg(dir.join(program))
                .arg(source.join(format!("{program}.c")))
                .output()
                .expect("cannot run gcc (scripts/setup installs it)");
            assert!(
                out.status.success(),
                "gcc {program}.c: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for script in ["init.sh", "bash", "ip"] {
            std::fs::copy(source.join(script), dir.join(script)).expect("copy fixture script");
        }
        dir
    })
    .clone()
}

/// A container built to attack whoever debugs it: its root runs a watcher that tries, on
/// every new process of its pid namespace, to read `/proc/PID/{environ,mem,maps,fd/*,cwd,root}`,
/// open `/proc/PID/exe` for writing and ptrace it, logging each success to
/// `/tmp/watch.log`; it plants `/bin/bash`, `/bin/ip` and a TIOCSTI injector (`/bin/inject`),
/// symlinks `/fd3`...`/fd12` to `/proc/self/fd/N` and `/escape` to `../../../etc`, and its init
/// carries `PATH` into its own overlay upperdir, `BASH_FUNC_ls%%`, `PROMPT_COMMAND`, `ENV`,
/// `BASH_ENV`, `LD_PRELOAD`, `PYTHONPATH`, `HOME` and `TZ=Europe/Paris`. `/hostile/flood N`
/// sends it N one-byte connections on a raw socket (a flood of its own capture).
pub struct Hostile {
    /// The running container (removed when dropped).
    pub container: Container,
}

impl Hostile {
    /// Starts it with `extra` docker arguments; returns once the watcher is running. With
    /// `--pid=host` there is no watcher: it would attack every process of the machine.
    pub fn start(extra: &[&str]) -> Hostile {
        Hostile::start_split(extra, None)
    }

    /// Starts it with its init run through `splitcaps MODE` (tests/fixtures/hostile/splitcaps.c):
    /// `process`, `thread` or `nested` keep CAP_SYS_PTRACE (and CAP_SYS_ADMIN) in a helper
    /// named `helper` (a process, a thread of pid 1, pid 1 of a nested pid namespace) while
    /// pid 1 drops them from every set; `ambient` raises every capability into the
    /// inheritable and ambient sets.
    pub fn start_split(extra: &[&str], mode: Option<&str>) -> Hostile {
        let volume = format!("{}:/hostile:ro", hostile_fixture_dir().display());
        let mut args = vec!["-v", volume.as_str()];
        if extra.contains(&"--pid=host") {
            args.extend(["-e", "NSDEBUG_WATCH=off"]);
        }
        args.extend_from_slice(extra);
        let mut command = vec!["/bin/sh", "/hostile/init.sh"];
        if let Some(mode) = mode {
            command.splice(0..0, ["/hostile/splitcaps", mode]);
        }
        let container = Container::start_with(&args, &command);
        let hostile = Hostile { container };
        if extra.contains(&"--pid=host") {
            return hostile;
        }
        for _ in 0..100 {
            if hostile.log().contains("ready") {
                return hostile;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the hostile watcher did not start: {:?}", hostile.log());
    }

    /// What the watcher managed so far, one line per success: `KIND pid=N exe=PATH DETAIL`.
    pub fn log(&self) -> String {
        stdout_of(&docker(&[
            "exec",
            &self.container.name,
            "cat",
            "/tmp/watch.log",
        ]))
    }

    /// The lines of the log about processes whose binary is `exe`, or whose details
    /// mention `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// A running container of an image whose only file is a static `/pause` (no shell, no libc),
/// built with `docker import` the first time; removed when dropped.
pub fn shell_less_container() -> Container {
    let image = "nsdebug-test-noshell:latest";
    if !docker(&["image", "inspect", image]).status.success() {
        let build = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c --owner=0 --group=0 ./pause | docker import --change 'CMD [\"/pause\"]' - {image}",
                hostile_fixture_dir().display()
            ))
            .output()
            .expect("sh");
        assert!(build.status.success(), "docker import: {build:?}");
    }
    let name = unique_name("noshell");
    let out = docker(&["run", "-d", "--name", &name, image]);
    let mut container = Container {
        name,
        pid: 0,
        hostname: String::new(),
    };
    assert!(out.status.success(), "docker run: {out:?}");
    let pid = stdout_of(&docker(&[
        "inspect",
        "-f",
        "{{.State.Pid}}",
        &container.name,
    ]));
    container.pid = pid.parse().expect("a pid");
    container
}

/// The socket of nsdebug's own containerd with the CRI plugin (scripts/cri-containerd).
pub const CRI_SOCKET: &str = "/run/nsdebug-cri/containerd.sock";

/// The test image as the CRI containerd knows it (imported by scripts/cri-containerd).
pub const CRI_IMAGE: &str = "docker.io/library/nsdebug-test:latest";

fn cri_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

async fn cri_client() -> Result<nsdebug_cri::RuntimeClient, String> {
    let channel = nsdebug_cri::connect(CRI_SOCKET)
        .await
        .map_err(|e| format!("{CRI_SOCKET}: {e}"))?;
    Ok(nsdebug_cri::RuntimeClient::new(channel))
}

/// Checks what [`prerequisites_met`] checks and that the CRI containerd answers with the test
/// image; locally a missing one skips the test, in CI it fails.
pub fn cri_prerequisites_met(test: &str) -> bool {
    if !prerequisites_met(test) {
        return false;
    }
    let image = cri_block_on(async {
        let channel = nsdebug_cri::connect(CRI_SOCKET)
            .await
            .map_err(|e| e.to_string())?;
        let request = nsdebug_cri::v1::ImageStatusRequest {
            image: Some(nsdebug_cri::v1::ImageSpec {
                image: CRI_IMAGE.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        };
        let status = nsdebug_cri::ImageClient::new(channel)
            .image_status(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(status.into_inner().image.is_some())
    });
    let missing = match image {
        Ok(true) => return true,
        Ok(false) => format!(
            "image {CRI_IMAGE} is not imported into {CRI_SOCKET} (run scripts/cri-containerd)"
        ),
        Err(why) => {
            format!("the CRI containerd at {CRI_SOCKET} does not answer (run scripts/setup): {why}")
        }
    };
    if in_ci() {
        panic!("{test}: {missing}; CI=true, so this is a failure");
    }
    eprintln!("SKIP {test}: {missing}");
    false
}

/// Returns from the test (locally) when root, dockerd or the CRI containerd is missing; fails in CI.
#[macro_export]
macro_rules! require_cri {
    () => {
        if !$crate::cri_prerequisites_met(module_path!()) {
            return;
        }
    };
}

/// A Kubernetes pod made over the CRI as kubelet makes one (no kubelet): a sandbox with the
/// labels kubelet sets, then named containers of the test image. The first container runs
/// httpd on port 80, the others sleep. Stopped and removed when dropped.
#[derive(Debug)]
pub struct CriPod {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name (unique per test run), also its hostname.
    pub name: String,
    /// The sandbox ID.
    pub sandbox_id: String,
    /// Container name -> ID.
    pub containers: Vec<(String, String)>,
}

/// The label that marks a test's pod with the pid of the test process that made it.
const TEST_PID_LABEL: &str = "nsdebug.test.pid";

/// Stops and removes the pods that test processes no longer alive left behind (a run that
/// was killed): they would only fill the pod lists the tests read.
fn remove_stale_pods() {
    cri_block_on(async {
        let Ok(mut client) = cri_client().await else {
            return;
        };
        let Ok(listed) = client
            .list_pod_sandbox(nsdebug_cri::v1::ListPodSandboxRequest::default())
            .await
        else {
            return;
        };
        for pod in listed.into_inner().items {
            let Some(pid) = pod.labels.get(TEST_PID_LABEL) else {
                continue;
            };
            if pid.parse::<u32>().is_err() || std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                continue;
            }
            let id = pod.id.clone();
            let _ = client
                .stop_pod_sandbox(nsdebug_cri::v1::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let _ = client
                .remove_pod_sandbox(nsdebug_cri::v1::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await;
        }
    });
}

/// The namespaces kubelet asks for without `shareProcessNamespace`: network and IPC shared by
/// the pod, one pid namespace per container.
fn kubelet_namespaces() -> nsdebug_cri::v1::NamespaceOption {
    nsdebug_cri::v1::NamespaceOption {
        pid: nsdebug_cri::v1::NamespaceMode::Container as i32,
        ..Default::default()
    }
}

impl CriPod {
    /// Runs pod `namespace/PREFIX-PID-N` with `containers` and the pod `annotations`.
    pub fn start(
        namespace: &str,
        prefix: &str,
        containers: &[&str],
        annotations: &[(&str, &str)],
    ) -> CriPod {
        CriPod::start_with_mounts(namespace, prefix, containers, annotations, &[])
    }

    /// [`CriPod::start`], each container with the host paths `mounts` (HOST, CONTAINER)
    /// mounted writable, as kubelet mounts a `hostPath` volume.
    pub fn start_with_mounts(
        namespace: &str,
        prefix: &str,
        containers: &[&str],
        annotations: &[(&str, &str)],
        mounts: &[(&str, &str)],
    ) -> CriPod {
        let mounts: Vec<nsdebug_cri::v1::Mount> = mounts
            .iter()
            .map(|(host, inside)| nsdebug_cri::v1::Mount {
                host_path: (*host).to_owned(),
                container_path: (*inside).to_owned(),
                ..Default::default()
            })
            .collect();
        CriPod::start_as(namespace, prefix, containers, annotations, None, &mounts)
    }

    /// A pod UID of kubelet's shape, unique to this test process: make the pod's kubelet
    /// directory (`/var/lib/kubelet/pods/UID`) with it before [`CriPod::start_as`].
    pub fn new_uid() -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        format!(
            "00000000-0000-4000-9000-{:012}",
            u64::from(std::process::id()) * 1000
                + u64::from(COUNTER.fetch_add(1, Ordering::Relaxed))
        )
    }

    /// [`CriPod::start`] with pod UID `uid` (one is made up when `None`), each container
    /// with the CRI `mounts` as kubelet gives them (host path, container path, read-only).
    pub fn start_as(
        namespace: &str,
        prefix: &str,
        containers: &[&str],
        annotations: &[(&str, &str)],
        uid: Option<&str>,
        mounts: &[nsdebug_cri::v1::Mount],
    ) -> CriPod {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static STALE: std::sync::Once = std::sync::Once::new();
        STALE.call_once(remove_stale_pods);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let pid = std::process::id().to_string();
        let uid = uid.map(str::to_owned).unwrap_or_else(|| {
            format!(
                "00000000-0000-4000-8000-{:012}",
                std::process::id() as u64 * 1000 + u64::from(COUNTER.load(Ordering::Relaxed))
            )
        });
        let labels: std::collections::HashMap<String, String> = [
            ("io.kubernetes.pod.name", name.as_str()),
            ("io.kubernetes.pod.namespace", namespace),
            ("io.kubernetes.pod.uid", uid.as_str()),
            (TEST_PID_LABEL, pid.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = nsdebug_cri::v1::PodSandboxConfig {
            metadata: Some(nsdebug_cri::v1::PodSandboxMetadata {
                name: name.clone(),
                uid: uid.clone(),
                namespace: namespace.to_owned(),
                attempt: 0,
            }),
            hostname: name.clone(),
            labels: labels.clone(),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            linux: Some(nsdebug_cri::v1::LinuxPodSandboxConfig {
                security_context: Some(nsdebug_cri::v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(kubelet_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut pod = CriPod {
            namespace: namespace.to_owned(),
            name,
            sandbox_id: String::new(),
            containers: Vec::new(),
        };
        let result: Result<(), String> = cri_block_on(async {
            let mut client = cri_client().await?;
            let request = nsdebug_cri::v1::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            };
            let sandbox = client
                .run_pod_sandbox(request)
                .await
                .map_err(|e| format!("RunPodSandbox: {e}"))?;
            pod.sandbox_id = sandbox.into_inner().pod_sandbox_id;
            for (index, container) in containers.iter().enumerate() {
                let command: &[&str] = if index == 0 {
                    &["/bin/httpd", "-f", "-p", "80", "-h", "/www"]
                } else {
                    &["/bin/sleep", "100000"]
                };
                let mut container_labels = labels.clone();
                container_labels.insert(
                    "io.kubernetes.container.name".to_owned(),
                    (*container).to_owned(),
                );
                let request = nsdebug_cri::v1::CreateContainerRequest {
                    pod_sandbox_id: pod.sandbox_id.clone(),
                    config: Some(nsdebug_cri::v1::ContainerConfig {
                        metadata: Some(nsdebug_cri::v1::ContainerMetadata {
                            name: (*container).to_owned(),
                            attempt: 0,
                        }),
                        image: Some(nsdebug_cri::v1::ImageSpec {
                            image: CRI_IMAGE.to_owned(),
                            ..Default::default()
                        }),
                        command: command.iter().map(|s| (*s).to_owned()).collect(),
                        labels: container_labels,
                        mounts: mounts.to_vec(),
                        linux: Some(nsdebug_cri::v1::LinuxContainerConfig {
                            security_context: Some(
                                nsdebug_cri::v1::LinuxContainerSecurityContext {
                                    namespace_options: Some(kubelet_namespaces()),
                                    ..Default::default()
                                },
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    sandbox_config: Some(config.clone()),
                };
                let created = client
                    .create_container(request)
                    .await
                    .map_err(|e| format!("CreateContainer {container}: {e}"))?;
                let id = created.into_inner().container_id;
                pod.containers.push(((*container).to_owned(), id.clone()));
                let request = nsdebug_cri::v1::StartContainerRequest { container_id: id };
                client
                    .start_container(request)
                    .await
                    .map_err(|e| format!("StartContainer {container}: {e}"))?;
            }
            Ok(())
        });
        if let Err(why) = result {
            panic!("pod {}/{}: {why}", pod.namespace, pod.name);
        }
        pod
    }

    /// `NAMESPACE/NAME`.
    pub fn spec(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The IP CNI gave the pod, as the CRI reports it.
    pub fn ip(&self) -> String {
        cri_block_on(async {
            let mut client = cri_client().await.expect("CRI");
            let request = nsdebug_cri::v1::PodSandboxStatusRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
                verbose: false,
            };
            let status = client
                .pod_sandbox_status(request)
                .await
                .expect("PodSandboxStatus")
                .into_inner();
            status
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .unwrap_or_default()
        })
    }

    /// The host pid of the sandbox's pause process (from the verbose status).
    pub fn sandbox_pid(&self) -> i32 {
        cri_block_on(async {
            let mut client = cri_client().await.expect("CRI");
            let request = nsdebug_cri::v1::PodSandboxStatusRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
                verbose: true,
            };
            let status = client
                .pod_sandbox_status(request)
                .await
                .expect("PodSandboxStatus")
                .into_inner();
            let info: serde_json::Value =
                serde_json::from_str(status.info.get("info").expect("verbose info")).expect("JSON");
            info["pid"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .expect("pid")
        })
    }

    /// Stops the sandbox (and so its containers), as kubelet does before removing a pod.
    pub fn stop(&self) {
        cri_block_on(async {
            if let Ok(mut client) = cri_client().await {
                let request = nsdebug_cri::v1::StopPodSandboxRequest {
                    pod_sandbox_id: self.sandbox_id.clone(),
                };
                let _ = client.stop_pod_sandbox(request).await;
            }
        });
    }
}

impl Drop for CriPod {
    fn drop(&mut self) {
        if self.sandbox_id.is_empty() {
            return;
        }
        self.stop();
        cri_block_on(async {
            if let Ok(mut client) = cri_client().await {
                let request = nsdebug_cri::v1::RemovePodSandboxRequest {
                    pod_sandbox_id: self.sandbox_id.clone(),
                };
                let _ = client.remove_pod_sandbox(request).await;
            }
        });
    }
}

/// Podman's API socket for the tests (scripts/podman-service), given to nsdebug as `CONTAINER_HOST`.
pub const PODMAN_SOCKET: &str = "/run/nsdebug-podman/podman.sock";

/// The test image in Podman's store (loaded by scripts/podman-service).
pub const PODMAN_IMAGE: &str = "localhost/nsdebug-test:latest";

/// Runs the podman CLI (an oracle and a fixture maker, like `docker`).
pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("cannot run podman")
}

/// Checks root, dockerd (the image's source), Podman's socket and its copy of the test image;
/// locally a missing one skips the test, in CI it fails.
pub fn podman_prerequisites_met(test: &str) -> bool {
    if !prerequisites_met(test) {
        return false;
    }
    let ping = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "3",
            "--unix-socket",
            PODMAN_SOCKET,
            "http://d/_ping",
        ])
        .output()
        .is_ok_and(|out| out.status.success());
    let missing = if !ping {
        format!("podman's API does not answer on {PODMAN_SOCKET} (run scripts/setup)")
    } else if !Command::new("podman")
        .args(["image", "exists", PODMAN_IMAGE])
        .status()
        .is_ok_and(|s| s.success())
    {
        format!("podman has no image {PODMAN_IMAGE} (run scripts/podman-service)")
    } else {
        return true;
    };
    if in_ci() {
        panic!("{test}: {missing}; CI=true, so this is a failure");
    }
    eprintln!("SKIP {test}: {missing}");
    false
}

/// Returns from the test (locally) when root, dockerd or Podman's socket is missing; fails in CI.
#[macro_export]
macro_rules! require_podman {
    () => {
        if !$crate::podman_prerequisites_met(module_path!()) {
            return;
        }
    };
}

/// A running Podman container of the test image (httpd on port 80), removed when dropped.
/// Its rlimits are set below the sandbox's: Podman would raise them, which this kind of
/// machine refuses.
#[derive(Debug)]
pub struct PodmanContainer {
    /// Its unique name.
    pub name: String,
    /// The host pid of its init process.
    pub pid: i32,
}

impl PodmanContainer {
    /// Starts one with `podman run -d` plus `extra` options.
    pub fn start(extra: &[&str]) -> PodmanContainer {
        let name = unique_name("podman");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        args.extend_from_slice(extra);
        args.push(PODMAN_IMAGE);
        let run = podman(&args);
        let mut started = PodmanContainer { name, pid: 0 };
        assert!(run.status.success(), "podman run: {run:?}");
        started.pid = stdout_of(&podman(&["inspect", "-f", "{{.State.Pid}}", &started.name]))
            .parse()
            .expect("pid");
        started
    }

    /// Its IPv4 address on Podman's default network.
    pub fn ip(&self) -> String {
        stdout_of(&podman(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}",
            &self.name,
        ]))
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

/// The user whose rootless Podman scripts/podman-service starts.
pub const ROOTLESS_USER: &str = "nsdbg-rootless";

/// A rootless Podman container of [`ROOTLESS_USER`] (`--network none`: rootless networking
/// needs slirp4netns, which cannot open this machine's `/dev/net/tun`, mode 0600), removed
/// when dropped.
#[derive(Debug)]
pub struct RootlessPodman {
    /// Its unique name.
    pub name: String,
    /// The user's API socket (`CONTAINER_HOST`).
    pub socket: String,
    uid: String,
}

impl RootlessPodman {
    fn podman(uid: &str, args: &[&str]) -> Output {
        Command::new("runuser")
            .args([
                "-u",
                ROOTLESS_USER,
                "--",
                "env",
                &format!("XDG_RUNTIME_DIR=/run/user/{uid}"),
                "podman",
            ])
            .args(args)
            .current_dir("/")
            .output()
            .expect("cannot run runuser")
    }

    /// Starts one, or returns why it cannot (the user or its socket is missing).
    pub fn start() -> Result<RootlessPodman, String> {
        Self::start_with(&[])
    }

    /// Starts one with `extra` options of `podman run` (e.g. `--device /dev/kmsg`).
    pub fn start_with(extra: &[&str]) -> Result<RootlessPodman, String> {
        let uid = stdout_of(
            &Command::new("id")
                .args(["-u", ROOTLESS_USER])
                .output()
                .map_err(|e| e.to_string())?,
        );
        if uid.is_empty() {
            return Err(format!(
                "no user {ROOTLESS_USER} (run scripts/podman-service)"
            ));
        }
        let socket = format!("/run/user/{uid}/podman/podman.sock");
        if !std::path::Path::new(&socket).exists() {
            return Err(format!(
                "no rootless podman socket {socket} (run scripts/podman-service)"
            ));
        }
        let name = unique_name("rootless");
        let args = [
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        let args: Vec<&str> = args
            .iter()
            .chain(extra)
            .copied()
            .chain([PODMAN_IMAGE])
            .collect();
        let run = Self::podman(&uid, &args);
        let started = RootlessPodman { name, socket, uid };
        if !run.status.success() {
            return Err(format!(
                "rootless podman run: {}",
                String::from_utf8_lossy(&run.stderr)
            ));
        }
        Ok(started)
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        Self::podman(&self.uid, &["rm", "-f", "-t", "0", &self.name]);
    }
}

/// Runs `command_line` (a shell command line) on a terminal of its own, as a user at a
/// terminal would (util-linux `script`), for at most `seconds`: what the terminal showed
/// (stdout and stderr as they came, carriage returns and NULs removed) and the exit status
/// (124: it was still running at the deadline).
pub fn on_a_terminal(command_line: &str, seconds: u32) -> (String, Option<i32>) {
    let mut script = Command::new("timeout")
        .args([
            "-k",
            "5",
            &seconds.to_string(),
            "script",
            "-qec",
            command_line,
            "/dev/null",
        ])
        .env("SHELL", "/bin/sh")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("timeout and script (util-linux) run");
    // Stdin stays open (no end of file typed at the program) until it has ended.
    let stdin = script.stdin.take();
    let out = script.wait_with_output().expect("waiting for script");
    drop(stdin);
    let shown = String::from_utf8_lossy(&out.stdout).replace(['\r', '\0'], "");
    (shown, out.status.code())
}
