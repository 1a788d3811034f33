//! One module per subcommand: each takes resolved settings, does its work
//! through the pipeline modules, writes its data to the given writer and
//! returns an exit status.

pub mod completions;
pub mod import;
pub mod man;
pub mod reconcile;
pub mod schedule;
pub mod schema;
pub mod state;
pub mod validate;
pub mod watch;

/// The async runtime of the commands that talk to the network: two workers,
/// matching the machines this runs on; requests are I/O bound. File and
/// Git I/O run on the blocking pool, so fewer workers never wait on a
/// disk. `TOKIO_WORKER_THREADS` (tokio's own variable) overrides the two.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::Error> {
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(crate::Error::Runtime)
}
