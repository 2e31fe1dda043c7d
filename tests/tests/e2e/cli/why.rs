//! What is not running: `why` on exited, OOM-killed and crash-looping containers (Docker,
//! Podman, a CRI pod whose container the test restarts as kubelet would), and `debug` on an
//! exited container's files, read from the runtime's storage without starting it.

use std::collections::HashMap;
use std::process::Output;

use nsdebug_tests::json::{parse, Why};
use nsdebug_tests::{
    docker, nsdebug, podman, require_cri, require_podman, require_root_and_docker, unique_name,
    Container, CriPod, CRI_IMAGE, CRI_SOCKET, PODMAN_IMAGE, PODMAN_SOCKET,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> Output {
    nsdebug().args(args).output().unwrap()
}

/// A Docker container of the test image that ran `script` and ended.
fn exited(extra: &[&str], script: &str) -> Container {
    let container = Container::start_with(extra, &["/bin/sh", "-c", script]);
    let waited = docker(&["wait", &container.name]);
    assert!(waited.status.success(), "docker wait: {waited:?}");
    container
}

/// What `docker inspect` says of a container's state and storage: nsdebug must not change it.
fn docker_state(name: &str) -> String {
    text(
        &docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}} {{.RestartCount}} {{json .GraphDriver}}",
            name,
        ])
        .stdout,
    )
}

/// Every entry beneath `dir` with its size and modification time, sorted.
fn tree(dir: &std::path::Path) -> Vec<(String, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let meta = entry.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            found.push((
                entry.path().display().to_string(),
                meta.len(),
                meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
            ));
        }
    }
    found.sort();
    found
}

fn mount_table() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The overlay mounts of the host that name the container's layer directories.
fn mounts_naming(table: &str, dir: &str) -> usize {
    table.lines().filter(|l| l.contains(dir)).count()
}

#[test]
fn why_tells_the_exit_code_and_the_last_log_line_escaped() {
    require_root_and_docker!();
    let c = exited(
        &[],
        "echo written > /wrote-this; echo 'the last words'; printf 'bad \\033]0;pwned\\007 \\033[2J end\\n'; exit 3",
    );
    let before = docker_state(&c.name);
    let out = run(&["why", &c.name]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains("exited, exit code 3"), "{page}");
    assert!(page.contains("OOM-killed  no"), "{page}");
    assert!(page.contains("restarts    0 (policy no)"), "{page}");
    assert!(page.contains("    the last words\n"), "{page}");
    // The container's escape sequences are shown, not sent to the terminal.
    assert!(
        !page.contains('\x1b') && !page.contains('\x07'),
        "raw control bytes reached the terminal: {page:?}"
    );
    assert!(page.contains("bad \\x1b]0;pwned\\x07"), "{page}");
    // --json names the target as every command does and keeps the log as written.
    let out = run(&["why", &c.name, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let why: Why = parse("why --json", &out.stdout);
    assert_eq!(why.target.name.as_deref(), Some(c.name.as_str()), "{why:?}");
    assert_eq!(why.target.status.as_deref(), Some("exited"), "{why:?}");
    assert_eq!(why.target.pid, None, "{why:?}");
    assert_eq!(why.current.exit_code, Some(3), "{why:?}");
    assert_eq!(why.current.oom_killed, Some(false), "{why:?}");
    assert_eq!(why.kernel_oom_kills, Some(0), "{why:?}");
    let lines = &why.log.lines;
    assert!(lines.iter().any(|l| l == "the last words"), "{why:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "bad \x1b]0;pwned\x07 \x1b[2J end"),
        "{why:?}"
    );
    assert_eq!(docker_state(&c.name), before, "why changed the container");
}

#[test]
fn why_tells_an_oom_kill_and_the_memory_limit() {
    require_root_and_docker!();
    let c = exited(
        &["--memory", "8m", "--memory-swap", "8m"],
        "echo filling memory; tail /dev/zero",
    );
    let out = run(&["why", &c.name]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains("exit code 137 (128+SIGKILL)"), "{page}");
    assert!(page.contains("OOM-killed  YES"), "{page}");
    assert!(page.contains("memory 8.0 MiB"), "{page}");
    assert!(page.contains("    filling memory\n"), "{page}");
    let why: Why = parse("why --json", &run(&["why", &c.name, "--json"]).stdout);
    // The kernel's word: Docker's own record races with the exit on cgroup v1.
    assert!(why.kernel_oom_kills >= Some(1), "{why:?}");
    assert_eq!(why.current.signal.as_deref(), Some("SIGKILL"), "{why:?}");
    assert_eq!(why.memory_limit, Some(8 * 1024 * 1024), "{why:?}");
}

#[test]
fn why_on_a_running_container_says_running_with_its_cgroup_and_audit() {
    require_root_and_docker!();
    let c = Container::start(&["--pids-limit", "64"]);
    let out = run(&["why", &c.name]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains("state       running"), "{page}");
    assert!(page.contains("oom_kill    0"), "{page}");
    assert!(page.contains("pids 64"), "{page}");
    assert!(page.contains("audit       "), "{page}");
}

#[test]
fn why_on_an_exited_podman_container() {
    require_podman!();
    let name = unique_name("why-podman");
    let out = podman(&[
        "run",
        "--name",
        &name,
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        PODMAN_IMAGE,
        "sh",
        "-c",
        "echo podman says goodbye; echo kept > /podman-wrote; exit 5",
    ]);
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            podman(&["rm", "-f", "-t", "0", &self.0]);
        }
    }
    let _remove = Remove(name.clone());
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let out = nsdebug()
        .env("CONTAINER_HOST", format!("unix://{PODMAN_SOCKET}"))
        .args(["why", &name, "--runtime", "podman"])
        .output()
        .unwrap();
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.starts_with("podman container "), "{page}");
    assert!(page.contains("exited, exit code 5"), "{page}");
    assert!(page.contains("log (podman API)"), "{page}");
    assert!(page.contains("    podman says goodbye\n"), "{page}");
    // Its files, from Podman's storage.
    let before = text(
        &podman(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.FinishedAt}}",
            &name,
        ])
        .stdout,
    );
    let out = nsdebug()
        .env("CONTAINER_HOST", format!("unix://{PODMAN_SOCKET}"))
        .args([
            "debug",
            &name,
            "--",
            "sh",
            "-c",
            "cat $CTR_ROOT/podman-wrote",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "kept\n", "{out:?}");
    let after = text(
        &podman(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.FinishedAt}}",
            &name,
        ])
        .stdout,
    );
    assert_eq!(before, after, "debug changed the container");
}

