//! One reconcile end to end, on a store in memory and an API in memory.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::*;
use crate::manifest::diagnostic::{Code, Diagnostic, Severity};
use crate::manifest::yaml::Span;
use crate::manifest::JobKey;
use crate::plan::Action;
use crate::store::Store;

/// Jobs `(name, extra spec lines)` in project acme, one file each.
pub(super) fn world(jobs: &[(&str, &str)]) -> (Vec<SourceFile>, Catalog, Vec<Desired>) {
    let files: Vec<SourceFile> = jobs
        .iter()
        .map(|(name, extra)| SourceFile {
            path: format!("jobs.d/{name}.yaml"),
            content: Ok(format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"5 3 * * *\"\n  concurrencyPolicy: forbid\n{extra}")),
        })
        .collect();
    let lookup = |_: &str| None;
    let options = LoadOptions {
        default_project: None,
        require_env: false,
        lookup: &lookup,
        allow_unknown_fields: false,
    };
    let catalog = crate::manifest::load(&files, &options);
    let (desired, invalid) = prepare(&catalog, &Keyed::new([7; crate::secret::KEY_LEN]), &[]);
    assert!(invalid.is_empty(), "{invalid:?}");
    (files, catalog, desired)
}

pub(super) fn key(id: &str) -> JobKey {
    JobKey {
        team: None,
        project: "acme".into(),
        id: id.into(),
    }
}

/// The state as if every job in `desired` had been applied.
pub(super) fn applied(desired: &[Desired]) -> State {
    State {
        jobs: desired
            .iter()
            .map(|d| (d.key.clone(), d.record("then", None)))
            .collect(),
        ..State::default()
    }
}

fn diagnostic(file: &str, code: Code, severity: Severity) -> Diagnostic {
    Diagnostic {
        file: file.into(),
        severity,
        ..Diagnostic::error(code, Span::file_start(), "", "m")
    }
}

/// The API in memory: jobs by key, every call logged, some ids refused
/// with a 422. No HTTP.
#[derive(Clone, Default)]
struct FakeApi {
    inner: Arc<std::sync::Mutex<FakeInner>>,
}

#[derive(Default)]
struct FakeInner {
    jobs: BTreeMap<JobKey, Json>,
    calls: Vec<String>,
    refuse: BTreeSet<String>,
}

impl FakeApi {
    fn calls(&self) -> Vec<String> {
        self.inner.lock().expect("fake").calls.clone()
    }

    fn log(&self, call: String) {
        self.inner.lock().expect("fake").calls.push(call);
    }
}

impl Api for FakeApi {
    fn requests_sent(&self) -> u64 {
        self.inner.lock().expect("fake").calls.len() as u64
    }

    async fn put_cron_job(
        &self,
        key: &JobKey,
        spec: &serde_json::value::RawValue,
        _shown: &serde_json::value::RawValue,
    ) -> Result<(), crate::api::ApiError> {
        self.log(format!("PUT {}", key.id));
        let mut inner = self.inner.lock().expect("fake");
        if inner.refuse.contains(&key.id) {
            return Err(crate::api::ApiError::Status {
                call: Box::new(crate::api::Call {
                    method: "PUT",
                    path: format!("/v1/projects/{}/jobs/cron", key.project),
                    job: Some(key.id.clone()),
                }),
                status: 422,
                message: "refused".into(),
                id: None,
                details: None,
                retry_after: None,
            });
        }
        inner
            .jobs
            .insert(key.clone(), serde_json::from_str(spec.get()).expect("JSON"));
        Ok(())
    }

    async fn get_job(&self, key: &JobKey) -> Result<Option<Json>, crate::api::ApiError> {
        self.log(format!("GET {}", key.id));
        Ok(self.inner.lock().expect("fake").jobs.get(key).cloned())
    }

    async fn get_job_part(
        &self,
        key: &JobKey,
        what: &str,
    ) -> Result<Option<Json>, crate::api::ApiError> {
        self.log(format!("GET {}/{what}", key.id));
        Ok(None)
    }

    async fn delete_job(&self, key: &JobKey) -> Result<(), crate::api::ApiError> {
        self.log(format!("DELETE {}", key.id));
        self.inner.lock().expect("fake").jobs.remove(key);
        Ok(())
    }

    async fn list_jobs(
        &self,
        _team: Option<&str>,
        project: &str,
    ) -> Result<Vec<Json>, crate::api::ApiError> {
        self.log(format!("LIST {project}"));
        let inner = self.inner.lock().expect("fake");
        Ok(inner
            .jobs
            .keys()
            .filter(|k| k.project == project)
            .map(|k| serde_json::json!({"id": k.id, "jobType": "cron"}))
            .collect())
    }
}

fn manifests(names: &[&str]) -> Arc<[SourceFile]> {
    let docs: Vec<String> = names
        .iter()
        .map(|n| format!("kind: CronJob\nproject: acme\nspec:\n  name: {n}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"5 3 * * *\"\n  concurrencyPolicy: forbid\n"))
        .collect();
    vec![SourceFile {
        path: "jobs.d/a.yaml".into(),
        content: Ok(docs.join("---\n")),
    }]
    .into()
}

