//! End-to-end tests on real containers and namespaces. They need root and a running dockerd
//! (scripts/setup); locally they skip without them, with CI=true they fail.
//!
//! One file per feature: `cli/` for each `nsdebug` subcommand (and the `tcpflow-lite`
//! binary), `library/` for what an embedder of nsenter-core and nsdebug-net calls,
//! `hostile.rs` for the hostile container fixture, `ship.rs` for packages and images.

/// The `nsdebug` subcommands and the `tcpflow-lite` binary, as a user runs them.
mod cli {
    mod audit;
    mod debug;
    mod enter;
    mod errors;
    mod flow;
    mod json;
    mod mem;
    mod pid;
    mod podman;
    mod pods;
    mod tcpflow_live;
    mod veth;
}
/// The libraries, embedded: the guard, `run_in`, `Command`, the example programs.
mod library {
    mod command;
    mod examples;
    mod guard;
    mod scoped;
}
mod hostile;
mod powers;
mod ship;