/// Plays kubelet for a crash-looping container: a pod whose container `app` runs `scripts[N]`
/// as attempt N (each waited for until it exited, or runs when it `exec`s), with its logs where
/// kubelet would put them and `memory` bytes as its limit (0: none).
fn crash_looping_pod(log_dir: &std::path::Path, scripts: &[&str], memory: i64) -> CriPod {
    use nsdebug_cri::v1::*;
    let pod = CriPod::start("default", "crashloop", &[], &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = nsdebug_cri::connect(CRI_SOCKET).await.unwrap();
        let mut client = nsdebug_cri::RuntimeClient::new(channel);
        let sandbox = client
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod.sandbox_id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        let metadata = sandbox.metadata.unwrap();
        let labels: HashMap<String, String> = sandbox
            .labels
            .into_iter()
            .chain([("io.kubernetes.container.name".to_owned(), "app".to_owned())])
            .collect();
        let config = PodSandboxConfig {
            metadata: Some(metadata),
            hostname: pod.name.clone(),
            log_directory: log_dir.display().to_string(),
            labels: labels.clone(),
            ..Default::default()
        };
        for (attempt, script) in (0u32..).zip(scripts) {
            let runs = script.contains("exec ");
            let request = CreateContainerRequest {
                pod_sandbox_id: pod.sandbox_id.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "app".to_owned(),
                        attempt,
                    }),
                    image: Some(ImageSpec {
                        image: CRI_IMAGE.to_owned(),
                        ..Default::default()
                    }),
                    command: vec!["/bin/sh".to_owned(), "-c".to_owned(), (*script).to_owned()],
                    labels: labels.clone(),
                    annotations: HashMap::from([(
                        "io.kubernetes.container.restartCount".to_owned(),
                        attempt.to_string(),
                    )]),
                    log_path: format!("app/{attempt}.log"),
                    linux: Some(LinuxContainerConfig {
                        resources: Some(LinuxContainerResources {
                            memory_limit_in_bytes: memory,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(config.clone()),
            };
            let id = client
                .create_container(request)
                .await
                .unwrap()
                .into_inner()
                .container_id;
            client
                .start_container(StartContainerRequest {
                    container_id: id.clone(),
                })
                .await
                .unwrap();
            // Until it exited, as kubelet watches it.
            for _ in 0..100 {
                let status = client
                    .container_status(ContainerStatusRequest {
                        container_id: id.clone(),
                        verbose: false,
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .status
                    .unwrap();
                let awaited = match runs {
                    true => ContainerState::ContainerRunning,
                    false => ContainerState::ContainerExited,
                };
                if status.state == awaited as i32 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    });
    pod
}

#[test]
fn why_on_a_crash_looping_pod_shows_the_attempt_its_restarts_and_its_log() {
    require_cri!();
    let log_dir = std::env::temp_dir().join(unique_name("why-pod-logs"));
    std::fs::create_dir_all(log_dir.join("app")).unwrap();
    let pod = crash_looping_pod(
        &log_dir,
        &[
            "echo crash number 0; exit 3",
            "echo crash number 1; echo attempt 1 wrote this > /note; exit 3",
        ],
        0,
    );
    let kube = |args: &[&str]| {
        nsdebug()
            .env("CONTAINER_RUNTIME_ENDPOINT", format!("unix://{CRI_SOCKET}"))
            .args(args)
            .output()
            .unwrap()
    };
    let spec = format!("default/{}/app", pod.name);
    let out = kube(&["why", &spec]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains(", attempt 1"), "{page}");
    assert!(
        page.contains("state       exited (attempt 1), exit code 3"),
        "{page}"
    );
    assert!(
        page.contains("previous    exited (attempt 0), exit code 3"),
        "{page}"
    );
    assert!(page.contains("restarts    1"), "{page}");
    assert!(page.contains("    crash number 1\n"), "{page}");
    let why: Why = parse("why --json", &kube(&["why", &spec, "--json"]).stdout);
    assert_eq!(why.target.attempt, Some(1), "{why:?}");
    assert_eq!(
        why.target.kubernetes.as_ref().map(|k| k.pod.as_str()),
        Some(pod.name.as_str()),
        "{why:?}"
    );
    assert_eq!(why.restart_count, Some(1), "{why:?}");
    assert_eq!(
        why.previous.as_ref().and_then(|p| p.exit_code),
        Some(3),
        "{why:?}"
    );
    assert!(why.log.source.ends_with("app/1.log, attempt 1"), "{why:?}");
    // enter finds the pod by name too, and says which attempt it found not running.
    let out = kube(&["enter", &spec, "--", "true"]);
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        said.contains("attempt 1") && said.contains("not running"),
        "{said}"
    );
    // The files of the attempt shown, from containerd's snapshot, and it stays as it was.
    let out = kube(&["debug", &spec, "--", "sh", "-c", "cat $CTR_ROOT/note"]);
    assert_eq!(text(&out.stdout), "attempt 1 wrote this\n", "{out:?}");
    let again: Why = parse("why --json", &kube(&["why", &spec, "--json"]).stdout);
    assert_eq!(
        (&again.current, &again.target.id),
        (&why.current, &why.target.id),
        "debug changed the attempt"
    );
    // A pod whose sandbox kubelet stopped is still explained.
    pod.stop();
    let out = kube(&["why", &spec]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        page.contains("state       exited (attempt 1), exit code 3"),
        "{page}"
    );
    drop(pod);
    let _ = std::fs::remove_dir_all(&log_dir);
}

#[test]
fn debug_on_an_exited_container_lists_its_files_read_only_and_leaves_nothing() {
    require_root_and_docker!();
    let c = exited(
        &[],
        "echo written > /wrote-this; ln -s /etc/shadow /to-host-shadow; ln -s / /to-host-root; \
         mknod /mem c 1 1; exit 3",
    );
    let before = docker_state(&c.name);
    let upper = text(&docker(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", &c.name]).stdout)
        .trim()
        .to_owned();
    let layer_dir = upper.trim_end_matches("/diff").to_owned();
    let storage_before = tree(std::path::Path::new(&layer_dir));
    let table_before = mount_table();
    let out = run(&[
        "debug",
        &c.name,
        "--",
        "sh",
        "-c",
        "cat $CTR_ROOT/wrote-this; ls $CTR_ROOT/; \
         cat $CTR_ROOT/to-host-shadow 2>&1 | head -c 200; echo; \
         ls $CTR_ROOT/to-host-root/ 2>&1 | head -c 200; echo; \
         touch $CTR_ROOT/new-file 2>&1; echo; head -c 1 $CTR_ROOT/mem 2>&1; echo; \
         grep -c ' '$CTR_ROOT' ' /proc/self/mountinfo",
    ]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.starts_with("written\n"), "{said}");
    assert!(said.contains("wrote-this"), "{said}");
    // A session like any other: ^C and ^\ are the program's (none ignored).
    let out = run(&[
        "debug",
        &c.name,
        "--",
        "grep",
        "SigIgn",
        "/proc/self/status",
    ]);
    let ignored = text(&out.stdout)
        .trim()
        .strip_prefix("SigIgn:")
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok());
    // Bits 1 and 2: SIGINT and SIGQUIT.
    assert_eq!(ignored.map(|mask| mask & 0b110), Some(0), "{out:?}");
    // The container's links lead nowhere: they are not followed.
    assert!(
        !said.contains("root:"),
        "a link led to the host's /etc/shadow: {said}"
    );
    assert!(said.contains("Too many levels of symbolic links"), "{said}");
    assert!(said.contains("Read-only file system"), "{said}");
    // A device node it made (the host's /dev/mem) opens nothing: nodev.
    assert!(
        said.lines()
            .any(|l| l.contains("ctr/mem") && l.ends_with("Permission denied")),
        "{said}"
    );
    // Afterwards: the container, its storage and the host's mounts as they were.
    assert_eq!(docker_state(&c.name), before, "debug changed the container");
    assert!(!std::path::Path::new(&upper).join("new-file").exists());
    assert_eq!(
        tree(std::path::Path::new(&layer_dir)),
        storage_before,
        "its storage changed"
    );
    let table_after = mount_table();
    assert_eq!(
        mounts_naming(&table_after, &layer_dir),
        mounts_naming(&table_before, &layer_dir),
        "a mount of the container's layers remained"
    );
    assert!(
        !table_after.contains("/run/nsdebug/ctr"),
        "the session's mount remained: {table_after}"
    );
    // The same links in an image's layer (the container committed) lead nowhere either.
    let image = format!("{}:layers", unique_name("why-img"));
    let from_image = unique_name("why-from-image");
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.1]);
            docker(&["rmi", "-f", &self.0]);
        }
    }
    let _cleanup = Cleanup(image.clone(), from_image.clone());
    assert!(docker(&["commit", &c.name, &image]).status.success());
    assert!(docker(&["run", "--name", &from_image, &image, "true"])
        .status
        .success());
    let out = run(&[
        "debug",
        &from_image,
        "--",
        "sh",
        "-c",
        "cat $CTR_ROOT/wrote-this; cat $CTR_ROOT/to-host-shadow 2>&1; readlink $CTR_ROOT/to-host-shadow",
    ]);
    let said = text(&out.stdout);
    assert!(said.starts_with("written\n"), "{out:?}");
    assert!(
        !said.contains("root:"),
        "a link led to the host's /etc/shadow: {said}"
    );
    assert!(
        said.contains("Too many levels of symbolic links\n/etc/shadow\n"),
        "{said}"
    );
}

#[test]
fn why_on_a_restarted_pod_that_runs_again_shows_the_attempt_before_and_its_log() {
    require_cri!();
    let log_dir = std::env::temp_dir().join(unique_name("why-pod-logs"));
    std::fs::create_dir_all(log_dir.join("app")).unwrap();
    let pod = crash_looping_pod(
        &log_dir,
        &[
            "echo crash number 0; exit 3",
            "echo crash number 1; exit 4",
            "echo up again; exec sleep 1000",
        ],
        0,
    );
    let out = nsdebug()
        .env("CONTAINER_RUNTIME_ENDPOINT", format!("unix://{CRI_SOCKET}"))
        .args(["why", &format!("default/{}", pod.name)])
        .output()
        .unwrap();
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains("state       running (attempt 2)"), "{page}");
    assert!(
        page.contains("previous    exited (attempt 1), exit code 4"),
        "{page}"
    );
    assert!(page.contains("restarts    2"), "{page}");
    // kubectl logs --previous: the log of the attempt that ended.
    assert!(page.contains("app/1.log, attempt 1"), "{page}");
    assert!(page.contains("    crash number 1\n"), "{page}");
    assert!(!page.contains("up again"), "{page}");
    drop(pod);
    let _ = std::fs::remove_dir_all(&log_dir);
}

