//! The planner: (desired jobs, last-applied state) -> one action per job.
//!
//! Pure: no I/O, no clock (the caller passes next run times in), no
//! randomness. Everything that decides what nfcron will do to Northflank is
//! here and tested with plain data; `apply` only carries it out.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::manifest::validate::join;
use crate::manifest::{Body, JobKey};
use crate::secret::Redacted;
use crate::state::{Record, State};

/// A valid manifest, ready to send.
#[derive(Debug, Clone)]
pub struct Desired {
    pub key: JobKey,
    pub name: String,
    pub file: String,
    /// The PUT body, secrets included. Never shown, never stored.
    pub spec: Body,
    /// The spec with secrets replaced by fingerprints: what is shown,
    /// diffed and stored.
    pub shown: Redacted,
    /// Keyed digest of `spec`.
    pub digest: String,
}

impl Desired {
    /// What the state records once this spec has been applied.
    pub fn record(&self, applied_at: &str, revision: Option<&str>) -> Record {
        Record {
            name: self.name.clone(),
            file: self.file.clone(),
            digest: self.digest.clone(),
            spec: self.shown.clone(),
            applied_at: applied_at.to_string(),
            revision: revision.map(str::to_string),
        }
    }
}

/// A manifest document that cannot be applied.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// Known when the document got as far as a name and project.
    pub key: Option<JobKey>,
    pub name: Option<String>,
    pub file: String,
    pub reason: String,
}

/// A file that stops every deletion of a run: it holds, or may hold, a
/// document nfcron cannot turn into a job for certain (invalid for any
/// reason, unreadable, unparsable), and that document may be the manifest
/// of a managed job. Which one cannot be known, so none is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneBlock {
    pub file: String,
    /// The first problem found in the file, one line.
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub prune: bool,
    pub allow_empty: bool,
    pub max_deletions: usize,
}

/// What the planner is given.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub desired: &'a [Desired],
    pub invalid: &'a [Invalid],
    pub recorded: &'a State,
    /// Files with an error that are not (only) an invalid document: an
    /// unreadable entry, a YAML error. With the invalid documents, they
    /// block pruning.
    pub problems: &'a [PruneBlock],
    /// Jobs with no record whose live state was read (adoption after state
    /// loss): the fields that differ from the manifest (empty: it matches).
    pub live: &'a BTreeMap<JobKey, Vec<Change>>,
    /// Jobs with no record that may be live and were not read (the list
    /// call showed them, or the read budget ran out before a list call could
    /// look; or their read failed): never written blind; a later run reads
    /// them.
    pub unverified: &'a BTreeSet<JobKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
    Orphan,
    Invalid,
    /// No record, possibly live (the list call showed it, or the read
    /// budget ran out before a list call could look), not read: not written
    /// until a run reads it. Pending, like a change.
    Unverified,
    /// The API refused this very spec (same digest) for good: not sent
    /// again until the manifest changes or `--retry-rejected`.
    Rejected,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
            Action::Orphan => "orphan",
            Action::Invalid => "invalid",
            Action::Unverified => "unverified",
            Action::Rejected => "rejected",
        }
    }

    /// Whether carrying it out sends a write to the API.
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// One field that differs; values are shown forms (secrets fingerprinted),
/// `None` where the field is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
}

/// One job in a plan: which job, and what is done about it ([`Kind`]).
#[derive(Debug, Clone)]
pub struct Step {
    /// `None` only for an invalid document whose key cannot be derived.
    pub key: Option<JobKey>,
    pub name: Option<String>,
    pub file: Option<String>,
    pub kind: Kind,
}

/// What a plan does about one job: one variant per action, each holding
/// only what that action has.
#[derive(Debug, Clone)]
pub enum Kind {
    /// PUT a job that is not there (a new manifest, or a job deleted
    /// outside nfcron under `--drift correct`).
    Create(Write),
    /// PUT a changed manifest (or the manifest back over drift).
    Update(Write),
    /// Nothing to send: the state, or an adoption read, matches.
    Unchanged {
        desired: usize,
        /// What a live read found, when one was made.
        drift: Option<Drift>,
    },
    /// DELETE a managed job no manifest names (`--prune`).
    Delete { changes: Vec<Change> },
    /// A managed job no manifest names, kept.
    Orphan,
    /// A manifest that does not validate.
    Invalid { reason: String },
    /// Possibly live, not read yet: not written until a run reads it.
    Unverified { desired: usize },
    /// The API refused this very spec for good.
    Rejected {
        desired: usize,
        status: u16,
        message: String,
    },
}

