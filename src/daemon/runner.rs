//! The runner: one reconcile at a time on what the schedule asks
//! ([`Pending`]), with what lasts between runs (the Git snapshot, the
//! directory cache, the leadership, the token, the drift cursor, what
//! notifications already said). It sets readiness, the status page and
//! the metrics after each run; the loop decides when it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::schedule::Pending;
use super::triggers::DRIFT_SLICES;
use super::{jittered, LOG};
use crate::api::Client;
use crate::apply::chain;
use crate::metrics::Metrics;
use crate::notifications::{deliver::Queue, Memory};
use crate::plan;
use crate::reconcile::{self, off_runtime};
use crate::secret::Token;
use crate::server::{NotReady, Readiness, Shared};
use crate::settings::{SourceSettings, WatchSettings};
use crate::source::git::{GitError, GitSource};
use crate::source::verify::Refusal;
use crate::source::{dir::DirCache, git::Snapshot, ReadProblem, SourceFile};
use crate::store::postgres::{Campaign, PostgresStore};
use crate::store::Store;

/// How long a leadership check may wait on the database before `/readyz`
/// says so.
const DATABASE_WAIT_SHOWN: Duration = Duration::from_secs(1);

const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

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
pub(super) enum Wake {
    /// This replica's role changed: run (a new leader applies at once; a
    /// new standby refreshes its readiness).
    Run,
    /// A standby relayed a webhook to this leader: fetch, then run.
    Hook,
}

/// Why a run ends before it reads any manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unread {
    /// The Git fetch failed: the run failed, and is tried again after the
    /// backoff.
    FetchFailed,
    /// `--verify-signatures` refused the tip and no revision was verified
    /// yet: nothing to apply, and nothing to retry (the next poll or
    /// webhook fetches again).
    NothingVerified,
}

impl Unread {
    /// Whether the run counts as failed (and is retried).
    fn failed(self) -> bool {
        self == Unread::FetchFailed
    }
}

pub(super) struct Runner<'a> {
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
    notices: Option<Queue>,
    /// What notifications already said of lasting conditions.
    told: Memory,
}

