//! Read the hostname a container sees, found by its name (or a pid) through nsdebug-resolve,
//! with the closure API: the closure runs on a fresh thread inside the target's UTS
//! namespace, so this program's own threads never move, and no process is started.
//!
//!     cargo run -p nsdebug-examples --bin container-hostname -- TARGET
//!
//! TARGET is what `nsdebug` takes: a Docker or Podman container name, a container ID, a pod, a
//! pid, an `ip netns` name. The resolver pins the container's process (a pidfd, then a check
//! that it is still the container's) before anything is entered.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use nsdebug_resolve::{resolve, ResolveOptions};
use nsenter_core::{run_in, Namespace};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("container-hostname: {}", printable(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let spec = std::env::args()
        .nth(1)
        .ok_or("usage: container-hostname TARGET (a container name or ID, a pid...)")?;
    // The runtimes' APIs are async: a current-thread runtime, dropped before anything is
    // entered (setns moves the calling thread; it must never be a runtime's worker).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolved = runtime.block_on(resolve(&spec, &ResolveOptions::default()))?;
    drop(runtime);
    for note in &resolved.notes {
        eprintln!("container-hostname: {}", printable(note));
    }
    // /proc/sys/kernel/hostname answers for the UTS namespace of the reading thread.
    let hostname = run_in(&resolved.target, Namespace::Uts.into(), || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
    })??;
    println!("{}", printable(hostname.trim_end()));
    Ok(())
}

/// The container chose its hostname (and its name): control characters are shown as `\xNN`
/// so that they cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => format!("\\x{:02x}", u32::from(c)),
            false => c.to_string(),
        })
        .collect()
}