/// A PUT: the manifest (`desired`, an index into [`Inputs::desired`]) and
/// what it changes.
#[derive(Debug, Clone)]
pub struct Write {
    pub desired: usize,
    pub changes: Vec<Change>,
    /// A create that most likely renames a job of the same file.
    pub renamed_from: Option<String>,
    pub next_runs: Vec<String>,
    /// The job is written with `suspended: true`: it has no next runs.
    pub suspended: bool,
    /// The drift this write corrects (`--drift correct`).
    pub drift: Option<Drift>,
}

impl Write {
    /// A write of `desired` with `changes`, nothing else said of it.
    pub(crate) fn of(desired: usize, changes: Vec<Change>) -> Write {
        Write {
            desired,
            changes,
            renamed_from: None,
            next_runs: Vec::new(),
            suspended: false,
            drift: None,
        }
    }
}

impl Step {
    pub fn action(&self) -> Action {
        match self.kind {
            Kind::Create(_) => Action::Create,
            Kind::Update(_) => Action::Update,
            Kind::Unchanged { .. } => Action::Unchanged,
            Kind::Delete { .. } => Action::Delete,
            Kind::Orphan => Action::Orphan,
            Kind::Invalid { .. } => Action::Invalid,
            Kind::Unverified { .. } => Action::Unverified,
            Kind::Rejected { .. } => Action::Rejected,
        }
    }

    /// The PUT this step sends, if it sends one.
    pub fn write(&self) -> Option<&Write> {
        match &self.kind {
            Kind::Create(w) | Kind::Update(w) => Some(w),
            _ => None,
        }
    }

    fn write_mut(&mut self) -> Option<&mut Write> {
        match &mut self.kind {
            Kind::Create(w) | Kind::Update(w) => Some(w),
            _ => None,
        }
    }

    /// The manifest the step is about (index into [`Inputs::desired`]).
    pub fn desired(&self) -> Option<usize> {
        match &self.kind {
            Kind::Create(w) | Kind::Update(w) => Some(w.desired),
            Kind::Unchanged { desired, .. }
            | Kind::Unverified { desired }
            | Kind::Rejected { desired, .. } => Some(*desired),
            Kind::Delete { .. } | Kind::Orphan | Kind::Invalid { .. } => None,
        }
    }

    /// Fields a write or delete changes.
    pub fn changes(&self) -> &[Change] {
        match &self.kind {
            Kind::Create(w) | Kind::Update(w) => &w.changes,
            Kind::Delete { changes } => changes,
            _ => &[],
        }
    }

    /// What a live read found (an unchanged job) or what a write corrects.
    pub fn drift(&self) -> Option<&Drift> {
        match &self.kind {
            Kind::Create(w) | Kind::Update(w) => w.drift.as_ref(),
            Kind::Unchanged { drift, .. } => drift.as_ref(),
            _ => None,
        }
    }

    pub fn renamed_from(&self) -> Option<&str> {
        self.write().and_then(|w| w.renamed_from.as_deref())
    }

    pub fn next_runs(&self) -> &[String] {
        self.write().map_or(&[], |w| &w.next_runs)
    }

    /// Whether the job this step writes is suspended (so never runs).
    pub fn suspended(&self) -> bool {
        self.write().is_some_and(|w| w.suspended)
    }

    /// Fills in the next runs of a write (nothing for other steps); a
    /// suspended job has none.
    pub fn set_next_runs(&mut self, runs: Vec<String>, suspended: bool) {
        if let Some(w) = self.write_mut() {
            w.next_runs = if suspended { Vec::new() } else { runs };
            w.suspended = suspended;
        }
    }
}

/// What a live read of a managed job found.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// Fields the last apply set differ live.
    Changed(Vec<Change>),
    /// The job is gone (404).
    Missing,
    /// Not read: the read budget (`--max-reads`) ran out.
    Unknown,
}

impl Drift {
    pub fn kind(&self) -> &'static str {
        match self {
            Drift::Changed(_) => "changed",
            Drift::Missing => "missing",
            Drift::Unknown => "unknown",
        }
    }

    /// Whether there is drift to report (changed or missing).
    pub fn found(&self) -> bool {
        matches!(self, Drift::Changed(_) | Drift::Missing)
    }
}

