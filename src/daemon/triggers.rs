//! The sources of work, each turned into one [`Trigger`]: file events
//! (notify's thread), webhooks (from the listener), `--token-file`
//! changes, the periodic timers (resync, Git polls, drift slices,
//! leadership checks), the schedule's own timers (quiet period, retry) and
//! the stop signal. [`Triggers::next`] waits for the first of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::schedule::Schedule;
use super::{jittered, DaemonError, EXIT_MARGIN, LOG};
use crate::reconcile::off_runtime;
use crate::settings::{SourceSettings, WatchSettings};
use crate::source;

/// Slices a drift sweep is spread over.
pub(super) const DRIFT_SLICES: u32 = 10;

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// SIGTERM or SIGINT: stop.
    Stop,
    FileChanged,
    /// Something changed beside `--token-file` (maybe the token).
    TokenFile,
    /// A verified webhook came through the listener.
    Webhook,
    /// A leadership check is due (replicas only).
    Campaign,
    QuietOver,
    Resync,
    Poll,
    DriftSlice,
    RetryDue,
}

/// The channels and timers the loop waits on.
pub(super) struct Triggers {
    /// File events; a channel of one is enough, since any number of
    /// events means "look again".
    files: mpsc::Receiver<()>,
    /// Without a directory source nothing sends file events: the sender
    /// is kept so that the channel waits instead of closing.
    _no_files: Option<mpsc::Sender<()>>,
    _files_watcher: Option<notify::RecommendedWatcher>,
    token_file: mpsc::Receiver<()>,
    _no_token_file: Option<mpsc::Sender<()>>,
    _token_watcher: Option<notify::RecommendedWatcher>,
    hooks: mpsc::Receiver<()>,
    resync: Duration,
    interval: Duration,
    failover_check: Duration,
    drift_slice: Duration,
    next_resync: Instant,
    /// A Git source only.
    next_poll: Option<Instant>,
    /// With `--drift-interval` only.
    next_drift: Option<Instant>,
    /// Replicas only, once the first check is done.
    next_campaign: Option<Instant>,
}

impl Triggers {
    /// Starts the file and token-file watchers (setting watches walks the
    /// directory: on the blocking pool) and the periodic timers.
    pub(super) async fn start(
        settings: &WatchSettings,
        hooks: mpsc::Receiver<()>,
    ) -> Result<Triggers, DaemonError> {
        let (fs_tx, files) = mpsc::channel::<()>(1);
        let (files_watcher, no_files) = match &settings.source {
            SourceSettings::Dir(path) => {
                let path = path.clone();
                let watcher = off_runtime(move || source::dir::watch(&path, fs_tx))
                    .await
                    .map_err(DaemonError::Watch)?;
                (Some(watcher), None)
            }
            SourceSettings::Git(_) => (None, Some(fs_tx)),
        };
        // A rotated secret: the token file's directory is watched
        // (Kubernetes swaps a `..data` symlink there), and a change while
        // the token is refused starts a run at once instead of at the next
        // backoff.
        let (token_tx, token_file) = mpsc::channel::<()>(1);
        let (token_watcher, no_token_file) = match settings.api.token_file.clone() {
            Some(file) => (
                off_runtime(move || watch_token_file(&file, token_tx)).await,
                None,
            ),
            None => (None, Some(token_tx)),
        };
        let now = Instant::now();
        // A drift sweep is spread over its interval in slices, each
        // reading the next share of the jobs.
        let drift_slice = (settings.drift_interval / DRIFT_SLICES).max(Duration::from_secs(1));
        let git = matches!(settings.source, SourceSettings::Git(_));
        Ok(Triggers {
            files,
            _no_files: no_files,
            _files_watcher: files_watcher,
            token_file,
            _no_token_file: no_token_file,
            _token_watcher: token_watcher,
            hooks,
            resync: settings.resync,
            interval: settings.interval,
            failover_check: settings.failover_check,
            drift_slice,
            next_resync: now + settings.resync,
            next_poll: git.then(|| now + jittered(settings.interval)),
            next_drift: (!settings.drift_interval.is_zero()).then(|| now + drift_slice),
            next_campaign: None,
        })
    }

    /// Leadership checks from now on, every `--failover-check`.
    pub(super) fn campaign_from(&mut self, now: Instant) {
        self.next_campaign = Some(now + self.failover_check);
    }

    /// Takes a file event waiting in the channel, if there is one.
    pub(super) fn take_file_event(&mut self) -> bool {
        self.files.try_recv().is_ok()
    }

    /// Waits for the first trigger; a periodic timer that fires is set
    /// again from now.
    pub(super) async fn next(
        &mut self,
        schedule: &Schedule,
        stop: &mut watch::Receiver<bool>,
    ) -> Trigger {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => Trigger::Stop,
            Some(()) = self.files.recv() => Trigger::FileChanged,
            Some(()) = self.token_file.recv() => Trigger::TokenFile,
            Some(()) = self.hooks.recv() => Trigger::Webhook,
            () = at(self.next_campaign) => {
                self.campaign_from(Instant::now());
                Trigger::Campaign
            }
            () = at(schedule.quiet_until()) => Trigger::QuietOver,
            () = at(Some(self.next_resync)) => {
                self.next_resync = Instant::now() + self.resync;
                Trigger::Resync
            }
            () = at(self.next_poll) => {
                self.next_poll = Some(Instant::now() + jittered(self.interval));
                Trigger::Poll
            }
            () = at(self.next_drift) => {
                self.next_drift = Some(Instant::now() + self.drift_slice);
                Trigger::DriftSlice
            }
            () = at(schedule.retry_at()) => Trigger::RetryDue,
        }
    }
}

/// Sleeps until `deadline`; without one, for ever.
async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Watches the directory that holds `file` (not the file: a secret mount
/// replaces it through a symlink swap, an editor by a rename), passing on
/// only events that name the file or the `..data` link a Kubernetes Secret
/// volume swaps: the directory may also hold the sidecar's own log or state,
/// written on every line. `None`, with a warning, when it cannot be
/// watched: each run still reads it again.
fn watch_token_file(file: &Path, changed: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().map(std::ffi::OsStr::to_os_string);
    let watched = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let ours = event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n == "..data" || Some(n) == name.as_deref())
        });
        if ours && !matches!(event.kind, notify::EventKind::Access(_)) {
            let _ = changed.try_send(());
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(target: LOG, dir = %dir.display(), error = %e, "cannot watch the --token-file directory; a new token is read at the next run");
            None
        }
    }
}

/// Turns SIGTERM or SIGINT into `stop`, and then keeps a watchdog that
/// ends the process [`EXIT_MARGIN`] past `--shutdown-timeout`.
pub(super) async fn signals(stop: watch::Sender<bool>, shutdown_timeout: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut stopped = stop.subscribe();
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(target: LOG, "SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!(target: LOG, "SIGINT"),
        _ = stopped.wait_for(|s| *s) => return,
    }
    let _ = stop.send(true);
    // The daemon keeps the deadline itself; this is for what it cannot
    // interrupt (a run stuck in a blocking call on its own thread). State
    // is written atomically after each write, so ending here loses none.
    let deadline = shutdown_timeout.saturating_add(EXIT_MARGIN);
    let _ = std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            tracing::error!(
                target: LOG,
                "still running {} after SIGTERM; exiting",
                humantime::format_duration(deadline)
            );
            std::process::exit(0);
        });
}
