//! Argument parsing, dispatch, and error reporting.

use std::process::ExitCode;

use clap::Parser;

/// Debug containers from the host by entering their namespaces.
#[derive(Parser, Debug)]
#[command(name = "nsdebug", version, about)]
struct Cli {}

/// Parses the command line and runs it; errors print their whole chain on one line.
pub fn run() -> ExitCode {
    let _cli = Cli::parse();
    let result: anyhow::Result<()> =
        Err(anyhow::anyhow!("no subcommands yet: see `nsdebug --help` and the issue tracker"));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nsdebug: {error:#}");
            ExitCode::FAILURE
        }
    }
}
