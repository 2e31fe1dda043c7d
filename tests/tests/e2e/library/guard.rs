//! NsGuard against real containers.

use std::sync::{mpsc, Barrier};

use nsdebug_net::RouteSocket;
use nsdebug_tests::{host_hostname, ns_inode, require_root_and_docker, Container};
use nsenter_core::{Namespace, NamespaceId, NamespaceSet, NsGuard, Pid, Target, ThreadNamespaces};

fn thread_ids(kinds: NamespaceSet) -> Vec<NamespaceId> {
    kinds
        .iter()
        .map(|ns| NamespaceId::of_current_thread(ns).expect("own namespace"))
        .collect()
}

fn link_names() -> Vec<String> {
    let mut socket = RouteSocket::open().expect("netlink socket");
    socket
        .links()
        .expect("links")
        .into_iter()
        .map(|l| l.name)
        .collect()
}

#[test]
fn guard_sees_the_containers_links_and_hostname_and_restores_on_drop() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let kinds = Namespace::Net | Namespace::Uts;
    let before = thread_ids(kinds);
    {
        let _inside = NsGuard::enter(&target, kinds).unwrap();
        assert_eq!(
            thread_ids(kinds),
            vec![
                target.namespace_id(Namespace::Uts).unwrap(),
                target.namespace_id(Namespace::Net).unwrap()
            ]
        );
        assert_eq!(host_hostname(), container.hostname);
        let mut socket = RouteSocket::open().unwrap();
        let links: Vec<String> = socket
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert!(
            links.contains(&"eth0".to_owned()),
            "container links: {links:?}"
        );
        assert!(
            !links.contains(&"docker0".to_owned()),
            "container links: {links:?}"
        );
        let addresses: Vec<String> = socket
            .addresses()
            .unwrap()
            .into_iter()
            .map(|a| a.address.to_string())
            .collect();
        assert!(
            addresses.contains(&container.ip()),
            "{addresses:?} lacks {}",
            container.ip()
        );
    }
    assert_eq!(thread_ids(kinds), before);
    assert_ne!(host_hostname(), container.hostname);
    assert!(link_names().contains(&"docker0".to_owned()));
}

#[test]
fn guard_restores_after_a_panic_inside() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let kinds = Namespace::Net | Namespace::Uts | Namespace::Ipc | Namespace::Cgroup;
    let before = thread_ids(kinds);
    let outcome = std::panic::catch_unwind(|| {
        let _inside = NsGuard::enter(&target, kinds).unwrap();
        assert_eq!(host_hostname(), container.hostname);
        panic!("boom inside the guard");
    });
    assert!(outcome.is_err());
    assert_eq!(thread_ids(kinds), before);
    assert_ne!(host_hostname(), container.hostname);
}

#[test]
fn other_threads_stay_in_their_namespaces_while_one_is_inside() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let before = thread_ids(Namespace::Net.into());
    let inside = Barrier::new(2);
    let checked = Barrier::new(2);
    let (report, seen) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _guard = NsGuard::enter(&target, Namespace::Net.into()).unwrap();
            report.send(link_names()).unwrap();
            inside.wait();
            checked.wait();
        });
        inside.wait();
        // This thread has not moved, and still sees the host's links.
        assert_eq!(thread_ids(Namespace::Net.into()), before);
        assert!(link_names().contains(&"docker0".to_owned()));
        let other = std::thread::spawn(|| thread_ids(Namespace::Net.into()))
            .join()
            .unwrap();
        assert_eq!(
            other, before,
            "a thread spawned elsewhere meanwhile is in the host netns"
        );
        checked.wait();
    });
    let inside_links = seen.recv().unwrap();
    assert!(
        inside_links.contains(&"eth0".to_owned()) && !inside_links.contains(&"docker0".to_owned())
    );
}

#[test]
fn mount_guard_sees_the_container_files_and_restores_root_and_cwd() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    std::thread::spawn(move || {
        let cwd = std::env::current_dir().unwrap();
        let before = thread_ids(Namespace::Mnt.into());
        {
            let _inside = NsGuard::enter(&target, Namespace::Mnt.into()).unwrap();
            let marker = std::fs::read_to_string("/etc/nsdebug-image").unwrap();
            assert_eq!(marker.trim(), "nsdebug test image");
            assert!(std::path::Path::new("/www/big.bin").exists());
        }
        assert_eq!(thread_ids(Namespace::Mnt.into()), before);
        assert!(!std::path::Path::new("/etc/nsdebug-image").exists());
        assert_eq!(std::env::current_dir().unwrap(), cwd);
    })
    .join()
    .unwrap();
}

#[test]
fn pid_guard_puts_children_spawned_inside_into_the_containers_pid_namespace() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let own_pid_ns = ns_inode("/proc/self/ns/pid");
    let child_pid_ns = {
        let _inside = NsGuard::enter(&target, Namespace::Pid.into()).unwrap();
        // The thread itself stays in its pid namespace; its children do not.
        assert_eq!(ns_inode("/proc/thread-self/ns/pid"), own_pid_ns);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let ns = ns_inode(&format!("/proc/{}/ns/pid", child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        ns
    };
    assert_eq!(
        child_pid_ns,
        ns_inode(&format!("/proc/{}/ns/pid", container.pid))
    );
    assert_ne!(child_pid_ns, own_pid_ns);
    assert_eq!(
        ns_inode("/proc/thread-self/ns/pid_for_children"),
        own_pid_ns
    );
}

#[test]
fn saved_namespaces_can_be_reused_for_many_cycles_and_without_a_pidfd() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let kinds = Namespace::Net | Namespace::Uts;
    for target in [
        Target::open(Pid::try_from(container.pid).unwrap()).unwrap(),
        Target::open_without_pidfd(Pid::try_from(container.pid).unwrap()).unwrap(),
    ] {
        let before = thread_ids(kinds);
        let mut home = ThreadNamespaces::save(kinds).unwrap();
        for _ in 0..200 {
            let _inside = home.enter(&target).unwrap();
            assert_eq!(host_hostname(), container.hostname);
        }
        assert_eq!(thread_ids(kinds), before);
        assert_ne!(host_hostname(), container.hostname);
    }
}
