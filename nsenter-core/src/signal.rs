//! Signals as a type: a [`Signal`] is a number the kernel delivers (1 to `SIGRTMAX`),
//! real-time signals included, so a relay can pass on whatever it caught.

use std::fmt;

/// A signal the kernel can deliver: 1 to `SIGRTMAX`.
///
/// ```
/// use nsenter_core::Signal;
/// assert_eq!(Signal::TERM.get(), libc::SIGTERM);
/// assert_eq!(Signal::new(libc::SIGRTMIN() + 1).map(Signal::get), Some(libc::SIGRTMIN() + 1));
/// // 0 only checks that a process exists; it is no signal.
/// assert_eq!(Signal::new(0), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

impl Signal {
    /// SIGHUP.
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// SIGINT.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// SIGQUIT.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// SIGKILL.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// SIGUSR1.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// SIGUSR2.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// SIGTERM.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// SIGCONT.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// SIGSTOP.
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    /// SIGTSTP.
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    /// SIGTTIN.
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    /// SIGTTOU.
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    /// SIGWINCH.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// `raw` as a signal: `None` outside 1 to `SIGRTMAX`.
    pub fn new(raw: i32) -> Option<Signal> {
        (1..=libc::SIGRTMAX()).contains(&raw).then_some(Signal(raw))
    }

    /// The number.
    pub const fn get(self) -> i32 {
        self.0
    }
}

impl From<Signal> for i32 {
    fn from(signal: Signal) -> i32 {
        signal.0
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`, `SIGRTMIN+3`, or the number for one without a name here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGCHLD => "SIGCHLD",
            libc::SIGCONT => "SIGCONT",
            libc::SIGSTOP => "SIGSTOP",
            libc::SIGTSTP => "SIGTSTP",
            libc::SIGTTIN => "SIGTTIN",
            libc::SIGTTOU => "SIGTTOU",
            libc::SIGWINCH => "SIGWINCH",
            n if n >= libc::SIGRTMIN() => return write!(f, "SIGRTMIN+{}", n - libc::SIGRTMIN()),
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_deliverable_signal_and_only_those() {
        assert_eq!(
            Signal::new(libc::SIGRTMAX()).map(Signal::get),
            Some(libc::SIGRTMAX())
        );
        assert_eq!(Signal::new(libc::SIGRTMAX() + 1), None);
        assert_eq!(Signal::new(-libc::SIGTERM), None);
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(
            Signal::new(libc::SIGRTMIN() + 3).map(|s| s.to_string()),
            Some("SIGRTMIN+3".to_string())
        );
    }
}
