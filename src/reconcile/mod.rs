//! One reconcile: source files -> catalog -> plan -> (apply) -> report.
//!
//! The CLI's `reconcile` and, later, the daemon call this one function, so
//! a plan means the same thing wherever it is made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::api::Client;
use crate::apply::{Applier, Outcome};
use crate::live::{self, Parts};
use crate::manifest::{self, cron, Catalog, JobKey, LoadOptions};
use crate::plan::{self, Action, Change, Desired, Drift, DriftMode, Invalid, Plan, PruneBlock};
use crate::remote::Api;
use crate::secret::{self, Keyed};
use crate::source::SourceFile;
use crate::state::{State, StateError};
use crate::store::{self, memory::MemoryStore, Held, Store};

/// What the flags fix for the whole process: built once by `settings`,
/// held by `ReconcileSettings` and `WatchSettings`, the same for every run.
#[derive(Debug, Clone)]
pub struct Config {
    pub dry_run: bool,
    pub plan: plan::Options,
    pub default_project: Option<String>,
    pub state_path: PathBuf,
    /// `--state-namespace` (a database store's).
    pub state_namespace: String,
    pub concurrency: usize,
    /// Extra spec paths to treat as secrets.
    pub sensitive: Vec<String>,
    /// Read live state for managed jobs (`--refresh`; a sidecar's drift
    /// sweeps).
    pub refresh: bool,
    pub drift: DriftMode,
    /// GET requests one run may spend on live state (`--max-reads`).
    pub max_reads: u64,
    /// The manifests come from a fetch (`--git`): if it found none, that is
    /// taken for a broken source, never for "all manifests gone" (no prune,
    /// even with `--allow-empty`).
    pub fetched: bool,
    /// `--retry-rejected`: send jobs the API refused for good again, even
    /// though their manifests have not changed.
    pub retry_rejected: bool,
    /// `--allow-unknown-fields`: fields the schema does not know are sent
    /// as written (with a warning), unless they look like a misspelling.
    pub allow_unknown_fields: bool,
}

/// What one run is given besides the [`Config`].
#[derive(Debug, Clone)]
pub struct Input {
    pub files: Arc<[SourceFile]>,
    /// The source revision (Git commit) being applied, when known.
    pub revision: Option<String>,
    /// Where among the unchanged managed jobs (in plan order, wrapping)
    /// live reads start: a sidecar spreads its drift sweep over several
    /// runs by moving this on.
    pub refresh_from: usize,
    /// Writes an earlier run of this process made that its store could not
    /// record (`RunReport::unrecorded`: the state database session was
    /// lost after the API took them). An applying run records those still
    /// true of the manifests and the state before it plans, so they are
    /// not sent again.
    pub carried: Vec<Unrecorded>,
}

impl Input {
    /// A run of `files` with nothing carried from an earlier one.
    pub fn new(files: Arc<[SourceFile]>, revision: Option<String>) -> Input {
        Input {
            files,
            revision,
            refresh_from: 0,
            carried: Vec::new(),
        }
    }
}

/// A write the API took that the store could not record, with the digest
/// the state held for its job when the write was planned (`None`: no
/// record): it is recorded later only if the state still holds that, so
/// nothing another replica recorded since is overwritten.
#[derive(Debug, Clone)]
pub struct Unrecorded {
    pub change: store::Change,
    pub before: Option<String>,
}

/// `--max-reads` when not given.
pub const DEFAULT_MAX_READS: u64 = 200;

/// Where the "before" side of the plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    State,
    Empty,
    /// Live reads filled in for a missing or incomplete state.
    Live,
    /// `--base REF`: the manifests at REF.
    Base,
}

impl Baseline {
    pub fn as_str(self) -> &'static str {
        match self {
            Baseline::State => "state",
            Baseline::Empty => "empty",
            Baseline::Live => "live",
            Baseline::Base => "base",
        }
    }
}

