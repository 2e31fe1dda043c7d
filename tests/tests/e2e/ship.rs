//! What ships around the binary: completions and man pages generated from its clap
//! definitions, a binary that starts without libpcap, the Debian package and the node image.

use std::process::Command;

use nsdebug_tests::{in_ci, run_nsdebug};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `program` is on PATH; locally its absence skips the test, in CI it fails
/// (scripts/setup installs it).
fn tool_present(test: &str, program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(!in_ci(), "{test}: {program} is missing (scripts/setup installs it); CI=true, so this is a failure");
        eprintln!("SKIP {test}: {program} is missing (run scripts/setup)");
    }
    found
}

/// What a terminal shows of man's output: without overstrike (`X\bX` bold, `_\bX`
/// underline) and with groff's typographic hyphens and minus signs as `-`.
fn plain(rendered: &str) -> String {
    let mut shown = String::new();
    let mut chars = rendered.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        shown.push(match c {
            '\u{2010}' | '\u{2212}' => '-',
            other => other,
        });
    }
    shown
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nsdebug-t-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

#[test]
fn completions_are_valid_shell_and_offer_the_subcommands() {
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = run_nsdebug(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = text(&out.stdout);
        for sub in ["enter", "debug", "flow", "veth", "audit"] {
            assert!(
                script.contains(sub),
                "{shell} completion does not offer {sub}"
            );
        }
        // fish is not installed by setup: its script is only checked for content.
        if shell == "fish" || !tool_present("completions", checker) {
            continue;
        }
        let file = scratch_dir(&format!("completions-{shell}")).join("nsdebug");
        std::fs::write(&file, &script).expect("writing the script");
        let check = Command::new(checker)
            .arg("-n")
            .arg(&file)
            .output()
            .expect("running the shell");
        assert!(
            check.status.success(),
            "{checker} -n rejects the completion: {}",
            text(&check.stderr)
        );
    }
    // In bash, the completion really completes: `nsdebug en<TAB>` gives enter.
    if tool_present("completions", "bash") {
        let out = Command::new("bash")
            .args(["-c", "source /dev/stdin; COMP_WORDS=(nsdebug en); COMP_CWORD=1; _nsdebug nsdebug en nsdebug; echo ${COMPREPLY[@]}"])
            .stdin(std::fs::File::open({
                let file = scratch_dir("completions-run").join("nsdebug.bash");
                std::fs::write(&file, run_nsdebug(&["completions", "bash"]).stdout).expect("writing");
                file
            }).expect("opening"))
            .output()
            .expect("running bash");
        assert_eq!(text(&out.stdout).trim(), "enter", "{}", text(&out.stderr));
    }
}

#[test]
fn man_pages_render_for_nsdebug_and_each_subcommand() {
    let dir = scratch_dir("man");
    let out = run_nsdebug(&["man", dir.to_str().expect("utf-8 temp dir")]);
    assert!(out.status.success(), "{out:?}");
    if !tool_present("man_pages", "man") {
        return;
    }
    for (page, expected) in [
        ("nsdebug", "nsdebug-enter(1)"),
        ("nsdebug-enter", "--net"),
        ("nsdebug-debug", "CTR_ROOT"),
        ("nsdebug-flow", "--host-side"),
        ("nsdebug-veth", "--down"),
        ("nsdebug-ps", "--json"),
        ("nsdebug-audit", "nsdebug audit"),
        ("nsdebug-why", "--lines"),
    ] {
        let file = dir.join(format!("{page}.1"));
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("running man");
        let shown = plain(&text(&rendered.stdout));
        assert!(
            rendered.status.success() && shown.contains(expected),
            "man -l {}: no {expected:?} in\n{shown}\n{}",
            file.display(),
            text(&rendered.stderr)
        );
        assert!(
            !text(&rendered.stderr).contains("warning"),
            "man -l {}: {}",
            file.display(),
            text(&rendered.stderr)
        );
    }
    // Without DIR the top page goes to standard output.
    let top = run_nsdebug(&["man"]);
    assert!(
        top.status.success() && text(&top.stdout).starts_with(".ie"),
        "{top:?}"
    );
}

