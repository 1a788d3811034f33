//! What the sidecar's status page (`GET /`) shows, kept as plain data.
//!
//! After every run the daemon folds the run's report into the [`Board`]
//! (`ran`, or `failed` when the run could not plan); the listener takes the
//! board's latest [`View`] (an `Arc`, so the lock is held for a pointer
//! copy) and `render::status` turns it into HTML. Showing the page never
//! calls the API, reads a file or waits for a run: everything it needs was
//! gathered when the run ended. Only the next run times are computed when
//! the page is drawn, from schedules parsed at the end of the run.
//!
//! Nothing here holds a secret value: a row carries the job's identity,
//! file, state, when and from which revision it was applied, a prefix of
//! the keyed digest of what was applied (a fingerprint), and the reasons
//! nfcron already prints elsewhere (diagnostics, which never quote a secret
//! value; API messages, escaped and cut to 1 KiB by `api::shown`).
//!
//! Drift found by a sweep is remembered across runs: a sweep reads a slice
//! of the jobs at a time, and the runs between slices read nothing, so a
//! job stays *drifted* until a later sweep reads it clean, or nfcron writes
//! it, or its manifest goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::api::RateLimit;
use crate::apply::Outcome;
use crate::manifest::{cron, JobKey};
use crate::plan::{Drift, Kind, Step};
use crate::reconcile::RunReport;

/// Characters of the keyed digest shown as the applied spec's fingerprint.
const FINGERPRINT_CHARS: usize = 12;

/// One job's state on the page. The first five are the contract of issue
/// 15; the last two name the other things a plan can say about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobState {
    // Ordered by how urgently an operator should look: the table lists
    // problems first.
    /// A write that may succeed later (5xx, timeout, 429, a state file
    /// that could not be written): the sidecar retries with backoff.
    Failed,
    /// The API refused this very spec for good; not sent again until the
    /// manifest changes.
    Rejected,
    /// The manifest does not validate.
    Invalid,
    /// A drift sweep found the live job changed or gone.
    Drifted,
    /// Possibly live, not read yet: not written until a run reads it.
    Unverified,
    /// Recorded as applied, but no manifest names it any more (kept:
    /// `--prune` is off, or a guard held it).
    Orphaned,
    /// Live matches the manifest, as far as nfcron knows.
    InSync,
}

impl JobState {
    /// The words shown in the State column.
    pub fn label(self) -> &'static str {
        match self {
            JobState::InSync => "in sync",
            JobState::Drifted => "drifted",
            JobState::Rejected => "rejected",
            JobState::Failed => "failed",
            JobState::Invalid => "invalid",
            JobState::Unverified => "unverified",
            JobState::Orphaned => "orphaned",
        }
    }

    /// The same as a token (CSS class, `data-state`).
    pub fn token(self) -> &'static str {
        match self {
            JobState::InSync => "in-sync",
            other => other.label(),
        }
    }

    pub const ALL: [JobState; 7] = [
        JobState::Failed,
        JobState::Rejected,
        JobState::Invalid,
        JobState::Drifted,
        JobState::Unverified,
        JobState::Orphaned,
        JobState::InSync,
    ];
}

/// When and from what a job was last applied (from the state file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// RFC 3339, UTC.
    pub at: String,
    /// The source revision (a Git commit), when known.
    pub revision: Option<String>,
    /// The first characters of the keyed digest of the applied spec.
    pub fingerprint: String,
}

/// One row of the jobs table.
#[derive(Debug, Clone)]
pub struct Row {
    /// `team/project/id` (control characters escaped), when known.
    pub job: Option<String>,
    pub name: Option<String>,
    pub file: Option<String>,
    pub state: JobState,
    /// Why, for anything but in sync: the diagnostic, the API's answer,
    /// the drifted fields.
    pub detail: Option<String>,
    pub applied: Option<Applied>,
    /// Parsed once per run; the next runs are computed when drawn.
    pub schedule: Option<cron::Schedule>,
    /// The manifest suspends the job: no next runs to show.
    pub suspended: bool,
}