/// Everything one reconcile found and did.
#[derive(Debug)]
pub struct RunReport {
    pub catalog: Catalog,
    pub plan: Plan,
    pub outcomes: Vec<Outcome>,
    pub baseline: Baseline,
    pub api_requests: u64,
    /// Live jobs in the listed projects that no manifest or record names.
    pub unmanaged: usize,
    /// The source revision planned (a Git commit), when known.
    pub revision: Option<String>,
    /// Jobs whose live state this run read for drift.
    pub refreshed: usize,
    /// The last-applied state as the run left it (the sidecar's status
    /// page shows when and from which revision each job was applied).
    pub state: State,
    /// Writes the API took that the store could not record: for the next
    /// run's `Input::carried`.
    pub unrecorded: Vec<Unrecorded>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("applying needs an API token: set NORTHFLANK_API_TOKEN or pass --token-file (or use --dry-run)")]
    NoToken,
}

/// GET requests left for live reads in this run.
struct Reads {
    left: u64,
}

impl Reads {
    fn take(&mut self, cost: u64) -> bool {
        if cost > self.left {
            return false;
        }
        self.left -= cost;
        true
    }

    /// Counts requests already sent (beyond what was taken for them).
    fn spend(&mut self, cost: u64) {
        self.left = self.left.saturating_sub(cost);
    }
}

/// What an applying run reads from disk before it plans: the lock, the
/// manifests, the state and the key, and the manifests prepared for
/// sending (digests, secret fingerprints).
struct Loaded {
    lock: Option<Held>,
    catalog: Catalog,
    recorded: Option<State>,
    keyed: Keyed,
    desired: Vec<Desired>,
    invalid: Vec<Invalid>,
}

/// Takes the lock (an applying run), parses the manifests, and reads state
/// and key: file I/O, fsyncs and parsing, run on the blocking pool by
/// [`reconcile`].
fn load(
    files: &[SourceFile],
    config: &Config,
    store: &dyn Store,
) -> Result<Loaded, ReconcileError> {
    // An applying run holds the lock from before it reads the state until
    // after its last write.
    let lock = match config.dry_run {
        true => None,
        false => Some(store.lock()?),
    };
    let lookup = |name: &str| std::env::var(name).ok();
    let catalog = manifest::load(
        files,
        &LoadOptions {
            default_project: config.default_project.as_deref(),
            require_env: false,
            lookup: &lookup,
            allow_unknown_fields: config.allow_unknown_fields,
        },
    );
    let mut recorded = store.load()?;
    let keyed = store.key(!config.dry_run)?;
    // A path made --sensitive after it was applied: its recorded value is
    // shown (diffs, drift) as the fingerprint the plan's side has.
    if let Some(state) = recorded.as_mut().filter(|_| !config.sensitive.is_empty()) {
        for record in state.jobs.values_mut() {
            record.spec.add_sensitive(&keyed, &config.sensitive);
        }
    }
    let (desired, invalid) = prepare(&catalog, &keyed, &config.sensitive);
    Ok(Loaded {
        lock,
        catalog,
        recorded,
        keyed,
        desired,
        invalid,
    })
}

/// Runs `work` on tokio's blocking pool: a slow disk holds this run, never
/// the runtime's workers (the listener, probes, other requests).
pub async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

/// Plans `input.files` against the state `config.state_path` names and,
/// unless `dry_run`, applies the plan through `client`.
pub async fn reconcile(
    config: &Config,
    input: Input,
    client: Option<&Client>,
) -> Result<RunReport, ReconcileError> {
    let store = store::open(&config.state_path, &config.state_namespace)?;
    reconcile_in(store, config, input, client).await
}

