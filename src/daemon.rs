//! `nfcron watch`: triggers (file events, Git polls, webhooks, resync and
//! drift timers, retries) -> the one reconcile path, one run at a time.
//!
//! Triggers that arrive during a run coalesce into the next: one follow-up
//! run however many there were. File events are debounced by a quiet
//! period: a run starts `--debounce` after the last of them (at most 10 x
//! `--debounce` after the first); the first webhook of a burst starts its
//! fetch at once, the rest give one more fetch when they stop. The
//! process
//! never exits because of an API or source error: it reports, keeps the
//! last good source revision, and tries again later. SIGTERM and SIGINT stop
//! new work, let the run in progress finish (up to `--shutdown-timeout`;
//! state is saved after every write, so even a cut-short run leaves it
//! true) and exit 0. Blocking work (directory reads, Git fetches) runs on
//! tokio's blocking pool, which is not waited for on the way out, and a
//! watchdog thread ends the process [`EXIT_MARGIN`] after the deadline
//! should anything still hold it. Every task has an owner: the listener,
//! the signal watcher and the file watcher are stopped and joined before
//! `run` returns.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::api::Client;
use crate::apply::chain;
use crate::metrics::Metrics;
use crate::plan::{self, DriftMode};
use crate::reconcile::{self, off_runtime, Options};
use crate::secret::Token;
use crate::server::{self, Liveness, Readiness, Shared};
use crate::settings::{SourceSettings, WatchSettings};
use crate::source::verify::Refusal;
use crate::source::{self, dir::DirCache, git::Snapshot, ReadProblem, SourceFile};
use crate::status;
use crate::store::postgres::{Campaign, PostgresStore};
use crate::store::{self, Store};

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

/// A replica's role as its last leadership check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not checked yet.
    Unknown,
    Leading,
    Standby,
    /// The check failed (the database unreachable).
    Unreachable,
}

/// What a leadership check asks of the loop.
enum Wake {
    /// This replica's role changed: run (a new leader applies at once; a
    /// new standby refreshes its readiness).
    Run,
    /// A standby relayed a webhook to this leader: fetch, then run.
    Hook,
}

/// What the next run must do.
#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    fetch: bool,
    run: bool,
    drift: bool,
}

impl Pending {
    fn any(self) -> bool {
        self.fetch || self.run || self.drift
    }
}

/// A debounce window: it closes `--debounce` after the last event, and at
/// the latest [`MAX_WAIT_FACTOR`] times `--debounce` after the first, so
/// that a directory that never stops changing is still reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quiet {
    first: Instant,
    until: Instant,
}

/// The longest a burst of events can hold a run back, in `--debounce`s.
const MAX_WAIT_FACTOR: u32 = 10;

impl Quiet {
    /// The window after an event now; `None` (run at once) for a zero
    /// debounce.
    fn extend(window: Option<Quiet>, debounce: Duration) -> Option<Quiet> {
        Self::extend_at(window, debounce, Instant::now())
    }

    /// A webhook's window: like a file event's, but never closing an open
    /// window (a file event's longer `--debounce`) sooner.
    fn extend_hook(window: Option<Quiet>, quiet: Duration, now: Instant) -> Option<Quiet> {
        let extended = Self::extend_at(window, quiet, now);
        match (window, extended) {
            (Some(open), Some(new)) if open.until > new.until => Some(open),
            (_, new) => new.or(window),
        }
    }

    fn extend_at(window: Option<Quiet>, debounce: Duration, now: Instant) -> Option<Quiet> {
        if debounce.is_zero() {
            return None;
        }
        let first = window.map_or(now, |w| w.first);
        let cap = first + debounce * MAX_WAIT_FACTOR;
        Some(Quiet {
            first,
            until: (now + debounce).min(cap),
        })
    }
}

/// The quiet period that closes a burst of webhooks (at most `--debounce`):
/// the first webhook fetches at once, the rest give one more fetch this
/// long after the last of them.
const HOOK_QUIET: Duration = Duration::from_millis(50);

