//! Telling people what a run did: notifications (generic JSON signed with
//! HMAC-SHA256, Slack incoming webhooks) and GitHub commit statuses.
//!
//! What to say is decided here, from a run's plan and outcomes, by pure
//! functions ([`events`], [`Memory::novel`], [`github::statuses`]);
//! [`deliver`] sends it. A run yields at most one notification per event
//! kind and project, never one per job, and nothing when nothing happened.
//! Every message was already cleared of secrets where it was made (API
//! errors, diagnostics); no URL of a receiver is ever logged whole (a Slack
//! webhook URL is itself a secret).

pub mod deliver;
pub mod github;

use std::collections::{BTreeMap, BTreeSet};

use crate::apply::Outcome;
use crate::plan::{Action, Drift, Kind, Plan};

/// What happened, one kind per notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    Applied,
    Failed,
    Rejected,
    Drift,
    Invalid,
    PruneBlocked,
    /// The Git source's tip was refused by `--verify-signatures`.
    Unverified,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Applied => "applied",
            EventKind::Failed => "failed",
            EventKind::Rejected => "rejected",
            EventKind::Drift => "drift",
            EventKind::Invalid => "invalid",
            EventKind::PruneBlocked => "prune_blocked",
            EventKind::Unverified => "unverified",
        }
    }

    /// `error` for what someone must fix; `info` for what went as asked
    /// or what the sidecar found and reports.
    pub fn severity(self) -> &'static str {
        match self {
            EventKind::Applied | EventKind::Drift => "info",
            _ => "error",
        }
    }
}

/// One job in a notification.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobEntry {
    /// The job's id, or the manifest file when no id could be derived.
    pub id: String,
    /// What the plan did: create, update, delete, unchanged, invalid.
    pub action: String,
    /// applied, failed, rejected, drifted, invalid, blocked.
    pub result: String,
    pub message: Option<String>,
}

/// One notification: every job of one project (of one team) that one kind
/// of thing happened to in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The team of team routes (`team:` in manifests), if any.
    pub team: Option<String>,
    /// `None` when the run cannot tell (a manifest without a project).
    pub project: Option<String>,
    pub revision: Option<String>,
    pub jobs: Vec<JobEntry>,
}

impl Event {
    /// One line for people: what, how many, where, at which revision.
    pub fn summary(&self) -> String {
        let n = self.jobs.len();
        let jobs = if n == 1 { "job" } else { "jobs" };
        let what = match self.kind {
            EventKind::Applied => format!("applied {n} {jobs}"),
            EventKind::Failed if self.jobs.iter().all(|j| j.id.is_empty()) => {
                "the run failed".to_string()
            }
            EventKind::Failed => format!("{n} {jobs} failed (retried later)"),
            EventKind::Rejected => format!("the API refused {n} {jobs}"),
            EventKind::Drift => format!("drift on {n} {jobs}"),
            EventKind::Invalid => format!("{n} invalid manifest(s)"),
            EventKind::PruneBlocked => "pruning blocked: nothing deleted".to_string(),
            EventKind::Unverified => {
                "the Git source's tip is not applied: its signature is not accepted".to_string()
            }
        };
        let mut line = format!("nfcron: {what}");
        match (&self.team, &self.project) {
            (Some(team), Some(project)) => line.push_str(&format!(" in {team}/{project}")),
            (None, Some(project)) => line.push_str(&format!(" in {project}")),
            _ => {}
        }
        if let Some(revision) = &self.revision {
            line.push_str(&format!(" at {}", short(revision)));
        }
        line
    }
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

/// The events of one run: its outcomes (applied, failed, refused), what
/// its reads found (drift), its manifests (invalid) and its pruning
/// (blocked). `outcomes` holds one per step, or none for a run that
/// stopped before applying.
pub fn events(plan: &Plan, outcomes: &[Outcome], revision: Option<&str>) -> Vec<Event> {
    type Group = (EventKind, Option<String>, Option<String>);
    let mut grouped: BTreeMap<Group, Vec<JobEntry>> = BTreeMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let team = step.key.as_ref().and_then(|k| k.team.clone());
        let project = step.key.as_ref().map(|k| k.project.clone());
        let id = step
            .key
            .as_ref()
            .map(|k| k.id.clone())
            .or_else(|| step.file.clone())
            .unwrap_or_default();
        let action = step.action().as_str().to_string();
        let entry = |result: &str, message: Option<String>| JobEntry {
            id: id.clone(),
            action: action.clone(),
            result: result.to_string(),
            message,
        };
        let mut add = |kind, e| {
            let group = (kind, team.clone(), project.clone());
            grouped.entry(group).or_default().push(e)
        };
        match outcomes.get(i) {
            Some(Outcome::Applied) => add(EventKind::Applied, entry("applied", None)),
            Some(Outcome::Failed(f)) => add(EventKind::Failed, entry("failed", Some(f.message()))),
            Some(Outcome::Rejected(f)) => {
                add(EventKind::Rejected, entry("rejected", Some(f.message())))
            }
            _ => {}
        }
        if let Some(drift) = step.drift().filter(|d| d.found()) {
            // A write that landed put the manifest back over it.
            let result = match outcomes.get(i) {
                Some(Outcome::Applied) => "corrected",
                _ => "drifted",
            };
            add(EventKind::Drift, entry(result, Some(drift_message(drift))));
        }
        if let Kind::Invalid { reason } = &step.kind {
            add(EventKind::Invalid, entry("invalid", Some(reason.clone())));
        }
    }
    let mut events: Vec<Event> = grouped
        .into_iter()
        .map(|((kind, team, project), jobs)| Event {
            kind,
            team,
            project,
            revision: revision.map(str::to_string),
            jobs,
        })
        .collect();
    if let Some(event) = prune_blocked(plan, revision) {
        events.push(event);
    }
    events
}