/// Plans `files` against the state in `store` and, unless `dry_run`,
/// applies the plan through `client`, committing each write to `store`.
/// Disk work (lock, manifests, state, key, commits) runs on the blocking
/// pool.
pub async fn reconcile_in<A: Api>(
    store: Arc<dyn Store>,
    config: &Config,
    input: Input,
    client: Option<&A>,
) -> Result<RunReport, ReconcileError> {
    if !config.dry_run && client.is_none() {
        return Err(ReconcileError::NoToken);
    }
    let Loaded {
        lock: _lock,
        catalog,
        recorded,
        keyed,
        desired,
        invalid,
    } = {
        let (files, config, store) = (input.files.clone(), config.clone(), store.clone());
        off_runtime(move || load(&files, &config, store.as_ref())).await?
    };
    let baseline = if recorded.is_some() {
        Baseline::State
    } else {
        Baseline::Empty
    };
    if recorded.is_none() {
        tracing::warn!(
            state = %store.location(),
            "{}: planning against an empty baseline (every job shows as create)",
            store.nothing_recorded()
        );
    }
    let mut recorded = recorded.unwrap_or_default();
    // Rejections dropped here are committed with the run's first commit.
    let mut forget: Vec<store::Change> = Vec::new();
    if config.retry_rejected {
        // Planned as what they are (creates, updates); each is recorded
        // again (applied or rejected) when it is sent.
        forget.extend(
            recorded
                .rejected
                .keys()
                .cloned()
                .map(store::Change::Forgotten),
        );
        recorded.rejected.clear();
    }
    let now = jiff::Timestamp::now();
    // The rejections of jobs no valid manifest names are forgotten: there
    // is nothing left to hold back.
    let named: BTreeSet<&JobKey> = desired.iter().map(|d| &d.key).collect();
    let unnamed: Vec<JobKey> = recorded
        .rejected
        .keys()
        .filter(|k| !named.contains(k))
        .cloned()
        .collect();
    let forgotten = !unnamed.is_empty();
    for key in unnamed {
        recorded.rejected.remove(&key);
        forget.push(store::Change::Forgotten(key));
    }
    // Writes an earlier run made but could not record: recorded now when
    // still what the manifests ask, and the state still holds what it held
    // when they were made (nothing recorded since).
    let mut carried = Vec::new();
    let wanted: BTreeMap<&JobKey, &str> = desired
        .iter()
        .map(|d| (&d.key, d.digest.as_str()))
        .collect();
    for Unrecorded { change, before } in input.carried.iter().filter(|_| !config.dry_run) {
        let key = change.key();
        let unchanged_since = recorded.jobs.get(key).map(|r| &r.digest) == before.as_ref();
        let still = match change {
            store::Change::Applied(_, r) => wanted.get(key) == Some(&r.digest.as_str()),
            store::Change::Deleted(_) => !wanted.contains_key(key),
            _ => false,
        };
        if still && unchanged_since {
            change.apply_to(&mut recorded);
            carried.push(change.clone());
        }
    }
    if !carried.is_empty() {
        tracing::info!(
            jobs = carried.len(),
            "recording writes the API took in an earlier run that could not be recorded then (the state database was lost): not sent again"
        );
    }
    let before = client.map_or(0, A::requests_sent);
    let mut reads = Reads {
        left: config.max_reads,
    };

    // Adopt: jobs a manifest names but the state does not (a lost or new
    // `.nfcron/`) are looked for live before anything is PUT.
    let mut adopted = BTreeMap::new();
    let mut unverified = BTreeSet::new();
    let mut list_failed = BTreeMap::new();
    let mut unmanaged = 0;
    let mut baseline = baseline;
    if let Some(client) = client {
        let adoption = adopt(
            client,
            &desired,
            &recorded,
            &keyed,
            &config.sensitive,
            &mut reads,
        )
        .await;
        if adoption.read_any {
            baseline = Baseline::Live;
        }
        adopted = adoption.live;
        unverified = adoption.unverified;
        list_failed = adoption.list_failed;
        unmanaged = adoption.unmanaged;
        if !unverified.is_empty() {
            tracing::warn!(
                jobs = unverified.len(),
                max_reads = config.max_reads,
                "jobs possibly live not read yet (--max-reads reached or a read failed): not written; the next run continues adopting them"
            );
        }
    }
    let mut problems = file_problems(&catalog);
    problems.extend(emptied_files(&input.files, &catalog, &recorded));

    let mut plan = plan::plan(
        plan::Inputs {
            desired: &desired,
            invalid: &invalid,
            recorded: &recorded,
            problems: &problems,
            live: &adopted,
            unverified: &unverified,
        },
        plan::Options {
            allow_empty: config.plan.allow_empty && !(config.fetched && input.files.is_empty()),
            ..config.plan
        },
    );
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    let mut refreshed = 0;
    if let (Some(client), true, false) = (client, config.refresh, config.drift == DriftMode::Off) {
        let (drifts, read) = refresh(
            client,
            &plan,
            &recorded,
            &keyed,
            &config.sensitive,
            &mut reads,
            input.refresh_from,
        )
        .await;
        refreshed = read;
        plan::apply_drift(&mut plan, drifts, config.drift, &desired);
    }
    fill_next_runs(&mut plan, &desired, now);
    let (mut outcomes, state, unrecorded) = match (config.dry_run, client) {
        (false, Some(client)) => {
            let applier = Applier {
                client,
                store: store.clone(),
                concurrency: config.concurrency,
                revision: input.revision.as_deref(),
            };
            // Adopted jobs that match live are recorded without a PUT:
            // the read just showed the API has exactly them.
            let matching: Vec<&Desired> = desired
                .iter()
                .filter(|d| adopted.get(&d.key).is_some_and(Vec::is_empty))
                .collect();
            let at = jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or(now)
                .to_string();
            let save = !matching.is_empty() || forgotten || !carried.is_empty();
            let mut changes = forget;
            changes.append(&mut carried);
            changes.extend(matching.into_iter().map(|d| {
                store::Change::Applied(d.key.clone(), d.record(&at, input.revision.as_deref()))
            }));
            let mut state = recorded;
            if save {
                let store = store.clone();
                let committed =
                    off_runtime(move || store.commit(&changes).map(|()| changes)).await?;
                for change in &committed {
                    change.apply_to(&mut state);
                }
                changes = Vec::new();
            }
            let applied = applier.apply(&plan, &desired, changes).await;
            for change in &applied.durable {
                change.apply_to(&mut state);
            }
            let unrecorded = applied
                .unrecorded
                .into_iter()
                .map(|change| Unrecorded {
                    before: state.jobs.get(change.key()).map(|r| r.digest.clone()),
                    change,
                })
                .collect();
            (applied.outcomes, state, unrecorded)
        }
        _ => (planned(&plan), recorded, Vec::new()),
    };
    for (step, outcome) in plan.steps.iter().zip(outcomes.iter_mut()) {
        if let Some(e) = step.key.as_ref().and_then(|k| list_failed.get(k)) {
            *outcome = Outcome::Failed(crate::apply::Failure::Api(e.clone()));
        }
    }
    Ok(RunReport {
        api_requests: client.map_or(0, A::requests_sent) - before,
        catalog,
        plan,
        outcomes,
        baseline,
        unmanaged,
        revision: input.revision.clone(),
        refreshed,
        state,
        unrecorded,
    })
}

