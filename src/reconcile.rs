//! One reconcile: source files -> catalog -> plan -> (apply) -> report.
//!
//! The CLI's `reconcile` and, later, the daemon call this one function, so
//! a plan means the same thing wherever it is made.

use std::path::PathBuf;

use crate::api::Client;
use crate::apply::{Applier, Outcome};
use crate::manifest::{self, cron, Catalog, LoadOptions};
use crate::plan::{self, Desired, Invalid, Plan};
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
}

/// Everything one reconcile found and did.
#[derive(Debug)]
pub struct RunReport {
    pub catalog: Catalog,
    pub plan: Plan,
    pub outcomes: Vec<Outcome>,
    pub baseline: Baseline,
    pub api_requests: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("applying needs an API token: set NORTHFLANK_API_TOKEN or pass --token-file (or use --dry-run)")]
    NoToken,
}

/// Plans `files` against the state and, unless `dry_run`, applies the plan
/// through `client`.
pub async fn reconcile(
    files: &[SourceFile],
    options: &Options,
    client: Option<&Client>,
) -> Result<RunReport, ReconcileError> {
    // An applying run holds the lock from before it reads the state until
    // after its last write.
    let _lock = match options.dry_run {
        true => None,
        false => {
            if client.is_none() {
                return Err(ReconcileError::NoToken);
            }
            Some(StateLock::acquire(&options.state_path)?)
        }
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
    let recorded = recorded.unwrap_or_default();
    let keyed = state::load_key(&options.state_path, !options.dry_run)?;
    let now = jiff::Timestamp::now();
    let (desired, invalid) = prepare(&catalog, &keyed, &options.sensitive, now);
    let plan = plan::plan(
        plan::Inputs {
            desired: &desired,
            invalid: &invalid,
            recorded: &recorded,
            unreadable_files: catalog.unreadable_files(),
        },
        options.plan,
    );
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    let before = client.map_or(0, Client::requests_sent);
    let outcomes = match (options.dry_run, client) {
        (false, Some(client)) => {
            let applier = Applier {
                client,
                state_path: &options.state_path,
                concurrency: options.concurrency,
                revision: options.revision.as_deref(),
            };
            applier.apply(&plan, &desired, recorded).await.0
        }
        _ => plan
            .steps
            .iter()
            .map(|s| {
                if s.action.writes() {
                    Outcome::Planned
                } else {
                    Outcome::Skipped
                }
            })
            .collect(),
    };
    Ok(RunReport {
        api_requests: client.map_or(0, Client::requests_sent) - before,
        catalog,
        plan,
        outcomes,
        baseline,
    })
}

/// Valid manifests become desired jobs (digested, redacted, with their next
/// runs); the rest, and those missing a variable, are invalid.
pub fn prepare(
    catalog: &Catalog,
    keyed: &Keyed,
    sensitive: &[String],
    now: jiff::Timestamp,
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
                let next_runs = job
                    .spec
                    .get("schedule")
                    .and_then(|s| s.as_str())
                    .and_then(|s| cron::parse(s).ok())
                    .map(|s| {
                        s.next_runs(now, 3)
                            .iter()
                            .map(ToString::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                desired.push(Desired {
                    key: key.clone(),
                    name: name.clone(),
                    file: job.file.clone(),
                    shown: secret::redact(&job.spec, keyed, sensitive),
                    digest: keyed.digest(&job.spec),
                    spec: job.spec.clone(),
                    next_runs,
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