/// An event about the run, not about jobs of a project.
fn run_level(kind: EventKind, revision: Option<&str>, entry: JobEntry) -> Event {
    Event {
        kind,
        team: None,
        project: None,
        revision: revision.map(str::to_string),
        jobs: vec![entry],
    }
}

/// Which fields drifted (never their values), or that the job is gone.
fn drift_message(drift: &Drift) -> String {
    match drift {
        Drift::Changed(changes) => {
            let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
            format!("changed live: {}", paths.join(", "))
        }
        Drift::Missing => "deleted outside nfcron".to_string(),
        Drift::Unknown => "not read".to_string(),
    }
}

/// Pruning stopped: by files that could not be read or parsed (a job they
/// hold might be deleted by mistake), or by `--max-deletions`.
fn prune_blocked(plan: &Plan, revision: Option<&str>) -> Option<Event> {
    let mut jobs: Vec<JobEntry> = plan
        .prune_blocked
        .iter()
        .map(|b| JobEntry {
            id: b.file.clone(),
            action: Action::Delete.as_str().to_string(),
            result: "blocked".to_string(),
            message: Some(b.reason.clone()),
        })
        .collect();
    if let Some(n) = plan.blocked_deletions {
        // Blocked deletions stay in the plan as orphans (kept).
        jobs.extend(
            plan.steps
                .iter()
                .filter(|s| matches!(s.kind, Kind::Delete { .. } | Kind::Orphan))
                .filter_map(|s| s.key.as_ref())
                .map(|k| JobEntry {
                    id: k.id.clone(),
                    action: Action::Delete.as_str().to_string(),
                    result: "blocked".to_string(),
                    message: Some(format!(
                        "{n} deletions are more than --max-deletions allows"
                    )),
                }),
        );
    }
    (!jobs.is_empty()).then(|| Event {
        kind: EventKind::PruneBlocked,
        team: None,
        project: single_project(plan),
        revision: revision.map(str::to_string),
        jobs,
    })
}

/// The project every step belongs to, when there is exactly one.
fn single_project(plan: &Plan) -> Option<String> {
    let projects: BTreeSet<&str> = plan
        .steps
        .iter()
        .filter_map(|s| s.key.as_ref().map(|k| k.project.as_str()))
        .collect();
    match projects.len() {
        1 => projects.into_iter().next().map(str::to_string),
        _ => None,
    }
}

