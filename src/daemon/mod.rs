//! `nfcron watch`: triggers (file events, Git polls, webhooks, resync and
//! drift timers, retries, token-file changes, signals) -> the one
//! reconcile path, one run at a time. Shaped as kube-runtime's controller:
//!
//! - `triggers` turns every source of work into one small `Trigger`;
//! - `schedule` is a pure state machine that decides from them when the
//!   next run starts and what it does (pending work, quiet periods,
//!   coalesced follow-ups, retries);
//! - `runner` runs it (leadership, the token, the source, the reconcile,
//!   readiness, notifications);
//! - `drive` is the loop between them, with shutdown as a parameter.
//!
//! The process never exits because of an API or source error: it reports,
//! keeps the last good source revision, and tries again later. SIGTERM and
//! SIGINT stop new work, let the run in progress finish (up to
//! `--shutdown-timeout`; state is saved after every write, so even a
//! cut-short run leaves it true) and exit 0. Blocking work (directory
//! reads, Git fetches) runs on tokio's blocking pool, which is not waited
//! for on the way out, and a watchdog thread ends the process
//! [`EXIT_MARGIN`] after the deadline should anything still hold it. Every
//! task has an owner: the listener, the signal watcher and the
//! notification lanes are stopped and joined before `run_ref` returns.

mod runner;
mod schedule;
mod triggers;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::metrics::Metrics;
use crate::notifications::deliver::{Queue, Sender};
use crate::secret::Token;
use crate::server::{self, Liveness, NotReady, Readiness, Shared};
use crate::settings::{SourceSettings, WatchSettings};
use crate::source;
use crate::status;
use crate::store;
use runner::{Runner, Wake};
use schedule::{Action, Event, Schedule};
use triggers::{Trigger, Triggers};

/// Why the sidecar could not start. Once it runs, nothing ends it but a
/// signal: API, source and state errors are reported, shown on `/readyz`
/// and retried (see the error policy in ARCHITECTURE.md).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch the manifests directory")]
    Watch(#[source] notify::Error),
    #[error(transparent)]
    ApiConfig(#[from] crate::api::ConfigError),
    #[error("watch needs an API token: set NORTHFLANK_API_TOKEN or pass --token-file")]
    NoToken,
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("cannot make the notification client")]
    Notify(#[source] reqwest::Error),
}

/// After SIGTERM, the process ends at most this long past
/// `--shutdown-timeout`, whatever a run is stuck in.
pub const EXIT_MARGIN: Duration = Duration::from_secs(1);

/// The target of the daemon's log lines, whichever submodule writes them.
const LOG: &str = "nfcron::daemon";

pub async fn run_ref(settings: &WatchSettings) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::new());
    // An API call may be silent for its timeout, and a retry or a wait for
    // the rate limit's reset for up to --retry-max-time: a run within its
    // own limits is never called stalled.
    let own_limits = settings
        .api
        .timeout
        .saturating_add(settings.api.retry_max_time);
    let liveness = Arc::new(Liveness::new(settings.stall_timeout.max(own_limits)));
    let (observed, live) = (metrics.clone(), liveness.clone());
    let client = settings
        .api
        .client()?
        .ok_or(DaemonError::NoToken)?
        .with_observer(move |method, status| {
            observed.api_request(method, status);
            // An answer (or a timeout) is progress: each request is bounded.
            live.progress();
        });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(triggers::signals(
        stop_tx.clone(),
        settings.shutdown_timeout,
    ));
    let (hook_tx, hook_rx) = mpsc::channel::<()>(1);
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        readiness: Mutex::new(Readiness::NotReady(NotReady::Starting)),
        liveness: liveness.clone(),
        webhook_secret: std::env::var("NFCRON_WEBHOOK_SECRET")
            .ok()
            .and_then(|s| Token::new(&s)),
        webhook: hook_tx,
        status: Mutex::new(status::Board::new(status_source(&settings.source))),
    });
    if let Some(addr) = settings.listen {
        let listener = listen(addr, settings.log_json).await?;
        tasks.spawn(server::serve(
            listener,
            shared.clone(),
            settings.listener,
            stop_rx.clone(),
        ));
    }
    let notices = start_notices(settings, &metrics, &stop_rx, &mut tasks)?;
    let mut triggers = Triggers::start(settings, hook_rx).await?;
    // With a PostgreSQL state, replicas on one namespace elect a leader.
    let replica = store::open_replica(
        &settings.reconcile.state_path,
        &settings.reconcile.state_namespace,
    )?;
    metrics.leader(replica.is_none());
    let mut runner = Runner::new(settings, replica, client, shared, notices);
    drive(&mut runner, &mut triggers, settings, &liveness, stop_rx).await;
    let _ = stop_tx.send(true);
    // Closes the notification queues: their tasks end once what is left
    // is sent or its grace is over.
    drop(runner);
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

/// Binds the listener and prints its banner (whatever the log level:
/// scripts and tests wait for it).
async fn listen(addr: SocketAddr, json: bool) -> Result<tokio::net::TcpListener, DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen { addr, source })?;
    eprintln!("{}", banner(bound, json));
    Ok(listener)
}

