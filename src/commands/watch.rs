//! `nfcron watch`: the long-running sidecar (see `daemon`).

use crate::daemon::{self, WatchSettings};
use crate::{Error, ExitStatus};

pub fn run(settings: &WatchSettings) -> Result<ExitStatus, Error> {
    let runtime = super::runtime()?;
    runtime.block_on(daemon::run_ref(settings))?;
    Ok(ExitStatus::Success)
}