/// What the sidecar already said about conditions that persist from run
/// to run (drift, invalid manifests, failures retried, blocked pruning),
/// so that each is said once until it changes or clears.
#[derive(Debug, Default)]
pub struct Memory {
    /// (kind, team, project, job id) -> the message last sent.
    said: BTreeMap<Said, Option<String>>,
    /// context -> (commit, state, description) last set on GitHub.
    statuses: BTreeMap<String, (String, &'static str, String)>,
}

/// What a lasting condition is remembered by.
type Said = (EventKind, Option<String>, Option<String>, String);

impl Memory {
    /// Whether `status` on `sha` differs from what was last set.
    fn status_changed(&mut self, sha: &str, status: &github::Status) -> bool {
        let now = (sha.to_string(), status.state, status.description.clone());
        self.statuses.insert(status.context(), now.clone()) != Some(now)
    }

    /// Keeps of `events` what was not said before, and remembers this
    /// run's conditions. A condition a run could see and did not find has
    /// cleared, and is said again when it comes back: every manifest is
    /// read each run, but drift only in a `swept` run (one that read live
    /// jobs), and there only for jobs not left `Unknown`. Drift a write
    /// corrected is said and not remembered: if it comes back, it is new.
    pub fn novel(&mut self, events: Vec<Event>, plan: &Plan, swept: bool) -> Vec<Event> {
        self.forget_cleared(&events, plan, swept);
        events
            .into_iter()
            .filter_map(|mut event| {
                if event.kind == EventKind::Applied || event.kind == EventKind::Rejected {
                    // Each is a change that happened once.
                    return Some(event);
                }
                let (kind, team, project) = (event.kind, &event.team, &event.project);
                event.jobs.retain(|job| {
                    let key = (kind, team.clone(), project.clone(), job.id.clone());
                    if job.result == "corrected" {
                        self.said.remove(&key);
                        return true;
                    }
                    self.said.insert(key, job.message.clone()).as_ref() != Some(&job.message)
                });
                (!event.jobs.is_empty()).then_some(event)
            })
            .collect()
    }

    /// Whether a run that failed as a whole failed anew (another error,
    /// or the first since a run went through). Other conditions are kept:
    /// a failed run saw none of them.
    fn first_failure(&mut self, event: &Event) -> bool {
        let Some(job) = event.jobs.first() else {
            return true;
        };
        let key = (event.kind, None, None, job.id.clone());
        self.said.insert(key, job.message.clone()).as_ref() != Some(&job.message)
    }

    fn forget_cleared(&mut self, events: &[Event], plan: &Plan, swept: bool) {
        let present: BTreeSet<Said> = events
            .iter()
            .flat_map(|e| {
                let group = (e.kind, e.team.clone(), e.project.clone());
                e.jobs
                    .iter()
                    .map(move |j| (group.0, group.1.clone(), group.2.clone(), j.id.clone()))
            })
            .collect();
        // Jobs still planned whose live state this run did not read.
        let unread: BTreeSet<(Option<String>, Option<String>, String)> = plan
            .steps
            .iter()
            .filter(|s| !swept || matches!(s.drift(), Some(Drift::Unknown)))
            .filter_map(|s| s.key.as_ref())
            .map(|k| (k.team.clone(), Some(k.project.clone()), k.id.clone()))
            .collect();
        self.said.retain(|key, _| {
            let (kind, team, project, id) = key;
            present.contains(key)
                || (*kind == EventKind::Drift
                    && unread.contains(&(team.clone(), project.clone(), id.clone())))
        });
    }
}

/// What a run did, as notifications see it.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub plan: &'a Plan,
    /// One per step (none for a run that stopped before applying).
    pub outcomes: &'a [Outcome],
    pub revision: Option<&'a str>,
    /// Not a dry-run: GitHub statuses are set only then.
    pub applying: bool,
    /// The run read live jobs for drift.
    pub swept: bool,
}