impl<'a> Runner<'a> {
    pub(super) fn new(
        settings: &'a WatchSettings,
        replica: Option<Arc<PostgresStore>>,
        client: Client,
        shared: Arc<Shared>,
        notices: Option<Queue>,
    ) -> Runner<'a> {
        Runner {
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
            metrics: shared.metrics.clone(),
            shared,
            cache: DirCache::default(),
            snapshot: None,
            refused: None,
            failures: 0,
            drift_cursor: 0,
            notices,
            told: Memory::default(),
        }
    }

    /// Whether leadership checks run (a PostgreSQL state).
    pub(super) fn has_replicas(&self) -> bool {
        self.replica.is_some()
    }

    /// One reconcile; returns whether any job failed (to retry later).
    pub(super) async fn run_once(&mut self, work: Pending) -> bool {
        let started = Instant::now();
        self.reread_token().await;
        // A 401 stops the calls of one run only: this one tries again.
        self.client.clear_token_refused();
        let (files, revision) = match self.read_source(work, started).await {
            Ok(read) => read,
            Err(ended) => return ended.failed(),
        };
        if !self.leads() {
            self.stand_by(&files);
            return false;
        }
        let files: Arc<[SourceFile]> = files.into();
        match self.reconcile(work, &files, revision).await {
            Ok(run) => self.ran(&run, &files, started),
            Err(e) => {
                let why = self
                    .unready_reason(&files)
                    .unwrap_or_else(|| NotReady::RunFailed(chain(&e)));
                self.shared.set_readiness(Readiness::NotReady(why));
                self.metrics.failed_run(started.elapsed().as_secs_f64());
                tracing::error!(target: LOG, error = %chain(&e), "reconcile failed");
                self.tell_failed(&chain(&e));
                self.status_failed(chain(&e), started);
                self.failures += 1;
                true
            }
        }
    }

    /// The manifests and their revision, or why the run ends here.
    async fn read_source(
        &mut self,
        work: Pending,
        started: Instant,
    ) -> Result<(Vec<SourceFile>, Option<String>), Unread> {
        let settings = self.settings;
        match &settings.source {
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
                Ok((files, None))
            }
            SourceSettings::Git(git) => {
                if work.fetch || self.snapshot.is_none() {
                    self.fetch(git.clone(), started).await?;
                }
                let snapshot = self
                    .snapshot
                    .as_ref()
                    .expect("a snapshot after a successful fetch");
                Ok((snapshot.files.clone(), Some(snapshot.revision.clone())))
            }
        }
    }

    /// Fetches the Git source into `self.snapshot`; a refused tip keeps
    /// the last verified snapshot, if there is one.
    async fn fetch(&mut self, git: GitSource, started: Instant) -> Result<(), Unread> {
        match off_runtime(move || git.sync()).await {
            Ok(snapshot) => {
                if self.snapshot.as_ref().map(|s| &s.revision) != Some(&snapshot.revision) {
                    tracing::info!(target: LOG, revision = %snapshot.revision, "fetched");
                }
                self.verified(&snapshot.revision);
                self.snapshot = Some(snapshot);
                Ok(())
            }
            Err(GitError::Unverified(refusal)) => {
                self.refused(*refusal);
                // Without a verified revision there is nothing to apply;
                // the next poll or webhook fetches again.
                match self.snapshot {
                    None => Err(Unread::NothingVerified),
                    Some(_) => Ok(()),
                }
            }
            Err(e) => {
                // Readiness first: whoever reads the log line then sees
                // the same state on /readyz.
                let why = NotReady::SourceUnreachable(chain(&e));
                self.shared.set_readiness(Readiness::NotReady(why));
                // The metric too: a scrape after the log line counts this
                // run.
                self.metrics.failed_run(started.elapsed().as_secs_f64());
                tracing::error!(target: LOG, error = %chain(&e), "fetch failed; keeping the last good revision");
                self.tell_failed(&format!("fetch failed: {}", chain(&e)));
                self.status_failed(format!("fetch failed: {}", chain(&e)), started);
                // Nothing is planned from a failed fetch: no prune can
                // follow from it.
                Err(Unread::FetchFailed)
            }
        }
    }

    /// A standby follows the source and stays ready; the leader applies.
    /// Without the database it stays unready.
    fn stand_by(&mut self, files: &[SourceFile]) {
        match self.role {
            Role::Unreachable => return,
            Role::Leading => {
                // Fenced since the last check (its session was lost): the
                // next check says what this replica is now.
                self.role = Role::Unknown;
                self.metrics.leader(false);
                let why = NotReady::SteppedDown;
                self.shared.set_readiness(Readiness::NotReady(why));
                return;
            }
            Role::Unknown | Role::Standby => {}
        }
        self.set_readiness_after(files, Readiness::Standby);
        match self.leader_unannounced.take() {
            Some(leader) => {
                tracing::info!(target: LOG, %leader, "standing by: another replica leads and applies")
            }
            None => tracing::debug!(
                target: LOG,
                files = files.len(),
                "standby: source read; the leader applies"
            ),
        }
    }

    /// One reconcile of `files` for `work`: the one place that speaks
    /// `reconcile`'s interface.
    async fn reconcile(
        &self,
        work: Pending,
        files: &Arc<[SourceFile]>,
        revision: Option<String>,
    ) -> Result<reconcile::RunReport, reconcile::ReconcileError> {
        let settings = self.settings;
        // Outside drift sweeps reads serve only adoption (jobs the state
        // lacks), under the same cap as `reconcile`.
        let config = reconcile::Config {
            refresh: work.drift,
            max_reads: if work.drift {
                self.drift_reads()
            } else {
                reconcile::DEFAULT_MAX_READS
            },
            ..settings.reconcile.clone()
        };
        let input = reconcile::Input {
            files: files.clone(),
            revision,
            refresh_from: self.drift_cursor,
            carried: self.carried.clone(),
        };
        match &self.replica {
            Some(store) => {
                let store: Arc<dyn Store> = store.clone();
                reconcile::reconcile_in(store, &config, input, Some(&self.client)).await
            }
            None => reconcile::reconcile(&config, input, Some(&self.client)).await,
        }
    }

    /// After a completed run: notifications, metrics, the status page,
    /// readiness, then the log line. Returns whether jobs failed.
    fn ran(&mut self, run: &reconcile::RunReport, files: &[SourceFile], started: Instant) -> bool {
        self.tell(run);
        self.carried = run.unrecorded.clone();
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.record(run, seconds);
        self.shared.status.lock().expect("status lock").ran(
            run,
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
        // Rejections are not retried (they wait for a change); a refused
        // token is, with backoff, until the token works.
        let failed = self.client.token_refused()
            || run
                .outcomes
                .iter()
                .any(|o| matches!(o, crate::apply::Outcome::Failed(_)));
        // Readiness before the log line says what happened.
        self.set_readiness_after(files, Readiness::Ready);
        log_run(run, seconds);
        self.failures = if failed { self.failures + 1 } else { 0 };
        failed
    }

    /// Readiness after a run that read `files`: `ok`, unless something a
    /// restart cannot cure says otherwise.
    fn set_readiness_after(&self, files: &[SourceFile], ok: Readiness) {
        let readiness = match self.unready_reason(files) {
            Some(why) => Readiness::NotReady(why),
            None => ok,
        };
        self.shared.set_readiness(readiness);
    }

    /// Why `/readyz` must say no after a run that read `files`.
    fn unready_reason(&self, files: &[SourceFile]) -> Option<NotReady> {
        unready_reason(self.refused.as_ref(), self.metrics.token_refused(), files)
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

    /// The status page's "last run" for a run that could not plan.
    fn status_failed(&self, reason: String, started: Instant) {
        self.shared.status.lock().expect("status lock").failed(
            reason,
            started.elapsed(),
            &self.client.rate_limit(),
        );
    }

    /// Whether `--token-file` now holds another token than the one in
    /// use, while the API refuses that one: worth a run at once.
    pub(super) async fn token_worth_trying(&self) -> bool {
        if !self.metrics.token_refused() {
            return false;
        }
        // An unreadable file does not count: it is read again at each run.
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
                tracing::error!(target: LOG, file = %file.display(), error = %chain(&e), "cannot read --token-file again; keeping the token in use");
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
                tracing::info!(target: LOG, file = %file.display(), "--token-file changed: using the new token");
                self.client = client;
                self.token = Some(token);
            }
            Err(e) => {
                tracing::error!(target: LOG, file = %file.display(), error = %chain(&e), "the new token in --token-file cannot be sent; keeping the token in use");
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
    pub(super) async fn campaign(&mut self) -> Option<Wake> {
        let store = self.replica.clone()?;
        // Fenced since the last check: whatever this one finds is news.
        let was = if self.role == Role::Leading && !self.leads() {
            Role::Unknown
        } else {
            self.role
        };
        match self.waiting_on_the_database(store).await {
            Ok(Campaign::Leading { hooks }) => self.leading(was, hooks),
            Ok(Campaign::Standby { holder }) => self.standby(was, holder),
            Err(e) => {
                self.role = Role::Unreachable;
                self.metrics.leader(false);
                let why = NotReady::DatabaseUnreachable(chain(&e));
                self.shared.set_readiness(Readiness::NotReady(why));
                if was != Role::Unreachable {
                    tracing::error!(target: LOG, error = %chain(&e), "leadership check failed; this replica applies nothing until it leads again");
                }
                None
            }
        }
    }

    /// A leadership check found this replica leading; `hooks`: webhooks
    /// standbys relayed since the last one.
    fn leading(&mut self, was: Role, hooks: usize) -> Option<Wake> {
        self.role = Role::Leading;
        self.metrics.leader(true);
        if was != Role::Leading {
            let mut status = self.shared.status.lock().expect("status lock");
            status.standby(None);
            tracing::info!(target: LOG, namespace = %self.settings.reconcile.state_namespace, "leading: this replica applies now");
            return Some(Wake::Run);
        }
        if hooks > 0 {
            tracing::info!(target: LOG, hooks, "webhook relayed by a standby");
            return Some(Wake::Hook);
        }
        None
    }

    /// A leadership check found `holder` leading.
    fn standby(&mut self, was: Role, holder: String) -> Option<Wake> {
        self.role = Role::Standby;
        self.metrics.leader(false);
        // Named on the status page: the leader may change while this
        // replica stands by (a third replica took over).
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
                let why = NotReady::WaitingForDatabase { location };
                let before = self.shared.set_readiness(Readiness::NotReady(why));
                let found = campaign.await;
                if found.is_ok() {
                    // The wait is over: readiness is what it was (the
                    // campaign's outcome updates it from there).
                    self.shared.set_readiness(before);
                }
                found
            }
        }
    }

    /// A standby passes a verified webhook on to the leader.
    pub(super) async fn relay_webhook(&self) {
        let Some(store) = self.replica.clone().filter(|_| !self.leads()) else {
            return;
        };
        match off_runtime(move || store.relay_webhook()).await {
            Ok(()) => tracing::info!(target: LOG, "webhook relayed to the leader"),
            Err(e) => {
                tracing::warn!(target: LOG, error = %chain(&e), "cannot relay the webhook to the leader; it fetches on its own schedule")
            }
        }
    }

    /// The Git tip was refused by `--verify-signatures`: unready, naming
    /// it, said at ERROR once per refused commit (not at every poll).
    fn refused(&mut self, refusal: Refusal) {
        self.metrics.source_verified(false);
        let why = NotReady::Unverified(refusal.clone());
        self.shared.set_readiness(Readiness::NotReady(why));
        if self.refused.as_ref().map(|r| &r.commit) != Some(&refusal.commit) {
            let kept = self.snapshot.as_ref().map_or("", |s| s.revision.as_str());
            tracing::error!(
                target: LOG,
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
            tracing::info!(target: LOG, revision, refused = %refusal.commit, "the Git source's tip is accepted again");
        }
    }

    /// Exponential from 5 s, capped at 5 min, plus up to 10% jitter so
    /// that sidecars failing together do not retry in step.
    pub(super) fn retry_delay(&self) -> Duration {
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

/// Why `/readyz` must say no after a run, the first of: the Git tip was
/// refused (`refused`), the API refused the token, or a file of the source
/// could not be read (one too large is an invalid manifest, not this).
fn unready_reason(
    refused: Option<&Refusal>,
    token_refused: bool,
    files: &[SourceFile],
) -> Option<NotReady> {
    if let Some(refusal) = refused {
        return Some(NotReady::Unverified(refusal.clone()));
    }
    if token_refused {
        return Some(NotReady::TokenRefused);
    }
    files.iter().find_map(|f| match &f.content {
        Err(ReadProblem::Io(message)) => Some(NotReady::SourceUnreadable {
            path: f.path.to_string(),
            message: message.to_string(),
        }),
        _ => None,
    })
}

/// The line that says what a run did, and one per invalid manifest.
fn log_run(run: &reconcile::RunReport, seconds: f64) {
    let rejected = run.plan.count(plan::Action::Rejected)
        + run
            .outcomes
            .iter()
            .filter(|o| matches!(o, crate::apply::Outcome::Rejected(_)))
            .count();
    tracing::info!(
        target: LOG,
        revision = run.revision.as_deref().unwrap_or(""),
        create = run.plan.count(plan::Action::Create),
        update = run.plan.count(plan::Action::Update),
        delete = run.plan.count(plan::Action::Delete),
        unchanged = run.plan.count(plan::Action::Unchanged),
        invalid = run.plan.count(plan::Action::Invalid),
        rejected,
        drift = run.plan.drifted(),
        api_requests = run.api_requests,
        duration_ms = (seconds * 1000.0) as u64,
        "reconciled"
    );
    for d in run.catalog.diagnostics.iter().filter(|d| d.is_error()) {
        tracing::error!(target: LOG, file = %d.file, line = d.pos.line, path = %d.path, code = %d.code, "{}", d.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::verify::Reason;

    fn file(path: &str, content: Result<&str, ReadProblem>) -> SourceFile {
        SourceFile {
            path: path.into(),
            content: content.map(str::to_string),
        }
    }

    #[test]
    fn readiness_names_the_first_thing_a_restart_cannot_cure() {
        let refusal = Refusal {
            commit: "abc123".into(),
            reason: Reason::Unsigned,
        };
        let good = file("a.yaml", Ok("kind: CronJob"));
        let large = file("big.yaml", Err(ReadProblem::TooLarge { bytes: 1 << 30 }));
        let io = |path: &str| file(path, Err(ReadProblem::Io("permission denied".into())));
        // A file too large is an invalid manifest: the run says so, ready.
        assert_eq!(unready_reason(None, false, &[good.clone(), large]), None);
        let files = [good, io("b.yaml"), io("c.yaml")];
        let unreadable = NotReady::SourceUnreadable {
            path: "b.yaml".into(),
            message: "permission denied".into(),
        };
        assert_eq!(unready_reason(None, false, &files), Some(unreadable));
        assert_eq!(
            unready_reason(None, true, &files),
            Some(NotReady::TokenRefused)
        );
        assert_eq!(
            unready_reason(Some(&refusal), true, &files),
            Some(NotReady::Unverified(refusal.clone()))
        );
    }
}
