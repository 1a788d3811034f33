//! One reconcile: load -> observe -> decide -> execute -> report.
//!
//! The CLI's `reconcile` and the sidecar call this one function, so a plan
//! means the same thing wherever it is made. `observe` reads the live
//! jobs (adoption, drift sweeps), `decide` is the run's policy around
//! `plan::plan` (pure), `apply` executes.

mod decide;
mod observe;
mod prepare;

use std::path::PathBuf;
use std::sync::Arc;

use crate::api::Client;
use crate::apply::{Applier, Outcome};
use crate::manifest::{self, Catalog, LoadOptions};
use crate::plan::{self, Desired, DriftMode, Invalid, Plan};
use crate::remote::Api;
use crate::secret::Keyed;
use crate::source::SourceFile;
use crate::state::{State, StateError};
use crate::store::{self, memory::MemoryStore, Held, Store};

use decide::{Decision, Prior};
use observe::{Adoption, Reads};
pub use prepare::{emptied_files, file_problems, prepare};

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

/// What an applying run reads from disk before it plans: the lock, the
/// manifests, the state and the key, and the manifests prepared for
/// sending (digests, secret fingerprints).
struct Loaded {
    /// Held until the run ends (an applying run).
    _lock: Option<Held>,
    catalog: Catalog,
    /// Taken by [`decide::prior`].
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
        _lock: lock,
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

/// Plans `input.files` against the state in `store` and, unless
/// `dry_run`, applies the plan through `client`, committing each write to
/// `store`: load, observe, decide, execute, report. Disk work (lock,
/// manifests, state, key, commits) runs on the blocking pool.
pub async fn reconcile_in<A: Api>(
    store: Arc<dyn Store>,
    config: &Config,
    input: Input,
    client: Option<&A>,
) -> Result<RunReport, ReconcileError> {
    if !config.dry_run && client.is_none() {
        return Err(ReconcileError::NoToken);
    }
    let run = Run {
        store,
        config,
        input: &input,
        client,
    };
    let mut loaded = run.load().await?;
    let before = client.map_or(0, A::requests_sent);
    let recorded = loaded.recorded.take();
    let prior = decide::prior(recorded, &loaded.desired, &input.carried, config);
    tell_prior(&prior, run.store.as_ref());
    let mut reads = Reads::new(config.max_reads);
    let adoption = run.adopt(&loaded, &prior, &mut reads).await;
    let mut decision = decide::decide(&decide::Snapshot {
        config,
        files: &input.files,
        catalog: &loaded.catalog,
        desired: &loaded.desired,
        invalid: &loaded.invalid,
        prior: &prior,
        adoption: &adoption,
        revision: input.revision.as_deref(),
        now: jiff::Timestamp::now(),
    });
    for warning in &decision.plan.warnings {
        tracing::warn!("{warning}");
    }
    let refreshed = run.sweep(&loaded, &prior, &mut reads, &mut decision).await;
    let executed = run.execute(&decision, &loaded, prior.state).await?;
    Ok(RunReport {
        api_requests: client.map_or(0, A::requests_sent) - before,
        catalog: loaded.catalog,
        outcomes: decision.outcomes(executed.outcomes),
        plan: decision.plan,
        baseline: decision.baseline,
        unmanaged: adoption.unmanaged,
        revision: input.revision,
        refreshed,
        state: executed.state,
        unrecorded: executed.unrecorded,
    })
}

/// Says what the run takes as recorded, when it is not simply the state.
fn tell_prior(prior: &Prior, store: &dyn Store) {
    if prior.baseline == Baseline::Empty {
        tracing::warn!(
            state = %store.location(),
            "{}: planning against an empty baseline (every job shows as create)",
            store.nothing_recorded()
        );
    }
    if prior.carried > 0 {
        tracing::info!(
            jobs = prior.carried,
            "recording writes the API took in an earlier run that could not be recorded then (the state database was lost): not sent again"
        );
    }
}

/// What the steps of one run share: where state is, the flags, the
/// run's input, and the API (none in a dry-run without a token).
struct Run<'a, A> {
    store: Arc<dyn Store>,
    config: &'a Config,
    input: &'a Input,
    client: Option<&'a A>,
}

/// What the run did (or would do), and the state it left.
struct Executed {
    outcomes: Vec<Outcome>,
    state: State,
    unrecorded: Vec<Unrecorded>,
}

impl<A: Api> Run<'_, A> {
    /// [`load`], on the blocking pool.
    async fn load(&self) -> Result<Loaded, ReconcileError> {
        let files = self.input.files.clone();
        let (config, store) = (self.config.clone(), self.store.clone());
        off_runtime(move || load(&files, &config, store.as_ref())).await
    }

    /// Looks for the jobs the state lacks (a lost or new `.nfcron/`) live
    /// before anything is PUT.
    async fn adopt(&self, loaded: &Loaded, prior: &Prior, reads: &mut Reads) -> Adoption {
        match self.client {
            Some(client) => observe::adopt(client, loaded, &prior.state, self.config, reads).await,
            None => Adoption::default(),
        }
    }

    /// With `refresh` (and drift not `off`): reads the plan's unchanged
    /// managed jobs and folds the drift found into the decision. Returns
    /// how many jobs were read.
    async fn sweep(
        &self,
        loaded: &Loaded,
        prior: &Prior,
        reads: &mut Reads,
        decision: &mut Decision,
    ) -> usize {
        let config = self.config;
        let Some(client) = self
            .client
            .filter(|_| config.refresh && config.drift != DriftMode::Off)
        else {
            return 0;
        };
        let (plan, from) = (&decision.plan, self.input.refresh_from);
        let drifts =
            observe::refresh(client, plan, &prior.state, loaded, config, reads, from).await;
        decision.drift(drifts.found, config.drift, &loaded.desired);
        drifts.read
    }

    /// Unless a dry-run: commits what the decision records without a PUT
    /// (at once, or with the first write), then applies the plan; `state`
    /// follows every commit.
    async fn execute(
        &self,
        decision: &Decision,
        loaded: &Loaded,
        mut state: State,
    ) -> Result<Executed, ReconcileError> {
        let Some(client) = self.client.filter(|_| !self.config.dry_run) else {
            return Ok(Executed {
                outcomes: decide::planned(&decision.plan),
                state,
                unrecorded: Vec::new(),
            });
        };
        let applier = Applier {
            client,
            store: self.store.clone(),
            concurrency: self.config.concurrency,
            revision: self.input.revision.as_deref(),
        };
        let mut changes = decision.changes.clone();
        if decision.commit_first {
            let store = self.store.clone();
            let committed = off_runtime(move || store.commit(&changes).map(|()| changes)).await?;
            for change in &committed {
                change.apply_to(&mut state);
            }
            changes = Vec::new();
        }
        let applied = applier
            .apply(&decision.plan, &loaded.desired, changes)
            .await;
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
        Ok(Executed {
            outcomes: applied.outcomes,
            state,
            unrecorded,
        })
    }
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

#[cfg(test)]
mod tests;
