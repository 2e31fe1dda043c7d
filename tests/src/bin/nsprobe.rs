//! Test helper: tries to enter a pid's net namespace with a guard and with the command
//! runner, printing each error. The tests run it as an unprivileged user.

use nsenter_core::{Command, Namespace, NsGuard, Target};

fn main() {
    let pid: i32 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut failed = false;
    match Target::open(pid) {
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