/// What to do about drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftMode {
    /// Report it (and log at WARN).
    Warn,
    /// Re-PUT the manifest: an unchanged job becomes an update, a missing
    /// one a create.
    Correct,
    /// Read nothing.
    Off,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Things the user must hear about (prune skipped, and why).
    pub warnings: Vec<String>,
    /// More deletions than `--max-deletions` allows: none are made and the
    /// run fails, saying how many would have been.
    pub blocked_deletions: Option<usize>,
    /// With `--prune`: the files that stopped every deletion (empty when
    /// pruning was not blocked by a file). The run fails when not empty.
    pub prune_blocked: Vec<PruneBlock>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action() == action).count()
    }

    /// Whether the plan changes anything in Northflank.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action().writes())
    }

    /// Whether something is left to do: a change, or a live job still to
    /// be read before it can be adopted (`--detailed-exitcode`'s 2).
    pub fn pending(&self) -> bool {
        self.has_changes() || self.count(Action::Unverified) > 0
    }
}

pub fn plan(inputs: Inputs<'_>, options: Options) -> Plan {
    let mut result = Plan::default();
    for (i, d) in inputs.desired.iter().enumerate() {
        result.steps.push(Step::new(
            Some(d.key.clone()),
            Some(&d.name),
            Some(&d.file),
            desired_kind(inputs, i, d),
        ));
    }

    for inv in inputs.invalid {
        result.steps.push(Step::new(
            inv.key.clone(),
            inv.name.as_deref(),
            Some(&inv.file),
            Kind::Invalid {
                reason: inv.reason.clone(),
            },
        ));
    }

    // Recorded jobs no manifest names any more.
    let desired_keys: BTreeSet<&JobKey> = inputs.desired.iter().map(|d| &d.key).collect();
    let invalid_keys: BTreeSet<&JobKey> = inputs
        .invalid
        .iter()
        .filter_map(|i| i.key.as_ref())
        .collect();
    let gone: Vec<(&JobKey, &Record)> = inputs
        .recorded
        .jobs
        .iter()
        .filter(|(k, _)| !desired_keys.contains(k) && !invalid_keys.contains(k))
        .collect();
    let delete = may_prune(&mut result, inputs, options, gone.len());
    for (key, record) in &gone {
        let kind = if delete {
            Kind::Delete {
                changes: diff(&record.spec.value(), &Json::Null),
            }
        } else {
            Kind::Orphan
        };
        result.steps.push(Step::new(
            Some((*key).clone()),
            Some(&record.name),
            Some(&record.file),
            kind,
        ));
    }

    mark_renames(&mut result, inputs.recorded);
    result.steps.sort_by(|a, b| order(a).cmp(&order(b)));
    result
}

/// What to do with the manifest `d` (the `i`th desired job), from its
/// record, its rejection and what a live read found.
fn desired_kind(inputs: Inputs<'_>, i: usize, d: &Desired) -> Kind {
    match (inputs.recorded.jobs.get(&d.key), inputs.live.get(&d.key)) {
        // Adopted: found live after state loss.
        (None, Some(changes)) if changes.is_empty() => Kind::Unchanged {
            desired: i,
            drift: None,
        },
        (None, Some(changes)) => Kind::Update(Write::of(i, changes.clone())),
        (r, _) if is_rejected(inputs.recorded, d) && r.is_none_or(|r| r.digest != d.digest) => {
            let rejection = &inputs.recorded.rejected[&d.key];
            Kind::Rejected {
                desired: i,
                status: rejection.status,
                message: rejection.message.clone(),
            }
        }
        (None, None) if inputs.unverified.contains(&d.key) => Kind::Unverified { desired: i },
        (None, None) => Kind::Create(Write::of(i, diff(&Json::Null, &d.shown.value()))),
        (Some(r), _) if r.digest == d.digest => Kind::Unchanged {
            desired: i,
            drift: None,
        },
        (Some(r), _) => {
            let mut changes = diff(&r.spec.value(), &d.shown.value());
            if changes.is_empty() {
                // The digest covers what the shown form cannot: the
                // secret values behind equal (truncated) fingerprints.
                changes.push(Change {
                    path: "(sensitive values)".into(),
                    before: None,
                    after: None,
                });
            }
            Kind::Update(Write::of(i, changes))
        }
    }
}