/// Notifications and commit statuses go out from tasks of their own,
/// through a bounded queue: a receiver never holds a run.
fn start_notices(
    settings: &WatchSettings,
    metrics: &Arc<Metrics>,
    stop: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<Queue>, DaemonError> {
    if settings.notify.is_empty() {
        return Ok(None);
    }
    let sender = Sender::new().map_err(DaemonError::Notify)?;
    let (queue, lanes) = Queue::start(
        sender,
        settings.notify.lanes(),
        metrics.clone(),
        stop.clone(),
    );
    for lane in lanes {
        tasks.spawn(lane);
    }
    Ok(Some(queue))
}

/// The loop: a run when the schedule says so, else the next trigger,
/// until `stop` says to stop.
async fn drive(
    runner: &mut Runner<'_>,
    triggers: &mut Triggers,
    settings: &WatchSettings,
    liveness: &Liveness,
    mut stop: watch::Receiver<bool>,
) {
    let mut schedule = Schedule::new(settings.debounce);
    // The first leadership check comes before the first run.
    let _ = runner.campaign().await;
    if runner.has_replicas() {
        triggers.campaign_from(Instant::now());
    }
    let mut action = schedule.next();
    loop {
        if let Action::Run(work) = action {
            liveness.run_started();
            let failed = run_until_stopped(runner, work, settings, &mut stop).await;
            liveness.run_ended();
            if *stop.borrow() {
                return;
            }
            release_freed_memory();
            let retry_in = failed.then(|| runner.retry_delay());
            action = schedule.on(Event::RunEnded { retry_in }, Instant::now());
            continue;
        }
        let trigger = triggers.next(&schedule, &mut stop).await;
        if trigger == Trigger::Stop {
            return;
        }
        action = match event_for(trigger, runner, triggers).await {
            Some(event) => schedule.on(event, Instant::now()),
            None => Action::Wait,
        };
    }
}

/// One run; on `stop`, the run in progress may finish within
/// `--shutdown-timeout`. Returns whether jobs failed.
async fn run_until_stopped(
    runner: &mut Runner<'_>,
    work: schedule::Pending,
    settings: &WatchSettings,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let run = runner.run_once(work);
    tokio::pin!(run);
    tokio::select! {
        failed = &mut run => failed,
        _ = stop.wait_for(|s| *s) => {
            tracing::info!("stopping: letting the run in progress finish");
            match tokio::time::timeout(settings.shutdown_timeout, &mut run).await {
                Ok(failed) => failed,
                Err(_) => {
                    tracing::warn!("the run in progress did not finish within --shutdown-timeout; state holds every write that completed");
                    false
                }
            }
        }
    }
}

/// What a trigger means for the schedule, once the runner has done what
/// it must at once (relay a webhook, check the leadership or the token
/// file). `None`: nothing to schedule.
async fn event_for(
    trigger: Trigger,
    runner: &mut Runner<'_>,
    triggers: &mut Triggers,
) -> Option<Event> {
    match trigger {
        Trigger::Stop => None,
        // Editors write several events per save and `git checkout` one
        // per file: each event (or run of events queued during a run)
        // extends the quiet period.
        Trigger::FileChanged => Some(Event::FileChanged),
        Trigger::TokenFile => runner.token_worth_trying().await.then(|| {
            tracing::info!("--token-file changed while the token is refused: trying it");
            Event::TokenChanged
        }),
        Trigger::Webhook => {
            // A standby fetches too (its cache stays warm) and passes the
            // webhook on to the leader.
            runner.relay_webhook().await;
            let file_queued = triggers.take_file_event();
            Some(Event::Webhook { file_queued })
        }
        Trigger::Campaign => match runner.campaign().await? {
            Wake::Run => Some(Event::RoleChanged),
            // Relayed webhooks fetch at once, as this replica's own do.
            Wake::Hook => Some(Event::RelayedWebhook),
        },
        Trigger::QuietOver => Some(Event::QuietOver),
        Trigger::Resync => Some(Event::Resync),
        Trigger::Poll => Some(Event::Poll),
        Trigger::DriftSlice => Some(Event::DriftSlice),
        Trigger::RetryDue => Some(Event::RetryDue),
    }
}

/// Where manifests come from, as the status page names it (never the URL,
/// which may carry a user name).
fn status_source(source: &SourceSettings) -> status::Source {
    match source {
        SourceSettings::Dir(path) => status::Source::Dir(source::display_path(path)),
        SourceSettings::Git(git) => status::Source::Git {
            branch: git.branch.clone(),
            path: git.subdir.clone(),
        },
    }
}

/// The listener's banner: plain text, or under `--log-format json` one
/// object shaped as the log events are (`url` holds the address).
fn banner(bound: SocketAddr, json: bool) -> String {
    let url = format!("http://{bound}");
    if json {
        serde_json::json!({
            "timestamp": jiff::Timestamp::now().to_string(),
            "level": "INFO",
            "message": "listening",
            "url": url,
            "target": "nfcron::daemon",
        })
        .to_string()
    } else {
        format!("nfcron watch: listening on {url}")
    }
}

/// A run's catalog, plan and report are freed when it ends; glibc keeps
/// freed pages in its arenas, and a sidecar idles for long stretches, so
/// hand them back to the system between runs.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc has already freed.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Up to 10% on top, so that many sidecars do not poll in step.
fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    interval + interval.mul_f64(f64::from(byte[0]) / 255.0 * 0.1)
}