/// What the last run did.
#[derive(Debug, Clone)]
pub struct LastRun {
    pub ended_at: Timestamp,
    pub took: Duration,
    pub outcome: RunOutcome,
}

#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// The run planned and applied; counts are of what it did.
    Completed {
        created: usize,
        updated: usize,
        deleted: usize,
        unchanged: usize,
        invalid: usize,
        rejected: usize,
        failed: usize,
        /// Jobs whose live state it read for drift.
        drift_read: usize,
        api_requests: u64,
    },
    /// The run could not plan (a fetch, the state file, the lock): the
    /// table still shows the run before it.
    Failed { reason: String },
}

/// The API's rate-limit budget as the last answer before the run's end
/// reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<Timestamp>,
    pub as_of: Timestamp,
}

impl Budget {
    /// `None` while the API has not reported a budget.
    pub fn of(rate: &RateLimit, now: Timestamp) -> Option<Budget> {
        if rate.limit.is_none() && rate.remaining.is_none() {
            return None;
        }
        let reset_at = rate.reset_at.and_then(|at| {
            let left = at.saturating_duration_since(Instant::now());
            let left = jiff::SignedDuration::try_from(left).ok()?;
            now.checked_add(left).ok()
        });
        Some(Budget {
            limit: rate.limit,
            remaining: rate.remaining,
            reset_at,
            as_of: now,
        })
    }
}

/// Where manifests come from, as shown (no URL: it may carry a user name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(String),
    Git {
        branch: Option<String>,
        path: String,
    },
}

/// Everything one drawing of the page needs.
#[derive(Debug, Clone)]
pub struct View {
    pub source: Source,
    /// The revision the table was planned from (the last good fetch).
    pub revision: Option<String>,
    pub started_at: Timestamp,
    pub last_run: Option<LastRun>,
    /// When the last run that planned ended (the table's age).
    pub planned_at: Option<Timestamp>,
    pub budget: Option<Budget>,
    /// Problems first, then by job.
    pub rows: Vec<Row>,
    /// A standby replica: the leader it follows (host, pid, since).
    pub standby: Option<String>,
}

/// The page's data, updated by the daemon after each run.
#[derive(Debug)]
pub struct Board {
    view: Arc<View>,
    /// Drift a sweep found, by job: the detail to show until a sweep reads
    /// the job clean or nfcron writes it.
    drifted: BTreeMap<JobKey, String>,
}

impl Board {
    pub fn new(source: Source) -> Board {
        Board {
            view: Arc::new(View {
                source,
                revision: None,
                started_at: Timestamp::now(),
                last_run: None,
                planned_at: None,
                budget: None,
                rows: Vec::new(),
                standby: None,
            }),
            drifted: BTreeMap::new(),
        }
    }

    /// The latest view: a pointer copy, so the lock is held for no time.
    pub fn view(&self) -> Arc<View> {
        self.view.clone()
    }

    /// This replica's role: standing by for `leader`, or (`None`) leading
    /// or alone.
    pub fn standby(&mut self, leader: Option<String>) {
        if self.view.standby == leader {
            return;
        }
        self.view = Arc::new(View {
            standby: leader,
            ..(*self.view).clone()
        });
    }

    /// Folds a run that planned into the board; `rate` is the client's
    /// budget as the run left it.
    pub fn ran(&mut self, run: &RunReport, took: Duration, rate: &RateLimit) {
        let now = Timestamp::now();
        let rows = self.rows(run);
        let count = |f: fn(&Kind, &Outcome) -> bool| {
            run.plan
                .steps
                .iter()
                .zip(&run.outcomes)
                .filter(|(s, o)| f(&s.kind, o))
                .count()
        };
        let outcome = RunOutcome::Completed {
            created: count(|k, o| matches!((k, o), (Kind::Create(_), Outcome::Applied))),
            updated: count(|k, o| matches!((k, o), (Kind::Update(_), Outcome::Applied))),
            deleted: count(|k, o| matches!((k, o), (Kind::Delete { .. }, Outcome::Applied))),
            unchanged: count(|k, _| matches!(k, Kind::Unchanged { .. })),
            invalid: count(|k, _| matches!(k, Kind::Invalid { .. })),
            rejected: count(|k, o| {
                matches!(k, Kind::Rejected { .. }) || matches!(o, Outcome::Rejected(_))
            }),
            failed: count(|_, o| matches!(o, Outcome::Failed(_) | Outcome::NotAttempted)),
            drift_read: run.refreshed,
            api_requests: run.api_requests,
        };
        self.view = Arc::new(View {
            revision: run.revision.clone().or_else(|| self.view.revision.clone()),
            last_run: Some(LastRun {
                ended_at: now,
                took,
                outcome,
            }),
            planned_at: Some(now),
            budget: Budget::of(rate, now).or(self.view.budget),
            rows,
            ..(*self.view).clone()
        });
    }

