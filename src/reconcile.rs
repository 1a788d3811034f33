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
use crate::render::plan::Baseline;
use crate::secret::{self, Keyed};
use crate::source::SourceFile;
use crate::state::{self, State, StateError, StateLock};

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub plan: plan::Options,
    pub default_project: Option<String>,
    pub state_path: PathBuf,
    pub concurrency: usize,
    /// Extra spec paths to treat as secrets.
    pub sensitive: Vec<String>,
    /// The source revision (Git commit) being applied, when known.
    pub revision: Option<String>,
    /// Read live state for managed jobs (`--refresh`).
    pub refresh: bool,
    pub drift: DriftMode,
    /// GET requests one run may spend on live state (`--max-reads`).
    pub max_reads: u64,
    /// Where among the unchanged managed jobs (in plan order, wrapping)
    /// live reads start: a sidecar spreads its drift sweep over several
    /// runs by moving this on.
    pub refresh_from: usize,
    /// The manifests came from a fetch: if it found none, that is taken for
    /// a broken source, never for "all manifests gone" (no prune, even with
    /// `--allow-empty`).
    pub fetched: bool,
    /// `--retry-rejected`: send jobs the API refused for good again, even
    /// though their manifests have not changed.
    pub retry_rejected: bool,
}

/// `--max-reads` when not given.
pub const DEFAULT_MAX_READS: u64 = 200;

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
    lock: Option<StateLock>,
    catalog: Catalog,
    recorded: Option<State>,
    keyed: Keyed,
    desired: Vec<Desired>,
    invalid: Vec<Invalid>,
}

/// Takes the lock (an applying run), parses the manifests, and reads state
/// and key: file I/O, fsyncs and parsing, run on the blocking pool by
/// [`reconcile`].
fn load(files: &[SourceFile], options: &Options) -> Result<Loaded, ReconcileError> {
    // An applying run holds the lock from before it reads the state until
    // after its last write.
    let lock = match options.dry_run {
        true => None,
        false => Some(StateLock::acquire(&options.state_path)?),
    };
    let lookup = |name: &str| std::env::var(name).ok();
    let catalog = manifest::load(
        files,
        &LoadOptions {
            default_project: options.default_project.as_deref(),
            require_env: false,
            lookup: &lookup,
        },
    );
    let recorded = State::load(&options.state_path)?;
    let keyed = state::load_key(&options.state_path, !options.dry_run)?;
    let (desired, invalid) = prepare(&catalog, &keyed, &options.sensitive);
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

/// Plans `files` against the state and, unless `dry_run`, applies the plan
/// through `client`. Disk work (lock, manifests, state, key, saves) runs
/// on the blocking pool.
pub async fn reconcile(
    files: Arc<[SourceFile]>,
    options: &Options,
    client: Option<&Client>,
) -> Result<RunReport, ReconcileError> {
    if !options.dry_run && client.is_none() {
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
        let (files, options) = (files.clone(), options.clone());
        off_runtime(move || load(&files, &options)).await?
    };
    let baseline = if recorded.is_some() {
        Baseline::State
    } else {
        Baseline::Empty
    };
    if recorded.is_none() {
        tracing::warn!(
            state = %options.state_path.display(),
            "no state file: planning against an empty baseline (every job shows as create)"
        );
    }
    let mut recorded = recorded.unwrap_or_default();
    if options.retry_rejected {
        // Planned as what they are (creates, updates); each is recorded
        // again (applied or rejected) when it is sent.
        recorded.rejected.clear();
    }
    let now = jiff::Timestamp::now();
    // The rejections of jobs no valid manifest names are forgotten: there
    // is nothing left to hold back.
    let rejections = recorded.rejected.len();
    let named: BTreeSet<&JobKey> = desired.iter().map(|d| &d.key).collect();
    recorded.rejected.retain(|k, _| named.contains(k));
    let forgotten = recorded.rejected.len() != rejections;
    let before = client.map_or(0, Client::requests_sent);
    let mut reads = Reads {
        left: options.max_reads,
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
            &options.sensitive,
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
                max_reads = options.max_reads,
                "jobs possibly live not read yet (--max-reads reached or a read failed): not written; the next run continues adopting them"
            );
        }
    }
    let mut problems = file_problems(&catalog);
    problems.extend(emptied_files(&files, &catalog, &recorded));

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
            allow_empty: options.plan.allow_empty && !(options.fetched && files.is_empty()),
            ..options.plan
        },
    );
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    let mut refreshed = 0;
    if let (Some(client), true, false) = (client, options.refresh, options.drift == DriftMode::Off)
    {
        let (drifts, read) = refresh(
            client,
            &plan,
            &recorded,
            &keyed,
            &options.sensitive,
            &mut reads,
            options.refresh_from,
        )
        .await;
        refreshed = read;
        plan::apply_drift(&mut plan, drifts, options.drift, &desired);
    }
    fill_next_runs(&mut plan, &desired, now);
    let (mut outcomes, state) = match (options.dry_run, client) {
        (false, Some(client)) => {
            let applier = Applier {
                client,
                state_path: &options.state_path,
                concurrency: options.concurrency,
                revision: options.revision.as_deref(),
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
            let save = !matching.is_empty() || forgotten;
            for d in matching {
                recorded
                    .jobs
                    .insert(d.key.clone(), d.record(&at, options.revision.as_deref()));
            }
            if save {
                let path = options.state_path.clone();
                recorded = off_runtime(move || recorded.save(&path).map(|()| recorded)).await?;
            }
            applier.apply(&plan, &desired, recorded).await
        }
        _ => (planned(&plan), recorded),
    };
    for (step, outcome) in plan.steps.iter().zip(outcomes.iter_mut()) {
        if let Some(e) = step.key.as_ref().and_then(|k| list_failed.get(k)) {
            *outcome = Outcome::Failed(crate::apply::Failure::Api(e.clone()));
        }
    }
    Ok(RunReport {
        api_requests: client.map_or(0, Client::requests_sent) - before,
        catalog,
        plan,
        outcomes,
        baseline,
        unmanaged,
        revision: options.revision.clone(),
        refreshed,
        state,
    })
}