#[test]
fn the_binary_needs_only_libc_and_libgcc() {
    let out = Command::new("ldd")
        .arg(nsdebug_tests::nsdebug_path())
        .output()
        .expect("running ldd");
    let needed = text(&out.stdout);
    for line in needed.lines() {
        let library = line.split_whitespace().next().unwrap_or_default();
        assert!(
            ["linux-vdso.so.1", "libc.so.6", "libgcc_s.so.1", "libm.so.6"].contains(&library)
                || library.contains("ld-linux"),
            "nsdebug links {library}:\n{needed}"
        );
    }
}

/// Every file that could be loaded as libpcap (the sonames and the dev symlink point to one).
fn libpcap_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("libpcap.so")
            {
                if let Ok(real) = std::fs::canonicalize(entry.path()) {
                    if !files.contains(&real) {
                        files.push(real);
                    }
                }
            }
        }
    }
    files
}

#[test]
fn enter_works_with_libpcap_hidden_and_flow_names_the_package() {
    nsdebug_tests::require_root_and_docker!();
    let files = libpcap_files();
    assert!(
        !files.is_empty(),
        "no libpcap on this host to hide (scripts/setup installs libpcap-dev)"
    );
    let c = nsdebug_tests::Container::start(&[]);
    let hide: String = files
        .iter()
        .map(|f| format!("mount --bind /dev/null {} && ", f.display()))
        .collect();
    let nsdebug = nsdebug_tests::nsdebug_path();
    let nsdebug = nsdebug.display();
    let name = &c.name;
    // A private mount namespace where every libpcap is /dev/null: the host stays untouched.
    let script = format!(
        "{hide} {nsdebug} enter {name} --net -- true && echo ENTER-OK; \
         {nsdebug} flow {name} --count 1 --duration 2 -c; echo FLOW-STATUS=$?"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("running unshare");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains("ENTER-OK"),
        "enter failed with libpcap hidden:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("FLOW-STATUS=125"),
        "flow should fail with nsdebug's status:\n{stdout}\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("nsdebug:"))
        .unwrap_or_default();
    assert!(
        line.contains("libpcap") && line.contains("apt install libpcap0.8"),
        "flow's error: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("nsdebug:")).count(),
        1,
        "one line: {stderr}"
    );
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A root with nothing but the files and dpkg records of the packages the .deb says it
/// depends on (from the host, which is Debian): libc6, libgcc-s1 and gcc-12-base.
const CLEAN_ROOT: &str = r#"set -eu
R=$1
mkdir -p "$R"/usr/bin "$R"/usr/sbin "$R"/usr/lib "$R"/usr/lib64 "$R"/var/lib/dpkg/info "$R"/var/lib/dpkg/updates "$R"/tmp
for l in bin sbin lib lib64; do ln -s usr/$l "$R/$l"; done
touch "$R/var/lib/dpkg/available"
pkgs=$(dpkg-query -W -f '${Package}\n' libc6 libgcc-s1 'gcc-*-base' 2>/dev/null | sort -u)
dpkg-query -s $pkgs > "$R/var/lib/dpkg/status"
for p in $pkgs; do dpkg -L "$p" > "$R/var/lib/dpkg/info/$p:$(dpkg --print-architecture).list"; done
dpkg -L $pkgs | while read -r f; do if [ ! -d "$f" ]; then echo "${f#/}"; fi; done > "$R/.files"
tar -C / -cf - --no-recursion -T "$R/.files" | tar -C "$R" --keep-directory-symlink -xf -
"#;

#[test]
fn the_deb_installs_in_a_clean_root_with_true_depends() {
    nsdebug_tests::require_root_and_docker!();
    if !tool_present("the_deb", "dpkg-shlibdeps") || !tool_present("the_deb", "fakeroot") {
        return;
    }
    let dir = scratch_dir("deb");
    let out = Command::new(repo_root().join("scripts/package"))
        .env("NSDEBUG_BIN", nsdebug_tests::nsdebug_path())
        .env("NSDEBUG_DEB_DIR", &dir)
        .output()
        .expect("running scripts/package");
    assert!(
        out.status.success(),
        "scripts/package: {}",
        text(&out.stderr)
    );
    let deb = text(&out.stdout).trim().to_owned();
    assert!(deb.ends_with(".deb"), "{deb}");

    let field = |name: &str| {
        text(
            &Command::new("dpkg-deb")
                .args(["-f", &deb, name])
                .output()
                .expect("dpkg-deb")
                .stdout,
        )
        .trim()
        .to_owned()
    };
    let depends = field("Depends");
    assert!(
        depends.contains("libc6") && !depends.contains("pcap"),
        "Depends: {depends}"
    );
    assert_eq!(field("Recommends"), "libpcap0.8");
    let contents = text(
        &Command::new("dpkg-deb")
            .args(["-c", &deb])
            .output()
            .expect("dpkg-deb -c")
            .stdout,
    );
    for file in [
        "./usr/bin/nsdebug",
        "./usr/bin/kubectl-nsdebug",
        "./usr/share/bash-completion/completions/nsdebug",
        "./usr/share/zsh/vendor-completions/_nsdebug",
        "./usr/share/fish/vendor_completions.d/nsdebug.fish",
        "./usr/share/man/man1/nsdebug.1.gz",
        "./usr/share/man/man1/nsdebug-enter.1.gz",
    ] {
        assert!(
            contents.contains(file),
            "{file} is not in the package:\n{contents}"
        );
    }

    // The kubectl plugin for krew: the manifest's sha256 is the archive's.
    let krew = dir.join("krew");
    let manifest = std::fs::read_to_string(krew.join("nsdebug.yaml")).expect("krew manifest");
    let archive = std::fs::read_dir(&krew)
        .expect("krew dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"));
    let archive = archive.expect("no plugin archive");
    let sum = text(
        &Command::new("sha256sum")
            .arg(&archive)
            .output()
            .expect("sha256sum")
            .stdout,
    );
    let sum = sum.split_whitespace().next().unwrap_or_default();
    assert!(
        manifest.contains(&format!("sha256: \"{sum}\"")) && !manifest.contains('@'),
        "{manifest}"
    );
    let listed = text(
        &Command::new("tar")
            .arg("tzf")
            .arg(&archive)
            .output()
            .expect("tar")
            .stdout,
    );
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["kubectl-nsdebug", "LICENSE"]
    );

    let root = dir.join("root");
    let made = Command::new("sh")
        .args(["-c", CLEAN_ROOT, "clean-root"])
        .arg(&root)
        .output()
        .expect("making the root");
    assert!(made.status.success(), "clean root: {}", text(&made.stderr));
    let installed = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["-i", &deb])
        .output()
        .expect("dpkg -i");
    assert!(
        installed.status.success(),
        "dpkg -i: {}{}",
        text(&installed.stdout),
        text(&installed.stderr)
    );
    assert!(!root
        .join("usr/lib/x86_64-linux-gnu/libpcap.so.0.8")
        .exists());
    let version = Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/nsdebug", "--version"])
        .output()
        .expect("chroot");
    assert!(
        version.status.success() && text(&version.stdout).starts_with("nsdebug "),
        "{version:?}"
    );
    let plugin = Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/kubectl-nsdebug", "--help"])
        .output()
        .expect("chroot");
    assert!(
        plugin.status.success() && text(&plugin.stdout).contains("kubectl nsdebug"),
        "{plugin:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An image built by scripts/image for this test, removed when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = nsdebug_tests::docker(&["rmi", "-f", &self.0]);
    }
}

