//! Passing on the signals a user sends to the process that started a program, to the
//! program: used by the middle process of a pid-namespace command, and by callers through
//! [`Child::forward_signals`](crate::Child::forward_signals).

use std::sync::atomic::{AtomicI32, Ordering};

/// The program's pid, for the relaying signal handler (0: relay nothing).
static PROGRAM_PID: AtomicI32 = AtomicI32::new(0);

/// Whether `signal` is passed on to the program: every signal that can be caught, except
/// those the kernel raises for the process's own faults, job control stops (the terminal
/// stops the whole group anyway), and SIGCHLD/SIGPIPE/SIGURG, which concern this process.
pub(crate) fn is_relayed(signal: libc::c_int) -> bool {
    !matches!(
        signal,
        libc::SIGKILL
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
            | libc::SIGCHLD
            | libc::SIGPIPE
            | libc::SIGURG
            | libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGFPE
            | libc::SIGILL
            | libc::SIGSYS
            | libc::SIGTRAP
            | libc::SIGABRT
    ) && !(32..libc::SIGRTMIN()).contains(&signal) // glibc's own
}

/// The highest signal number + 1.
const SIGNALS: usize = 65;

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
        // A stopped program (the container may SIGSTOP it) would keep a signal meant to end
        // it pending forever, and the caller waiting: let it run to receive it.
        if matches!(signal, libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT) {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// The signal actions in force before [`install`], to put back (indexed by signal number).
pub(crate) type Previous = [libc::sigaction; SIGNALS];

/// Makes every [`RELAYED`] signal this process receives go to `pid` instead. Only
/// async-signal-safe calls: usable in a forked child.
pub(crate) fn install(pid: libc::pid_t) -> Previous {
    PROGRAM_PID.store(pid, Ordering::Relaxed);
    // SAFETY: sigaction with a zeroed, then filled, action whose handler only loads an
    // atomic and calls kill(2); `previous` has room for every old action.
    unsafe {
        let mut previous: Previous = std::mem::zeroed();
        for (signal, old) in previous.iter_mut().enumerate().skip(1) {
            let signal = signal as libc::c_int;
            if signal > libc::SIGRTMAX() || !is_relayed(signal) {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = relay as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, old);
        }
        previous
    }
}

/// Blocks every relayed signal on the calling thread until dropped: while a program is being
/// started, a signal then waits to be relayed instead of acting on the caller alone.
pub struct SignalsBlocked(libc::sigset_t);

impl SignalsBlocked {
    /// Blocks the signals [`Child::forward_signals`](crate::Child::forward_signals) relays.
    pub fn relayed() -> SignalsBlocked {
        // SAFETY: sigset operations on local, initialised sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in 1..=libc::SIGRTMAX() {
                if is_relayed(signal) {
                    libc::sigaddset(&mut set, signal);
                }
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SignalsBlocked(old)
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `relayed`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

impl std::fmt::Debug for SignalsBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalsBlocked")
    }
}

/// Puts back the actions [`install`] replaced and stops relaying.
pub(crate) fn uninstall(previous: &Previous) {
    // SAFETY: sigaction with actions the kernel gave us before.
    unsafe {
        for (signal, old) in previous.iter().enumerate().skip(1) {
            let signal = signal as libc::c_int;
            if signal <= libc::SIGRTMAX() && is_relayed(signal) {
                libc::sigaction(signal, old, std::ptr::null_mut());
            }
        }
    }
    PROGRAM_PID.store(0, Ordering::Relaxed);
}
