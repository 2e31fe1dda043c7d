//! Kubernetes pods through the CRI, on nsdebug's own containerd with the CRI plugin
//! (scripts/cri-containerd); the test plays kubelet over the CRI.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nsdebug_tests::{nsdebug, require_cri, CriPod, CRI_SOCKET};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// nsdebug with the CRI endpoint named as node tools take it.
fn kube(args: &[&str]) -> Output {
    nsdebug()
        .env("CONTAINER_RUNTIME_ENDPOINT", format!("unix://{CRI_SOCKET}"))
        .args(args)
        .output()
        .unwrap()
}

/// The host-side veth of a pod, by the recipe a user would follow: `eth0@ifN` inside, link N outside.
fn host_peer(pod: &CriPod) -> String {
    let pid = pod.sandbox_pid().to_string();
    let inside = Command::new("/usr/bin/nsenter")
        .args(["-t", &pid, "-n", "ip", "-o", "link", "show", "eth0"])
        .output()
        .unwrap();
    let inside = text(&inside.stdout);
    let index = inside
        .split("@if")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{inside}"));
    let links = text(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    );
    links
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{index}: ")))
        .and_then(|rest| rest.split(['@', ':']).next())
        .unwrap_or_else(|| panic!("no link {index} in {links}"))
        .to_owned()
}