#[test]
fn why_tells_restarts_and_the_policy_of_a_container_docker_restarted() {
    require_root_and_docker!();
    let c = Container::start_with(
        &["--restart", "on-failure:2"],
        &["/bin/sh", "-c", "echo trying again; exit 7"],
    );
    // Docker restarts it twice, then leaves it exited.
    let settled = (0..150).any(|_| {
        let state = text(
            &docker(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.RestartCount}}",
                &c.name,
            ])
            .stdout,
        );
        if state.trim() == "exited 2" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        false
    });
    assert!(settled, "Docker did not restart it twice");
    let out = run(&["why", &c.name]);
    let page = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(page.contains("exited, exit code 7"), "{page}");
    assert!(
        page.contains("restarts    2 (policy on-failure:2)"),
        "{page}"
    );
    assert!(page.contains("    trying again\n"), "{page}");
}

#[test]
fn debug_on_a_paused_container_is_refused_not_read_from_its_storage() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    assert!(docker(&["pause", &c.name]).status.success());
    let out = run(&["debug", &c.name, "--", "ls", "/run/nsdebug/ctr"]);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(said.contains("paused"), "{said}");
    assert!(!said.contains("its files"), "{said}");
    docker(&["unpause", &c.name]);
}

#[test]
fn why_on_an_oom_killed_pod_container_says_so_with_its_limit() {
    require_cri!();
    let log_dir = std::env::temp_dir().join(unique_name("why-pod-logs"));
    std::fs::create_dir_all(log_dir.join("app")).unwrap();
    let pod = crash_looping_pod(
        &log_dir,
        &["echo filling memory; tail /dev/zero"],
        16 * 1024 * 1024,
    );
    let spec = format!("default/{}/app", pod.name);
    let out = nsdebug()
        .env("CONTAINER_RUNTIME_ENDPOINT", format!("unix://{CRI_SOCKET}"))
        .args(["why", &spec, "--json"])
        .output()
        .unwrap();
    let why: Why = parse("why --json", &out.stdout);
    assert_eq!(why.current.exit_code, Some(137), "{why:?}");
    assert_eq!(why.memory_limit, Some(16 * 1024 * 1024), "{why:?}");
    assert!(
        why.current.oom_killed == Some(true) || why.kernel_oom_kills >= Some(1),
        "neither containerd nor the kernel log says OOM: {why:?}"
    );
    assert_eq!(why.log.lines, vec!["filling memory".to_owned()], "{why:?}");
    drop(pod);
    let _ = std::fs::remove_dir_all(&log_dir);
}