/// `--base REF`: the manifests at HEAD planned against those at REF, as if
/// REF's had been applied: the same path as a dry-run, on a store in memory
/// holding REF's jobs. Offline: no client, no state, a throwaway key.
pub async fn plan_base(
    head: Input,
    base: &[SourceFile],
    config: &Config,
) -> Result<RunReport, ReconcileError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let base_catalog = manifest::load(
        base,
        &LoadOptions {
            default_project: config.default_project.as_deref(),
            require_env: false,
            lookup: &lookup,
            allow_unknown_fields: config.allow_unknown_fields,
        },
    );
    let keyed = Keyed::generate().unwrap_or_else(|_| Keyed::new([0; crate::secret::KEY_LEN]));
    let (base_desired, _) = prepare(&base_catalog, &keyed, &config.sensitive);
    let recorded = State {
        jobs: base_desired
            .iter()
            .map(|d| (d.key.clone(), d.record("base", None)))
            .collect(),
        ..State::default()
    };
    let store = Arc::new(MemoryStore::new(Some(recorded), keyed));
    // What the change deletes is shown as deleted: the plan is of the change.
    let config = Config {
        dry_run: true,
        plan: plan::Options {
            prune: true,
            ..config.plan
        },
        refresh: false,
        retry_rejected: false,
        ..config.clone()
    };
    let head = Input {
        carried: Vec::new(),
        ..head
    };
    let mut run = reconcile_in::<Client>(store, &config, head, None).await?;
    run.baseline = Baseline::Base;
    Ok(run)
}

