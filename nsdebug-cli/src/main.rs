//! `nsdebug`: debug containers from the host by entering their namespaces.

use std::process::ExitCode;

mod cli;
mod cmd;
mod resolve;

fn main() -> ExitCode {
    cli::run()
}