#[test]
fn debug_on_an_exited_container_of_a_many_layer_image() {
    require_root_and_docker!();
    // More layers than fit in one 256-byte fsconfig value as a joined lowerdir.
    let dir = std::env::temp_dir().join(unique_name("why-layers"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dockerfile = format!("FROM {}\n", nsdebug_tests::IMAGE);
    for n in 1..=24 {
        dockerfile.push_str(&format!("RUN echo {n} > /layer-{n}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let image = format!("{}:layers", unique_name("why-many"));
    let name = unique_name("why-many");
    struct Cleanup(String, String, std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.1]);
            docker(&["rmi", "-f", &self.0]);
            let _ = std::fs::remove_dir_all(&self.2);
        }
    }
    let _cleanup = Cleanup(image.clone(), name.clone(), dir.clone());
    let built = docker(&["build", "-q", "-t", &image, dir.to_str().unwrap()]);
    assert!(built.status.success(), "{built:?}");
    let ran = docker(&[
        "run",
        "--name",
        &name,
        &image,
        "sh",
        "-c",
        "echo top > /top",
    ]);
    assert!(ran.status.success(), "{ran:?}");
    let out = run(&[
        "debug",
        &name,
        "--",
        "sh",
        "-c",
        "cat $CTR_ROOT/layer-1 $CTR_ROOT/layer-24 $CTR_ROOT/top",
    ]);
    assert_eq!(text(&out.stdout), "1\n24\ntop\n", "{out:?}");
}

#[test]
fn why_on_a_container_docker_keeps_restarting_shows_its_last_end() {
    require_root_and_docker!();
    let c = Container::start_with(
        &["--restart", "always"],
        &["/bin/sh", "-c", "echo once more; exit 3"],
    );
    // Docker's back-off grows with each restart: soon it waits seconds between attempts.
    let mut page = String::new();
    for _ in 0..200 {
        let state = text(
            &docker(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.RestartCount}}",
                &c.name,
            ])
            .stdout,
        );
        let mut words = state.split_whitespace();
        let (status, count) = (
            words.next(),
            words.next().and_then(|n| n.parse::<u32>().ok()),
        );
        if status == Some("restarting") && count >= Some(4) {
            page = text(&run(&["why", &c.name]).stdout);
            if page.contains("state       restarting") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        page.contains("state       restarting, exit code 3"),
        "{page}"
    );
    assert!(page.contains("(policy always)"), "{page}");
    assert!(page.contains("    once more\n"), "{page}");
}