/// Every file with an error diagnostic (or an `io`, `yaml` or
/// `file-too-large` one, whatever its severity), with the first: whatever
/// the loader could not turn into a job (an unreadable entry, broken YAML)
/// may hold the manifest of a managed job, so it blocks pruning.
pub fn file_problems(catalog: &Catalog) -> Vec<PruneBlock> {
    use crate::manifest::diagnostic::Code;
    let mut seen = BTreeSet::new();
    catalog
        .diagnostics
        .iter()
        .filter(|d| d.is_error() || matches!(d.code, Code::Io | Code::Yaml | Code::FileTooLarge))
        .filter(|d| seen.insert(d.file.as_str()))
        .map(|d| PruneBlock {
            file: d.file.clone(),
            reason: d.one_line(),
        })
        .collect()
}

/// Files that are still there but hold no job document while the state
/// records jobs applied from them: an emptied file, or an editor's save
/// caught half-way (truncate, then write). Their jobs are not deleted:
/// deleting them takes deleting the file (or removing their documents from
/// a file that still holds another).
pub fn emptied_files(files: &[SourceFile], catalog: &Catalog, recorded: &State) -> Vec<PruneBlock> {
    let with_documents: BTreeSet<&str> = catalog.jobs.iter().map(|j| j.file.as_str()).collect();
    let present: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut seen = BTreeSet::new();
    recorded
        .jobs
        .values()
        .map(|r| r.file.as_str())
        .filter(|f| present.contains(f) && !with_documents.contains(f))
        .filter(|f| seen.insert(*f))
        .map(|f| PruneBlock {
            file: f.to_string(),
            reason: "holds no job document now, but jobs were applied from it (an emptied file, or a save caught half-way?); delete the file to delete its jobs".into(),
        })
        .collect()
}

struct Adoption {
    /// Per adopted job: the fields that differ from the manifest.
    live: BTreeMap<JobKey, Vec<Change>>,
    /// Jobs the list call showed live (or that no list call could look
    /// for) that were not read: they are not written blind.
    unverified: BTreeSet<JobKey>,
    /// Of those, the jobs whose project could not be listed: reported as
    /// failed with the list call's error (the run fails; nothing is PUT).
    list_failed: BTreeMap<JobKey, std::sync::Arc<crate::api::ApiError>>,
    unmanaged: usize,
    read_any: bool,
}

