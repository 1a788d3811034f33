//! One module per subcommand: each takes resolved settings, does its work
//! through the pipeline modules, writes its data to the given writer and
//! returns an exit status.

pub mod import;
pub mod reconcile;
pub mod schema;
pub mod validate;
pub mod watch;
