//! Observe: the live reads a run makes before and after it decides, under
//! one read budget. Which jobs to read, and what a read shows, are pure
//! functions here; the loops around them only call the API and log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;

use super::{Config, Loaded};
use crate::api::ApiError;
use crate::apply::chain;
use crate::live::{self, Parts, Raw};
use crate::manifest::JobKey;
use crate::plan::{self, Action, Change, Desired, Drift, Plan};
use crate::remote::Api;
use crate::secret::Keyed;
use crate::state::{Record, State};

/// GET requests left for live reads in this run.
pub(super) struct Reads {
    left: u64,
    /// `--max-reads`, for the warning that it was reached.
    limit: u64,
}

impl Reads {
    pub(super) fn new(limit: u64) -> Reads {
        Reads { left: limit, limit }
    }

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

/// What looking for the jobs the state lacks found.
#[derive(Debug, Default)]
pub struct Adoption {
    /// Per adopted job: the fields that differ from the manifest.
    pub live: BTreeMap<JobKey, Vec<Change>>,
    /// Jobs the list call showed live (or that no list call could look
    /// for) that were not read: they are not written blind.
    pub unverified: BTreeSet<JobKey>,
    /// Of those, the jobs whose project could not be listed: reported as
    /// failed with the list call's error (the run fails; nothing is PUT).
    pub list_failed: BTreeMap<JobKey, Arc<ApiError>>,
    /// Live jobs in the listed projects that no manifest or record names.
    pub unmanaged: usize,
    /// Some project was listed: the baseline is partly live.
    pub read_any: bool,
}

/// A team and project: one list call serves every job in it.
type Scope = (Option<String>, String);

/// Jobs a manifest names but the state does not, by scope, in manifest
/// order. A job the API refused with this very spec is not sent, so there
/// is nothing to look for: no list call for it.
pub(super) fn lacking<'a>(
    desired: &'a [Desired],
    recorded: &State,
) -> BTreeMap<Scope, Vec<&'a Desired>> {
    let mut scopes: BTreeMap<Scope, Vec<&Desired>> = BTreeMap::new();
    for d in desired
        .iter()
        .filter(|d| !recorded.jobs.contains_key(&d.key) && !plan::is_rejected(recorded, d))
    {
        let scope = (d.key.team.clone(), d.key.project.clone());
        scopes.entry(scope).or_default().push(d);
    }
    scopes
}

/// The ids of the cron jobs a list call returned (an entry without a
/// `jobType` counts as cron).
pub(super) fn cron_ids(listed: &[Json]) -> BTreeSet<String> {
    listed
        .iter()
        .filter(|j| {
            j.get("jobType")
                .and_then(Json::as_str)
                .is_none_or(|t| t == "cron")
        })
        .filter_map(|j| j.get("id").and_then(Json::as_str).map(str::to_string))
        .collect()
}

/// Live jobs of `scope` that no manifest names and no record holds.
pub(super) fn unmanaged(
    ids: &BTreeSet<String>,
    (team, project): &Scope,
    named: &BTreeSet<&JobKey>,
    recorded: &State,
) -> usize {
    ids.iter()
        .map(|id| JobKey {
            team: team.clone(),
            project: project.clone(),
            id: id.clone(),
        })
        .filter(|key| !named.contains(key) && !recorded.jobs.contains_key(key))
        .count()
}

/// The managed fields of `spec` a live read shows otherwise: live before,
/// `spec` after.
pub(super) fn differences(
    spec: &Json,
    raw: &Raw,
    keyed: &Keyed,
    sensitive: &[String],
) -> Vec<Change> {
    live::drift(spec, &live::to_spec_for(raw, spec), keyed, sensitive)
        .into_iter()
        .map(|f| Change {
            path: f.path,
            before: Some(f.live),
            after: Some(f.recorded),
        })
        .collect()
}

