//! The core suites without root. As any user, this program becomes root of a user namespace
//! of its own, makes a fake container in it (pid, net, uts, ipc and mount namespaces around a
//! sleeping init, as `unshare --fork` makes one) and checks nsenter-core's guard, closure
//! runner and command runner against it, the way the Docker suite checks them against real
//! containers. One line per check, `ok NAME` or `FAIL NAME: why`; exit status 1 on any failure,
//! 2 when user namespaces are not available to this user.

use std::process::{Command as Process, Stdio as ProcessStdio};

use nsdebug_net::RouteSocket;
use nsenter_core::{run_in, Command, Namespace, NamespaceSet, NsGuard, Pid, Target};

fn main() {
    // Still single-threaded: the only time a process may join a new user namespace.
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare with a flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        eprintln!(
            "user namespaces unavailable: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
    let maps = [
        ("setgroups", "deny".to_owned()),
        ("uid_map", format!("0 {uid} 1")),
        ("gid_map", format!("0 {gid} 1")),
    ];
    for (file, text) in maps {
        if let Err(e) = std::fs::write(format!("/proc/self/{file}"), text) {
            eprintln!("cannot write /proc/self/{file}: {e}");
            std::process::exit(2);
        }
    }
    // Our own namespaces must belong to the new user namespace too, or a guard could leave
    // them (setns needs CAP_SYS_ADMIN over the namespace) but never come back.
    // SAFETY: unshare with flags only, still single-threaded.
    if unsafe {
        libc::unshare(
            libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWNS,
        )
    } != 0
    {
        eprintln!(
            "cannot make namespaces of our own: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut unshare = match Process::new("unshare")
        .args([
            "--pid",
            "--net",
            "--uts",
            "--ipc",
            "--mount",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ])
        .args(["sh", "-c", "hostname fake-container && exec sleep 60"])
        .stdin(ProcessStdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot run unshare: {e}");
            std::process::exit(2);
        }
    };
    let init = fake_init(unshare.id());
    let mut failures = 0;
    let mut check = |name: &str, result: Result<(), String>| match result {
        Ok(()) => println!("ok {name}"),
        Err(why) => {
            failures += 1;
            println!("FAIL {name}: {why}");
        }
    };
    let target = match init.map(|pid| Pid::try_from(pid).and_then(Target::open)) {
        Some(Ok(target)) => target,
        other => {
            println!("FAIL fake container: {other:?}");
            let _ = unshare.kill();
            std::process::exit(1);
        }
    };
    check(
        "guard sees the container's hostname and links, restores on drop",
        guard(&target, &host_name),
    );
    check(
        "run_in gives the closure's result from inside",
        closure(&target),
    );
    check(
        "command runs in every namespace of the container",
        command(&target),
    );
    check(
        "a guard cannot enter the user namespace",
        refuses_user(&target),
    );
    let _ = unshare.kill();
    let _ = unshare.wait();
    std::process::exit(if failures == 0 { 0 } else { 1 });
}

/// The sleeping init of the fake container (unshare's child), once it has named its host.
fn fake_init(unshare: u32) -> Option<i32> {
    for _ in 0..100 {
        let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<i32>().ok())
        {
            let named = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep");
            if named {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()
}

fn guard(target: &Target, host_name: &str) -> Result<(), String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                {
                    let _inside = NsGuard::enter(target, Namespace::Net | Namespace::Uts)
                        .map_err(|e| e.to_string())?;
                    if hostname().trim() != "fake-container" {
                        return Err(format!("hostname inside is {:?}", hostname()));
                    }
                    let links = RouteSocket::open()
                        .and_then(|mut s| s.links())
                        .map_err(|e| e.to_string())?;
                    let names: Vec<String> = links.into_iter().map(|l| l.name).collect();
                    if names != ["lo"] {
                        return Err(format!("links inside: {names:?}"));
                    }
                }
                if hostname() != host_name {
                    return Err(format!("hostname after the guard is {:?}", hostname()));
                }
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err("the guard thread panicked".into()))
    })
}

fn closure(target: &Target) -> Result<(), String> {
    let inside = run_in(target, Namespace::Uts.into(), hostname).map_err(|e| e.to_string())?;
    match inside.trim() {
        "fake-container" => Ok(()),
        other => Err(format!("closure saw {other:?}")),
    }
}

fn command(target: &Target) -> Result<(), String> {
    let kinds = target
        .differing_from_current_thread()
        .map_err(|e| e.to_string())?;
    let output = Command::new("sh")
        .args([
            "-c",
            "hostname; ps -o pid= -o comm= 2>/dev/null || ls /proc | grep -c '^[0-9]'",
        ])
        .output_in(target, kinds)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    if lines.next() != Some("fake-container") {
        return Err(format!("output {text:?}, status {:?}", output.status));
    }
    // Its own pid namespace: the fake init is pid 1 and the command is among very few.
    let procs = lines.filter(|l| !l.trim().is_empty()).count();
    if !kinds.contains(Namespace::Pid) || procs > 5 {
        return Err(format!(
            "pid namespace not joined: {text:?} (kinds {kinds})"
        ));
    }
    if !output.status.success() {
        return Err(format!("exit status {:?}", output.status));
    }
    let _ = NamespaceSet::ALL;
    Ok(())
}

fn refuses_user(target: &Target) -> Result<(), String> {
    match NsGuard::enter(target, Namespace::User.into()) {
        Ok(_) => Err("a guard entered a user namespace".into()),
        Err(_) => Ok(()),
    }
}
