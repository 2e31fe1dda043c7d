//! `nsdebug`: debug containers from the host by entering their namespaces.

use std::process::ExitCode;

mod cli;
mod cmd;
mod pty;
mod resolve;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`nsdebug ps | head -1`) instead of failing on every write.
    // SAFETY: resetting a signal disposition to its default before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    cli::run()
}