    /// A run that could not plan: the table stays as the last run left it.
    pub fn failed(&mut self, reason: String, took: Duration, rate: &RateLimit) {
        let now = Timestamp::now();
        self.view = Arc::new(View {
            last_run: Some(LastRun {
                ended_at: now,
                took,
                outcome: RunOutcome::Failed { reason },
            }),
            budget: Budget::of(rate, now).or(self.view.budget),
            ..(*self.view).clone()
        });
    }

    fn rows(&mut self, run: &RunReport) -> Vec<Row> {
        // In a run that read live jobs for drift, an unchanged job with no
        // drift reported was read clean (one not read is `Drift::Unknown`).
        let swept = run.refreshed > 0;
        let schedules: BTreeMap<&JobKey, (&str, bool)> = run
            .catalog
            .jobs
            .iter()
            .filter(|j| j.valid)
            .filter_map(|j| Some((j.key.as_ref()?, (j.schedule.as_deref()?, j.suspended))))
            .collect();
        let mut rows = Vec::with_capacity(run.plan.steps.len());
        let mut seen = BTreeSet::new();
        for (step, outcome) in run.plan.steps.iter().zip(&run.outcomes) {
            let Some((state, detail)) = self.judge(step, outcome, swept) else {
                // Deleted: no longer a job.
                continue;
            };
            if let Some(key) = &step.key {
                // A write (or anything but an unchanged job) ends what a
                // sweep found.
                if !matches!(step.kind, Kind::Unchanged { .. }) {
                    self.drifted.remove(key);
                }
                seen.insert(key.clone());
            }
            let record = step.key.as_ref().and_then(|k| run.state.jobs.get(k));
            let current = step
                .key
                .as_ref()
                .and_then(|k| schedules.get(k).copied())
                .filter(|_| matches!(state, JobState::InSync | JobState::Drifted));
            let suspended = current.is_some_and(|(_, suspended)| suspended);
            let schedule = current.and_then(|(s, _)| cron::parse(s).ok()).or_else(|| {
                // An orphan runs what was applied last.
                let spec = record.filter(|_| state == JobState::Orphaned)?.spec.value();
                cron::parse(spec.get("schedule")?.as_str()?).ok()
            });
            rows.push(Row {
                job: step.key.as_ref().map(ToString::to_string),
                name: step.name.clone().or_else(|| record.map(|r| r.name.clone())),
                file: step.file.clone().or_else(|| record.map(|r| r.file.clone())),
                state,
                detail,
                applied: record.map(|r| Applied {
                    at: r.applied_at.clone(),
                    revision: r.revision.clone(),
                    fingerprint: r.digest.chars().take(FINGERPRINT_CHARS).collect(),
                }),
                schedule,
                suspended,
            });
        }
        // Jobs gone from the plan take what was found about them along.
        self.drifted.retain(|k, _| seen.contains(k));
        rows.sort_by(|a, b| {
            (a.state, &a.job, &a.file, &a.name).cmp(&(b.state, &b.job, &b.file, &b.name))
        });
        rows
    }