/// Lists each project that has manifests without records, reads the jobs
/// found, and compares them with their manifests on the fields the
/// manifests set.
pub(super) async fn adopt(
    client: &impl Api,
    loaded: &Loaded,
    recorded: &State,
    config: &Config,
    reads: &mut Reads,
) -> Adoption {
    let (desired, keyed, sensitive) = (&loaded.desired, &loaded.keyed, &config.sensitive);
    let mut adoption = Adoption::default();
    let named: BTreeSet<&JobKey> = desired.iter().map(|d| &d.key).collect();
    for (scope, lacking) in lacking(desired, recorded) {
        let keys = lacking.iter().map(|d| d.key.clone());
        let ids = match list(client, &scope, reads).await {
            // Not listed: whether these jobs are live is unknown, and a
            // PUT would overwrite one that is. A later run looks.
            None => {
                adoption.unverified.extend(keys);
                continue;
            }
            // Whether these jobs are live is unknown: a PUT could
            // overwrite a live one blind (a mass re-PUT after a lost
            // `.nfcron/`). They fail with the list's error; a later run
            // lists again.
            Some(Err(e)) => {
                let e = Arc::new(e);
                adoption.unverified.extend(keys.clone());
                adoption.list_failed.extend(keys.map(|k| (k, e.clone())));
                continue;
            }
            Some(Ok(listed)) => cron_ids(&listed),
        };
        adoption.read_any = true;
        adoption.unmanaged += unmanaged(&ids, &scope, &named, recorded);
        for d in lacking.into_iter().filter(|d| ids.contains(&d.key.id)) {
            match read_found(client, d, keyed, sensitive, reads).await {
                Found::Live(changes) => {
                    tracing::info!(job = %d.key, differs = changes.len(), "found live; adopting instead of re-creating");
                    adoption.live.insert(d.key.clone(), changes);
                }
                Found::Unverified => {
                    adoption.unverified.insert(d.key.clone());
                }
                Found::Gone => {}
            }
        }
    }
    if !adoption.unverified.is_empty() {
        tracing::warn!(
            jobs = adoption.unverified.len(),
            max_reads = reads.limit,
            "jobs possibly live not read yet (--max-reads reached or a read failed): not written; the next run continues adopting them"
        );
    }
    adoption
}

/// One list call, if the budget allows (`None`: it does not).
async fn list(
    client: &impl Api,
    (team, project): &Scope,
    reads: &mut Reads,
) -> Option<Result<Vec<Json>, ApiError>> {
    if !reads.take(1) {
        return None;
    }
    let sent = client.requests_sent();
    let listed = client.list_jobs(team.as_deref(), project).await;
    // A list of more than one page costs a request per page.
    reads.spend((client.requests_sent() - sent).saturating_sub(1));
    if let Err(e) = &listed {
        tracing::warn!(project = %project, error = %chain(e), "cannot list live jobs; not writing the jobs the state lacks until a list succeeds");
    }
    Some(listed)
}

/// What reading a job the list showed found.
enum Found {
    /// Live: the fields that differ from the manifest.
    Live(Vec<Change>),
    /// Deleted since the list call: a create.
    Gone,
    /// Live but unread (budget, a failed read): never PUT blind (that is
    /// a mass re-PUT after a lost `.nfcron/`); a later run reads it.
    Unverified,
}

async fn read_found(
    client: &impl Api,
    d: &Desired,
    keyed: &Keyed,
    sensitive: &[String],
    reads: &mut Reads,
) -> Found {
    let parts = Parts::needed_by(&d.spec.value());
    if !reads.take(parts.cost()) {
        return Found::Unverified;
    }
    match live::read(client, &d.key, parts).await {
        Ok(Some(raw)) => Found::Live(differences(&d.shown.value(), &raw, keyed, sensitive)),
        Ok(None) => Found::Gone,
        Err(e) => {
            tracing::warn!(job = %d.key, error = %chain(&e), "cannot read live job; not writing it (unverified) until a read succeeds");
            Found::Unverified
        }
    }
}

/// The unchanged managed jobs of `plan` with their records, in plan order
/// from the `from`th (wrapping): where a drift sweep reads.
pub(super) fn refresh_targets<'a>(
    plan: &'a Plan,
    recorded: &'a State,
    from: usize,
) -> Vec<(&'a JobKey, &'a Record)> {
    let mut managed: Vec<(&JobKey, &Record)> = plan
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
    managed
}

/// What a read of a managed job shows against its record (`spec`): `None`
/// when it matches.
pub(super) fn drift_of(
    raw: Option<&Raw>,
    spec: &Json,
    keyed: &Keyed,
    sensitive: &[String],
) -> Option<Drift> {
    match raw {
        None => Some(Drift::Missing),
        Some(raw) => {
            let changes = differences(spec, raw, keyed, sensitive);
            (!changes.is_empty()).then_some(Drift::Changed(changes))
        }
    }
}

/// What a drift sweep found.
pub(super) struct Drifts {
    pub found: BTreeMap<JobKey, Drift>,
    /// Jobs read.
    pub read: usize,
}