/// How long a leadership check may wait on the database before `/readyz`
/// says so.
const DATABASE_WAIT_SHOWN: Duration = Duration::from_secs(1);

const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// After SIGTERM, the process ends at most this long past
/// `--shutdown-timeout`, whatever a run is stuck in.
pub const EXIT_MARGIN: Duration = Duration::from_secs(1);
/// Slices a drift sweep is spread over.
const DRIFT_SLICES: u32 = 10;

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
    tasks.spawn(signals(stop_tx.clone(), settings.shutdown_timeout));
    let (hook_tx, mut hook_rx) = mpsc::channel::<()>(1);
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        readiness: Mutex::new(Readiness {
            ready: false,
            reason: "the first reconcile has not completed".into(),
            standby: false,
        }),
        liveness: liveness.clone(),
        webhook_secret: std::env::var("NFCRON_WEBHOOK_SECRET")
            .ok()
            .and_then(|s| Token::new(&s)),
        webhook: hook_tx,
        status: Mutex::new(status::Board::new(status_source(&settings.source))),
    });
    if let Some(addr) = settings.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| DaemonError::Listen { addr, source })?;
        // Printed whatever the log level: scripts and tests wait for it.
        eprintln!("{}", banner(bound, settings.log_json));
        tasks.spawn(server::serve(
            listener,
            shared.clone(),
            settings.listener,
            stop_rx.clone(),
        ));
    }

    // Notifications and commit statuses go out from a task of their own,
    // through a bounded queue: a receiver never holds a run.
    let notices = match settings.notify.is_empty() {
        true => None,
        false => {
            let sender =
                crate::notifications::deliver::Sender::new().map_err(DaemonError::Notify)?;
            let (queue, lanes) = crate::notifications::deliver::Queue::start(
                sender,
                settings.notify.lanes(),
                metrics.clone(),
                stop_rx.clone(),
            );
            for lane in lanes {
                tasks.spawn(lane);
            }
            Some(queue)
        }
    };

    // File events arrive on notify's thread; a bounded channel of one is
    // enough, since any number of events means "look again".
    let (fs_tx, mut fs_rx) = mpsc::channel::<()>(1);
    // Setting the watches walks the directory: on the blocking pool.
    let _watcher = match &settings.source {
        SourceSettings::Dir(path) => {
            let path = path.clone();
            Some(
                off_runtime(move || source::dir::watch(&path, fs_tx))
                    .await
                    .map_err(DaemonError::Watch)?,
            )
        }
        SourceSettings::Git(_) => None,
    };

    // A rotated secret: the token file's directory is watched (Kubernetes
    // swaps a `..data` symlink there), and a change while the token is
    // refused starts a run at once instead of at the next backoff.
    let (token_tx, mut token_rx) = mpsc::channel::<()>(1);
    let _token_watcher = match settings.api.token_file.clone() {
        Some(file) => off_runtime(move || watch_token_file(&file, token_tx)).await,
        None => None,
    };

    // With a PostgreSQL state, replicas on one namespace elect a leader.
    let replica = store::open_replica(&settings.state_path, &settings.state_namespace)?;
    metrics.leader(replica.is_none());
    let mut daemon = Daemon {
        role: if replica.is_some() {
            Role::Unknown
        } else {
            Role::Leading
        },
        replica,
        leader_unannounced: None,
        carried: Vec::new(),
        settings,
        token: settings.api.token.clone(),
        client,
        metrics,
        shared,
        cache: DirCache::default(),
        snapshot: None,
        refused: None,
        failures: 0,
        drift_cursor: 0,
        notices,
        told: crate::notifications::Memory::default(),
    };
    let git = matches!(settings.source, SourceSettings::Git(_));
    let mut pending = Pending {
        fetch: true,
        run: true,
        drift: false,
    };
    let now = Instant::now();
    let mut next_resync = now + settings.resync;
    let mut next_poll = now + jittered(settings.interval);
    // A drift sweep is spread over its interval in slices, each reading
    // the next share of the jobs.
    let drift_slice = (settings.drift_interval / DRIFT_SLICES).max(Duration::from_secs(1));
    let mut next_drift = (!settings.drift_interval.is_zero()).then(|| now + drift_slice);
    let mut retry_at: Option<Instant> = None;
    // The first leadership check comes before the first run.
    let _ = daemon.campaign().await;
    let mut next_campaign = Instant::now() + settings.failover_check;
    // Open while file events or webhooks keep arriving: no run starts
    // until it closes.
    let mut quiet: Option<Quiet> = None;
    // When the last webhook came: one closer than HOOK_QUIET is the same
    // burst.
    let mut last_hook: Option<Instant> = None;
    let mut stop = stop_rx.clone();
    loop {
        if pending.any() && quiet.is_none() {
            let work = pending;
            pending = Pending::default();
            liveness.run_started();
            let failed = {
                let run = daemon.run_once(work);
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
            };
            liveness.run_ended();
            if *stop.borrow() {
                break;
            }
            release_freed_memory();
            retry_at = failed.then(|| Instant::now() + daemon.retry_delay());
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            // Editors write several events per save and `git checkout` one
            // per file: each event (or run of events queued during a run)
            // extends the quiet period.
            Some(()) = fs_rx.recv() => {
                pending.run = true;
                quiet = Quiet::extend(quiet, settings.debounce);
            }
            Some(()) = token_rx.recv() => {
                if daemon.metrics.token_refused() && daemon.token_file_differs().await {
                    tracing::info!("--token-file changed while the token is refused: trying it");
                    pending.run = true;
                    retry_at = None;
                    quiet = Quiet::extend(quiet, settings.debounce);
                }
            }
            Some(()) = hook_rx.recv() => {
                // A standby fetches too (its cache stays warm) and passes
                // the webhook on to the leader. A push is whole when its
                // webhook comes: the first of a burst fetches at once; the
                // rest (each within HOOK_QUIET of the one before, or queued
                // during the run) give one more fetch, after they stop.
                daemon.relay_webhook().await;
                pending.fetch = true;
                // A file event queued beside it (both came during the last
                // run) keeps its quiet period: a run now would read the
                // file, and its event would then start one more.
                if fs_rx.try_recv().is_ok() {
                    pending.run = true;
                    quiet = Quiet::extend(quiet, settings.debounce);
                }
                let now = Instant::now();
                let hook_quiet = HOOK_QUIET.min(settings.debounce);
                if last_hook.is_some_and(|t| now.duration_since(t) < hook_quiet) {
                    quiet = Quiet::extend_hook(quiet, hook_quiet, now);
                }
                last_hook = Some(now);
            }
            _ = tokio::time::sleep_until(next_campaign.into()), if daemon.replica.is_some() => {
                next_campaign = Instant::now() + settings.failover_check;
                match daemon.campaign().await {
                    Some(Wake::Run) => {
                        pending.fetch = true;
                        pending.run = true;
                        retry_at = None;
                    }
                    Some(Wake::Hook) => {
                        // Relayed webhooks fetch at once, as this
                        // replica's own do.
                        pending.fetch = true;
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep_until(quiet.map_or(now, |q| q.until).into()), if quiet.is_some() => {
                quiet = None;
            }
            _ = tokio::time::sleep_until(next_resync.into()) => {
                next_resync = Instant::now() + settings.resync;
                pending.run = true;
            }
            _ = tokio::time::sleep_until(next_poll.into()), if git => {
                next_poll = Instant::now() + jittered(settings.interval);
                pending.fetch = true;
            }
            _ = tokio::time::sleep_until(next_drift.unwrap_or(now).into()), if next_drift.is_some() => {
                next_drift = Some(Instant::now() + drift_slice);
                pending.drift = true;
            }
            _ = tokio::time::sleep_until(retry_at.unwrap_or(now).into()), if retry_at.is_some() => {
                retry_at = None;
                pending.run = true;
            }
        }
    }
    let _ = stop_tx.send(true);
    // Closes the notification queues: their tasks end once what is left
    // is sent or its grace is over.
    drop(daemon);
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

struct Daemon<'a> {
    /// With a PostgreSQL state: this replica's store, which applies only
    /// while it leads.
    replica: Option<Arc<PostgresStore>>,
    /// What the last leadership check found (`Leading` without replicas).
    role: Role,
    /// The leader a standby follows (host, pid, since), until it says so
    /// (once its readiness is set).
    leader_unannounced: Option<String>,
    /// Writes the API took in the last run that the store could not record
    /// (its database session was lost): the next applying run records
    /// them instead of sending them again.
    carried: Vec<reconcile::Unrecorded>,
    settings: &'a WatchSettings,
    /// The token the client sends (from `--token-file`, read again before
    /// each run).
    token: Option<Token>,
    client: Client,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    cache: DirCache,
    /// The last good Git revision and its manifests (with
    /// `--verify-signatures`, the last verified one).
    snapshot: Option<Snapshot>,
    /// The Git tip `--verify-signatures` refused, while it is the tip:
    /// `/readyz` names it, and the last verified revision stays applied.
    refused: Option<Refusal>,
    /// Consecutive runs with failed jobs.
    failures: u32,
    /// Where the next drift slice starts reading.
    drift_cursor: usize,
    /// `--notify` / `--github-status` deliveries, when asked for.
    notices: Option<crate::notifications::deliver::Queue>,
    /// What notifications already said of lasting conditions.
    told: crate::notifications::Memory,
}

impl Daemon<'_> {
    /// One reconcile; returns whether any job failed (to retry later).
    async fn run_once(&mut self, work: Pending) -> bool {
        let started = Instant::now();
        let settings = self.settings;
        self.reread_token().await;
        // A 401 stops the calls of one run only: this one tries again.
        self.client.clear_token_refused();
        let (files, revision) = match &settings.source {
            SourceSettings::Dir(path) => {
                // On the blocking pool: a read that hangs (a FIFO, a dead
                // network mount) must not hold the loop that answers
                // SIGTERM.
                let mut cache = std::mem::take(&mut self.cache);
                let path = path.clone();
                let (cache, files) = off_runtime(move || {
                    let files = cache.read(&path);
                    (cache, files)
                })
                .await;
                self.cache = cache;
                (files, None)
            }
            SourceSettings::Git(git) => {
                if work.fetch || self.snapshot.is_none() {
                    let git = git.clone();
                    match off_runtime(move || git.sync()).await {
                        Ok(snapshot) => {
                            if self.snapshot.as_ref().map(|s| &s.revision)
                                != Some(&snapshot.revision)
                            {
                                tracing::info!(revision = %snapshot.revision, "fetched");
                            }
                            self.verified(&snapshot.revision);
                            self.snapshot = Some(snapshot);
                        }
                        Err(source::git::GitError::Unverified(refusal)) => {
                            self.refused(*refusal);
                            // Without a verified revision there is nothing
                            // to apply; the next poll or webhook fetches
                            // again.
                            if self.snapshot.is_none() {
                                return false;
                            }
                        }
                        Err(e) => {
                            // Readiness first: whoever reads the log line
                            // then sees the same state on /readyz.
                            self.not_ready(&format!("source unreachable: {}", chain(&e)));
                            // The metric too: a scrape after the log line
                            // counts this run.
                            self.metrics.failed_run(started.elapsed().as_secs_f64());
                            tracing::error!(error = %chain(&e), "fetch failed; keeping the last good revision");
                            self.tell_failed(&format!("fetch failed: {}", chain(&e)));
                            self.status_failed(format!("fetch failed: {}", chain(&e)), started);
                            // Nothing is planned from a failed fetch: no
                            // prune can follow from it.
                            return true;
                        }
                    }
                }
                let snapshot = self
                    .snapshot
                    .as_ref()
                    .expect("a snapshot after a successful fetch");
                (snapshot.files.clone(), Some(snapshot.revision.clone()))
            }
        };
        if !self.leads() {
            // A standby follows the source and stays ready; the leader
            // applies. Without the database it stays unready.
            if self.role == Role::Unreachable {
                return false;
            }
            if self.role == Role::Leading {
                // Fenced since the last check (its session was lost): the
                // next check says what this replica is now.
                self.role = Role::Unknown;
                self.metrics.leader(false);
                self.not_ready("stepped down: the state database session was lost; checking the leadership again");
                return false;
            }
            match self.unready_reason(&files) {
                Some(reason) => self.not_ready(&reason),
                None => {
                    let mut readiness = self.shared.readiness.lock().expect("readiness lock");
                    readiness.ready = true;
                    readiness.standby = true;
                    readiness.reason.clear();
                }
            }
            match self.leader_unannounced.take() {
                Some(leader) => {
                    tracing::info!(%leader, "standing by: another replica leads and applies")
                }
                None => tracing::debug!(
                    files = files.len(),
                    "standby: source read; the leader applies"
                ),
            }
            return false;
        }
        // Outside drift sweeps reads serve only adoption (jobs the state
        // lacks), under the same cap as `reconcile`.
        let git_source = matches!(settings.source, SourceSettings::Git(_));
        let max_reads = if work.drift {
            self.drift_reads()
        } else {
            reconcile::DEFAULT_MAX_READS
        };
        let options = Options {
            dry_run: false,
            plan: settings.plan,
            fetched: git_source,
            default_project: settings.project.clone(),
            state_path: settings.state_path.clone(),
            state_namespace: settings.state_namespace.clone(),
            concurrency: settings.concurrency,
            sensitive: settings.sensitive.clone(),
            revision,
            refresh: work.drift,
            drift: if work.drift {
                settings.drift
            } else {
                DriftMode::Off
            },
            max_reads,
            refresh_from: self.drift_cursor,
            retry_rejected: false,
            carried: self.carried.clone(),
            allow_unknown_fields: settings.allow_unknown_fields,
        };
        let files: Arc<[SourceFile]> = files.into();
        let reconciled = match &self.replica {
            Some(store) => {
                let store: Arc<dyn Store> = store.clone();
                reconcile::reconcile_in(store, files.clone(), &options, Some(&self.client)).await
            }
            None => reconcile::reconcile(files.clone(), &options, Some(&self.client)).await,
        };
        match reconciled {
            Ok(run) => {
                self.tell(&run);
                self.carried = run.unrecorded.clone();
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.record(&run, seconds);
                self.shared.status.lock().expect("status lock").ran(
                    &run,
                    started.elapsed(),
                    &self.client.rate_limit(),
                );
                self.drift_cursor = self.drift_cursor.wrapping_add(run.refreshed);
                if let Some(remaining) = self.client.rate_limit().remaining {
                    self.metrics.ratelimit_remaining(remaining);
                }
                if let Some(limit) = self.client.rate_limit().limit {
                    self.metrics.ratelimit_limit(limit);
                }
                // Rejections are not retried (they wait for a change); a
                // refused token is, with backoff, until the token works.
                let failed = self.client.token_refused()
                    || run
                        .outcomes
                        .iter()
                        .any(|o| matches!(o, crate::apply::Outcome::Failed(_)));
                // Readiness before the log line says what happened.
                match self.unready_reason(&files) {
                    Some(reason) => self.not_ready(&reason),
                    None => {
                        let mut readiness = self.shared.readiness.lock().expect("readiness lock");
                        readiness.ready = true;
                        readiness.standby = false;
                        readiness.reason.clear();
                    }
                }
                tracing::info!(
                    revision = run.revision.as_deref().unwrap_or(""),
                    create = run.plan.count(plan::Action::Create),
                    update = run.plan.count(plan::Action::Update),
                    delete = run.plan.count(plan::Action::Delete),
                    unchanged = run.plan.count(plan::Action::Unchanged),
                    invalid = run.plan.count(plan::Action::Invalid),
                    rejected = run.plan.count(plan::Action::Rejected)
                        + run
                            .outcomes
                            .iter()
                            .filter(|o| matches!(o, crate::apply::Outcome::Rejected(_)))
                            .count(),
                    drift = run.plan.drifted(),
                    api_requests = run.api_requests,
                    duration_ms = (seconds * 1000.0) as u64,
                    "reconciled"
                );
                for d in run.catalog.diagnostics.iter().filter(|d| d.is_error()) {
                    tracing::error!(file = %d.file, line = d.pos.line, path = %d.path, code = %d.code, "{}", d.message);
                }
                self.failures = if failed { self.failures + 1 } else { 0 };
                failed
            }
            Err(e) => {
                let reason = self
                    .unready_reason(&files)
                    .unwrap_or_else(|| format!("the last run failed: {}", chain(&e)));
                self.not_ready(&reason);
                self.metrics.failed_run(started.elapsed().as_secs_f64());
                tracing::error!(error = %chain(&e), "reconcile failed");
                self.tell_failed(&chain(&e));
                self.status_failed(chain(&e), started);
                self.failures += 1;
                true
            }
        }
    }

    /// Queues what `--notify` receivers and GitHub should hear of `run`.
    fn tell(&mut self, run: &reconcile::RunReport) {
        let Some(queue) = &self.notices else {
            return;
        };
        let seen = crate::notifications::Run {
            plan: &run.plan,
            outcomes: &run.outcomes,
            revision: run.revision.as_deref(),
            applying: true,
            swept: run.refreshed > 0,
        };
        queue.push(self.settings.notify.outgoing(&seen, Some(&mut self.told)));
    }

    /// Queues a `failed` notification for a run that failed as a whole
    /// (said once until it changes or a run succeeds). Standbys fetch too:
    /// only the leader says so.
    fn tell_failed(&mut self, error: &str) {
        let Some(queue) = self.notices.as_ref().filter(|_| self.leads()) else {
            return;
        };
        let revision = self.snapshot.as_ref().map(|s| s.revision.as_str());
        let notify = &self.settings.notify;
        queue.push(notify.run_failed(error, revision, Some(&mut self.told)));
    }

    /// Whether `--token-file` now holds another token than the one in use
    /// (an unreadable file does not count: it is read again at each run).
    async fn token_file_differs(&self) -> bool {
        let api = self.settings.api.clone();
        let Some(Ok(read)) = off_runtime(move || api.reread_token()).await else {
            return false;
        };
        self.token
            .as_ref()
            .is_none_or(|t| t.expose() != read.expose())
    }

    /// Reads `--token-file` again; a new token replaces the client's (same
    /// budget, counters and observer). A file that cannot be read keeps
    /// the token in use. On the blocking pool: the file may be a FIFO or
    /// on a slow mount.
    async fn reread_token(&mut self) {
        let Some(file) = self.settings.api.token_file.clone() else {
            return;
        };
        let api = self.settings.api.clone();
        let Some(read) = off_runtime(move || api.reread_token()).await else {
            return;
        };
        let token = match read {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(file = %file.display(), error = %chain(&e), "cannot read --token-file again; keeping the token in use");
                return;
            }
        };
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose() == token.expose())
        {
            return;
        }
        match self.client.with_token(&token) {
            Ok(client) => {
                tracing::info!(file = %file.display(), "--token-file changed: using the new token");
                self.client = client;
                self.token = Some(token);
            }
            Err(e) => {
                tracing::error!(file = %file.display(), error = %chain(&e), "the new token in --token-file cannot be sent; keeping the token in use");
            }
        }
    }

    /// Whether this replica applies: no replicas (a file state), or the
    /// store still holds the lock (a lost session fences it at once, before
    /// the next check).
    fn leads(&self) -> bool {
        self.replica.as_ref().is_none_or(|store| store.leading())
    }

    /// Checks the leadership (a replica only) and says what the loop must
    /// do about it.
    async fn campaign(&mut self) -> Option<Wake> {
        let store = self.replica.clone()?;
        // Fenced since the last check: whatever this one finds is news.
        let was = if self.role == Role::Leading && !self.leads() {
            Role::Unknown
        } else {
            self.role
        };
        let found = self.waiting_on_the_database(store).await;
        match found {
            Ok(Campaign::Leading { hooks }) => {
                self.role = Role::Leading;
                self.metrics.leader(true);
                if was != Role::Leading {
                    self.shared
                        .status
                        .lock()
                        .expect("status lock")
                        .standby(None);
                    tracing::info!(namespace = %self.settings.state_namespace, "leading: this replica applies now");
                    return Some(Wake::Run);
                }
                if hooks > 0 {
                    tracing::info!(hooks, "webhook relayed by a standby");
                    return Some(Wake::Hook);
                }
                None
            }
            Ok(Campaign::Standby { holder }) => {
                self.role = Role::Standby;
                self.metrics.leader(false);
                // Named on the status page: the leader may change while
                // this replica stands by (a third replica took over).
                self.shared
                    .status
                    .lock()
                    .expect("status lock")
                    .standby(Some(holder.clone()));
                if was != Role::Standby {
                    // Said by the run this wakes, once readiness is set.
                    self.leader_unannounced = Some(holder);
                    return Some(Wake::Run);
                }
                None
            }
            Err(e) => {
                self.role = Role::Unreachable;
                self.metrics.leader(false);
                let reason = format!("state database unreachable: {}", chain(&e));
                self.not_ready(&reason);
                if was != Role::Unreachable {
                    tracing::error!(error = %chain(&e), "leadership check failed; this replica applies nothing until it leads again");
                }
                None
            }
        }
    }

    /// A standby passes a verified webhook on to the leader.
    async fn relay_webhook(&self) {
        let Some(store) = self.replica.clone().filter(|_| !self.leads()) else {
            return;
        };
        match off_runtime(move || store.relay_webhook()).await {
            Ok(()) => tracing::info!("webhook relayed to the leader"),
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot relay the webhook to the leader; it fetches on its own schedule")
            }
        }
    }

    /// The Git tip was refused by `--verify-signatures`: unready, naming
    /// it, said at ERROR once per refused commit (not at every poll).
    fn refused(&mut self, refusal: Refusal) {
        self.metrics.source_verified(false);
        self.not_ready(&refusal.to_string());
        if self.refused.as_ref().map(|r| &r.commit) != Some(&refusal.commit) {
            let kept = self.snapshot.as_ref().map_or("", |s| s.revision.as_str());
            tracing::error!(
                commit = %refusal.commit,
                reason = %refusal.reason,
                kept_revision = kept,
                "refused the Git source's tip: its signature is not accepted; the last verified revision stays applied"
            );
            // One notification, from the replica that leads.
            if let (Some(queue), true) = (&self.notices, self.leads()) {
                let reason = refusal.reason.to_string();
                queue.push(
                    self.settings
                        .notify
                        .refused_source(&refusal.commit, &reason),
                );
            }
        }
        self.refused = Some(refusal);
    }

    /// A tip was accepted (or not checked): a refusal is over.
    fn verified(&mut self, revision: &str) {
        self.metrics.source_verified(true);
        if let Some(refusal) = self.refused.take() {
            tracing::info!(revision, refused = %refusal.commit, "the Git source's tip is accepted again");
        }
    }

    /// Why `/readyz` must say no after a run: the Git tip was refused, the
    /// API refused the token, or part of the source could not be read.
    fn unready_reason(&self, files: &[SourceFile]) -> Option<String> {
        if let Some(refusal) = &self.refused {
            return Some(refusal.to_string());
        }
        if self.metrics.token_refused() {
            return Some("token refused: the API answered 401".into());
        }
        files.iter().find_map(|f| match &f.content {
            Err(ReadProblem::Io(message)) => {
                Some(format!("source unreadable: {}: {message}", f.path))
            }
            _ => None,
        })
    }

    /// The status page's "last run" for a run that could not plan.
    fn status_failed(&self, reason: String, started: Instant) {
        self.shared.status.lock().expect("status lock").failed(
            reason,
            started.elapsed(),
            &self.client.rate_limit(),
        );
    }

    /// A campaign, which may connect: a database that is slow to answer
    /// (up to its connect and step deadlines) shows in `/readyz` after a
    /// second, naming it, instead of the reason from before the wait.
    async fn waiting_on_the_database(
        &self,
        store: Arc<PostgresStore>,
    ) -> Result<Campaign, crate::state::StateError> {
        let location = store.location();
        let campaign = off_runtime(move || store.campaign());
        tokio::pin!(campaign);
        tokio::select! {
            found = &mut campaign => found,
            () = tokio::time::sleep(DATABASE_WAIT_SHOWN) => {
                let before = {
                    let readiness = self.shared.readiness.lock().expect("readiness lock");
                    (readiness.ready, readiness.reason.clone())
                };
                self.not_ready(&format!("waiting for the state database {location}"));
                let found = campaign.await;
                if found.is_ok() {
                    // The wait is over: readiness is what it was (the
                    // campaign's outcome updates it from there).
                    let mut readiness = self.shared.readiness.lock().expect("readiness lock");
                    (readiness.ready, readiness.reason) = before;
                }
                found
            }
        }
    }

    fn not_ready(&self, reason: &str) {
        let mut readiness = self.shared.readiness.lock().expect("readiness lock");
        readiness.ready = false;
        reason.clone_into(&mut readiness.reason);
    }

    /// Exponential from 5 s, capped at 5 min, plus up to 10% jitter so
    /// that sidecars failing together do not retry in step.
    fn retry_delay(&self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(10);
        jittered((Duration::from_secs(5) * 2u32.pow(exp)).min(MAX_RETRY_DELAY))
    }

    /// A drift sweep may spend `--drift-budget` percent of the hourly limit
    /// (as the API reports it) pro rata for one `--drift-interval`.
    fn drift_reads(&self) -> u64 {
        let limit = self.client.rate_limit().limit.unwrap_or(1000);
        let share = self.settings.drift_interval.as_secs_f64().min(3600.0) / 3600.0;
        let sweep = (limit as f64) * f64::from(self.settings.drift_budget) / 100.0 * share;
        // One slice: a tenth of the sweep's budget, at least one read.
        (sweep / f64::from(DRIFT_SLICES)).floor().max(1.0) as u64
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

/// Watches the directory that holds `file` (not the file: a secret mount
/// replaces it through a symlink swap, an editor by a rename), passing on
/// only events that name the file or the `..data` link a Kubernetes Secret
/// volume swaps: the directory may also hold the sidecar's own log or state,
/// written on every line. `None`, with a warning, when it cannot be
/// watched: each run still reads it again.
fn watch_token_file(
    file: &std::path::Path,
    changed: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
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
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the --token-file directory; a new token is read at the next run");
            None
        }
    }
}