/// Whether the `gone` recorded jobs are deleted. Under `--prune` they are,
/// unless a file could name one of them, no manifest was found at all, or
/// there are more than `--max-deletions`: the plan then says why (and the
/// first and last fail the run).
fn may_prune(result: &mut Plan, inputs: Inputs<'_>, options: Options, gone: usize) -> bool {
    let blocks = if options.prune {
        prune_blocks(inputs.invalid, inputs.problems)
    } else {
        Vec::new()
    };
    let guard = if !blocks.is_empty() {
        Some(blocked_warning(&blocks, gone))
    } else if !options.prune || gone == 0 {
        None
    } else if inputs.desired.is_empty() && inputs.invalid.is_empty() && !options.allow_empty {
        Some("prune skipped: no manifests were found; pass --allow-empty to delete every managed job".to_string())
    } else if gone > options.max_deletions {
        result.blocked_deletions = Some(gone);
        Some(format!(
            "prune refused: {gone} jobs would be deleted, more than --max-deletions {}; nothing was deleted",
            options.max_deletions
        ))
    } else {
        None
    };
    result.prune_blocked = blocks;
    let delete = options.prune && guard.is_none();
    result.warnings.extend(guard);
    delete
}

/// Whether the API has refused this very spec (the same digest) for good.
pub fn is_rejected(recorded: &State, d: &Desired) -> bool {
    recorded
        .rejected
        .get(&d.key)
        .is_some_and(|r| r.digest == d.digest)
}

/// Every file that stops pruning, once, with its first problem: each
/// invalid document (whatever made it invalid: it may be the manifest of a
/// managed job with a typo in its name or project) and each file with an
/// error of its own (unreadable, unparsable).
pub fn prune_blocks(invalid: &[Invalid], problems: &[PruneBlock]) -> Vec<PruneBlock> {
    let mut seen = BTreeSet::new();
    invalid
        .iter()
        .map(|i| PruneBlock {
            file: i.file.clone(),
            reason: i.reason.clone(),
        })
        .chain(problems.iter().cloned())
        .filter(|b| seen.insert(b.file.clone()))
        .collect()
}

fn blocked_warning(blocks: &[PruneBlock], gone: usize) -> String {
    const SHOWN: usize = 5;
    let files: Vec<&str> = blocks.iter().take(SHOWN).map(|b| b.file.as_str()).collect();
    let more = blocks.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "prune skipped: {} manifest file(s) hold a document that is invalid or could not be read ({}{more}), and it could name a managed job; nothing is deleted ({gone} job(s) without a manifest kept)",
        blocks.len(),
        files.join(", ")
    )
}

/// Attaches what live reads found to the unchanged jobs they were made for
/// and, under [`DriftMode::Correct`], turns drifted jobs into writes: an
/// update back to the manifest, or a create for a job deleted outside nfcron.
pub fn apply_drift(
    plan: &mut Plan,
    drifts: BTreeMap<JobKey, Drift>,
    mode: DriftMode,
    desired: &[Desired],
) {
    for step in &mut plan.steps {
        let Some(drift) = step.key.as_ref().and_then(|k| drifts.get(k)) else {
            continue;
        };
        let Kind::Unchanged { desired: i, .. } = step.kind else {
            continue;
        };
        let found = Some(drift.clone());
        step.kind = match (mode, drift) {
            (DriftMode::Correct, Drift::Changed(changes)) => Kind::Update(Write {
                drift: found,
                ..Write::of(i, changes.clone())
            }),
            (DriftMode::Correct, Drift::Missing) => Kind::Create(Write {
                drift: found,
                ..Write::of(i, diff(&Json::Null, &desired[i].shown.value()))
            }),
            _ => Kind::Unchanged {
                desired: i,
                drift: found,
            },
        };
    }
}

impl Plan {
    /// Jobs with drift found (changed or missing).
    pub fn drifted(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.drift().is_some_and(Drift::found))
            .count()
    }
}

