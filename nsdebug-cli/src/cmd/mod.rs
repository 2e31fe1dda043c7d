//! One module per subcommand, thin over the libraries.

pub mod audit;
pub mod enter;
pub mod flow;
pub mod ps;
pub mod veth;

/// A name the container controls (an interface, a container or process name) as a table
/// shows it: control characters (an ESC sequence, say) as `\xNN`, so that they cannot drive
/// the operator's terminal. `--json` keeps names as they are.
pub(crate) fn shown(name: &str) -> String {
    String::from_utf8_lossy(&tcpflow_lite::sink::escape_controls(name.as_bytes())).into_owned()
}
