//! Test helper for what cannot run inside the test process itself.
//!
//! ```text
//!     nsprobe PID                   enter PID's net namespace with a guard and with the
//!                                   command runner, printing each error (run unprivileged)
//!     nsprobe out-of-order PID      drop two nested guards in the wrong order (must abort)
//!     nsprobe closed-stdio PID FILE run commands with fds 0-2 closed, output into FILE
//! ```

use std::os::fd::OwnedFd;

use nsenter_core::{Command, Namespace, NsGuard, Pid, Stdio, Target};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid = |i: usize| args.get(i).and_then(|p| p.parse().ok()).unwrap_or(0);
    match args.first().map(String::as_str) {
        Some("out-of-order") => out_of_order(pid(1)),
        Some("closed-stdio") => closed_stdio(pid(1), args.get(2).map(String::as_str).unwrap_or("")),
        _ => unprivileged(pid(0)),
    }
}

fn unprivileged(pid: i32) {
    let mut failed = false;
    match Pid::try_from(pid).and_then(Target::open) {
        Err(e) => {
            println!("open: {e}");
            failed = true;
        }
        Ok(target) => {
            if let Err(e) = NsGuard::enter(&target, Namespace::Net.into()) {
                println!("guard: {e}");
                failed = true;
            }
            if let Err(e) = Command::new("true").status_in(&target, Namespace::Net.into()) {
                println!("command: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(if failed { 1 } else { 0 });
}

fn out_of_order(pid: i32) {
    let target = Pid::try_from(pid)
        .and_then(Target::open)
        .expect("open target");
    let own = Target::open(Pid::this()).expect("open self");
    let outer = NsGuard::enter(&target, Namespace::Net.into()).expect("enter target");
    let inner = NsGuard::enter(&own, Namespace::Net.into()).expect("enter own");
    drop(outer); // wrong: `inner` is still alive
    drop(inner);
    println!("still running after out-of-order drops");
}

fn closed_stdio(pid: i32, file: &str) {
    let target = Pid::try_from(pid)
        .and_then(Target::open)
        .expect("open target");
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .expect("open output file");
    // SAFETY: this helper owns its standard streams and closes them deliberately.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
    let fd = |f: &std::fs::File| Stdio::Fd(OwnedFd::from(f.try_clone().expect("dup")));
    let status = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; ls /proc/$$/fd; true"])
        .stdout(fd(&out))
        .stderr(fd(&out))
        .status_in(&target, Namespace::Net.into());
    let missing = Command::new("/nonexistent")
        .stderr(fd(&out))
        .status_in(&target, Namespace::Net.into());
    use std::io::Write;
    let mut out = out;
    let _ = writeln!(out, "status: {:?}", status.map(|s| s.code()));
    let _ = writeln!(
        out,
        "missing: {}",
        missing.map_or_else(|e| e.to_string(), |s| format!("{s:?}"))
    );
}