/// How the node pod runs it (kubectl debug node/... --profile=sysadmin, or the plugin's pod):
/// host pid and net namespaces, the host's root at /host. Only the capabilities nsdebug needs
/// (`--privileged` cannot apply every capability on every docker host, e.g. nested ones).
const NODE_POD_ARGS: [&str; 15] = [
    "run",
    "--rm",
    "--pid=host",
    "--net=host",
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "SYS_PTRACE",
    "--cap-add",
    "NET_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "-v=/:/host:ro",
];

#[test]
fn the_node_image_enters_a_container_with_its_own_ip_finding_docker_under_host() {
    nsdebug_tests::require_root_and_docker!();
    if !tool_present("node_image", "dpkg-shlibdeps")
        || !tool_present("node_image", "tcpdump")
        || !tool_present("node_image", "ping")
    {
        return;
    }
    let image = Image(format!("{}:latest", nsdebug_tests::unique_name("image")));
    let built = Command::new(repo_root().join("scripts/image"))
        .arg(&image.0)
        .env("NSDEBUG_BIN", nsdebug_tests::nsdebug_path())
        .env("NSDEBUG_DEB_DIR", scratch_dir("image-deb"))
        .output()
        .expect("running scripts/image");
    assert!(
        built.status.success(),
        "scripts/image: {}",
        text(&built.stderr)
    );

    let c = nsdebug_tests::Container::start(&[]);
    let run = |command: &[&str]| {
        let mut args = NODE_POD_ARGS.to_vec();
        args.push(&image.0);
        args.extend_from_slice(command);
        nsdebug_tests::docker(&args)
    };
    // The image has no docker socket of its own: nsdebug finds the host's under /host.
    let out = run(&[
        "nsdebug", "enter", &c.name, "--net", "--", "ip", "-o", "addr",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("inet {}/", c.ip())) && !stdout.contains("docker0"),
        "{stdout}"
    );
    // The socket mounted the usual way, without /host: /var/run is /run in the image too.
    for socket in ["/run/docker.sock", "/var/run/docker.sock"] {
        let mut args: Vec<&str> = NODE_POD_ARGS[..NODE_POD_ARGS.len() - 1].to_vec();
        let mount = format!("-v={socket}:{socket}");
        args.push(&mount);
        args.extend([
            image.0.as_str(),
            "nsdebug",
            "enter",
            &c.name,
            "--net",
            "--",
            "ip",
            "-o",
            "addr",
        ]);
        let out = nsdebug_tests::docker(&args);
        assert!(
            out.status.success() && text(&out.stdout).contains(&format!("inet {}/", c.ip())),
            "{socket}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    // The tools are the real ones (not busybox applets) and run; libpcap loads for flow.
    let out = run(&["sh", "-c", "ping -V && tcpdump --version && ss -V && ps -p 1 -o pid= && test ! -e /var/run/docker.sock"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = run(&["nsdebug", "flow", &c.name, "--duration", "1", "-c"]);
    assert!(
        out.status.success()
            && text(&out.stderr).contains("nsdebug flow: ")
            // "0 packets," or, when a stray frame (ARP, IPv6 ND) came by, "1 packet,".
            && (text(&out.stderr).contains(" packets,") || text(&out.stderr).contains(" packet,")),
        "{}",
        text(&out.stderr)
    );

    // A Kubernetes pod's container, by the very command kubectl-nsdebug's node pod runs
    // (`kubectl nsdebug web-N -n shop -c app --net -- ip -o link`), the CRI reached under /host.
    if !nsdebug_tests::cri_prerequisites_met("node_image_cri") {
        return;
    }
    let pod = nsdebug_tests::CriPod::start("shop", "web", &["app"], &[]);
    let target = format!("pod/{}", pod.name);
    let endpoint = format!("/host{}", nsdebug_tests::CRI_SOCKET);
    let out = run(&[
        "nsdebug",
        "enter",
        "--net",
        "--cri-endpoint",
        &endpoint,
        "-n",
        "shop",
        "--container",
        "app",
        &target,
        "--",
        "ip",
        "-o",
        "link",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": lo:") && !stdout.contains("docker0"),
        "{stdout}{}",
        text(&out.stderr)
    );
}

/// A stand-in for kubectl that answers like a cluster where pod shop/web-0 runs on node-7,
/// records its calls in `calls` and the created pod in `spec.json`.
const FAKE_KUBECTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1" in
  get) case "$*" in
         *"-n shop"*nodeName*"-- web-0") echo node-7 ;;
         *nodeName*) echo 'Error from server (NotFound): pods "gone" not found' >&2; exit 1 ;;
         *phase*) echo Running ;;
         *exitCode*) echo 3 ;;
       esac ;;
  create) cat > "$dir/spec.json"; echo pod/nsdebug-abcde ;;
  logs) echo "output of the node pod" ;;
  delete) ;;
