//! Carries out a [`Plan`]: PUTs creates and updates, then DELETEs, with
//! bounded concurrency, recording the state after every 2xx.
//!
//! Each job's result is its own: a 400 on one job is reported and the others
//! still apply. The state is recorded (`store::Store::commit`) after each
//! successful write, never before and never on failure, so it is always
//! true of what the API has. A job counts as applied only once the store
//! (`store::Store::commit`) has made its record durable; writes that finish
//! while a commit is under way are committed together in the next one
//! (group commit).
//!
//! A state file that cannot be written (a read-only directory, a full disk)
//! stops the run at the first failed save: a PUT whose record cannot be
//! kept would be sent again by every later run, and deleted jobs would come
//! back as creates. Jobs not started by then are `NotAttempted`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::task::JoinSet;

use crate::api::ApiError;
use crate::manifest::JobKey;
use crate::plan::{Action, Desired, Plan};
use crate::remote::Api;
use crate::state::{Rejection, StateError};
use crate::store::{Change, Store};

/// Changes made since the last commit, with a version per change, and the
/// version last made durable (group commit: writes that finish while a
/// commit is under way go together in the next one).
struct Journal {
    store: Arc<dyn Store>,
    pending: Mutex<(Vec<Change>, u64)>,
    saved: AsyncMutex<u64>,
    /// Every change made durable, in commit order.
    durable: Mutex<Vec<Change>>,
    /// A commit failed: no further write is started.
    broken: AtomicBool,
}

impl Journal {
    fn new(store: Arc<dyn Store>, unsaved: Vec<Change>) -> Journal {
        Journal {
            store,
            pending: Mutex::new((unsaved, 0)),
            saved: AsyncMutex::new(0),
            durable: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
        }
    }

    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// The run's result: `outcomes`, what was made durable, and the writes
    /// the API took that no commit made durable (the caller may record
    /// them later instead of sending them again).
    fn finish(&self, outcomes: Vec<Outcome>) -> Applied {
        let durable = std::mem::take(&mut *self.durable.lock().expect("journal lock"));
        let unrecorded = std::mem::take(&mut self.pending.lock().expect("journal lock").0)
            .into_iter()
            .filter(|c| matches!(c, Change::Applied(..) | Change::Deleted(_)))
            .collect();
        Applied {
            outcomes,
            durable,
            unrecorded,
        }
    }

