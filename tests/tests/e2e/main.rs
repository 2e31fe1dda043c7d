//! End-to-end tests on real containers and namespaces. They need root and a running dockerd
//! (scripts/setup); locally they skip without them, with CI=true they fail.
//!
//! One file per feature: `cli/` for each `nsdebug` subcommand (and the `tcpflow-lite`
//! binary), `library/` for what an embedder of nsenter-core, nsdebug-net and nsdebug-resolve calls,
//! `hostile.rs` for the hostile container fixture, `ship.rs` for packages and images.

/// The `nsdebug` subcommands and the `tcpflow-lite` binary, as a user runs them.
mod cli {
    mod audit;
    mod debug;
    mod debug_session;
    mod demo;
    mod enter;
    mod errors;
    mod first_contact;
    mod flow;
    mod json;
    mod lying_runtime;
    mod mem;
    mod pid;
    mod podman;
    mod pods;
    mod readme;
    mod tcpflow_live;
    mod veth;
    mod why;
}
/// The libraries, embedded: the guard, `run_in`, `Command`, nsdebug-resolve, the example
/// programs.
mod library {
    mod command;
    mod examples;
    mod guard;
    mod resolve;
    mod scoped;
}
mod hostile;
mod powers;
mod ship;