/// Lists each project that has manifests without records (one list call
/// serves every job in it), reads the jobs found, and compares them with
/// their manifests on the fields the manifests set.
async fn adopt(
    client: &impl Api,
    desired: &[Desired],
    recorded: &State,
    keyed: &Keyed,
    sensitive: &[String],
    reads: &mut Reads,
) -> Adoption {
    let mut adoption = Adoption {
        live: BTreeMap::new(),
        unverified: BTreeSet::new(),
        list_failed: BTreeMap::new(),
        unmanaged: 0,
        read_any: false,
    };
    // A job the API refused with this very spec is not sent, so there is
    // nothing to look for: no list call for it.
    let lacking: Vec<&Desired> = desired
        .iter()
        .filter(|d| !recorded.jobs.contains_key(&d.key) && !plan::is_rejected(recorded, d))
        .collect();
    let scopes: BTreeSet<(Option<String>, String)> = lacking
        .iter()
        .map(|d| (d.key.team.clone(), d.key.project.clone()))
        .collect();
    let named: BTreeSet<&JobKey> = desired.iter().map(|d| &d.key).collect();
    let in_scope = |d: &&&Desired, team: &Option<String>, project: &str| {
        d.key.team == *team && d.key.project == project
    };
    for (team, project) in scopes {
        if !reads.take(1) {
            // Not listed: whether these jobs are live is unknown, and a
            // PUT would overwrite one that is. A later run looks.
            adoption.unverified.extend(
                lacking
                    .iter()
                    .filter(|d| in_scope(d, &team, &project))
                    .map(|d| d.key.clone()),
            );
            continue;
        }
        let sent = client.requests_sent();
        let listed = client.list_jobs(team.as_deref(), &project).await;
        // A list of more than one page costs a request per page.
        reads.spend((client.requests_sent() - sent).saturating_sub(1));
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                // Whether these jobs are live is unknown: a PUT could
                // overwrite a live one blind (a mass re-PUT after a lost
                // `.nfcron/`). They fail with the list's error; a later run
                // lists again.
                tracing::warn!(project = %project, error = %crate::apply::chain(&e), "cannot list live jobs; not writing the jobs the state lacks until a list succeeds");
                let e = std::sync::Arc::new(e);
                for d in lacking.iter().filter(|d| in_scope(d, &team, &project)) {
                    adoption.unverified.insert(d.key.clone());
                    adoption.list_failed.insert(d.key.clone(), e.clone());
                }
                continue;
            }
        };
        adoption.read_any = true;
        let live_ids: BTreeSet<String> = listed
            .iter()
            .filter(|j| {
                j.get("jobType")
                    .and_then(Json::as_str)
                    .is_none_or(|t| t == "cron")
            })
            .filter_map(|j| j.get("id").and_then(Json::as_str).map(str::to_string))
            .collect();
        adoption.unmanaged += live_ids
            .iter()
            .filter(|id| {
                let key = JobKey {
                    team: team.clone(),
                    project: project.clone(),
                    id: (*id).clone(),
                };
                !named.contains(&key) && !recorded.jobs.contains_key(&key)
            })
            .count();
        for d in lacking.iter().filter(|d| in_scope(d, &team, &project)) {
            if !live_ids.contains(&d.key.id) {
                continue;
            }
            // Live but unread: never PUT blind (that is a mass re-PUT
            // after a lost `.nfcron/`); a later run reads it.
            let parts = Parts::needed_by(&d.spec.value());
            if !reads.take(parts.cost()) {
                adoption.unverified.insert(d.key.clone());
                continue;
            }
            let raw = match live::read(client, &d.key, parts).await {
                Ok(Some(raw)) => raw,
                // Deleted since the list call: a create.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(job = %d.key, error = %crate::apply::chain(&e), "cannot read live job; not writing it (unverified) until a read succeeds");
                    adoption.unverified.insert(d.key.clone());
                    continue;
                }
            };
            let shown = d.shown.value();
            let fields = live::drift(&shown, &live::to_spec_for(&raw, &shown), keyed, sensitive);
            let changes: Vec<Change> = fields
                .into_iter()
                .map(|f| Change {
                    path: f.path,
                    before: Some(f.live),
                    after: Some(f.recorded),
                })
                .collect();
            tracing::info!(job = %d.key, differs = changes.len(), "found live; adopting instead of re-creating");
            adoption.live.insert(d.key.clone(), changes);
        }
    }
    adoption
}

