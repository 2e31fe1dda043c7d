//! One JSON contract: every subcommand's `--json` parses into the documented types
//! (`nsdebug_tests::json`, the tables of `docs/json.md`), each names its target with the
//! same object, and `flow --json` events carry capture timestamps.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nsdebug_tests::json::{self, FlowEvent};
use nsdebug_tests::{nsdebug, require_root_and_docker, run_nsdebug, Container};

fn json_of(args: &[&str]) -> Vec<u8> {
    let out = run_nsdebug(args);
    assert!(out.status.success(), "nsdebug {args:?}: {out:?}");
    out.stdout
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
fn every_json_output_is_the_documented_schema_with_one_target_object() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let name = c.name.as_str();

    let veth: json::Veth = json::parse("veth --json", &json_of(&["veth", name, "--json"]));
    let mem: json::Mem = json::parse("mem --json", &json_of(&["mem", name, "--json"]));
    let pids: json::Pids = json::parse("pid --json", &json_of(&["pid", name, "--json"]));
    let audit: json::Audit = json::parse("audit --json", &json_of(&["audit", name, "--json"]));
    let ps: Vec<json::PsRow> = json::parse("ps --json", &json_of(&["ps", "--json", name]));
    let why: json::Why = json::parse("why --json", &json_of(&["why", name, "--json"]));
    assert_eq!(why.current.state, "running");
    assert!(
        why.audit.is_some() && why.cgroup_oom_kills.is_some(),
        "{why:?}"
    );

    // The same object everywhere, and what Docker says of the container.
    let target = &veth.target;
    assert_eq!(
        (
            target.runtime.as_deref(),
            target.name.as_deref(),
            target.pid
        ),
        (Some("docker"), Some(name), Some(c.pid)),
        "{target:?}"
    );
    assert_eq!(target.ip.as_deref(), Some(c.ip().as_str()), "{target:?}");
    assert_eq!(&mem.target, target);
    assert_eq!(&pids.target, target);
    assert_eq!(&why.target, target);
    assert_eq!(audit.schema, 2);
    assert_eq!(&audit.containers[0].target, target);
    let row = ps.iter().find(|r| r.name == name).expect("ps lists it");
    assert_eq!(
        (Some(&row.id), row.pid, row.image.as_ref(), row.ip.as_ref()),
        (
            target.id.as_ref(),
            target.pid,
            target.image.as_ref(),
            target.ip.as_ref()
        )
    );

    // And each says what a user would check.
    assert!(
        veth.interfaces
            .iter()
            .any(|i| i.name == "eth0" && i.peer.as_ref().is_some_and(|p| p.namespace == "host")),
        "{veth:?}"
    );
    assert!(mem
        .processes
        .iter()
        .any(|p| p.host_pid == c.pid && p.container_pid == 1));
    assert!(pids
        .processes
        .iter()
        .any(|p| p.host_pid == c.pid && p.container_pid == 1));
    assert_eq!(audit.verdict.containers, 1);

    // flow: every event is documented, timestamped within the capture, and the last one is
    // the summary naming the same target.
    let started = now();
    let capture = nsdebug()
        .args(["flow", name, "--json", "--duration", "3s", "port", "80"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nsdebug flow");
    std::thread::sleep(Duration::from_millis(800));
    assert!(nsdebug_tests::http_answers(&c.ip(), 2));
    let out = capture.wait_with_output().expect("nsdebug flow");
    let ended = now();
    let events: Vec<FlowEvent> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| json::parse("flow --json", line.as_bytes()))
        .collect();
    let in_capture = |ts: f64| ts >= started - 1.0 && ts <= ended + 1.0;
    let mut opened = std::collections::HashMap::new();
    for event in &events {
        match event {
            FlowEvent::Open { ts, id, .. } => {
                assert!(in_capture(*ts), "{event:?} not in {started}..{ended}");
                opened.insert(*id, *ts);
            }
            FlowEvent::Gap { ts, .. } => assert!(in_capture(*ts), "{event:?}"),
            FlowEvent::Close { ts, id, .. } => {
                assert!(in_capture(*ts), "{event:?}");
                assert!(opened.get(id).is_some_and(|open| open <= ts), "{events:?}");
            }
            FlowEvent::Summary { .. } => {}
        }
    }
    let Some(FlowEvent::Summary {
        ts,
        target: flow_target,
        flows,
        bytes,
        ..
    }) = events.last()
    else {
        panic!("flow --json does not end with a summary: {events:?}");
    };
    assert!(in_capture(*ts) && *flows >= 1 && *bytes > 0, "{events:?}");
    assert_eq!(&**flow_target, target);
    assert!(opened.len() as u64 >= *flows, "{events:?}");
}
