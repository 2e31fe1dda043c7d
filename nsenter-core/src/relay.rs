//! Passing on the signals a user sends to the process that started a program, to the
//! program: used by the middle process of a pid-namespace command, and by callers through
//! [`Child::forward_signals`](crate::Child::forward_signals).

use std::sync::atomic::{AtomicI32, Ordering};

/// The program's pid, for the relaying signal handler (0: relay nothing).
static PROGRAM_PID: AtomicI32 = AtomicI32::new(0);

/// Signals a user sends to the process they started, passed on to the program.
pub(crate) const RELAYED: [libc::c_int; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

extern "C" fn relay(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // A signal from the terminal (Ctrl-C, Ctrl-\) went to the whole foreground process
    // group, the program included: passing it on would deliver it twice.
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL {
        return;
    }
    let pid = PROGRAM_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// The signal actions in force before [`install`], to put back.
pub(crate) type Previous = [libc::sigaction; RELAYED.len()];

/// Makes every [`RELAYED`] signal this process receives go to `pid` instead. Only
/// async-signal-safe calls: usable in a forked child.
pub(crate) fn install(pid: libc::pid_t) -> Previous {
    PROGRAM_PID.store(pid, Ordering::Relaxed);
    // SAFETY: sigaction with a zeroed, then filled, action whose handler only loads an
    // atomic and calls kill(2); `previous` has room for every old action.
    unsafe {
        let mut previous: Previous = std::mem::zeroed();
        for (signal, old) in RELAYED.into_iter().zip(previous.iter_mut()) {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = relay as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, old);
        }
        previous
    }
}

/// Puts back the actions [`install`] replaced and stops relaying.
pub(crate) fn uninstall(previous: &Previous) {
    // SAFETY: sigaction with actions the kernel gave us before.
    unsafe {
        for (signal, old) in RELAYED.into_iter().zip(previous.iter()) {
            libc::sigaction(signal, old, std::ptr::null_mut());
        }
    }
    PROGRAM_PID.store(0, Ordering::Relaxed);
}
