//! Read the hostname a process sees, with the closure API: the closure runs on a fresh
//! thread inside the target's UTS namespace, so this program's own threads never move.
//!
//!     cargo run -p nsdebug-examples --bin container-hostname -- PID

use std::process::ExitCode;

use nsenter_core::{run_in, Namespace, Target};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("container-hostname: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let pid: i32 = std::env::args()
        .nth(1)
        .ok_or("usage: container-hostname PID")?
        .parse()
        .map_err(|_| "PID must be a number")?;
    let target = Target::open(pid)?;
    // /proc/sys/kernel/hostname answers for the UTS namespace of the reading thread.
    let hostname = run_in(&target, Namespace::Uts.into(), || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
    })??;
    println!("{}", hostname.trim_end());
    Ok(())
}