/// Reads the unchanged managed jobs of `plan` and compares each with what
/// was last applied. Jobs past the read budget are `Drift::Unknown`.
pub(super) async fn refresh(
    client: &impl Api,
    plan: &Plan,
    recorded: &State,
    loaded: &Loaded,
    config: &Config,
    reads: &mut Reads,
    from: usize,
) -> Drifts {
    let (keyed, sensitive) = (&loaded.keyed, &config.sensitive);
    let mut drifts = BTreeMap::new();
    let mut read = 0;
    for (key, record) in refresh_targets(plan, recorded, from) {
        let spec = record.spec.value();
        let parts = Parts::needed_by(&spec);
        if !reads.take(parts.cost()) {
            drifts.insert(key.clone(), Drift::Unknown);
            continue;
        }
        read += 1;
        let raw = match live::read(client, key, parts).await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(job = %key, error = %chain(&e), "cannot read live job; drift unknown");
                drifts.insert(key.clone(), Drift::Unknown);
                continue;
            }
        };
        let Some(drift) = drift_of(raw.as_ref(), &spec, keyed, sensitive) else {
            continue;
        };
        let paths: Vec<&str> = match &drift {
            Drift::Changed(c) => c.iter().map(|c| c.path.as_str()).collect(),
            _ => Vec::new(),
        };
        tracing::warn!(project = %key.project, id = %key.id, kind = drift.kind(), fields = ?paths, "drift");
        drifts.insert(key.clone(), drift);
    }
    Drifts {
        found: drifts,
        read,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Options;
    use crate::reconcile::tests::{applied, key, world};

    #[test]
    fn only_cron_jobs_are_listed_as_live_and_an_entry_without_a_type_counts_as_one() {
        let listed = [
            json!({"id": "job-a", "jobType": "cron"}),
            json!({"id": "job-b", "jobType": "manual"}),
            json!({"id": "job-c"}),
            json!({"jobType": "cron"}),
        ];
        let ids: Vec<String> = cron_ids(&listed).into_iter().collect();
        assert_eq!(ids, ["job-a", "job-c"]);
        let (_, _, desired) = world(&[("job-a", ""), ("job-d", "")]);
        let named = desired.iter().map(|d| &d.key).collect();
        let recorded = applied(&world(&[("job-c", "")]).2);
        let scope = (None, "acme".to_string());
        assert_eq!(unmanaged(&cron_ids(&listed), &scope, &named, &recorded), 0);
        let other = [json!({"id": "job-e"}), json!({"id": "job-a"})];
        assert_eq!(unmanaged(&cron_ids(&other), &scope, &named, &recorded), 1);
    }

    #[test]
    fn only_jobs_the_state_lacks_and_the_api_did_not_refuse_are_looked_for() {
        let (_, _, desired) = world(&[("job-a", ""), ("job-b", ""), ("job-c", "")]);
        let mut recorded = applied(&desired[..1]);
        recorded.rejected.insert(
            key("job-b"),
            crate::state::Rejection {
                digest: desired[1].digest.clone(),
                status: 422,
                message: "refused".into(),
                rejected_at: "then".into(),
            },
        );
        let lacking = lacking(&desired, &recorded);
        let found: Vec<(&str, Vec<&str>)> = lacking
            .iter()
            .map(|((_, project), ds)| {
                (
                    project.as_str(),
                    ds.iter().map(|d| d.key.id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(found, [("acme", vec!["job-c"])]);
    }

    #[test]
    fn a_sweep_reads_the_unchanged_managed_jobs_from_its_cursor_and_wraps() {
        let world = world(&[("job-a", ""), ("job-b", ""), ("job-c", "")]);
        let recorded = applied(&world.2[..2]);
        let plan = plan::plan(
            plan::Inputs {
                desired: &world.2,
                invalid: &[],
                recorded: &recorded,
                problems: &[],
                live: &BTreeMap::new(),
                unverified: &BTreeSet::new(),
            },
            Options {
                prune: false,
                allow_empty: false,
                max_deletions: 10,
            },
        );
        // job-c is a create: nothing recorded to compare with.
        for (from, order) in [
            (0, ["job-a", "job-b"]),
            (1, ["job-b", "job-a"]),
            (4, ["job-a", "job-b"]),
        ] {
            let ids: Vec<&str> = refresh_targets(&plan, &recorded, from)
                .into_iter()
                .map(|(k, _)| k.id.as_str())
                .collect();
            assert_eq!(ids, order, "from {from}");
        }
        assert!(refresh_targets(&plan, &State::default(), 3).is_empty());
    }
}
