//! One module per subcommand: each takes resolved settings, does its work
//! through the pipeline modules, writes its data to the given writer and
//! returns an exit status.

pub mod import;
pub mod reconcile;
pub mod schedule;
pub mod schema;
pub mod validate;
pub mod watch;

/// The async runtime of the commands that talk to the network: two workers,
/// matching the machines this runs on; requests are I/O bound.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(crate::Error::Runtime)
}
