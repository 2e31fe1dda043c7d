//! `nsdebug`: debug containers from the host by entering their namespaces.

use std::process::ExitCode;

mod cli;
mod cmd;
mod kernel_log;
mod pty;
mod session;
mod shown;
mod waiting;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`nsdebug ps | head -1`) instead of failing on every write.
    // SAFETY: resetting a signal disposition to its default before any thread exists.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    // Output that cannot be written (`nsdebug ps > /dev/full`) is an error of the user's
    // world, not a bug: one line and nsdebug's failure status, not a panic and a backtrace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or(payload.downcast_ref::<&str>().copied());
        let message = message.unwrap_or_default();
        if let Some(why) = message.strip_prefix("failed printing to ") {
            eprintln!("nsdebug: cannot write to {why}");
            std::process::exit(i32::from(cli::EXIT_NSDEBUG_FAILED));
        }
        default_hook(info);
    }));
    // In a node image with the host's root at /host, the runtimes' sockets are there.
    nsdebug_resolve::host_root::use_host_sockets();
    cli::run()
}
