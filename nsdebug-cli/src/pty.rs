//! A pseudo-terminal of its own for a program taken from the container, as `su --pty`,
//! sudo's `use_pty` and `docker exec -t` give one: the program's terminal is the slave side of
//! a new pty, in a session of its own, so neither TIOCSTI (typing into a terminal) nor job
//! control signals can reach the operator's terminal. nsdebug relays bytes both ways and the
//! window size, and follows the program's stops as a shell would.

use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitStatus;

use anyhow::Context;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{self, SetArg, Termios};
use nsenter_core::{Child, WaitEvent};

/// Which of our standard streams are terminals: those get the pty's slave instead.
#[derive(Clone, Copy, Debug)]
pub struct Terminals(pub [bool; 3]);

impl Terminals {
    /// Looks at fds 0, 1 and 2.
    pub fn of_stdio() -> Terminals {
        Terminals([
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ])
    }

    /// Whether any of them is a terminal.
    pub fn any(&self) -> bool {
        self.0.iter().any(|t| *t)
    }
}

/// A new pty: the master stays with nsdebug, the slave goes to the program.
pub struct Pty {
    /// nsdebug's side.
    pub master: OwnedFd,
    /// The program's terminal.
    pub slave: OwnedFd,
}

/// Standard stream `fd` (0, 1 or 2), borrowed for the life of the process.
fn standard(fd: usize) -> BorrowedFd<'static> {
    // SAFETY: fds 0-2 stay open for the life of the process (nothing here closes them).
    unsafe { BorrowedFd::borrow_raw(fd as i32) }
}

/// The terminal we were started on: stdin, else stdout, else stderr.
fn our_terminal(terminals: Terminals) -> Option<BorrowedFd<'static>> {
    terminals.0.iter().position(|t| *t).map(standard)
}

/// Opens a pty with the size and modes of our terminal.
pub fn open(terminals: Terminals) -> anyhow::Result<Pty> {
    let ours = our_terminal(terminals);
    let modes = ours.and_then(|fd| termios::tcgetattr(fd).ok());
    let size = ours.and_then(window_size);
    let pty = nix::pty::openpty(size.as_ref(), modes.as_ref())
        .context("cannot open a pseudo-terminal")?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok(Pty {
        master: pty.master,
        slave: pty.slave,
    })
}

/// A pty of the container's own devpts, as `docker exec -t` gives one: `tty` names it inside
/// and the container's `/dev/pts` lists it. When the container has none nsenter-core will
/// open (no devpts, or its `ptmx` a link, a FIFO, a file), one of the host's, with a note.
pub fn open_in(target: &nsenter_core::Target, terminals: Terminals) -> anyhow::Result<Pty> {
    let pty = match nsenter_core::pty::open_in_target(target) {
        Ok(pty) => pty,
        Err(why) => {
            crate::cli::notice(format_args!(
                "no terminal from the container's devpts ({why}): using one of the host's, \
                 which `tty` cannot name inside"
            ));
            return open(terminals);
        }
    };
    // The size and modes of our terminal, as openpty gives them to a host pty.
    if let Some(ours) = our_terminal(terminals) {
        if let Ok(modes) = termios::tcgetattr(ours) {
            termios::tcsetattr(&pty.peer, SetArg::TCSANOW, &modes)
                .context("setting the terminal's modes")?;
        }
        if let Some(size) = window_size(ours) {
            set_window_size(pty.master.as_fd(), &size);
        }
    }
    Ok(Pty {
        master: pty.master,
        slave: pty.peer,
    })
}

/// The signals the relay handles itself; block them before starting the program, so none is
/// lost or acts on nsdebug alone in between.
pub fn relay_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCONT,
    ] {
        set.add(signal);
    }
    set
}

/// Blocks [`relay_signals`] until dropped.
pub struct Blocked(SigSet);

