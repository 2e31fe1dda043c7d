//! The started program: its pid, waiting for it, and signals sent or passed on to it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::error::{Error, Result};
use crate::pid::Pid;
use crate::signal::Signal;
use crate::sys;

/// Signals passed on to a started program; see [`Child::forward_signals`].
pub struct SignalForwarding {
    previous: crate::relay::Previous,
}

impl Drop for SignalForwarding {
    fn drop(&mut self) {
        crate::relay::uninstall(&self.previous);
    }
}

impl std::fmt::Debug for SignalForwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalForwarding")
    }
}

/// A program started by [`Command::spawn_in`](crate::Command::spawn_in).
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    status: Option<ExitStatus>,
}

impl Child {
    /// The child just forked, not yet waited for.
    pub(super) fn started(pid: Pid) -> Child {
        Child { pid, status: None }
    }

    /// The pid of the started process, in the caller's pid namespace. When the pid
    /// namespace was joined this is the relaying middle process, which forwards signals.
    pub fn id(&self) -> Pid {
        self.pid
    }

    /// Sends `signal` (e.g. [`Signal::TERM`]) to the program.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // The pid is our unreaped child: it cannot have been recycled.
        sys::kill(self.pid, signal).map_err(|source| Error::Child {
            action: "signal",
            pid: self.pid,
            source,
        })
    }

    /// Passes `signal` on as [`Child::forward_signals`] does: a signal that asks the program
    /// to end (SIGINT, SIGTERM, SIGHUP, SIGQUIT) is followed by SIGCONT, so a stopped program
    /// still receives it. For callers that relay signals themselves (from a signalfd, say).
    pub fn relay_signal(&self, signal: Signal) -> Result<()> {
        self.signal(signal)?;
        if crate::relay::is_meant_to_end(signal.get()) {
            self.signal(Signal::CONT)?;
        }
        Ok(())
    }

    /// Until the returned value is dropped, every catchable signal sent to this process
    /// (SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGALRM, real-time signals...; not faults, job
    /// control stops, SIGCHLD or SIGPIPE) is passed on to the program instead of acting on
    /// this process; those the terminal sends (Ctrl-C) are not, since the program, in the same
    /// foreground process group, gets them anyway. The handlers are process-wide: use this in
    /// a tool that runs one program at a time, as `nsenter` does. Block signals with
    /// [`SignalsBlocked`](crate::SignalsBlocked) before spawning to lose none in between.
    pub fn forward_signals(&self) -> SignalForwarding {
        SignalForwarding {
            previous: crate::relay::install(self.pid.get()),
        }
    }

    /// Waits for the program to end: `code()` is its exit code, `signal()` the signal that
    /// killed it. Stops of the program are waited through.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        loop {
            if let WaitEvent::Exited(status) = self.wait_event()? {
                return Ok(status);
            }
        }
    }

    /// Waits until the program ends or is stopped (SIGSTOP, SIGTSTP...), so that a caller can
    /// follow its job control, as a shell or `sudo` does: a program stopped by someone else
    /// must not leave the caller hanging unaware.
    pub fn wait_event(&mut self) -> Result<WaitEvent> {
        self.wait_with(0)
            .map(|event| event.unwrap_or(WaitEvent::Stopped(Signal::STOP)))
    }

    /// [`wait_event`](Child::wait_event) without blocking: `None` while the program runs.
    pub fn try_wait_event(&mut self) -> Result<Option<WaitEvent>> {
        self.wait_with(libc::WNOHANG)
    }

    fn wait_with(&mut self, flags: libc::c_int) -> Result<Option<WaitEvent>> {
        if let Some(status) = self.status {
            return Ok(Some(WaitEvent::Exited(status)));
        }
        let raw = loop {
            match sys::waitpid(self.pid.get(), libc::WUNTRACED | flags) {
                Ok((0, _)) => return Ok(None),
                Ok((_, raw)) => break raw,
                Err(source) if source.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Child {
                        action: "wait for",
                        pid: self.pid,
                        source,
                    })
                }
            }
        };
        if libc::WIFSTOPPED(raw) {
            // The kernel reports a signal it delivered; SIGSTOP should it ever report another.
            let signal = Signal::new(libc::WSTOPSIG(raw)).unwrap_or(Signal::STOP);
            return Ok(Some(WaitEvent::Stopped(signal)));
        }
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(Some(WaitEvent::Exited(status)))
    }
}

/// What [`Child::wait_event`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    /// The program ended.
    Exited(ExitStatus),
    /// The program was stopped by this signal; it continues on SIGCONT.
    Stopped(Signal),
}
