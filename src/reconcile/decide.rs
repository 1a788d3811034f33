//! Decide: the run's policy around `plan::plan`, pure. What the run takes
//! as recorded (rejections forgotten, carried writes accepted), what it
//! records without a PUT (adopted jobs that match live), when an empty
//! source may prune, which jobs fail for a list call that failed, and the
//! next run times. No I/O, no clock: `now` is an input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;

use super::observe::Adoption;
use super::{emptied_files, file_problems, Baseline, Config, Unrecorded};
use crate::api::ApiError;
use crate::apply::{Failure, Outcome};
use crate::manifest::{cron, Catalog, JobKey};
use crate::plan::{self, Desired, Drift, DriftMode, Invalid, Plan};
use crate::source::SourceFile;
use crate::state::State;
use crate::store::Change;

/// What the run takes as recorded, before it looks at the API.
#[derive(Debug)]
pub struct Prior {
    pub state: State,
    /// `Empty` when nothing was recorded (every job shows as create).
    pub baseline: Baseline,
    /// Changes already folded into `state` that the store has not seen:
    /// forgotten rejections, then carried writes.
    pub changes: Vec<Change>,
    /// Whether `changes` must be committed before any write (else they
    /// ride on the run's first commit).
    pub commit_first: bool,
    /// Carried writes accepted.
    pub carried: usize,
}

/// Takes `recorded` (`None`: nothing recorded) as the run's baseline.
/// Rejections are forgotten for jobs no valid manifest names (nothing is
/// left to hold back), and for all with `--retry-rejected` (they are
/// planned as what they are). A carried write is recorded when the
/// manifests still ask for it and the state still holds what it held when
/// the write was made (nothing recorded since); never in a dry-run.
pub fn prior(
    recorded: Option<State>,
    desired: &[Desired],
    carried: &[Unrecorded],
    config: &Config,
) -> Prior {
    let baseline = match recorded {
        Some(_) => Baseline::State,
        None => Baseline::Empty,
    };
    let mut state = recorded.unwrap_or_default();
    let named: BTreeSet<&JobKey> = desired.iter().map(|d| &d.key).collect();
    let forget: Vec<JobKey> = state
        .rejected
        .keys()
        .filter(|k| config.retry_rejected || !named.contains(k))
        .cloned()
        .collect();
    // Only rejections forgotten for want of a manifest are committed at
    // once; `--retry-rejected` records each job again when it is sent.
    let unnamed = !config.retry_rejected && !forget.is_empty();
    let mut changes: Vec<Change> = forget.into_iter().map(Change::Forgotten).collect();
    for change in &changes {
        change.apply_to(&mut state);
    }
    let wanted: BTreeMap<&JobKey, &str> = desired
        .iter()
        .map(|d| (&d.key, d.digest.as_str()))
        .collect();
    let mut accepted = 0;
    for Unrecorded { change, before } in carried.iter().filter(|_| !config.dry_run) {
        let key = change.key();
        let unchanged_since = state.jobs.get(key).map(|r| &r.digest) == before.as_ref();
        let still = match change {
            Change::Applied(_, r) => wanted.get(key) == Some(&r.digest.as_str()),
            Change::Deleted(_) => !wanted.contains_key(key),
            _ => false,
        };
        if still && unchanged_since {
            change.apply_to(&mut state);
            changes.push(change.clone());
            accepted += 1;
        }
    }
    Prior {
        state,
        baseline,
        changes,
        commit_first: unnamed || accepted > 0,
        carried: accepted,
    }
}

/// Everything a run knows when it decides.
pub struct Snapshot<'a> {
    pub config: &'a Config,
    pub files: &'a [SourceFile],
    pub catalog: &'a Catalog,
    pub desired: &'a [Desired],
    pub invalid: &'a [Invalid],
    pub prior: &'a Prior,
    pub adoption: &'a Adoption,
    /// The source revision planned, recorded with what is adopted.
    pub revision: Option<&'a str>,
    pub now: jiff::Timestamp,
}