/// Reads the unchanged managed jobs of `plan` and compares each with what
/// was last applied. Jobs past the read budget are `Drift::Unknown`.
async fn refresh(
    client: &impl Api,
    plan: &Plan,
    recorded: &State,
    keyed: &Keyed,
    sensitive: &[String],
    reads: &mut Reads,
    from: usize,
) -> (BTreeMap<JobKey, Drift>, usize) {
    let mut drifts = BTreeMap::new();
    let mut managed: Vec<(&JobKey, &crate::state::Record)> = plan
        .steps
        .iter()
        .filter(|s| s.action() == Action::Unchanged)
        .filter_map(|s| s.key.as_ref())
        .filter_map(|k| recorded.jobs.get(k).map(|r| (k, r)))
        .collect();
    if !managed.is_empty() {
        let start = from % managed.len();
        managed.rotate_left(start);
    }
    let mut read = 0;
    for (key, record) in managed {
        let spec = record.spec.value();
        let parts = Parts::needed_by(&spec);
        if !reads.take(parts.cost()) {
            drifts.insert(key.clone(), Drift::Unknown);
            continue;
        }
        read += 1;
        let drift = match live::read(client, key, parts).await {
            Err(e) => {
                tracing::warn!(job = %key, error = %crate::apply::chain(&e), "cannot read live job; drift unknown");
                drifts.insert(key.clone(), Drift::Unknown);
                continue;
            }
            Ok(None) => Drift::Missing,
            Ok(Some(raw)) => {
                let fields = live::drift(&spec, &live::to_spec_for(&raw, &spec), keyed, sensitive);
                if fields.is_empty() {
                    continue;
                }
                Drift::Changed(
                    fields
                        .into_iter()
                        .map(|f| Change {
                            path: f.path,
                            before: Some(f.live),
                            after: Some(f.recorded),
                        })
                        .collect(),
                )
            }
        };
        let paths: Vec<&str> = match &drift {
            Drift::Changed(c) => c.iter().map(|c| c.path.as_str()).collect(),
            _ => Vec::new(),
        };
        tracing::warn!(project = %key.project, id = %key.id, kind = drift.kind(), fields = ?paths, "drift");
        drifts.insert(key.clone(), drift);
    }
    (drifts, read)
}