/// A create and a vanished job, alone in the same file: most likely a
/// rename. Shown as a hint; the API has no rename, so it is still a create
/// and a delete (or orphan).
fn mark_renames(plan: &mut Plan, recorded: &State) {
    let mut creates: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut vanished: BTreeMap<&str, Vec<&JobKey>> = BTreeMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let Some(file) = step.file.as_deref() else {
            continue;
        };
        match step.action() {
            Action::Create => creates.entry(file).or_default().push(i),
            Action::Delete | Action::Orphan => {
                if let Some(key) = &step.key {
                    if recorded.jobs.contains_key(key) {
                        vanished.entry(file).or_default().push(key);
                    }
                }
            }
            _ => {}
        }
    }
    let renames: Vec<(usize, String)> = creates
        .iter()
        .filter_map(
            |(file, c)| match (c.as_slice(), vanished.get(file).map(Vec::as_slice)) {
                ([i], Some([old]))
                    if plan.steps[*i].key.as_ref().map(|k| (&k.team, &k.project))
                        == Some((&old.team, &old.project)) =>
                {
                    Some((*i, old.id.clone()))
                }
                _ => None,
            },
        )
        .collect();
    for (i, old) in renames {
        if let Some(w) = plan.steps[i].write_mut() {
            w.renamed_from = Some(old);
        }
    }
}

/// Creates, updates and the rest by job; deletes and orphans last.
fn order(step: &Step) -> (bool, Option<&JobKey>, Option<&str>) {
    (
        matches!(step.kind, Kind::Delete { .. } | Kind::Orphan),
        step.key.as_ref(),
        step.file.as_deref(),
    )
}

impl Step {
    fn new(key: Option<JobKey>, name: Option<&str>, file: Option<&str>, kind: Kind) -> Step {
        Step {
            key,
            name: name.map(str::to_string),
            file: file.map(str::to_string),
            kind,
        }
    }
}

/// Leaf-level differences between two specs, in path order.
pub fn diff(before: &Json, after: &Json) -> Vec<Change> {
    let (a, b) = (leaves(before), leaves(after));
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let (x, y) = (a.get(p), b.get(p));
            (x != y).then(|| Change {
                path: p.clone(),
                before: x.cloned().cloned(),
                after: y.cloned().cloned(),
            })
        })
        .collect()
}

/// Every leaf of a spec by path (`deployment.external.imagePath`,
/// `healthChecks[0].port`); empty objects and arrays are leaves.
pub fn leaves(value: &Json) -> BTreeMap<String, &Json> {
    let mut out = BTreeMap::new();
    flatten("", value, &mut out);
    out
}