/// What the run does, and what it reports whatever the writes do.
#[derive(Debug)]
pub struct Decision {
    pub plan: Plan,
    pub baseline: Baseline,
    /// Changes the state takes before any write (see [`Prior::changes`]),
    /// and adopted jobs that match live: the read just showed the API has
    /// exactly them, so they are recorded without a PUT.
    pub changes: Vec<Change>,
    /// `changes` are committed before any write; else they ride on the
    /// run's first commit.
    pub commit_first: bool,
    /// Jobs whose project could not be listed: failed with the list's
    /// error (they are `unverified` in the plan: nothing is PUT).
    failed: BTreeMap<JobKey, Arc<ApiError>>,
    now: jiff::Timestamp,
}

/// The plan and the run's policy around it (see the module's doc).
pub fn decide(s: &Snapshot<'_>) -> Decision {
    let mut problems = file_problems(s.catalog);
    problems.extend(emptied_files(s.files, s.catalog, &s.prior.state));
    // A fetch that found no file is a broken source, never "all manifests
    // gone": no prune, even with `--allow-empty`.
    let options = plan::Options {
        allow_empty: s.config.plan.allow_empty && !(s.config.fetched && s.files.is_empty()),
        ..s.config.plan
    };
    let mut plan = plan::plan(
        plan::Inputs {
            desired: s.desired,
            invalid: s.invalid,
            recorded: &s.prior.state,
            problems: &problems,
            live: &s.adoption.live,
            unverified: &s.adoption.unverified,
        },
        options,
    );
    fill_next_runs(&mut plan, s.desired, s.now);
    let mut changes = s.prior.changes.clone();
    let mut commit_first = s.prior.commit_first;
    if !s.config.dry_run {
        let at = s.now.round(jiff::Unit::Second).unwrap_or(s.now).to_string();
        let matching = s
            .desired
            .iter()
            .filter(|d| s.adoption.live.get(&d.key).is_some_and(Vec::is_empty));
        for d in matching {
            changes.push(Change::Applied(d.key.clone(), d.record(&at, s.revision)));
            commit_first = true;
        }
    }
    Decision {
        plan,
        baseline: match s.adoption.read_any {
            true => Baseline::Live,
            false => s.prior.baseline,
        },
        changes,
        commit_first,
        failed: s.adoption.list_failed.clone(),
        now: s.now,
    }
}

impl Decision {
    /// Folds in the drift reads of the plan's unchanged jobs found: with
    /// `correct`, a changed or missing job is written again.
    pub fn drift(&mut self, drifts: BTreeMap<JobKey, Drift>, mode: DriftMode, desired: &[Desired]) {
        plan::apply_drift(&mut self.plan, drifts, mode, desired);
        fill_next_runs(&mut self.plan, desired, self.now);
    }

    /// The outcomes the run reports: `outcomes` (one per step), except
    /// for the jobs that failed before any write.
    pub fn outcomes(&self, mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
        for (step, outcome) in self.plan.steps.iter().zip(outcomes.iter_mut()) {
            if let Some(e) = step.key.as_ref().and_then(|k| self.failed.get(k)) {
                *outcome = Outcome::Failed(Failure::Api(e.clone()));
            }
        }
        outcomes
    }
}