/// The next three run times of every job the plan writes (none for a
/// suspended one). Only those: on a plan of thousands of unchanged jobs
/// this is work nobody reads.
fn fill_next_runs(plan: &mut Plan, desired: &[Desired], now: jiff::Timestamp) {
    for step in &mut plan.steps {
        let Some(i) = step.write().map(|w| w.desired) else {
            continue;
        };
        let spec = desired[i].spec.value();
        let suspended = spec.get("suspended") == Some(&Json::Bool(true));
        let runs = spec
            .get("schedule")
            .and_then(Json::as_str)
            .and_then(|s| cron::parse(s).ok())
            .map(|s| {
                s.next_runs(now, 3)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default();
        step.set_next_runs(runs, suspended);
    }
}

/// What a plan that is not carried out reports for each step.
fn planned(plan: &Plan) -> Vec<Outcome> {
    plan.steps
        .iter()
        .map(|s| {
            if s.action().writes() {
                Outcome::Planned
            } else {
                Outcome::Skipped
            }
        })
        .collect()
}

/// Valid manifests become desired jobs (digested, redacted, with their next
/// runs); the rest, and those missing a variable, are invalid.
pub fn prepare(
    catalog: &Catalog,
    keyed: &Keyed,
    sensitive: &[String],
) -> (Vec<Desired>, Vec<Invalid>) {
    // Digests and redaction are per job: on every core, order kept.
    let parts = crate::parallel::map_chunks(&catalog.jobs, 256, |jobs| {
        let mut desired = Vec::new();
        let mut invalid = Vec::new();
        for job in jobs {
            prepare_one(job, keyed, sensitive, &mut desired, &mut invalid);
        }
        (desired, invalid)
    });
    let (mut desired, mut invalid) = (Vec::new(), Vec::new());
    for (d, i) in parts {
        desired.extend(d);
        invalid.extend(i);
    }
    (desired, invalid)
}

fn prepare_one(
    job: &manifest::JobManifest,
    keyed: &Keyed,
    sensitive: &[String],
    desired: &mut Vec<Desired>,
    invalid: &mut Vec<Invalid>,
) {
    let reason = if !job.valid {
        Some(
            job.problem
                .clone()
                .unwrap_or_else(|| "invalid manifest".into()),
        )
    } else if !job.missing_env.is_empty() {
        let (noun, verb) = if job.missing_env.len() > 1 {
            ("variables", "are")
        } else {
            ("variable", "is")
        };
        Some(format!(
            "environment {noun} {} {verb} not set and {verb} without a default: nfcron cannot know what to send",
            job.missing_env.join(", ")
        ))
    } else {
        None
    };
    match (reason, &job.key, &job.name) {
        (None, Some(key), Some(name)) => desired.push({
            let spec = job.spec.value();
            Desired {
                key: key.clone(),
                name: name.clone(),
                file: job.file.clone(),
                shown: secret::Redacted::of(&spec, keyed, sensitive),
                digest: keyed.digest(&spec),
                spec: job.spec.clone(),
            }
        }),
        (reason, key, name) => invalid.push(Invalid {
            key: key.clone(),
            name: name.clone(),
            file: job.file.clone(),
            reason: reason.unwrap_or_else(|| "invalid manifest".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::diagnostic::{Code, Diagnostic, Severity};
    use crate::manifest::yaml::Span;
    use crate::store::Store;

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

    fn config(dry_run: bool) -> Config {
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
        let rt = runtime();
        let run = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files.clone(), None),
                Some(&api),
            ))
            .expect("first run");
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

        let again = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files, None),
                Some(&api),
            ))
            .expect("second run");
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
        let rt = runtime();
        let run = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files.clone(), None),
                Some(&api),
            ))
            .expect("run");
        assert!(
            matches!(run.outcomes[1], Outcome::Rejected(_)),
            "{:?}",
            run.outcomes
        );
        let state = store.state().expect("state");
        assert_eq!(state.rejected.len(), 1);
        assert_eq!(state.rejected.values().next().expect("one").status, 422);
        let sent = api.calls().len();
        let again = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files.clone(), None),
                Some(&api),
            ))
            .expect("run");
        assert_eq!(actions(&again), [Action::Unchanged, Action::Rejected]);
        assert_eq!(
            api.calls().len(),
            sent,
            "no list, no PUT for a refused spec"
        );

        // The manifest gone: its rejection is forgotten, in the store too.
        let rt2 = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(manifests(&["job-a"]), None),
                Some(&api),
            ))
            .expect("run");
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
        let rt = runtime();
        let run = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files.clone(), None),
                Some(&api),
            ))
            .expect("run");
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
        let next = rt
            .block_on(reconcile_in(
                store.clone(),
                &config(false),
                Input::new(files, None),
                Some(&api),
            ))
            .expect("run");
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
        let run =
            |store: &Arc<MemoryStore>, api: &FakeApi, schedule: &str, carried: &[Unrecorded]| {
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
            let before = store
                .state()
                .expect("state")
                .jobs
                .values()
                .next()
                .expect("job")
                .digest
                .clone();
            assert_eq!(first.unrecorded.len(), 0);
            // The API takes the edit; its commit fails.
            store.fail_commits(1);
            let lost = run(&store, &api, "2 2 * * *", &[]);
            assert_eq!(lost.unrecorded.len(), 1, "{:?}", lost.outcomes);
            assert_eq!(lost.unrecorded[0].before.as_deref(), Some(before.as_str()));
            let puts = api.calls().iter().filter(|c| c.starts_with("PUT")).count();
            if someone_recorded_since {
                // Another replica recorded a write of its own meanwhile.
                let mut record = store
                    .state()
                    .expect("state")
                    .jobs
                    .values()
                    .next()
                    .expect("job")
                    .clone();
                record.digest = "f".repeat(64);
                let key = store
                    .state()
                    .expect("state")
                    .jobs
                    .keys()
                    .next()
                    .expect("key")
                    .clone();
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
            let recorded = store
                .state()
                .expect("state")
                .jobs
                .values()
                .next()
                .expect("job")
                .digest
                .clone();
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
}