    /// Queues `change`, then returns once a commit that holds it has
    /// returned (made by this call or by a concurrent one). The store is
    /// called on the blocking pool: a slow disk holds this job, never the
    /// runtime.
    async fn commit(&self, change: Change) -> Result<(), StateError> {
        let version = {
            let mut guard = self.pending.lock().expect("journal lock");
            guard.0.push(change);
            guard.1 += 1;
            guard.1
        };
        let mut saved = self.saved.lock().await;
        if *saved >= version {
            return Ok(());
        }
        let (batch, latest) = {
            let mut guard = self.pending.lock().expect("journal lock");
            (std::mem::take(&mut guard.0), guard.1)
        };
        let store = self.store.clone();
        let (written, batch) = tokio::task::spawn_blocking(move || {
            let written = store.commit(&batch);
            (written, batch)
        })
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        match written {
            Ok(()) => {
                *saved = latest;
                self.durable.lock().expect("journal lock").extend(batch);
                Ok(())
            }
            Err(e) => {
                // Not durable: kept for the next commit, so a waiter whose
                // change was in this batch never counts it as recorded.
                let mut guard = self.pending.lock().expect("journal lock");
                let newer = std::mem::replace(&mut guard.0, batch);
                guard.0.extend(newer);
                self.broken.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

/// Why a write did not land (or was not recorded), typed to the end so
/// the caller can tell what may succeed later from what will not.
#[derive(Debug, Clone)]
pub enum Failure {
    Api(Arc<ApiError>),
    /// The API took the write but the state file could not record it.
    NotRecorded(Arc<StateError>),
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Api(e) => e.status(),
            Failure::NotRecorded(_) => None,
        }
    }

    /// The error and its causes on one line (server text already escaped
    /// and cut to 1 KiB by `api::shown`).
    pub fn message(&self) -> String {
        match self {
            Failure::Api(e) => chain(e.as_ref()),
            Failure::NotRecorded(e) => format!("applied, but {}", chain(e.as_ref())),
        }
    }

    /// The API's own message for a refused write (no call prefix), for
    /// the state's rejection record.
    fn api_message(&self) -> String {
        match self {
            Failure::Api(e) => match e.as_ref() {
                ApiError::Status { message, .. } => message.clone(),
                other => chain(other),
            },
            Failure::NotRecorded(_) => self.message(),
        }
    }
}

impl PartialEq for Failure {
    fn eq(&self, other: &Failure) -> bool {
        self.status() == other.status() && self.message() == other.message()
    }
}

/// Whether the API refused the request for good: a 4xx other than 401
/// (the token: see the client's latch), 408, 409 and 429 (those may
/// succeed later). The same body would be refused again, so it is not
/// re-sent until it changes.
pub fn is_permanent(e: &ApiError) -> bool {
    matches!(e, ApiError::Status { status, .. }
        if (400..500).contains(status) && !matches!(status, 401 | 408 | 409 | 429))
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The dry-run would do this.
    Planned,
    Applied,
    /// May succeed later: retried by a later run (the sidecar backs off).
    Failed(Failure),
    /// The API refused the spec for good (see [`is_permanent`]); recorded
    /// in state with its digest and not sent again until it changes.
    Rejected(Failure),
    /// Nothing to send (unchanged, orphan, invalid, unverified).
    Skipped,
    /// A write the plan holds that was never sent: the state file could
    /// not be written, so the run stopped before it.
    NotAttempted,
}

pub struct Applier<'a, A: Api> {
    pub client: &'a A,
    pub store: Arc<dyn Store>,
    pub concurrency: usize,
    /// The source revision to record with each job.
    pub revision: Option<&'a str>,
}

/// Creates and updates first, deletes after: a job renamed in one change
/// exists under its new name before the old one goes.
const PHASES: [&[Action]; 2] = [&[Action::Create, Action::Update], &[Action::Delete]];

impl<A: Api> Applier<'_, A> {
    /// Applies `plan`; returns one outcome per step and every change the
    /// store made durable, in order. `unsaved` (changes the run made
    /// before applying, such as rejections it forgot) go with the first
    /// commit.
    pub async fn apply(&self, plan: &Plan, desired: &[Desired], unsaved: Vec<Change>) -> Applied {
        let journal = Arc::new(Journal::new(self.store.clone(), unsaved));
        // Jobs refused unsent because the rate limit is used up: one cause,
        // so one ERROR for the run (each job at debug).
        let rate_limited = Arc::new(Mutex::new(RateLimited::default()));
        let mut outcomes = vec![Outcome::Skipped; plan.steps.len()];
        for phase in PHASES {
            let writes = plan
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| phase.contains(&s.action()))
                .filter_map(|(i, step)| {
                    let key = step.key.clone()?;
                    Some(Write {
                        i,
                        client: self.client.clone(),
                        journal: journal.clone(),
                        rate_limited: rate_limited.clone(),
                        key,
                        action: step.action(),
                        job: step.write().map(|w| desired[w.desired].clone()),
                        revision: self.revision.map(str::to_string),
                    })
                });
            self.run_phase(writes, &journal, &mut outcomes).await;
        }
        rate_limited.lock().expect("tally lock").report();
        self.report_not_attempted(&outcomes);
        journal.finish(outcomes)
    }

    /// Runs one phase's writes, at most `concurrency` at a time, and
    /// stores each one's outcome; once the journal is broken, the writes
    /// not yet started are `NotAttempted`.
    async fn run_phase(
        &self,
        writes: impl Iterator<Item = Write<A>>,
        journal: &Journal,
        outcomes: &mut [Outcome],
    ) {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for write in writes {
            if journal.is_broken() {
                outcomes[write.i] = Outcome::NotAttempted;
                continue;
            }
            // Taking the permit before spawning starts jobs in plan
            // order: with --concurrency 1 the run is sequential and
            // deterministic.
            let permit = semaphore
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            if journal.is_broken() {
                outcomes[write.i] = Outcome::NotAttempted;
                continue;
            }
            tasks.spawn(async move {
                let _permit = permit;
                (write.i, write.run().await)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, outcome)) => outcomes[i] = outcome,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
    }

    fn report_not_attempted(&self, outcomes: &[Outcome]) {
        let not_attempted = outcomes
            .iter()
            .filter(|o| **o == Outcome::NotAttempted)
            .count();
        if not_attempted > 0 {
            tracing::error!(
                not_attempted,
                state = %self.store.location(),
                "the state file cannot be written: stopped; jobs not attempted are left for a run that can record them"
            );
        }
    }
}

