//! `nfcron watch`: the long-running sidecar (see `daemon`).

use crate::daemon::{self, WatchSettings};
use crate::{Error, ExitStatus};

pub fn run(settings: &WatchSettings) -> Result<ExitStatus, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(daemon::run_ref(settings))?;
    Ok(ExitStatus::Success)
}