/// What a plan that is not carried out reports for each step.
pub fn planned(plan: &Plan) -> Vec<Outcome> {
    plan.steps
        .iter()
        .map(|s| match s.action().writes() {
            true => Outcome::Planned,
            false => Outcome::Skipped,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::reconcile::tests::{applied, config, key, world};
    use crate::state::Rejection;

    const NOW: &str = "2026-01-01T00:00:00.4Z";

    fn rejection(digest: &str) -> Rejection {
        Rejection {
            digest: digest.into(),
            status: 422,
            message: "refused".into(),
            rejected_at: NOW.into(),
        }
    }

    fn decided(
        config: &Config,
        (files, catalog, desired): &(Vec<SourceFile>, Catalog, Vec<Desired>),
        prior: &Prior,
        adoption: &Adoption,
    ) -> Decision {
        decide(&Snapshot {
            config,
            files,
            catalog,
            desired,
            invalid: &[],
            prior,
            adoption,
            revision: Some("abc"),
            now: NOW.parse().expect("timestamp"),
        })
    }

    fn actions(decision: &Decision) -> Vec<Action> {
        decision.plan.steps.iter().map(|s| s.action()).collect()
    }

    #[test]
    fn rejections_are_forgotten_for_jobs_no_manifest_names_and_all_with_retry_rejected() {
        let (_, _, desired) = world(&[("job-a", "")]);
        let digest = desired[0].digest.clone();
        // (retry_rejected, rejections kept, forgotten, committed first)
        let table: [(bool, &[&str], &[&str], bool); 2] = [
            (false, &["job-a"], &["job-gone"], true),
            (true, &[], &["job-a", "job-gone"], false),
        ];
        for (retry, kept, forgotten, first) in table {
            let state = State {
                rejected: [
                    (key("job-a"), rejection(&digest)),
                    (key("job-gone"), rejection("x")),
                ]
                .into(),
                ..State::default()
            };
            let config = Config {
                retry_rejected: retry,
                ..config(false)
            };
            let prior = prior(Some(state), &desired, &[], &config);
            let left: Vec<&str> = prior.state.rejected.keys().map(|k| k.id.as_str()).collect();
            assert_eq!(left, kept, "retry {retry}");
            let changes: Vec<Change> = forgotten
                .iter()
                .map(|id| Change::Forgotten(key(id)))
                .collect();
            assert_eq!(prior.changes, changes, "retry {retry}");
            assert_eq!(prior.commit_first, first, "retry {retry}");
            assert_eq!(prior.baseline, Baseline::State);
        }
        let nothing = prior(None, &desired, &[], &config(false));
        assert_eq!(nothing.baseline, Baseline::Empty);
        assert!(nothing.changes.is_empty() && !nothing.commit_first);
    }

    #[test]
    fn a_carried_write_is_recorded_only_while_the_manifests_ask_for_it_and_nothing_was_recorded_since(
    ) {
        let (_, _, old) = world(&[("job-a", "")]);
        let (_, _, new) = world(&[("job-a", "  suspended: true\n")]);
        let recorded = applied(&old);
        let was = Some(old[0].digest.clone());
        let edit = Change::Applied(key("job-a"), new[0].record("now", None));
        let delete = Change::Deleted(key("job-a"));
        // (what the manifests ask, the write, the digest before it, dry-run, recorded)
        let table = [
            (&new, &edit, &was, false, true),
            (&new, &edit, &was, true, false),
            (&old, &edit, &was, false, false),
            (&new, &edit, &Some("f".repeat(64)), false, false),
            (&Vec::new(), &delete, &was, false, true),
            (&old, &delete, &was, false, false),
        ];
        for (row, (desired, change, before, dry_run, taken)) in table.into_iter().enumerate() {
            let carried = [Unrecorded {
                change: change.clone(),
                before: before.clone(),
            }];
            let prior = prior(Some(recorded.clone()), desired, &carried, &config(dry_run));
            assert_eq!(prior.carried, usize::from(taken), "row {row}");
            assert_eq!(prior.commit_first, taken, "row {row}");
            let mut expected = recorded.clone();
            if taken {
                change.apply_to(&mut expected);
            }
            assert_eq!(prior.state, expected, "row {row}");
        }
    }

    #[test]
    fn adopted_jobs_that_match_live_are_recorded_without_a_put_when_applying() {
        let world = world(&[("job-a", ""), ("job-b", "")]);
        let prior = prior(None, &world.2, &[], &config(false));
        let differs = plan::Change {
            path: "backoffLimit".into(),
            before: Some(Json::from(2)),
            after: Some(Json::from(1)),
        };
        let adoption = Adoption {
            live: [(key("job-a"), Vec::new()), (key("job-b"), vec![differs])].into(),
            read_any: true,
            ..Adoption::default()
        };
        for dry_run in [false, true] {
            let decision = decided(&config(dry_run), &world, &prior, &adoption);
            assert_eq!(actions(&decision), [Action::Unchanged, Action::Update]);
            assert_eq!(decision.baseline, Baseline::Live);
            let recorded = match dry_run {
                true => Vec::new(),
                // One clock: the record's time is `now`, to the second.
                false => vec![Change::Applied(
                    key("job-a"),
                    world.2[0].record("2026-01-01T00:00:00Z", Some("abc")),
                )],
            };
            assert_eq!(decision.changes, recorded, "dry-run {dry_run}");
            assert_eq!(decision.commit_first, !dry_run);
        }
    }

    #[test]
    fn a_fetch_that_found_no_file_never_prunes_even_with_allow_empty() {
        let (_, _, were) = world(&[("job-a", "")]);
        let empty = world(&[]);
        let prior = prior(Some(applied(&were)), &[], &[], &config(false));
        // (fetched, what the managed job becomes)
        for (fetched, action) in [(false, Action::Delete), (true, Action::Orphan)] {
            let config = Config {
                fetched,
                plan: plan::Options {
                    prune: true,
                    allow_empty: true,
                    max_deletions: 10,
                },
                ..config(false)
            };
            let decision = decided(&config, &empty, &prior, &Adoption::default());
            assert_eq!(actions(&decision), [action], "fetched {fetched}");
        }
    }

    #[test]
    fn a_job_whose_project_could_not_be_listed_fails_with_the_lists_error() {
        let world = world(&[("job-a", ""), ("job-b", "")]);
        let prior = prior(None, &world.2, &[], &config(false));
        let error = Arc::new(ApiError::Timeout {
            call: crate::api::Call {
                method: "GET",
                path: "/v1/projects/acme/jobs".into(),
                job: None,
            },
            timeout: std::time::Duration::from_secs(1),
        });
        let adoption = Adoption {
            unverified: [key("job-a")].into(),
            list_failed: [(key("job-a"), error)].into(),
            ..Adoption::default()
        };
        let decision = decided(&config(false), &world, &prior, &adoption);
        assert_eq!(actions(&decision), [Action::Unverified, Action::Create]);
        assert_eq!(decision.baseline, Baseline::Empty);
        let outcomes = decision.outcomes(planned(&decision.plan));
        assert!(
            matches!(&outcomes[0], Outcome::Failed(Failure::Api(_))),
            "{outcomes:?}"
        );
        assert_eq!(outcomes[1], Outcome::Planned);
    }

    #[test]
    fn next_runs_are_counted_from_now_for_the_jobs_written_and_kept_by_drift_correction() {
        let (_, _, unchanged) = world(&[("job-a", "")]);
        let world = world(&[
            ("job-a", ""),
            ("job-b", ""),
            ("job-c", "  suspended: true\n"),
        ]);
        let prior = prior(Some(applied(&unchanged)), &world.2, &[], &config(false));
        let mut decision = decided(&config(false), &world, &prior, &Adoption::default());
        let runs = |d: &Decision| -> Vec<(Action, Vec<String>, bool)> {
            d.plan
                .steps
                .iter()
                .map(|s| (s.action(), s.next_runs().to_vec(), s.suspended()))
                .collect()
        };
        let next = vec![
            "2026-01-01T03:05:00Z".to_string(),
            "2026-01-02T03:05:00Z".into(),
            "2026-01-03T03:05:00Z".into(),
        ];
        let written = [
            (Action::Create, next.clone(), false),
            (Action::Create, Vec::new(), true),
        ];
        assert_eq!(runs(&decision)[1..], written);
        assert_eq!(runs(&decision)[0], (Action::Unchanged, Vec::new(), false));
        // Found missing and corrected: written again, with its next runs.
        let missing = [(key("job-a"), Drift::Missing)].into();
        decision.drift(missing, DriftMode::Correct, &world.2);
        assert_eq!(runs(&decision)[0], (Action::Create, next, false));
    }
}
