//! The closure API against real containers.

use nsdebug_net::RouteSocket;
use nsdebug_tests::{host_hostname, require_root_and_docker, Container};
use nsenter_core::{run_in, Error, Namespace, NamespaceId, Pid, Target};

#[test]
fn closure_returns_the_containers_hostname_and_leaves_the_caller_alone() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let before = NamespaceId::of_current_thread(Namespace::Uts).unwrap();
    let hostname = run_in(&target, Namespace::Uts.into(), host_hostname).unwrap();
    assert_eq!(hostname, container.hostname);
    assert_eq!(
        NamespaceId::of_current_thread(Namespace::Uts).unwrap(),
        before
    );
    assert_ne!(host_hostname(), container.hostname);
}

#[test]
fn a_socket_opened_in_the_closure_keeps_answering_for_the_container() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let mut socket = run_in(&target, Namespace::Net.into(), RouteSocket::open)
        .unwrap()
        .unwrap();
    let addresses: Vec<String> = socket
        .addresses()
        .unwrap()
        .iter()
        .map(|a| a.address.to_string())
        .collect();
    assert!(addresses.contains(&container.ip()), "{addresses:?}");
}

#[test]
fn closure_refuses_user_namespaces_and_propagates_panics() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    let refused = run_in(&target, Namespace::User.into(), || ());
    assert!(
        matches!(
            refused,
            Err(Error::SingleThreadedOnly {
                namespace: Namespace::User,
                ..
            })
        ),
        "{refused:?}"
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("Command"),
        "the error points to the command API: {message}"
    );
    let panicked =
        std::panic::catch_unwind(|| run_in(&target, Namespace::Net.into(), || panic!("inside")));
    assert!(panicked.is_err());
}

#[test]
fn closure_is_safe_from_many_threads_at_once() {
    require_root_and_docker!();
    let container = Container::start(&[]);
    let target = Target::open(Pid::try_from(container.pid).unwrap()).unwrap();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..20)
                        .map(|_| run_in(&target, Namespace::Uts.into(), host_hostname).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            assert!(worker
                .join()
                .unwrap()
                .iter()
                .all(|h| *h == container.hostname));
        }
    });
    assert_ne!(host_hostname(), container.hostname);
}