/// Every array in a spec by path, whatever it holds.
pub fn arrays(value: &Json) -> BTreeMap<String, &Json> {
    fn walk<'a>(path: &str, value: &'a Json, out: &mut BTreeMap<String, &'a Json>) {
        match value {
            Json::Object(m) => m.iter().for_each(|(k, v)| walk(&join(path, k), v, out)),
            Json::Array(items) => {
                out.insert(path.to_string(), value);
                items
                    .iter()
                    .enumerate()
                    .for_each(|(i, v)| walk(&format!("{path}[{i}]"), v, out));
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

fn flatten<'a>(path: &str, value: &'a Json, out: &mut BTreeMap<String, &'a Json>) {
    match value {
        Json::Null if path.is_empty() => {}
        Json::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&join(path, k), v, out);
            }
        }
        Json::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        _ => {
            out.insert(path.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(id: &str) -> JobKey {
        JobKey {
            team: None,
            project: "p".into(),
            id: id.into(),
        }
    }

    fn desired(id: &str, file: &str, schedule: &str) -> Desired {
        let spec = json!({"name": id, "schedule": schedule});
        Desired {
            key: key(id),
            name: id.into(),
            file: file.into(),
            shown: Redacted::assume(&spec),
            digest: format!("{id}|{schedule}"),
            spec: Body::of(&spec),
        }
    }

    fn state_of(jobs: &[Desired]) -> State {
        State {
            jobs: jobs
                .iter()
                .map(|d| (d.key.clone(), d.record("t", None)))
                .collect(),
            ..State::default()
        }
    }

    const OPTS: Options = Options {
        prune: false,
        allow_empty: false,
        max_deletions: 10,
    };

    static NOT_READ: BTreeMap<JobKey, Vec<Change>> = BTreeMap::new();
    static NONE_UNVERIFIED: BTreeSet<JobKey> = BTreeSet::new();

    /// The planner's inputs when nothing is invalid, unreadable or read live.
    fn inputs<'a>(desired: &'a [Desired], recorded: &'a State) -> Inputs<'a> {
        Inputs {
            desired,
            invalid: &[],
            recorded,
            problems: &[],
            live: &NOT_READ,
            unverified: &NONE_UNVERIFIED,
        }
    }

    fn run(desired: &[Desired], recorded: &State, options: Options) -> Plan {
        plan(inputs(desired, recorded), options)
    }

    fn actions(p: &Plan) -> Vec<(String, &'static str)> {
        p.steps
            .iter()
            .map(|s| {
                (
                    s.key.as_ref().map(|k| k.id.clone()).unwrap_or_default(),
                    s.action().as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn create_update_unchanged_orphan() {
        let before = state_of(&[
            desired("a", "a.yaml", "0 1 * * *"),
            desired("b", "b.yaml", "0 1 * * *"),
            desired("c", "c.yaml", "0 1 * * *"),
        ]);
        let now = [
            desired("a", "a.yaml", "0 1 * * *"),
            desired("b", "b.yaml", "0 2 * * *"),
            desired("d", "d.yaml", "0 1 * * *"),
        ];
        let p = run(&now, &before, OPTS);
        assert_eq!(
            actions(&p),
            [
                ("a".into(), "unchanged"),
                ("b".into(), "update"),
                ("d".into(), "create"),
                ("c".into(), "orphan")
            ]
        );
        let update = &p.steps[1];
        assert_eq!(
            update.changes(),
            [Change {
                path: "schedule".into(),
                before: Some(json!("0 1 * * *")),
                after: Some(json!("0 2 * * *"))
            }]
        );
        assert!(p.has_changes());
        assert!(!run(&now[..1], &state_of(&now[..1]), OPTS).has_changes());
    }

    #[test]
    fn prune_deletes_only_recorded_jobs_and_respects_the_guards() {
        let before = state_of(&[desired("a", "a.yaml", "x"), desired("b", "b.yaml", "x")]);
        let now = [desired("a", "a.yaml", "x")];
        let prune = Options {
            prune: true,
            ..OPTS
        };
        assert_eq!(
            actions(&run(&now, &before, prune))[1],
            ("b".into(), "delete")
        );

        let guarded = plan(
            Inputs {
                problems: &[PruneBlock {
                    file: "broken.yaml".into(),
                    reason: "invalid YAML".into(),
                }],
                ..inputs(&now, &before)
            },
            prune,
        );
        assert_eq!(actions(&guarded)[1], ("b".into(), "orphan"));
        assert!(guarded.warnings[0].contains("could not be read"));
        assert_eq!(
            guarded.prune_blocked,
            [PruneBlock {
                file: "broken.yaml".into(),
                reason: "invalid YAML".into()
            }]
        );

        let empty = run(&[], &before, prune);
        assert_eq!(empty.count(Action::Delete), 0);
        assert!(empty.warnings[0].contains("--allow-empty"));
        assert_eq!(
            run(
                &[],
                &before,
                Options {
                    allow_empty: true,
                    ..prune
                }
            )
            .count(Action::Delete),
            2
        );

        let capped = run(
            &[],
            &before,
            Options {
                allow_empty: true,
                max_deletions: 1,
                ..prune
            },
        );
        assert_eq!(capped.count(Action::Delete), 0);
        assert_eq!(capped.blocked_deletions, Some(2));
    }

    #[test]
    fn invalid_manifests_keep_their_recorded_job() {
        let before = state_of(&[desired("a", "a.yaml", "x")]);
        let invalid = [Invalid {
            key: Some(key("a")),
            name: Some("a".into()),
            file: "a.yaml".into(),
            reason: "bad".into(),
        }];
        let p = plan(
            Inputs {
                invalid: &invalid,
                ..inputs(&[], &before)
            },
            Options {
                prune: true,
                allow_empty: true,
                ..OPTS
            },
        );
        assert_eq!(actions(&p), [("a".into(), "invalid")]);
    }

    #[test]
    fn any_invalid_document_blocks_every_deletion() {
        let before = state_of(&[desired("a", "a.yaml", "x"), desired("b", "b.yaml", "x")]);
        let prune = Options {
            prune: true,
            allow_empty: true,
            ..OPTS
        };
        // `a.yaml` now has `nmae:` (no key), and `b.yaml` is gone: neither
        // recorded job may be deleted, since `a.yaml` could name either.
        let typo = [Invalid {
            key: None,
            name: None,
            file: "a.yaml".into(),
            reason: "unknown field `nmae`".into(),
        }];
        // The same with a key nfcron never recorded (a bad project, an
        // unset `${JOB_NAME}`).
        let stranger = [Invalid {
            key: Some(JobKey {
                team: None,
                project: "q".into(),
                id: "${job_name}".into(),
            }),
            name: Some("${JOB_NAME}".into()),
            file: "a.yaml".into(),
            reason: "variable JOB_NAME is not set".into(),
        }];
        for invalid in [&typo[..], &stranger[..]] {
            let p = plan(
                Inputs {
                    invalid,
                    ..inputs(&[], &before)
                },
                prune,
            );
            assert_eq!(p.count(Action::Delete), 0, "{:?}", actions(&p));
            assert_eq!(p.count(Action::Orphan), 2);
            assert_eq!(
                p.prune_blocked,
                [PruneBlock {
                    file: "a.yaml".into(),
                    reason: invalid[0].reason.clone()
                }]
            );
            assert!(
                p.warnings[0].starts_with("prune skipped"),
                "{:?}",
                p.warnings
            );
            // Without --prune nothing is blocked: there was nothing to do.
            let p = plan(
                Inputs {
                    invalid,
                    ..inputs(&[], &before)
                },
                OPTS,
            );
            assert!(p.prune_blocked.is_empty() && p.warnings.is_empty());
        }
    }

    #[test]
    fn a_live_job_not_yet_read_is_unverified_not_created() {
        let jobs = [desired("a", "a.yaml", "x"), desired("b", "b.yaml", "x")];
        let p = plan(
            Inputs {
                unverified: &BTreeSet::from([key("a")]),
                ..inputs(&jobs, &State::default())
            },
            OPTS,
        );
        assert_eq!(
            actions(&p),
            [("a".into(), "unverified"), ("b".into(), "create")]
        );
        assert!(!Action::Unverified.writes());
        assert!(p.pending());
        let only_unverified = Plan {
            steps: p.steps[..1].to_vec(),
            ..Plan::default()
        };
        assert!(!only_unverified.has_changes() && only_unverified.pending());
    }

    #[test]
    fn a_rejected_spec_is_not_planned_again_until_its_digest_changes() {
        let rejection = |digest: &str| crate::state::Rejection {
            digest: digest.into(),
            status: 400,
            message: "Validation failed".into(),
            rejected_at: "t".into(),
        };
        let old = desired("u", "u.yaml", "0 1 * * *");
        let mut recorded = state_of(&[old]);
        recorded.rejected.insert(key("u"), rejection("u|0 2 * * *"));
        recorded.rejected.insert(key("n"), rejection("n|0 1 * * *"));
        let planned = |u: &str, n: &str| {
            let jobs = [desired("u", "u.yaml", u), desired("n", "n.yaml", n)];
            run(&jobs, &recorded, OPTS)
        };
        // Same digests as refused: rejected, with the API's answer.
        let p = planned("0 2 * * *", "0 1 * * *");
        assert_eq!(
            actions(&p),
            [("n".into(), "rejected"), ("u".into(), "rejected")]
        );
        assert!(
            matches!(&p.steps[0].kind, Kind::Rejected { status: 400, message, .. } if message == "Validation failed"),
            "{:?}",
            p.steps[0]
        );
        assert!(!p.has_changes() && !p.pending());
        // Changed since: planned as what it is.
        let p = planned("0 3 * * *", "0 4 * * *");
        assert_eq!(
            actions(&p),
            [("n".into(), "create"), ("u".into(), "update")]
        );
    }

    #[test]
    fn a_new_name_in_the_same_file_is_a_rename_hint() {
        let before = state_of(&[desired("old", "jobs.d/x.yaml", "x")]);
        let p = run(&[desired("new", "jobs.d/x.yaml", "x")], &before, OPTS);
        assert_eq!(
            actions(&p),
            [("new".into(), "create"), ("old".into(), "orphan")]
        );
        assert_eq!(p.steps[0].renamed_from(), Some("old"));
    }

    /// Carries a plan out as a fully successful apply would.
    fn apply(p: &Plan, desired: &[Desired], state: &mut State) {
        for step in &p.steps {
            match (step.action(), step.desired()) {
                (Action::Create | Action::Update, Some(i)) => {
                    state
                        .jobs
                        .insert(desired[i].key.clone(), desired[i].record("t", None));
                }
                (Action::Delete, _) => {
                    state
                        .jobs
                        .remove(step.key.as_ref().expect("deletes have keys"));
                }
                _ => {}
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 500,
            rng_seed: proptest::test_runner::RngSeed::Fixed(4),
            failure_persistence: None,
            ..Default::default()
        })]
        #[test]
        fn applying_a_plan_then_planning_again_changes_nothing(
            wanted in proptest::collection::btree_map("[a-f]", "[0-3]", 0..6),
            recorded in proptest::collection::btree_map("[a-f]", "[0-3]", 0..6),
            prune in proptest::bool::ANY,
        ) {
            let to_desired = |m: &BTreeMap<String, String>| -> Vec<Desired> {
                m.iter().map(|(id, s)| desired(id, &format!("{id}.yaml"), s)).collect()
            };
            let now = to_desired(&wanted);
            let mut state = state_of(&to_desired(&recorded));
            let options = Options { prune, allow_empty: true, max_deletions: usize::MAX };
            let first = run(&now, &state, options);
            apply(&first, &now, &mut state);
            let second = run(&now, &state, options);
            // Only unchanged jobs remain; without --prune, vanished jobs
            // stay orphans (they are never touched).
            for step in &second.steps {
                proptest::prop_assert!(
                    step.action() == Action::Unchanged || (!prune && step.action() == Action::Orphan),
                    "{:?} after applying {:?}", step, actions(&first)
                );
            }
            proptest::prop_assert_eq!(second.count(Action::Unchanged), now.len());
        }
    }

    #[test]
    fn drift_is_reported_or_corrected() {
        let jobs = [
            desired("a", "a.yaml", "x"),
            desired("b", "b.yaml", "x"),
            desired("c", "c.yaml", "x"),
        ];
        let state = state_of(&jobs);
        let change = Change {
            path: "schedule".into(),
            before: Some(json!("y")),
            after: Some(json!("x")),
        };
        let drifts = BTreeMap::from([
            (key("a"), Drift::Changed(vec![change.clone()])),
            (key("b"), Drift::Missing),
            (key("c"), Drift::Unknown),
        ]);
        let mut warn = run(&jobs, &state, OPTS);
        apply_drift(&mut warn, drifts.clone(), DriftMode::Warn, &jobs);
        assert_eq!(
            actions(&warn),
            [
                ("a".into(), "unchanged"),
                ("b".into(), "unchanged"),
                ("c".into(), "unchanged")
            ]
        );
        assert_eq!(warn.drifted(), 2);
        assert!(!warn.has_changes());
        let mut correct = run(&jobs, &state, OPTS);
        apply_drift(&mut correct, drifts, DriftMode::Correct, &jobs);
        assert_eq!(
            actions(&correct),
            [
                ("a".into(), "update"),
                ("b".into(), "create"),
                ("c".into(), "unchanged")
            ]
        );
        assert_eq!(correct.steps[0].changes(), [change]);
    }

    #[test]
    fn a_live_job_that_matches_is_adopted_unchanged() {
        let jobs = [
            desired("a", "a.yaml", "x"),
            desired("b", "b.yaml", "x"),
            desired("c", "c.yaml", "x"),
        ];
        let change = Change {
            path: "schedule".into(),
            before: Some(json!("y")),
            after: Some(json!("x")),
        };
        let live = BTreeMap::from([(key("a"), vec![]), (key("b"), vec![change])]);
        let p = plan(
            Inputs {
                live: &live,
                ..inputs(&jobs, &State::default())
            },
            OPTS,
        );
        assert_eq!(
            actions(&p),
            [
                ("a".into(), "unchanged"),
                ("b".into(), "update"),
                ("c".into(), "create")
            ]
        );
    }

    #[test]
    fn diff_walks_objects_and_arrays() {
        let a = json!({"x": {"y": 1}, "list": [1, 2], "gone": true});
        let b = json!({"x": {"y": 2}, "list": [1], "new": {}});
        let paths: Vec<String> = diff(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, ["gone", "list[1]", "new", "x.y"]);
    }
}
