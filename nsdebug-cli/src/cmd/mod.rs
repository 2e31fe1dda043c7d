//! One module per subcommand, thin over the libraries.

pub mod audit;
pub mod enter;
pub mod flow;
pub mod ps;
pub mod veth;