#[test]
fn enter_a_pod_by_pod_slash_name_and_namespace_slash_name() {
    require_cri!();
    let pod = CriPod::start("shop", "web", &["app"], &[]);
    let ip = pod.ip();
    assert!(ip.starts_with("10.244.213."), "CNI gave {ip:?}");
    let out = kube(&[
        "enter",
        &format!("pod/{}", pod.name),
        "-n",
        "shop",
        "--net",
        "--",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("inet {ip}/24")),
        "{out:?}"
    );
    let out = kube(&["enter", &pod.spec(), "-c", "app", "--", "hostname"]);
    assert_eq!(text(&out.stdout).trim(), pod.name, "{out:?}");
    let out = kube(&[
        "enter",
        &pod.name,
        "-n",
        "shop",
        "--uts",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_eq!(text(&out.stdout).trim(), pod.name, "{out:?}");
    // --cri-endpoint instead of the environment; NAMESPACE/POD/CONTAINER as `ps` shows it.
    let out = nsdebug()
        .args([
            "enter",
            &format!("{}/app", pod.spec()),
            "--cri-endpoint",
            CRI_SOCKET,
            "--",
            "cat",
            "/etc/nsdebug-image",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "nsdebug test image\n", "{out:?}");
}

#[test]
fn a_two_container_pod_without_c_picks_the_default_and_says_so() {
    require_cri!();
    let plain = CriPod::start("shop", "two", &["app", "sidecar"], &[]);
    let out = kube(&["enter", &plain.spec(), "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        text(&out.stdout).replace('\0', " "),
        "/bin/httpd -f -p 80 -h /www ",
        "{out:?}"
    );
    let said = text(&out.stderr);
    assert!(
        said.contains("container app (the first") && said.contains("app, sidecar"),
        "{said}"
    );
    // The choice is a notice: -q hides it, as every other notice.
    let quiet = kube(&["-q", "enter", &plain.spec(), "--", "true"]);
    assert_eq!(quiet.status.code(), Some(0), "{quiet:?}");
    assert_eq!(text(&quiet.stderr), "", "{quiet:?}");

    let annotated = CriPod::start(
        "shop",
        "annotated",
        &["app", "sidecar"],
        &[("kubectl.kubernetes.io/default-container", "sidecar")],
    );
    let out = kube(&["enter", &annotated.spec(), "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        text(&out.stdout).replace('\0', " "),
        "/bin/sleep 100000 ",
        "{out:?}"
    );
    assert!(
        text(&out.stderr)
            .contains("container sidecar (its kubectl.kubernetes.io/default-container annotation)"),
        "{out:?}"
    );
    // -c overrides it.
    let out = kube(&[
        "enter",
        &annotated.spec(),
        "-c",
        "app",
        "--",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert!(text(&out.stdout).starts_with("/bin/httpd"), "{out:?}");
}

#[test]
fn unknown_pods_and_containers_list_what_exists_and_a_stopped_sandbox_is_refused() {
    require_cri!();
    let pod = CriPod::start("shop", "known", &["app", "sidecar"], &[]);
    let out = kube(&["enter", "shop/nsdbg-no-such-pod", "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let said = text(&out.stderr);
    assert!(
        said.contains("pod shop/nsdbg-no-such-pod") && said.contains(&pod.spec()),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
    let out = kube(&["enter", &pod.spec(), "-c", "db", "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        text(&out.stderr).contains("has no container db; containers: app, sidecar"),
        "{out:?}"
    );

    pod.stop();
    let out = kube(&["enter", &pod.spec(), "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        text(&out.stderr).contains("is not ready (stopped)"),
        "{out:?}"
    );
}

#[test]
fn ps_lists_pods_with_their_kubernetes_namespace() {
    require_cri!();
    let pod = CriPod::start("shop", "listed", &["app"], &[]);
    let table = text(&kube(&["ps"]).stdout);
    let wanted = format!("shop/{}/app", pod.name);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("cri") && l.contains(&wanted)),
        "{table}"
    );
    // --cri-endpoint instead of the environment.
    let out = nsdebug()
        .args([
            "ps",
            "--json",
            "--cri-endpoint",
            &format!("unix://{CRI_SOCKET}"),
        ])
        .output()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let row = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == wanted.as_str())
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(row["namespace"], "shop");
    assert!(row["pid"].as_i64().is_some_and(|p| p > 1), "{row}");
}

#[test]
fn veth_of_a_pod_finds_its_host_peer_on_the_cni_bridge() {
    require_cri!();
    let pod = CriPod::start("shop", "wired", &["app"], &[]);
    let peer = host_peer(&pod);
    let out = kube(&["veth", &format!("pod/{}", pod.name), "-n", "shop", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let listing = text(&out.stdout);
    assert!(
        listing.contains(&format!("\"name\": \"{peer}\""))
            && listing.contains("\"master\": \"nsdcri0\""),
        "{listing}"
    );
    assert!(listing.contains(&pod.ip()), "{listing}");
}

#[test]
fn flow_captures_the_pods_http() {
    require_cri!();
    let pod = CriPod::start("shop", "served", &["app"], &[]);
    let capture = nsdebug()
        .env("CONTAINER_RUNTIME_ENDPOINT", CRI_SOCKET)
        .args(["flow", &pod.spec(), "-c", "--duration", "4", "port", "80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let url = format!("http://{}/index.html", pod.ip());
    let got = Command::new("curl")
        .args(["-s", "-m", "5", &url])
        .output()
        .unwrap();
    assert!(text(&got.stdout).contains("nsdebug test page"), "{got:?}");
    let out = capture.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let console = text(&out.stdout);
    let get = console
        .find("GET /index.html")
        .unwrap_or_else(|| panic!("{out:?}"));
    let reply = console
        .find("nsdebug test page")
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(get < reply, "{console}");
}

#[test]
fn audit_a_pod_as_json() {
    require_cri!();
    let pod = CriPod::start("shop", "audited", &["app"], &[]);
    let out = kube(&[
        "audit",
        &format!("pod/{}", pod.name),
        "-n",
        "shop",
        "--json",
    ]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    let entry = &doc["containers"][0];
    assert!(
        entry["target"]["description"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("shop/{}/app", pod.name))),
        "{doc:#}"
    );
    assert!(entry["error"].is_null(), "{entry:#}");
    assert!(entry["findings"].as_array().is_some(), "{entry:#}");
    // The documented schema, with the Kubernetes names as kubectl says them.
    let typed: nsdebug_tests::json::Audit = nsdebug_tests::json::parse("audit --json", &out.stdout);
    assert_eq!(
        typed.containers[0].target.kubernetes,
        Some(nsdebug_tests::json::Kubernetes {
            namespace: "shop".into(),
            pod: pod.name.clone(),
            container: Some("app".into()),
        }),
        "{doc:#}"
    );
}

/// `nsdebug ps` rows of pods have their image and the pod's IP, as Docker's rows do.
#[test]
fn ps_rows_of_pods_have_image_and_ip() {
    require_cri!();
    let pod = CriPod::start("shop", "imaged", &["app"], &[]);
    let table = text(&kube(&["ps"]).stdout);
    let wanted = format!("shop/{}/app", pod.name);
    let row = table
        .lines()
        .find(|l| l.starts_with("cri") && l.contains(&wanted))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&pod.ip()), "{row}");
    assert!(row.contains("nsdebug-test"), "{row}");
}

/// A bare name that is a pod: the error says how to name it (`NS/POD`).
#[test]
fn a_bare_pod_name_is_told_to_say_ns_slash_pod() {
    require_cri!();
    let pod = CriPod::start("shop", "bare", &["app"], &[]);
    let out = kube(&["enter", &pod.name, "--net", "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!("say shop/{}", pod.name)),
        "{out:?}"
    );
}