/// Up to 10% on top, so that many sidecars do not poll in step.
fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    interval + interval.mul_f64(f64::from(byte[0]) / 255.0 * 0.1)
}

async fn signals(stop: watch::Sender<bool>, shutdown_timeout: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut stopped = stop.subscribe();
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
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
                "still running {} after SIGTERM; exiting",
                humantime::format_duration(deadline)
            );
            std::process::exit(0);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_never_closes_a_file_events_window_sooner() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let file = Quiet::extend_at(None, ms(200), t0);
        let after_hook = Quiet::extend_hook(file, ms(50), t0 + ms(10));
        assert_eq!(after_hook, file);
        // Alone, a webhook's window is the short one, moving with each.
        let w = Quiet::extend_hook(None, ms(50), t0).expect("a window");
        assert_eq!(w.until, t0 + ms(50));
        let w = Quiet::extend_hook(Some(w), ms(50), t0 + ms(30)).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + ms(80)));
    }

    #[test]
    fn the_quiet_period_runs_from_the_last_event_up_to_ten_debounces() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let d = ms(200);
        let w = Quiet::extend_at(None, d, t0).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + d));
        // Another event 150 ms later: the window moves with it.
        let w = Quiet::extend_at(Some(w), d, t0 + ms(150)).expect("a window");
        assert_eq!((w.first, w.until), (t0, t0 + ms(350)));
        // Events every 150 ms for ever: the window closes 2 s after the first.
        let mut w = Some(w);
        for i in 2..40 {
            w = Quiet::extend_at(w, d, t0 + ms(150 * i));
        }
        assert_eq!(w.expect("a window").until, t0 + ms(2000));
        assert_eq!(Quiet::extend_at(None, Duration::ZERO, t0), None);
    }
}
