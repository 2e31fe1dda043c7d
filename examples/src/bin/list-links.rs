//! List the network links and addresses a process sees, read over netlink from inside its
//! network namespace: the socket is opened inside an `NsGuard` and used after leaving.
//!
//!     cargo run -p nsdebug-examples --bin list-links -- PID

#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsdebug_net::RouteSocket;
use nsenter_core::{Namespace, NsGuard, Pid, Target};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("list-links: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let pid: i32 = std::env::args()
        .nth(1)
        .ok_or("usage: list-links PID")?
        .parse()
        .map_err(|_| "PID must be a number")?;
    let target = Target::open(Pid::try_from(pid)?)?;
    let mut socket = {
        let _inside = NsGuard::enter(&target, Namespace::Net.into())?;
        RouteSocket::open()?
    }; // back in our own namespace; the socket stays in the target's
    let addresses = socket.addresses()?;
    println!(
        "network namespace {} of pid {pid}:",
        target.namespace_id(Namespace::Net)?
    );
    for link in socket.links()? {
        let peer = match (link.link, link.link_netnsid) {
            (Some(index), Some(netnsid)) => format!(" peer ifindex {index} in netnsid {netnsid}"),
            (Some(index), None) => format!(" link ifindex {index}"),
            _ => String::new(),
        };
        println!(
            "{}: {} <{}> {} {}{}",
            link.index,
            link.name,
            link.kind.as_deref().unwrap_or("-"),
            link.oper_state,
            link.mac.as_deref().unwrap_or(""),
            peer
        );
        for address in addresses.iter().filter(|a| a.index == link.index) {
            println!("    {}/{}", address.address, address.prefix_len);
        }
    }
    Ok(())
}