/// What to tell, and whom: resolved once from flags and environment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `--notify` (and `NFCRON_NOTIFY`).
    pub targets: Vec<deliver::Target>,
    /// `NFCRON_NOTIFY_SECRET`: signs generic bodies (`X-Signature`).
    pub secret: Option<crate::secret::Token>,
    /// `--github-status`.
    pub github: Option<github::Config>,
    /// `GITHUB_SHA`: the commit a run on a directory source reports on.
    pub commit: Option<String>,
    /// Values no body may carry even if an error quotes them: the API
    /// token, the GitHub token, the notify secret.
    pub hidden: Vec<crate::secret::Token>,
}

impl Config {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.github.is_none()
    }

    /// The sidecar's delivery queues: one per receiver, one for GitHub.
    pub fn lanes(&self) -> usize {
        self.targets.len() + 1
    }

    /// The POSTs a run calls for: its events to every receiver, and, after
    /// an applying run on a known commit, its statuses. The sidecar passes
    /// its `memory` so that a lasting condition is said once.
    pub fn outgoing(&self, run: &Run<'_>, memory: Option<&mut Memory>) -> Vec<deliver::Outgoing> {
        let Run {
            plan,
            outcomes,
            revision,
            applying,
            swept,
        } = *run;
        let mut events = events(plan, outcomes, revision);
        let mut statuses = match (&self.github, self.commit_of(revision)) {
            (Some(_), Some(sha)) if applying => github::statuses(plan, outcomes)
                .into_iter()
                .map(|s| (sha.to_string(), s))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(memory) = memory {
            events = memory.novel(events, plan, swept);
            statuses.retain(|(sha, s)| memory.status_changed(sha, s));
        }
        let mut outs = self.tell(events);
        if let Some(config) = &self.github {
            outs.extend(statuses.iter().map(|(sha, s)| {
                let mut out = github::outgoing(config, sha, s);
                out.lane = self.lanes() - 1;
                out
            }));
        }
        outs
    }

    /// The POSTs that say the Git source's tip `commit` was refused by
    /// `--verify-signatures`, and why (the last verified revision stays).
    pub fn refused_source(&self, commit: &str, reason: &str) -> Vec<deliver::Outgoing> {
        let entry = JobEntry {
            id: commit.to_string(),
            action: "verify".to_string(),
            result: "refused".to_string(),
            message: Some(reason.to_string()),
        };
        self.tell(vec![run_level(EventKind::Unverified, Some(commit), entry)])
    }

    /// The event of a run that failed as a whole (state, lock, source):
    /// one `failed` notification with the error, no job named. The
    /// sidecar passes its `memory`: the same failure is said once.
    pub fn run_failed(
        &self,
        error: &str,
        revision: Option<&str>,
        memory: Option<&mut Memory>,
    ) -> Vec<deliver::Outgoing> {
        let entry = JobEntry {
            id: String::new(),
            action: "run".to_string(),
            result: "failed".to_string(),
            message: Some(error.to_string()),
        };
        let event = run_level(EventKind::Failed, revision, entry);
        let said_before = memory.is_some_and(|m| !m.first_failure(&event));
        match said_before {
            true => Vec::new(),
            false => self.tell(vec![event]),
        }
    }

    /// The POSTs of `events` to every receiver, with every hidden value
    /// taken out of their messages.
    fn tell(&self, mut events: Vec<Event>) -> Vec<deliver::Outgoing> {
        for job in events.iter_mut().flat_map(|e| e.jobs.iter_mut()) {
            if let Some(message) = &mut job.message {
                // As for spec secrets: a value this short would match by
                // chance, and says nothing by itself.
                let hidden = self.hidden.iter().filter(|h| h.expose().len() >= 4);
                for hidden in hidden {
                    if message.contains(hidden.expose()) {
                        *message = message.replace(hidden.expose(), "(sensitive)");
                    }
                }
            }
        }
        let now = jiff::Timestamp::now();
        events
            .iter()
            .flat_map(|e| deliver::outgoing(&self.targets, self.secret.as_ref(), e, now))
            .collect()
    }

    /// The source's revision when it is a commit id, else `GITHUB_SHA`.
    fn commit_of<'a>(&'a self, revision: Option<&'a str>) -> Option<&'a str> {
        revision
            .filter(|r| github::is_sha(r))
            .or(self.commit.as_deref())
            .filter(|r| github::is_sha(r))
    }
}

#[cfg(test)]
mod tests;