/// One step's write, owned by the task that sends it.
struct Write<A: Api> {
    /// The step's index in the plan.
    i: usize,
    client: A,
    journal: Arc<Journal>,
    rate_limited: Arc<Mutex<RateLimited>>,
    key: JobKey,
    action: Action,
    /// The spec to PUT; `None` for a delete.
    job: Option<Desired>,
    revision: Option<String>,
}

impl<A: Api> Write<A> {
    /// Fences, sends, records the result, logs it.
    async fn run(&self) -> Outcome {
        if self.journal.is_broken() || !self.fence().await {
            return Outcome::NotAttempted;
        }
        let started = std::time::Instant::now();
        let sent = self.send().await;
        let unsent_for = match &sent {
            Err(ApiError::RateLimited { reset_in, .. }) => Some(*reset_in),
            _ => None,
        };
        let outcome = self.record(sent).await;
        let key = &self.key;
        if let Some(reset_in) = unsent_for {
            self.rate_limited.lock().expect("tally lock").add(reset_in);
            tracing::debug!(project = %key.project, id = %key.id, action = self.action.as_str(), result = "failed", "job not sent: the rate limit is used up");
        } else {
            log(
                key,
                self.action,
                &outcome,
                started.elapsed(),
                self.revision.as_deref(),
            );
        }
        outcome
    }

    /// Whether this replica still holds the store's lock: one that lost
    /// it writes nothing more (and breaks the journal, stopping the run).
    async fn fence(&self) -> bool {
        let store = self.journal.store.clone();
        let fenced = tokio::task::spawn_blocking(move || store.fence())
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        match fenced {
            Ok(()) => true,
            Err(e) => {
                self.journal.broken.store(true, Ordering::SeqCst);
                tracing::error!(project = %self.key.project, id = %self.key.id, error = %chain(&e), "job not sent: this replica no longer leads");
                false
            }
        }
    }

    async fn send(&self) -> Result<(), ApiError> {
        match (&self.job, self.action) {
            (Some(job), Action::Create | Action::Update) => {
                self.client
                    .put_cron_job(&self.key, job.spec.raw(), job.shown.raw())
                    .await
            }
            _ => self.client.delete_job(&self.key).await,
        }
    }

    /// Records what the API answered: a write it took, or a spec it
    /// refused for good; and says how the step ended.
    async fn record(&self, sent: Result<(), ApiError>) -> Outcome {
        match (sent, &self.job) {
            (Ok(()), job) => {
                let change = match job {
                    Some(job) => Change::Applied(
                        self.key.clone(),
                        job.record(&now_rfc3339(), self.revision.as_deref()),
                    ),
                    None => Change::Deleted(self.key.clone()),
                };
                match self.journal.commit(change).await {
                    Ok(()) => Outcome::Applied,
                    Err(e) => Outcome::Failed(Failure::NotRecorded(Arc::new(e))),
                }
            }
            (Err(e), Some(job)) if is_permanent(&e) => {
                let failure = Failure::Api(Arc::new(e));
                let rejection = Rejection {
                    digest: job.digest.clone(),
                    status: failure.status().unwrap_or(400),
                    message: failure.api_message(),
                    rejected_at: now_rfc3339(),
                };
                // Recorded so that no later run sends this spec again; if
                // that save fails the next run sends it once more, which
                // is all it costs.
                let _ = self
                    .journal
                    .commit(Change::Rejected(self.key.clone(), rejection))
                    .await;
                Outcome::Rejected(failure)
            }
            (Err(e), _) => Outcome::Failed(Failure::Api(Arc::new(e))),
        }
    }
}