impl Blocked {
    /// Blocks them now.
    pub fn now() -> anyhow::Result<Blocked> {
        let mut old = SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&relay_signals()),
            Some(&mut old),
        )?;
        Ok(Blocked(old))
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Our terminal in raw mode until dropped (then as it was).
struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'static>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Relays between our terminal and the pty's master until the program ends, and returns
/// how it ended. `stdin` is copied to the program only when it is our terminal (otherwise
/// the program reads stdin directly).
pub fn relay(
    master: OwnedFd,
    child: &mut Child,
    terminals: Terminals,
    _blocked: Blocked,
) -> anyhow::Result<ExitStatus> {
    let signals = SignalFd::with_flags(&relay_signals(), nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
        .context("cannot receive signals through a signalfd")?;
    let stdin_fd = standard(0);
    let mut input_open = terminals.0[0];
    let mut raw = if input_open {
        RawMode::enter(stdin_fd)
    } else {
        None
    };
    let mut output_open = true;
    let mut status = None;
    let mut buffer = [0u8; 16384];
    // After the program ended, what is left in the pty is taken, but a background process
    // that keeps writing to it does not keep nsdebug alive (at most 64 MiB more).
    let mut drain_reads = 4096;
    while status.is_none() || (output_open && drain_reads > 0) {
        if status.is_some() {
            drain_reads -= 1;
            // The program is gone: take what it left in the pty, then stop.
            nix::fcntl::fcntl(
                &master,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )?;
        }
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if input_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        let timeout = if status.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
            Ok(0) => break, // only once the program ended: nothing more to drain
            Ok(_) => {}
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (master_ready, signal_ready) = (ready(&fds[0]), ready(&fds[1]));
        let stdin_ready = fds.get(2).is_some_and(ready);
        drop(fds);
        if master_ready {
            match nix::unistd::read(&master, &mut buffer) {
                // EIO: every slave fd is closed (the program and its children are gone).
                Ok(0) | Err(Errno::EIO) | Err(Errno::EAGAIN) => output_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(&buffer[..n])
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        output_open = false;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e).context("reading the program's terminal"),
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin_fd, &mut buffer) {
                Ok(0) | Err(Errno::EIO) => input_open = false,
                Ok(n) => write_all(master.as_fd(), &buffer[..n])?,
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e).context("reading the terminal"),
            }
        }
        if signal_ready {
            let Ok(Some(info)) = signals.read_signal() else {
                continue;
            };
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGWINCH) => {
                    if let Some(size) = our_terminal(terminals).and_then(window_size) {
                        set_window_size(master.as_fd(), &size);
                    }
                }
                Ok(Signal::SIGCHLD) | Ok(Signal::SIGCONT) => {
                    match child.try_wait_event()? {
                        Some(WaitEvent::Exited(exit)) => status = Some(exit),
                        Some(WaitEvent::Stopped(_)) => {
                            // Stop with it, on our terminal as it was; go on when continued.
                            drop(raw.take());
                            let _ = nix::sys::signal::raise(Signal::SIGSTOP);
                            if input_open {
                                raw = RawMode::enter(stdin_fd);
                            }
                            let _ = child.signal(nsenter_core::Signal::CONT);
                        }
                        None => {}
                    }
                }
                Ok(other) => {
                    if let Some(signal) = nsenter_core::Signal::new(other as i32) {
                        let _ = child.relay_signal(signal);
                    }
                }
                Err(_) => {}
            }
        }
    }
    drop(raw);
    match status {
        Some(status) => Ok(status),
        None => Ok(child.wait()?),
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> anyhow::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("writing to the program's terminal"),
        }
    }
    Ok(())
}

/// Our terminal's window size (`TIOCGWINSZ`), in the form `openpty` takes.
fn window_size(fd: BorrowedFd<'_>) -> Option<nix::pty::Winsize> {
    let size = rustix::termios::tcgetwinsize(fd).ok()?;
    Some(nix::pty::Winsize {
        ws_row: size.ws_row,
        ws_col: size.ws_col,
        ws_xpixel: size.ws_xpixel,
        ws_ypixel: size.ws_ypixel,
    })
}

/// `TIOCSWINSZ` (the kernel then sends SIGWINCH to the pty's foreground process group). A
/// failure changes nothing the program sees but its size, so it is not an error.
fn set_window_size(fd: BorrowedFd<'_>, size: &nix::pty::Winsize) {
    let size = rustix::termios::Winsize {
        ws_row: size.ws_row,
        ws_col: size.ws_col,
        ws_xpixel: size.ws_xpixel,
        ws_ypixel: size.ws_ypixel,
    };
    let _ = rustix::termios::tcsetwinsize(fd, size);
}
