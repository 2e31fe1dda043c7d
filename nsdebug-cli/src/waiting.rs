//! Waiting for a program that owns the terminal, as system(3) does: the terminal's ^C and ^\
//! are the program's to act on, not nsdebug's.

use nix::sys::signal::{signal, SigHandler, Signal};

/// The signals a terminal sends its whole foreground group.
const TERMINAL: [Signal; 2] = [Signal::SIGINT, Signal::SIGQUIT];

/// SIGINT and SIGQUIT ignored by nsdebug until dropped, then restored as they were.
pub struct TerminalSignalsIgnored([Option<(Signal, SigHandler)>; 2]);

impl TerminalSignalsIgnored {
    /// Ignores them now. The program started after this must reset them (see
    /// [`default_in_child`]): ignored dispositions survive exec.
    pub fn new() -> TerminalSignalsIgnored {
        TerminalSignalsIgnored(TERMINAL.map(|sig| {
            // SAFETY: SIG_IGN runs no code of ours; the previous disposition is restored on
            // drop.
            let previous = unsafe { signal(sig, SigHandler::SigIgn) };
            previous.ok().map(|previous| (sig, previous))
        }))
    }
}

impl Drop for TerminalSignalsIgnored {
    fn drop(&mut self) {
        for (sig, previous) in self.0.into_iter().flatten() {
            // SAFETY: puts back the disposition `new` replaced.
            let _ = unsafe { signal(sig, previous) };
        }
    }
}

/// In a child after fork, before exec: SIGINT and SIGQUIT back to their default action, so
/// the program gets the terminal's signals as any program does. Async-signal-safe (one
/// `sigaction` each, nothing allocated).
pub fn default_in_child() -> std::io::Result<()> {
    for sig in TERMINAL {
        // SAFETY: SIG_DFL runs no code of ours.
        unsafe { signal(sig, SigHandler::SigDfl) }?;
    }
    Ok(())
}