/// `--base REF`: the manifests at HEAD planned against those at REF, as if
/// REF's had been applied. Offline and pure but for the throwaway key.
pub fn plan_base(head: &[SourceFile], base: &[SourceFile], options: &Options) -> RunReport {
    let lookup = |name: &str| std::env::var(name).ok();
    let load = |files: &[SourceFile]| {
        manifest::load(
            files,
            &LoadOptions {
                default_project: options.default_project.as_deref(),
                require_env: false,
                lookup: &lookup,
            },
        )
    };
    let (head_catalog, base_catalog) = (load(head), load(base));
    let keyed = Keyed::generate().unwrap_or_else(|_| Keyed::new([0; crate::secret::KEY_LEN]));
    let now = jiff::Timestamp::now();
    let (base_desired, _) = prepare(&base_catalog, &keyed, &options.sensitive);
    let recorded = State {
        jobs: base_desired
            .iter()
            .map(|d| (d.key.clone(), d.record("base", None)))
            .collect(),
        ..State::default()
    };
    let (desired, invalid) = prepare(&head_catalog, &keyed, &options.sensitive);
    let mut problems = file_problems(&head_catalog);
    problems.extend(emptied_files(head, &head_catalog, &recorded));
    // What the change deletes is shown as deleted: the plan is of the change.
    let plan_options = plan::Options {
        prune: true,
        ..options.plan
    };
    let mut plan = plan::plan(
        plan::Inputs {
            desired: &desired,
            invalid: &invalid,
            recorded: &recorded,
            problems: &problems,
            live: &BTreeMap::new(),
            unverified: &BTreeSet::new(),
        },
        plan_options,
    );
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    fill_next_runs(&mut plan, &desired, now);
    let outcomes = planned(&plan);
    RunReport {
        catalog: head_catalog,
        plan,
        outcomes,
        baseline: Baseline::Base,
        api_requests: 0,
        unmanaged: 0,
        revision: options.revision.clone(),
        refreshed: 0,
        state: recorded,
    }
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
    client: &Client,
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
            let parts = Parts::needed_by(&d.spec);
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
            let fields = live::drift(&d.shown, &live::to_spec(&raw), keyed, sensitive);
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
    client: &Client,
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
        let parts = Parts::needed_by(&record.spec);
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
                let fields = live::drift(&record.spec, &live::to_spec(&raw), keyed, sensitive);
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

/// The next three run times of every job the plan writes. Only those: on
/// a plan of thousands of unchanged jobs this is work nobody reads.
fn fill_next_runs(plan: &mut Plan, desired: &[Desired], now: jiff::Timestamp) {
    for step in &mut plan.steps {
        let Some(i) = step.write().map(|w| w.desired) else {
            continue;
        };
        let runs = desired[i]
            .spec
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
        step.set_next_runs(runs);
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
    let mut desired = Vec::new();
    let mut invalid = Vec::new();
    for job in &catalog.jobs {
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
            (None, Some(key), Some(name)) => {
                desired.push(Desired {
                    key: key.clone(),
                    name: name.clone(),
                    file: job.file.clone(),
                    shown: secret::redact(&job.spec, keyed, sensitive),
                    digest: keyed.digest(&job.spec),
                    spec: job.spec.clone(),
                });
            }
            (reason, key, name) => invalid.push(Invalid {
                key: key.clone(),
                name: name.clone(),
                file: job.file.clone(),
                reason: reason.unwrap_or_else(|| "invalid manifest".into()),
            }),
        }
    }
    (desired, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::diagnostic::{Code, Diagnostic, Severity};
    use crate::manifest::yaml::Span;

    fn diagnostic(file: &str, code: Code, severity: Severity) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            severity,
            ..Diagnostic::error(code, Span::file_start(), "", "m")
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
