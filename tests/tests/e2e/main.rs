//! End-to-end tests on real containers and namespaces. They need root and a running dockerd
//! (scripts/setup); locally they skip without them, with CI=true they fail.

mod cli_audit;
mod cli_debug;
mod cli_enter;
mod cli_flow;
mod cli_mem;
mod cli_pid;
mod cli_podman;
mod cli_pods;
mod cli_veth;
mod command;
mod errors;
mod examples;
mod guard;
mod hostile;
mod scoped;
mod ship;
mod tcpflow_live;
