//! `scripts/demo`, the README's main job: it runs every step and fails at the first one that
//! does not show what it should (scripts/test runs it, so CI does).

use std::path::PathBuf;
use std::process::{Command, Output};

use nsdebug_tests::{bin_dir, docker, nsdebug_path, require_root_and_docker, unique_name};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `bash scripts/demo` on a container of its own, with `nsdebug` as the binary.
fn demo(nsdebug: &std::path::Path) -> (String, Output) {
    let name = unique_name("demo");
    let out = Command::new("bash")
        .arg(repo().join("scripts/demo"))
        .env("NSDEBUG_DEMO_NO_SETUP", "1")
        .env("NSDEBUG_DEMO_NAME", &name)
        .env("NSDEBUG_DEMO_BIN_DIR", bin_dir())
        .env("NSDEBUG_BIN", nsdebug)
        .output()
        .expect("bash scripts/demo");
    docker(&["rm", "-f", &name]);
    (name, out)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_demo_runs_every_step_and_each_shows_what_it_should() {
    require_root_and_docker!();
    let (_, out) = demo(&nsdebug_path());
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for check in [
        "shows the container's address",
        "the container is cut off",
        "the container answers again",
        "reassembled (HTTP/1.1 200)",
        "ends with the 4194304 bytes curl received",
        "shows the container's hostname",
        "every step showed what it should",
    ] {
        assert!(shown.contains(check), "no '{check}' in:\n{shown}");
    }
}

/// An nsdebug whose `veth --down` says it took the peer down and does nothing: the demo must
/// notice that the container still answers, not carry on.
#[test]
fn the_demo_fails_when_a_step_does_not_do_what_it_says() {
    require_root_and_docker!();
    let liar = std::env::temp_dir().join(unique_name("liar"));
    std::fs::write(
        &liar,
        format!(
            "#!/bin/sh\ncase \"$*\" in *' --down') echo \"took down the peer\"; exit 0;; esac\n\
             exec {} \"$@\"\n",
            nsdebug_path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&liar, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, out) = demo(&liar);
    let _ = std::fs::remove_file(&liar);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("demo: FAILED: the container still answered with its peer down"),
        "{shown}"
    );
    assert!(!shown.contains("every step showed"), "{shown}");
}