    /// A step's state and why; `None` for a job the run deleted.
    fn judge(
        &mut self,
        step: &Step,
        outcome: &Outcome,
        swept: bool,
    ) -> Option<(JobState, Option<String>)> {
        let (state, detail): (JobState, Option<String>) = match (outcome, &step.kind) {
            (Outcome::Failed(f), _) => (JobState::Failed, Some(f.message())),
            (Outcome::NotAttempted, _) => (
                JobState::Failed,
                Some("not sent: the run stopped when the state file could not be written".into()),
            ),
            (Outcome::Rejected(f), _) => (JobState::Rejected, Some(f.message())),
            (
                _,
                Kind::Rejected {
                    status, message, ..
                },
            ) => (
                JobState::Rejected,
                Some(format!(
                    "HTTP {status}: {message} (not sent again until the manifest changes)"
                )),
            ),
            (_, Kind::Invalid { reason }) => (JobState::Invalid, Some(reason.clone())),
            (Outcome::Applied, Kind::Delete { .. }) => return None,
            (_, Kind::Delete { .. }) => (JobState::Orphaned, Some("to be deleted".into())),
            (_, Kind::Orphan) => (
                JobState::Orphaned,
                Some("no manifest names it; kept (--prune is off)".into()),
            ),
            (_, Kind::Unverified { .. }) => (
                JobState::Unverified,
                Some("may exist live: not written until a run has read it".into()),
            ),
            (_, Kind::Create(_) | Kind::Update(_)) => (JobState::InSync, None),
            (_, Kind::Unchanged { drift, .. }) => match step.key.as_ref() {
                Some(key) => self.sweep(key, drift.as_ref(), swept),
                None => (JobState::InSync, None),
            },
        };
        Some((state, detail))
    }

    /// An unchanged job: drifted while a sweep's finding stands (a new
    /// finding replaces it; a sweep that read the job clean ends it).
    fn sweep(
        &mut self,
        key: &JobKey,
        drift: Option<&Drift>,
        swept: bool,
    ) -> (JobState, Option<String>) {
        match drift {
            Some(d) if d.found() => {
                self.drifted.insert(key.clone(), drift_detail(d));
            }
            None if swept => {
                self.drifted.remove(key);
            }
            _ => {}
        }
        match self.drifted.get(key) {
            Some(d) => (JobState::Drifted, Some(d.clone())),
            None => (JobState::InSync, None),
        }
    }
}

fn drift_detail(drift: &Drift) -> String {
    match drift {
        Drift::Missing => "missing live: deleted outside nfcron".into(),
        Drift::Changed(changes) => {
            let fields: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
            format!("changed live: {}", fields.join(", "))
        }
        Drift::Unknown => "not read".into(),
    }
}

