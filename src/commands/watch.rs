//! `nfcron watch`: the long-running sidecar (see `daemon`).

use crate::daemon;
use crate::settings::WatchSettings;
use crate::{Error, ExitStatus};

pub fn run(settings: &WatchSettings) -> Result<ExitStatus, Error> {
    let runtime = super::runtime()?;
    let result = runtime.block_on(daemon::run_ref(settings));
    // A blocking task still stuck (a Git fetch from a server that never
    // answers) must not hold the exit: `--shutdown-timeout` is the limit.
    runtime.shutdown_background();
    result?;
    Ok(ExitStatus::Success)
}
