//! nsdebug-resolve as an embedder calls it: a container by name to its pinned init process
//! with what the runtime knows, and what went wrong as a variant to match, not a text.

use nsdebug_resolve::{resolve, Error, ResolveOptions, Resolved, RuntimeKind};
use nsdebug_tests::{docker, require_root_and_docker, Container};
use nsenter_core::Pid;

fn resolve_now(spec: &str, options: &ResolveOptions) -> Result<Resolved, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(resolve(spec, options))
}

#[test]
fn a_container_resolves_by_name_and_by_id_prefix_to_its_init_with_the_runtimes_facts() {
    require_root_and_docker!();
    let c = Container::start(&[]);
    let resolved =
        resolve_now(&c.name, &ResolveOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resolved.target.pid().map(Pid::get), Some(c.pid));
    assert!(resolved.notes.is_empty(), "{:?}", resolved.notes);
    let info = resolved.container.expect("the runtime's facts");
    assert_eq!(info.runtime, "docker");
    assert_eq!(info.name, c.name);
    assert_eq!(info.status, "running");
    assert_eq!(info.pid, Some(c.pid));
    assert_eq!(
        resolved.description,
        format!(
            "docker container {} ({}), pid {}",
            c.name,
            &info.id[..12],
            c.pid
        )
    );
    let by_id =
        resolve_now(&info.id[..12], &ResolveOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_id.target.pid().map(Pid::get), Some(c.pid));
}

#[test]
fn what_went_wrong_is_a_variant_to_match() {
    require_root_and_docker!();
    let docker_only = ResolveOptions {
        runtime: Some(RuntimeKind::Docker),
        ..Default::default()
    };
    match resolve_now("nsdbg-no-such-container", &docker_only) {
        Err(Error::NotFound { spec, tried, .. }) => {
            assert_eq!(spec, "nsdbg-no-such-container");
            assert_eq!(tried.len(), 1, "{tried:?}");
            assert!(tried[0].starts_with("docker ("), "{tried:?}");
        }
        other => panic!("{:?}", other.err()),
    }
    match resolve_now("", &ResolveOptions::default()) {
        Err(Error::InvalidTarget { .. }) => {}
        other => panic!("{:?}", other.err()),
    }

    let paused = Container::start(&[]);
    docker(&["pause", &paused.name]);
    let answer = resolve_now(&paused.name, &docker_only);
    docker(&["unpause", &paused.name]);
    // A paused container keeps its pid (its namespaces can be read): pinning it to enter
    // is refused as frozen, since joining its cgroup would hang.
    match answer {
        Err(Error::Frozen { what }) => {
            assert!(what.contains(&paused.name), "{what}");
        }
        other => panic!("{:?}", other.err()),
    }

    let c = Container::start(&[]);
    docker(&["stop", "-t", "0", &c.name]);
    match resolve_now(&c.name, &ResolveOptions::default()) {
        Err(Error::NotRunning { what, status }) => {
            assert!(what.contains(&c.name), "{what}");
            assert_eq!(status, "exited");
        }
        other => panic!("{:?}", other.err()),
    }
}