pub(super) fn config(dry_run: bool) -> Config {
    Config {
        dry_run,
        plan: plan::Options {
            prune: false,
            allow_empty: false,
            max_deletions: 10,
        },
        default_project: None,
        state_path: PathBuf::from("unused"),
        state_namespace: store::DEFAULT_NAMESPACE.into(),
        concurrency: 1,
        sensitive: Vec::new(),
        refresh: false,
        drift: DriftMode::Off,
        max_reads: DEFAULT_MAX_READS,
        fetched: false,
        retry_rejected: false,
        allow_unknown_fields: false,
    }
}

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(
        None,
        Keyed::new([7; crate::secret::KEY_LEN]),
    ))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An applying run of `files` on `store` through `api`, that must not fail.
fn apply(store: &Arc<MemoryStore>, files: Arc<[SourceFile]>, api: &FakeApi) -> RunReport {
    let input = Input::new(files, None);
    runtime()
        .block_on(reconcile_in(
            store.clone(),
            &config(false),
            input,
            Some(api),
        ))
        .expect("run")
}

fn actions(run: &RunReport) -> Vec<Action> {
    run.plan.steps.iter().map(|s| s.action()).collect()
}

#[test]
fn a_first_apply_commits_each_put_and_the_next_run_sends_nothing() {
    let (api, store, files) = (
        FakeApi::default(),
        store(),
        manifests(&["job-a", "job-b", "job-c"]),
    );
    let run = apply(&store, files.clone(), &api);
    assert_eq!(run.outcomes, vec![Outcome::Applied; 3]);
    assert_eq!(
        api.calls(),
        ["LIST acme", "PUT job-a", "PUT job-b", "PUT job-c"]
    );
    assert_eq!(run.api_requests, 4);
    // One commit per PUT (sequential: nothing to group), one record each.
    let commits = store.commits();
    assert_eq!(commits.len(), 3);
    assert!(commits
        .iter()
        .all(|c| matches!(c.as_slice(), [store::Change::Applied(..)])));
    assert_eq!(store.state().expect("state").jobs.len(), 3);
    assert!(!store.is_locked(), "the lock is released at the end");

    let again = apply(&store, files.clone(), &api);
    assert_eq!(actions(&again), vec![Action::Unchanged; 3]);
    assert_eq!(again.api_requests, 0);
    assert_eq!(api.calls().len(), 4);
    assert_eq!(store.commits().len(), 3, "a no-op commits nothing");
}

#[test]
fn an_applying_run_fails_fast_on_a_held_lock_and_a_dry_run_does_not_wait() {
    let (api, store, files) = (FakeApi::default(), store(), manifests(&["job-a"]));
    let rt = runtime();
    let held = store.lock().expect("lock");
    let refused = rt.block_on(reconcile_in(
        store.clone(),
        &config(false),
        Input::new(files.clone(), None),
        Some(&api),
    ));
    assert!(
        matches!(
            refused,
            Err(ReconcileError::State(StateError::Locked { .. }))
        ),
        "{refused:?}"
    );
    assert!(api.calls().is_empty(), "nothing is sent without the lock");
    let dry = rt
        .block_on(reconcile_in(
            store.clone(),
            &config(true),
            Input::new(files, None),
            None::<&FakeApi>,
        ))
        .expect("a dry-run takes no lock");
    assert_eq!(actions(&dry), [Action::Create]);
    assert_eq!(dry.outcomes, [Outcome::Planned]);
    assert!(store.commits().is_empty() && store.state().is_none());
    drop(held);
}

#[test]
fn a_permanent_refusal_is_committed_and_that_spec_is_not_sent_again() {
    let (api, store, files) = (
        FakeApi::default(),
        store(),
        manifests(&["job-a", "job-bad"]),
    );
    api.inner
        .lock()
        .expect("fake")
        .refuse
        .insert("job-bad".into());
    let run = apply(&store, files.clone(), &api);
    assert!(
        matches!(run.outcomes[1], Outcome::Rejected(_)),
        "{:?}",
        run.outcomes
    );
    let state = store.state().expect("state");
    assert_eq!(state.rejected.len(), 1);
    assert_eq!(state.rejected.values().next().expect("one").status, 422);
    let sent = api.calls().len();
    let again = apply(&store, files.clone(), &api);
    assert_eq!(actions(&again), [Action::Unchanged, Action::Rejected]);
    assert_eq!(
        api.calls().len(),
        sent,
        "no list, no PUT for a refused spec"
    );

    // The manifest gone: its rejection is forgotten, in the store too.
    let rt2 = apply(&store, manifests(&["job-a"]), &api);
    assert_eq!(actions(&rt2), [Action::Unchanged]);
    assert!(store.state().expect("state").rejected.is_empty());
}