/// What [`Applier::apply`] did.
pub struct Applied {
    /// One per step.
    pub outcomes: Vec<Outcome>,
    /// Every change made durable, in commit order.
    pub durable: Vec<Change>,
    /// Writes the API took whose commit failed (a lost state database
    /// session): true of the API, not in the store.
    pub unrecorded: Vec<Change>,
}

/// Jobs not sent because the rate limit was used up, and the longest wait
/// for its reset they were told.
#[derive(Debug, Default, Clone, Copy)]
struct RateLimited {
    jobs: usize,
    reset_in: Duration,
}

impl RateLimited {
    fn add(&mut self, reset_in: Duration) {
        self.jobs += 1;
        self.reset_in = self.reset_in.max(reset_in);
    }

    /// One ERROR for the run, if any job was held back.
    fn report(&self) {
        if self.jobs > 0 {
            tracing::error!(
                jobs = self.jobs,
                reset_in_s = self.reset_in.as_secs(),
                "rate limit used up: {} jobs not attempted, resets in {}",
                self.jobs,
                humantime::format_duration(Duration::from_secs(self.reset_in.as_secs()))
            );
        }
    }
}

/// Now, to the second, RFC 3339.
fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

pub use crate::errors::chain;

fn log(
    key: &JobKey,
    action: Action,
    outcome: &Outcome,
    took: std::time::Duration,
    revision: Option<&str>,
) {
    let duration_ms = took.as_millis() as u64;
    let (project, id, revision) = (
        key.project.as_str(),
        key.id.as_str(),
        revision.unwrap_or(""),
    );
    match outcome {
        Outcome::Failed(failure) => tracing::error!(
            project,
            id,
            action = action.as_str(),
            result = "failed",
            revision,
            duration_ms,
            error = %failure.message(),
            "job"
        ),
        Outcome::Rejected(failure) => tracing::error!(
            project,
            id,
            action = action.as_str(),
            result = "rejected",
            revision,
            duration_ms,
            error = %failure.message(),
            "job rejected by the API: not sent again until its manifest changes (or reconcile --retry-rejected)"
        ),
        _ => tracing::info!(
            project,
            id,
            action = action.as_str(),
            result = "applied",
            revision,
            duration_ms,
            "job"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Call;
    use crate::manifest::Body;
    use crate::plan::{self, Inputs};
    use crate::secret::{Keyed, Redacted};
    use crate::state::{Record, State};
    use crate::store::memory::MemoryStore;
    use crate::store::Held;
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::AtomicUsize;

    fn status(status: u16) -> ApiError {
        ApiError::Status {
            call: Box::new(Call {
                method: "PUT",
                path: "/v1/projects/p/jobs/cron".into(),
                job: None,
            }),
            status,
            message: "m".into(),
            id: None,
            details: None,
            retry_after: None,
        }
    }

    #[test]
    fn only_a_4xx_the_same_body_would_get_again_is_permanent() {
        for s in [400, 403, 404, 405, 410, 413, 422] {
            assert!(is_permanent(&status(s)), "{s}");
            assert!(!status(s).is_retryable(), "{s}");
        }
        // 401 is the token's (one run's latch), the rest transient.
        for s in [401, 408, 409, 429, 500, 502, 503] {
            assert!(!is_permanent(&status(s)), "{s}");
        }
        for s in [408, 409, 429, 500, 503] {
            assert!(status(s).is_retryable(), "{s}");
        }
        let call = Call {
            method: "PUT",
            path: "/x".into(),
            job: None,
        };
        assert!(!is_permanent(&ApiError::TokenRefused {
            call: call.clone()
        }));
        assert!(!is_permanent(&ApiError::Timeout {
            call,
            timeout: Duration::from_secs(1)
        }));
    }

    fn key(id: &str) -> JobKey {
        JobKey {
            team: None,
            project: "p".into(),
            id: id.into(),
        }
    }

    fn desired(id: &str) -> Desired {
        let spec = json!({"name": id, "schedule": "5 3 * * *"});
        Desired {
            key: key(id),
            name: id.into(),
            file: "jobs.yaml".into(),
            shown: Redacted::assume(&spec),
            digest: format!("{id}|1"),
            spec: Body::of(&spec),
        }
    }

    /// Creates for `new`, deletes (under --prune) for `gone`, in that
    /// order in the plan's steps.
    fn plan_of(new: &[Desired], gone: &[&str]) -> Plan {
        let recorded = State {
            jobs: gone
                .iter()
                .map(|id| (key(id), desired(id).record("t", None)))
                .collect::<BTreeMap<JobKey, Record>>(),
            ..State::default()
        };
        let live = BTreeMap::new();
        let unverified = BTreeSet::new();
        let inputs = Inputs {
            desired: new,
            invalid: &[],
            recorded: &recorded,
            problems: &[],
            live: &live,
            unverified: &unverified,
        };
        let options = plan::Options {
            prune: true,
            allow_empty: true,
            max_deletions: 10,
        };
        plan::plan(inputs, options)
    }

    fn call() -> Call {
        Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: None,
        }
    }

    /// How the fake answers a job: with this error.
    type Answer = fn() -> ApiError;

    /// Every call in order; a job id may be answered with an error.
    #[derive(Clone, Default)]
    struct FakeApi {
        calls: Arc<Mutex<Vec<String>>>,
        answers: Arc<BTreeMap<String, Answer>>,
    }

    impl FakeApi {
        fn answering(answers: &[(&str, Answer)]) -> FakeApi {
            FakeApi {
                answers: Arc::new(answers.iter().map(|(id, e)| (id.to_string(), *e)).collect()),
                ..FakeApi::default()
            }
        }

        fn answer(&self, call: String, id: &str) -> Result<(), ApiError> {
            self.calls.lock().expect("fake").push(call);
            self.answers.get(id).map_or(Ok(()), |e| Err(e()))
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("fake").clone()
        }
    }

    impl Api for FakeApi {
        fn requests_sent(&self) -> u64 {
            self.calls().len() as u64
        }

        async fn put_cron_job(
            &self,
            key: &JobKey,
            _spec: &serde_json::value::RawValue,
            _shown: &serde_json::value::RawValue,
        ) -> Result<(), ApiError> {
            self.answer(format!("PUT {}", key.id), &key.id)
        }

        async fn get_job(&self, _key: &JobKey) -> Result<Option<serde_json::Value>, ApiError> {
            unreachable!("apply reads nothing")
        }

        async fn get_job_part(
            &self,
            _key: &JobKey,
            _what: &str,
        ) -> Result<Option<serde_json::Value>, ApiError> {
            unreachable!("apply reads nothing")
        }

        async fn delete_job(&self, key: &JobKey) -> Result<(), ApiError> {
            self.answer(format!("DELETE {}", key.id), &key.id)
        }

        async fn list_jobs(
            &self,
            _team: Option<&str>,
            _project: &str,
        ) -> Result<Vec<serde_json::Value>, ApiError> {
            unreachable!("apply lists nothing")
        }
    }

    /// A memory store whose lock is lost after `leads_for` fences.
    struct Fenced {
        inner: MemoryStore,
        leads_for: usize,
        fences: AtomicUsize,
    }

    impl Store for Fenced {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn lock(&self) -> Result<Held, StateError> {
            self.inner.lock()
        }
        fn load(&self) -> Result<Option<State>, StateError> {
            self.inner.load()
        }
        fn key(&self, create: bool) -> Result<Keyed, StateError> {
            self.inner.key(create)
        }
        fn stored_key(&self) -> Result<Option<Keyed>, StateError> {
            self.inner.stored_key()
        }
        fn set_key(&self, key: &Keyed) -> Result<(), StateError> {
            self.inner.set_key(key)
        }
        fn commit(&self, changes: &[Change]) -> Result<(), StateError> {
            self.inner.commit(changes)
        }
        fn fence(&self) -> Result<(), StateError> {
            if self.fences.fetch_add(1, Ordering::SeqCst) < self.leads_for {
                return Ok(());
            }
            Err(StateError::Write {
                path: "memory".into(),
                source: std::io::Error::other("the lock is lost"),
            })
        }
    }

    fn memory() -> MemoryStore {
        MemoryStore::new(None, Keyed::new([7; 32]))
    }

    fn apply(api: &FakeApi, store: Arc<dyn Store>, plan: &Plan, desired: &[Desired]) -> Applied {
        let applier = Applier {
            client: api,
            store,
            concurrency: 1,
            revision: Some("r1"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(applier.apply(plan, desired, Vec::new()))
    }

    #[test]
    fn writes_go_in_plan_order_deletes_last_each_committed_as_it_returns() {
        let new = [desired("a"), desired("b")];
        let plan = plan_of(&new, &["old"]);
        let (api, store) = (FakeApi::default(), Arc::new(memory()));
        let applied = apply(&api, store.clone(), &plan, &new);
        assert_eq!(api.calls(), ["PUT a", "PUT b", "DELETE old"]);
        assert_eq!(applied.outcomes, vec![Outcome::Applied; 3]);
        // With --concurrency 1 no write waits for another's commit: one
        // commit each.
        assert_eq!(store.commits().len(), 3);
        assert_eq!(applied.durable.len(), 3);
        assert!(applied.unrecorded.is_empty());
        let state = store.state().expect("a state");
        assert_eq!(state.jobs[&key("a")].revision.as_deref(), Some("r1"));
        assert!(!state.jobs.contains_key(&key("old")));
    }

    #[test]
    fn a_replica_that_lost_its_lock_sends_nothing_more() {
        let new = [desired("a"), desired("b")];
        let plan = plan_of(&new, &["old"]);
        let api = FakeApi::default();
        let store = Arc::new(Fenced {
            inner: memory(),
            leads_for: 1,
            fences: AtomicUsize::new(0),
        });
        let applied = apply(&api, store, &plan, &new);
        assert_eq!(api.calls(), ["PUT a"]);
        assert_eq!(
            applied.outcomes,
            [
                Outcome::Applied,
                Outcome::NotAttempted,
                Outcome::NotAttempted
            ]
        );
    }

    #[test]
    fn the_first_failed_save_stops_the_run_and_keeps_the_write_as_unrecorded() {
        let new = [desired("a"), desired("b")];
        let plan = plan_of(&new, &["old"]);
        let (api, store) = (FakeApi::default(), Arc::new(memory()));
        store.fail_commits(1);
        let applied = apply(&api, store.clone(), &plan, &new);
        assert_eq!(api.calls(), ["PUT a"]);
        assert!(matches!(
            applied.outcomes[0],
            Outcome::Failed(Failure::NotRecorded(_))
        ));
        assert_eq!(applied.outcomes[1..], vec![Outcome::NotAttempted; 2]);
        assert!(applied.durable.is_empty());
        assert!(matches!(&applied.unrecorded[..], [Change::Applied(k, _)] if *k == key("a")));
    }

    #[test]
    fn a_permanent_refusal_is_rejected_and_recorded_the_rest_failed_and_not() {
        let new = [desired("a"), desired("b"), desired("c"), desired("d")];
        let plan = plan_of(&new, &[]);
        let api = FakeApi::answering(&[
            ("a", || status(422)),
            ("b", || status(503)),
            ("c", || status(429)),
            ("d", || ApiError::RateLimited {
                call: call(),
                reset_in: Duration::from_secs(60),
            }),
        ]);
        let store = Arc::new(memory());
        let applied = apply(&api, store.clone(), &plan, &new);
        // A failure stops nothing: every write is sent.
        assert_eq!(api.calls(), ["PUT a", "PUT b", "PUT c", "PUT d"]);
        let kinds: Vec<&str> = applied
            .outcomes
            .iter()
            .map(|o| match o {
                Outcome::Rejected(_) => "rejected",
                Outcome::Failed(Failure::Api(_)) => "failed",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["rejected", "failed", "failed", "failed"]);
        // Only the refusal is recorded, with its status and digest.
        let commits = store.commits();
        assert!(matches!(&commits[..], [c] if matches!(&c[..],
                [Change::Rejected(k, r)] if *k == key("a") && r.status == 422 && r.digest == "a|1")));
    }
}
