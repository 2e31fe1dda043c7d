//! Passing on the signals a user sends to the process that started a program, to the
//! program: used by the middle process of a pid-namespace command, and by callers through
//! [`Child::forward_signals`](crate::Child::forward_signals).

use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys::raw;

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
    // The interrupted code may be between a failed call and its read of errno: `kill`
    // below must not change what it reads.
    let saved = raw::errno();
    relay_signal(signal, info);
    raw::set_errno(saved);
}

/// The body of [`relay`] (errno is saved around it).
fn relay_signal(signal: libc::c_int, info: *mut libc::siginfo_t) {
    // A signal from the terminal (Ctrl-C, Ctrl-\) went to the whole foreground process
    // group, the program included: passing it on would deliver it twice.
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL {
        return;
    }
    let pid = PROGRAM_PID.load(Ordering::Relaxed);
    if pid > 0 {
        raw::kill(pid, signal);
        if is_meant_to_end(signal) {
            raw::kill(pid, libc::SIGCONT);
        }
    }
}

/// Whether `signal` asks the program to end. A stopped program (the container may SIGSTOP
/// it) would keep such a signal pending forever, and its caller waiting: every relay sends
/// SIGCONT after it so that the program runs to receive it.
pub(crate) fn is_meant_to_end(signal: libc::c_int) -> bool {
    matches!(
        signal,
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
    )
}

/// The signal actions in force before [`install`], to put back (indexed by signal number).
pub(crate) type Previous = [Option<libc::sigaction>; SIGNALS];

/// Every signal number [`is_relayed`] accepts.
fn relayed_signals() -> impl Iterator<Item = libc::c_int> {
    (1..=libc::SIGRTMAX()).filter(|signal| is_relayed(*signal) && (*signal as usize) < SIGNALS)
}

/// Makes every relayed signal this process receives go to `pid` instead. Only
/// async-signal-safe calls: usable in a forked child.
pub(crate) fn install(pid: libc::pid_t) -> Previous {
    PROGRAM_PID.store(pid, Ordering::Relaxed);
    let mut previous: Previous = [None; SIGNALS];
    for signal in relayed_signals() {
        // SAFETY: `relay` only reads an atomic and calls `kill`, and puts errno back.
        previous[signal as usize] = Some(unsafe { raw::set_handler(signal, relay) });
    }
    previous
}

/// Blocks signals on the calling thread until dropped: while a program is being started, a
/// signal then waits instead of acting on the caller alone (or running one of its handlers
/// in the forked child).
pub struct SignalsBlocked(libc::sigset_t);

impl SignalsBlocked {
    /// Blocks the signals [`Child::forward_signals`](crate::Child::forward_signals) relays.
    pub fn relayed() -> SignalsBlocked {
        SignalsBlocked(raw::block(relayed_signals()))
    }

    /// Blocks every signal.
    pub(crate) fn all() -> SignalsBlocked {
        SignalsBlocked(raw::block(1..=libc::SIGRTMAX()))
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        raw::restore_mask(&self.0);
    }
}

impl std::fmt::Debug for SignalsBlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalsBlocked")
    }
}

/// Puts back the actions [`install`] replaced and stops relaying.
pub(crate) fn uninstall(previous: &Previous) {
    for (signal, old) in previous.iter().enumerate() {
        if let Some(old) = old {
            raw::restore_action(signal as libc::c_int, old);
        }
    }
    PROGRAM_PID.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler's `kill` fails (no such pid) and sets errno; the code it interrupted must
    /// still read its own errno afterwards.
    #[test]
    fn the_relay_handler_leaves_errno_as_it_found_it() {
        PROGRAM_PID.store(i32::MAX, Ordering::Relaxed); // above any pid_max: ESRCH
                                                        // SAFETY: `relay` is async-signal-safe (what this test checks of it is errno).
        let old = unsafe { raw::set_handler(libc::SIGUSR2, relay) };
        raw::set_errno(libc::EAGAIN);
        // SAFETY: raise delivers the signal to this thread before it returns; the handler
        // above is installed for it.
        unsafe { libc::raise(libc::SIGUSR2) };
        let seen = raw::errno();
        raw::restore_action(libc::SIGUSR2, &old);
        PROGRAM_PID.store(0, Ordering::Relaxed);
        assert_eq!(seen, libc::EAGAIN, "errno after the handler ran");
    }
}