#[test]
fn a_commit_that_fails_stops_the_run_and_the_next_run_adopts_the_write() {
    let (api, store, files) = (
        FakeApi::default(),
        store(),
        manifests(&["job-a", "job-b", "job-c"]),
    );
    store.fail_commits(1);
    let run = apply(&store, files.clone(), &api);
    assert!(
        matches!(
            run.outcomes[0],
            Outcome::Failed(crate::apply::Failure::NotRecorded(_))
        ),
        "{:?}",
        run.outcomes
    );
    assert_eq!(
        run.outcomes[1..],
        [Outcome::NotAttempted, Outcome::NotAttempted]
    );
    assert_eq!(api.calls(), ["LIST acme", "PUT job-a"]);
    assert!(store.state().is_none(), "nothing was recorded");

    // Job a is live but unrecorded: read before anything is written
    // (adoption), never PUT blind.
    let next = apply(&store, files.clone(), &api);
    let calls = api.calls();
    assert_eq!(
        calls[2..4],
        ["LIST acme".to_string(), "GET job-a".to_string()]
    );
    // Adopted on what it read: recorded (or re-PUT if it differs),
    // after the read.
    assert!(matches!(
        next.outcomes[0],
        Outcome::Applied | Outcome::Skipped
    ));
    assert_eq!(next.outcomes[1..], [Outcome::Applied, Outcome::Applied]);
    assert_eq!(store.state().expect("state").jobs.len(), 3);
}

/// The one job `store` records.
fn only_record(store: &MemoryStore) -> (JobKey, crate::state::Record) {
    let state = store.state().expect("state");
    state.jobs.into_iter().next().expect("a job")
}

#[test]
fn a_write_taken_but_not_recorded_is_recorded_later_only_if_nothing_was_recorded_since() {
    let file = |schedule: &str| -> Arc<[SourceFile]> {
        vec![SourceFile {
            path: "jobs.d/a.yaml".into(),
            content: Ok(format!("kind: CronJob\nproject: acme\nspec:\n  name: job-a\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")),
        }]
        .into()
    };
    let rt = runtime();
    let run = |store: &Arc<MemoryStore>, api: &FakeApi, schedule: &str, carried: &[Unrecorded]| {
        let input = Input {
            carried: carried.to_vec(),
            ..Input::new(file(schedule), None)
        };
        rt.block_on(reconcile_in(
            store.clone(),
            &config(false),
            input,
            Some(api),
        ))
        .expect("run")
    };
    for someone_recorded_since in [false, true] {
        let (api, store) = (FakeApi::default(), store());
        let first = run(&store, &api, "1 1 * * *", &[]);
        let before = only_record(&store).1.digest;
        assert_eq!(first.unrecorded.len(), 0);
        // The API takes the edit; its commit fails.
        store.fail_commits(1);
        let lost = run(&store, &api, "2 2 * * *", &[]);
        assert_eq!(lost.unrecorded.len(), 1, "{:?}", lost.outcomes);
        assert_eq!(lost.unrecorded[0].before.as_deref(), Some(before.as_str()));
        let puts = api.calls().iter().filter(|c| c.starts_with("PUT")).count();
        if someone_recorded_since {
            // Another replica recorded a write of its own meanwhile.
            let (key, mut record) = only_record(&store);
            record.digest = "f".repeat(64);
            store
                .commit(&[store::Change::Applied(key, record)])
                .expect("commit");
        }
        let next = run(&store, &api, "2 2 * * *", &lost.unrecorded);
        let sent = api.calls().iter().filter(|c| c.starts_with("PUT")).count() - puts;
        if someone_recorded_since {
            assert_eq!(
                sent, 1,
                "what was recorded since is not overwritten: sent again"
            );
            assert_eq!(actions(&next), [Action::Update]);
        } else {
            assert_eq!(sent, 0, "recorded, not sent again");
            assert_eq!(actions(&next), [Action::Unchanged]);
        }
        let recorded = only_record(&store).1.digest;
        // Either way the state ends holding the edit's digest.
        let store::Change::Applied(_, edit) = &lost.unrecorded[0].change else {
            panic!("an applied change: {:?}", lost.unrecorded[0]);
        };
        assert_eq!(recorded, edit.digest);
        assert_ne!(recorded, before);
    }
}

#[test]
fn every_file_that_could_hide_a_job_is_a_prune_problem_once() {
    let catalog = Catalog {
        diagnostics: vec![
            diagnostic("a.yaml", Code::UnknownField, Severity::Error),
            diagnostic("a.yaml", Code::Required, Severity::Error),
            diagnostic("b.yaml", Code::EnvMissing, Severity::Warning),
            diagnostic("c.yaml", Code::Io, Severity::Warning),
            diagnostic("d.yaml", Code::Cron, Severity::Error),
        ],
        ..Catalog::default()
    };
    let files: Vec<String> = file_problems(&catalog)
        .into_iter()
        .map(|p| p.file)
        .collect();
    assert_eq!(files, ["a.yaml", "c.yaml", "d.yaml"]);
}
