//! `nsdebug`: debug containers from the host by entering their namespaces.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::run()
}