esac
"#;

#[test]
fn the_kubectl_plugin_creates_streams_passes_the_status_and_deletes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("kubectl");
    let fake = dir.join("kubectl");
    std::fs::write(&fake, FAKE_KUBECTL).expect("writing the fake kubectl");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let plugin = nsdebug_tests::bin_dir().join("kubectl-nsdebug");

    let out = Command::new(&plugin)
        .args(["web-0", "-n", "shop", "--net", "--", "ip", "a"])
        .env("PATH", &path)
        .output()
        .expect("kubectl-nsdebug");
    assert_eq!(
        text(&out.stdout),
        "output of the node pod\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's status: {}",
        text(&out.stderr)
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spec.json")).expect("spec"))
            .expect("json");
    assert_eq!(spec["spec"]["nodeName"], "node-7");
    assert_eq!(
        spec["spec"]["containers"][0]["command"],
        serde_json::json!([
            "nsdebug",
            "enter",
            "--net",
            "-n",
            "shop",
            "pod/web-0",
            "--",
            "ip",
            "a"
        ])
    );
    let calls = std::fs::read_to_string(dir.join("calls")).expect("calls");
    assert!(
        calls
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("delete pod nsdebug-abcde -n default")),
        "{calls}"
    );

    // A pod that does not exist: one line, nsdebug's status, nothing created.
    std::fs::remove_file(dir.join("calls")).expect("rm");
    let out = Command::new(&plugin)
        .args(["gone", "--", "true"])
        .env("PATH", &path)
        .output()
        .expect("kubectl-nsdebug");
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    assert!(!std::fs::read_to_string(dir.join("calls"))
        .expect("calls")
        .contains("create"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kubectl nsdebug web-0 --net -n shop -- ip a`: the node is looked up in shop (the pod's
/// name after `--`, never a kubectl option) and the node pod gets one `-n shop`; a pod name
/// beginning with `-` and a short image name are refused before kubectl is called.
#[test]
fn the_kubectl_plugin_takes_one_namespace_and_passes_names_after_dashes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("kubectl-ns");
    let fake = dir.join("kubectl");
    std::fs::write(&fake, FAKE_KUBECTL).expect("writing the fake kubectl");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let plugin = nsdebug_tests::bin_dir().join("kubectl-nsdebug");
    let out = Command::new(&plugin)
        .args(["web-0", "--net", "-n", "shop", "--", "ip", "a"])
        .env("PATH", &path)
        .output()
        .expect("kubectl-nsdebug");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let calls = std::fs::read_to_string(dir.join("calls")).expect("calls");
    assert!(
        calls
            .lines()
            .next()
            .is_some_and(|l| l.contains("-n shop") && l.ends_with("-- web-0")),
        "{calls}"
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spec.json")).expect("spec"))
            .expect("json");
    assert_eq!(
        spec["spec"]["containers"][0]["command"],
        serde_json::json!([
            "nsdebug",
            "enter",
            "--net",
            "-n",
            "shop",
            "pod/web-0",
            "--",
            "ip",
            "a"
        ])
    );
    let image = spec["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    assert!(image.starts_with("localhost/nsdebug:"), "{image}");
    std::fs::remove_file(dir.join("calls")).expect("rm");
    for args in [
        &["--", "-web", "true"][..],
        &["web-0", "--image", "nsdebug:latest", "--", "true"][..],
        &["web-0", "-n", "a", "--net", "-n", "b", "--", "true"][..],
    ] {
        let out = Command::new(&plugin)
            .args(args)
            .env("PATH", &path)
            .output()
            .expect("kubectl-nsdebug");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!dir.join("calls").exists(), "kubectl was not called");
    let _ = std::fs::remove_dir_all(&dir);
}