impl View {
    /// How many rows are in each state, in [`JobState::ALL`] order.
    pub fn counts(&self) -> Vec<(JobState, usize)> {
        JobState::ALL
            .iter()
            .map(|s| (*s, self.rows.iter().filter(|r| r.state == *s).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Catalog;
    use crate::plan::{Change, Plan, Step, Write};
    use crate::reconcile::Baseline;
    use crate::state::{Record, State};

    fn key(id: &str) -> JobKey {
        JobKey {
            team: None,
            project: "acme".into(),
            id: id.into(),
        }
    }

    fn step(id: &str, kind: Kind) -> Step {
        Step {
            key: Some(key(id)),
            name: Some(id.into()),
            file: Some(format!("jobs.d/{id}.yaml")),
            kind,
        }
    }

    fn report(steps: Vec<(Step, Outcome)>, refreshed: usize) -> RunReport {
        let mut state = State::default();
        for (s, _) in &steps {
            let k = s.key.clone().expect("key");
            state.jobs.insert(
                k.clone(),
                Record {
                    name: k.id.clone(),
                    file: format!("jobs.d/{}.yaml", k.id),
                    digest: "0123456789abcdef0123".into(),
                    spec: crate::secret::Redacted::assume(
                        &serde_json::json!({"schedule": "0 1 * * *"}),
                    ),
                    applied_at: "2026-11-28T12:00:00Z".into(),
                    revision: Some("c0ffee".into()),
                },
            );
        }
        let (steps, outcomes) = steps.into_iter().unzip();
        RunReport {
            catalog: Catalog::default(),
            plan: Plan {
                steps,
                ..Plan::default()
            },
            outcomes,
            baseline: Baseline::State,
            api_requests: 0,
            unmanaged: 0,
            revision: None,
            refreshed,
            state,
            unrecorded: Vec::new(),
        }
    }

    fn unchanged(drift: Option<Drift>) -> Kind {
        Kind::Unchanged { desired: 0, drift }
    }

    /// A write of the first desired job that changes nothing in particular.
    fn write() -> Write {
        Write::of(0, Vec::new())
    }

    fn states(board: &Board) -> Vec<(String, JobState)> {
        board
            .view()
            .rows
            .iter()
            .map(|r| (r.job.clone().expect("job"), r.state))
            .collect()
    }

    #[test]
    fn drift_is_remembered_until_a_sweep_reads_the_job_clean_or_it_is_written() {
        let mut board = Board::new(Source::Dir("jobs.d".into()));
        let rate = RateLimit::default();
        let changed = Drift::Changed(vec![Change {
            path: "schedule".into(),
            before: None,
            after: None,
        }]);
        let sweep = |a: Option<Drift>, b: Option<Drift>, refreshed| {
            report(
                vec![
                    (step("a", unchanged(a)), Outcome::Skipped),
                    (step("b", unchanged(b)), Outcome::Skipped),
                ],
                refreshed,
            )
        };
        board.ran(
            &sweep(Some(changed.clone()), Some(Drift::Missing), 2),
            Duration::ZERO,
            &rate,
        );
        let view = board.view();
        assert_eq!(view.rows[0].state, JobState::Drifted);
        assert_eq!(
            view.rows[0].detail.as_deref(),
            Some("changed live: schedule")
        );
        assert_eq!(
            view.rows[1].detail.as_deref(),
            Some("missing live: deleted outside nfcron")
        );
        // A run that read nothing (a resync, a file event) changes nothing.
        board.ran(&sweep(None, None, 0), Duration::ZERO, &rate);
        assert_eq!(
            states(&board),
            [
                ("acme/a".into(), JobState::Drifted),
                ("acme/b".into(), JobState::Drifted)
            ]
        );
        // A sweep that reads a clean and cannot read b (unknown).
        board.ran(&sweep(None, Some(Drift::Unknown), 1), Duration::ZERO, &rate);
        assert_eq!(
            states(&board),
            [
                ("acme/b".into(), JobState::Drifted),
                ("acme/a".into(), JobState::InSync)
            ]
        );
        // Writing b ends its drift.
        let write = Kind::Update(write());
        board.ran(
            &report(vec![(step("b", write), Outcome::Applied)], 0),
            Duration::ZERO,
            &rate,
        );
        board.ran(
            &report(vec![(step("b", unchanged(None)), Outcome::Skipped)], 0),
            Duration::ZERO,
            &rate,
        );
        assert_eq!(states(&board), [("acme/b".into(), JobState::InSync)]);
        let applied = board.view().rows[0].applied.clone().expect("applied");
        assert_eq!(applied.fingerprint, "0123456789ab");
        assert_eq!(applied.revision.as_deref(), Some("c0ffee"));
    }

    #[test]
    fn problems_sort_first_and_a_failed_run_keeps_the_table() {
        let mut board = Board::new(Source::Dir("jobs.d".into()));
        let rate = RateLimit::default();
        board.ran(
            &report(
                vec![
                    (step("a", unchanged(None)), Outcome::Skipped),
                    (
                        step(
                            "b",
                            Kind::Rejected {
                                desired: 0,
                                status: 422,
                                message: "no".into(),
                            },
                        ),
                        Outcome::Skipped,
                    ),
                    (step("c", Kind::Orphan), Outcome::Skipped),
                    (
                        step("d", Kind::Delete { changes: vec![] }),
                        Outcome::Applied,
                    ),
                ],
                0,
            ),
            Duration::ZERO,
            &rate,
        );
        let expect = [
            ("acme/b".to_string(), JobState::Rejected),
            ("acme/c".to_string(), JobState::Orphaned),
            ("acme/a".to_string(), JobState::InSync),
        ];
        assert_eq!(states(&board), expect);
        board.failed("fetch failed: boom".into(), Duration::ZERO, &rate);
        assert_eq!(states(&board), expect, "the table survives a failed run");
        assert!(matches!(
            board.view().last_run.as_ref().map(|r| &r.outcome),
            Some(RunOutcome::Failed { reason }) if reason == "fetch failed: boom"
        ));
        assert!(board.view().budget.is_none(), "no answer, no budget");
    }

    /// A run with a step of every kind and every outcome, ids a to m.
    fn every_kind() -> RunReport {
        let delete = || Kind::Delete {
            changes: Vec::new(),
        };
        let refused = crate::apply::Failure::Api(Arc::new(crate::api::ApiError::Status {
            call: Box::new(crate::api::Call {
                method: "PUT",
                path: "/v1/projects/acme/jobs/cron".into(),
                job: Some("x".into()),
            }),
            status: 422,
            message: "bad".into(),
            id: None,
            details: None,
            retry_after: None,
        }));
        report(
            vec![
                (step("a", Kind::Create(write())), Outcome::Applied),
                (
                    step("b", Kind::Update(write())),
                    Outcome::Failed(refused.clone()),
                ),
                (step("c", Kind::Update(write())), Outcome::Rejected(refused)),
                (step("d", Kind::Update(write())), Outcome::NotAttempted),
                (step("e", delete()), Outcome::Applied),
                (step("f", delete()), Outcome::NotAttempted),
                (step("g", delete()), Outcome::Planned),
                (step("h", Kind::Orphan), Outcome::Skipped),
                (
                    step(
                        "i",
                        Kind::Invalid {
                            reason: "no schedule".into(),
                        },
                    ),
                    Outcome::Skipped,
                ),
                (step("j", Kind::Unverified { desired: 0 }), Outcome::Skipped),
                (
                    step(
                        "k",
                        Kind::Rejected {
                            desired: 0,
                            status: 400,
                            message: "no".into(),
                        },
                    ),
                    Outcome::Skipped,
                ),
                (step("l", unchanged(Some(Drift::Missing))), Outcome::Skipped),
                (step("m", unchanged(None)), Outcome::Skipped),
            ],
            1,
        )
    }

    #[test]
    fn every_kind_of_step_and_outcome_gets_its_state_and_detail() {
        let run = every_kind();
        let mut board = Board::new(Source::Dir("jobs.d".into()));
        board.ran(&run, Duration::ZERO, &RateLimit::default());
        let rows: Vec<(String, JobState, Option<String>)> = board
            .view()
            .rows
            .iter()
            .map(|r| (r.job.clone().expect("job"), r.state, r.detail.clone()))
            .collect();
        let not_sent = "not sent: the run stopped when the state file could not be written";
        let refusal = "PUT /v1/projects/acme/jobs/cron (job x): HTTP 422: bad";
        // The deleted job (e) is no row; problems first.
        let expected = [
            ("b", JobState::Failed, Some(refusal)),
            ("d", JobState::Failed, Some(not_sent)),
            ("f", JobState::Failed, Some(not_sent)),
            ("c", JobState::Rejected, Some(refusal)),
            (
                "k",
                JobState::Rejected,
                Some("HTTP 400: no (not sent again until the manifest changes)"),
            ),
            ("i", JobState::Invalid, Some("no schedule")),
            (
                "l",
                JobState::Drifted,
                Some("missing live: deleted outside nfcron"),
            ),
            (
                "j",
                JobState::Unverified,
                Some("may exist live: not written until a run has read it"),
            ),
            ("g", JobState::Orphaned, Some("to be deleted")),
            (
                "h",
                JobState::Orphaned,
                Some("no manifest names it; kept (--prune is off)"),
            ),
            ("a", JobState::InSync, None),
            ("m", JobState::InSync, None),
        ]
        .map(|(id, state, detail)| (format!("acme/{id}"), state, detail.map(str::to_string)));
        assert_eq!(rows, expected);
    }
}
