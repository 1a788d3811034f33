use std::sync::Arc;

use super::*;
use crate::api::{ApiError, Call};
use crate::apply::Failure;
use crate::manifest::JobKey;
use crate::plan::{Change, PruneBlock, Step, Write};
use crate::secret::Token;

fn key(project: &str, id: &str) -> Option<JobKey> {
    Some(JobKey {
        team: None,
        project: project.into(),
        id: id.into(),
    })
}

fn step(project: &str, id: &str, kind: Kind) -> Step {
    Step {
        key: key(project, id),
        name: Some(id.into()),
        file: Some(format!("jobs.d/{id}.yaml")),
        kind,
    }
}

/// A write of the first desired job that changes nothing in particular.
fn write() -> Write {
    Write::of(0, Vec::new())
}

fn unchanged(drift: Option<Drift>) -> Kind {
    Kind::Unchanged { desired: 0, drift }
}

fn changed(path: &str) -> Drift {
    Drift::Changed(vec![Change {
        path: path.into(),
        before: None,
        after: None,
    }])
}

fn refused(message: &str) -> Failure {
    Failure::Api(Arc::new(ApiError::Status {
        call: Box::new(Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: None,
        }),
        status: 400,
        message: message.into(),
        id: None,
        details: None,
        retry_after: None,
    }))
}

fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        steps,
        ..Plan::default()
    }
}

/// `kind: id, id` per event.
fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let ids: Vec<&str> = e.jobs.iter().map(|j| j.id.as_str()).collect();
            format!("{}: {}", e.kind.as_str(), ids.join(", "))
        })
        .collect()
}

#[test]
fn one_event_per_kind_and_project_naming_every_job() {
    let plan = plan(vec![
        step("p", "a", Kind::Create(write())),
        step("p", "b", Kind::Update(write())),
        step("p", "c", Kind::Create(write())),
        step("q", "d", Kind::Create(write())),
    ]);
    let outcomes = [
        Outcome::Applied,
        Outcome::Applied,
        Outcome::Rejected(refused("bad plan")),
        Outcome::Applied,
    ];
    let events = events(&plan, &outcomes, Some("0123456789abcdef"));
    assert_eq!(
        kinds(&events),
        ["applied: a, b", "applied: d", "rejected: c"]
    );
    assert_eq!(events[0].project.as_deref(), Some("p"));
    assert_eq!(events[2].kind.severity(), "error");
    assert_eq!(events[0].kind.severity(), "info");
    assert!(events[2].jobs[0]
        .message
        .as_deref()
        .is_some_and(|m| m.contains("bad plan")));
    assert_eq!(
        events[0].summary(),
        "nfcron: applied 2 jobs in p at 0123456789ab"
    );
}

#[test]
fn a_run_that_changed_nothing_has_no_events() {
    let plan = plan(vec![
        step("p", "a", unchanged(None)),
        step("p", "b", unchanged(None)),
    ]);
    assert_eq!(
        events(&plan, &[Outcome::Skipped, Outcome::Skipped], None),
        []
    );
    // A dry-run's plan: nothing was applied.
    let plan = super::tests::plan(vec![step("p", "a", Kind::Create(write()))]);
    assert_eq!(events(&plan, &[Outcome::Planned], None), []);
}

#[test]
fn drift_names_fields_never_values_and_invalid_manifests_their_reason() {
    let plan = plan(vec![
        step("p", "a", unchanged(Some(changed("schedule")))),
        step("p", "b", unchanged(Some(Drift::Missing))),
        step("p", "c", unchanged(Some(Drift::Unknown))),
        Step {
            key: None,
            name: None,
            file: Some("jobs.d/broken.yaml".into()),
            kind: Kind::Invalid {
                reason: "hour 25 is outside 0-23".into(),
            },
        },
    ]);
    let events = events(&plan, &[], None);
    assert_eq!(
        kinds(&events),
        ["drift: a, b", "invalid: jobs.d/broken.yaml"]
    );
    assert_eq!(
        events[0].jobs[0].message.as_deref(),
        Some("changed live: schedule")
    );
    assert_eq!(events[1].project, None);
}

#[test]
fn blocked_pruning_is_one_event() {
    let mut plan = plan(vec![step("p", "a", unchanged(None))]);
    plan.prune_blocked = vec![PruneBlock {
        file: "jobs.d/x.yaml".into(),
        reason: "cannot parse".into(),
    }];
    let events = events(&plan, &[], None);
    assert_eq!(kinds(&events), ["prune_blocked: jobs.d/x.yaml"]);
    assert_eq!(events[0].project.as_deref(), Some("p"));
}

#[test]
fn the_sidecar_says_a_lasting_condition_once_until_it_changes_or_clears() {
    let mut memory = Memory::default();
    let mut say = |p: &Plan, swept| kinds(&memory.novel(events(p, &[], None), p, swept));
    let drifted = plan(vec![step("p", "a", unchanged(Some(changed("schedule"))))]);
    assert_eq!(say(&drifted, true), ["drift: a"]);
    // The same drift on the next sweep: nothing new.
    assert_eq!(say(&drifted, true), Vec::<String>::new());
    // Runs that did not read the job do not clear it: a run without a
    // sweep, and a sweep whose budget ran out before it.
    let unread = plan(vec![step("p", "a", unchanged(None))]);
    assert_eq!(say(&unread, false), Vec::<String>::new());
    let unknown = plan(vec![step("p", "a", unchanged(Some(Drift::Unknown)))]);
    assert_eq!(say(&unknown, true), Vec::<String>::new());
    assert_eq!(say(&drifted, true), Vec::<String>::new());
    // Other fields drift: said again.
    let other = plan(vec![step("p", "a", unchanged(Some(changed("suspended"))))]);
    assert_eq!(say(&other, true), ["drift: a"]);
    // Read clean in a sweep: cleared; the same drift later is said again.
    assert_eq!(say(&unread, true), Vec::<String>::new());
    assert_eq!(say(&other, true), ["drift: a"]);
}

#[test]
fn applied_jobs_are_always_said_and_a_failure_retried_is_said_once() {
    let mut memory = Memory::default();
    let p = plan(vec![step("p", "a", Kind::Update(write()))]);
    let failed = [Outcome::Failed(refused("HTTP 503"))];
    assert_eq!(
        kinds(&memory.novel(events(&p, &failed, None), &p, false)),
        ["failed: a"]
    );
    assert_eq!(memory.novel(events(&p, &failed, None), &p, false), []);
    let applied = [Outcome::Applied];
    assert_eq!(
        kinds(&memory.novel(events(&p, &applied, None), &p, false)),
        ["applied: a"]
    );
    assert_eq!(
        kinds(&memory.novel(events(&p, &applied, None), &p, false)),
        ["applied: a"]
    );
    // Cleared by the success: a new failure is said again.
    assert_eq!(
        kinds(&memory.novel(events(&p, &failed, None), &p, false)),
        ["failed: a"]
    );
}

fn team_step(team: &str, id: &str, kind: Kind) -> Step {
    let mut step = step("p", id, kind);
    if let Some(key) = &mut step.key {
        key.team = Some(team.into());
    }
    step
}

#[test]
fn deletions_held_back_by_max_deletions_are_named() {
    let mut plan = plan(vec![
        step("p", "a", Kind::Orphan),
        step("p", "b", Kind::Orphan),
        step("p", "c", unchanged(None)),
    ]);
    plan.blocked_deletions = Some(2);
    let events = events(&plan, &[], None);
    assert_eq!(kinds(&events), ["prune_blocked: a, b"]);
    assert_eq!(events[0].kind.severity(), "error");
}

#[test]
fn drift_a_write_corrected_is_said_again_when_it_comes_back() {
    let mut memory = Memory::default();
    let corrected = plan(vec![step(
        "p",
        "a",
        Kind::Update(Write {
            drift: Some(changed("schedule")),
            ..write()
        }),
    )]);
    let applied = [Outcome::Applied];
    for _ in 0..2 {
        let said = memory.novel(events(&corrected, &applied, None), &corrected, true);
        assert_eq!(kinds(&said), ["applied: a", "drift: a"]);
        let drift = said
            .iter()
            .find(|e| e.kind == EventKind::Drift)
            .expect("drift");
        assert_eq!(drift.jobs[0].result, "corrected");
    }
}

#[test]
fn jobs_of_two_teams_are_told_and_remembered_apart() {
    let mut memory = Memory::default();
    let p = plan(vec![
        team_step("red", "a", unchanged(Some(changed("schedule")))),
        team_step("blue", "a", unchanged(Some(changed("suspended")))),
    ]);
    let first = memory.novel(events(&p, &[], None), &p, true);
    assert_eq!(kinds(&first), ["drift: a", "drift: a"]);
    let teams: Vec<_> = first.iter().map(|e| e.team.as_deref()).collect();
    assert_eq!(teams, [Some("blue"), Some("red")]);
    assert_eq!(memory.novel(events(&p, &[], None), &p, true), []);
}

#[test]
fn no_body_carries_a_hidden_value_an_error_quotes() {
    let token = "nf-api-t0ken-quoted-back";
    let config = Config {
        targets: vec![deliver::Target::parse(1, "https://hooks.example/x").expect("target")],
        hidden: vec![Token::new(token).expect("token")],
        ..Config::default()
    };
    let p = plan(vec![step("p", "a", Kind::Create(write()))]);
    let outcomes = [Outcome::Rejected(refused(&format!(
        "token {token} is not valid"
    )))];
    let run = Run {
        plan: &p,
        outcomes: &outcomes,
        revision: None,
        applying: true,
        swept: false,
    };
    let outs = config.outgoing(&run, None);
    assert_eq!(outs.len(), 1);
    let body = String::from_utf8(outs[0].body.clone()).expect("utf-8");
    assert!(!body.contains(token), "{body}");
    assert!(body.contains("token (sensitive) is not valid"), "{body}");
    let failed = config.run_failed(&format!("lock: {token}"), None, None);
    let body = String::from_utf8(failed[0].body.clone()).expect("utf-8");
    assert!(
        !body.contains(token) && body.contains("\"event\":\"failed\""),
        "{body}"
    );
}

#[test]
fn a_broken_manifest_without_a_project_fails_every_status() {
    let mut p = plan(vec![step("p", "a", unchanged(None))]);
    p.steps.push(Step {
        key: None,
        name: None,
        file: Some("jobs.d/broken.yaml".into()),
        kind: Kind::Invalid {
            reason: "not YAML".into(),
        },
    });
    let statuses = github::statuses(&p, &[Outcome::Skipped, Outcome::Skipped]);
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        (statuses[0].context().as_str(), statuses[0].state),
        ("nfcron/p", "failure")
    );
    assert!(statuses[0].description.contains("1 manifest(s) invalid"));
    // Nothing but the broken file: the run's own context fails.
    let only = plan(vec![p.steps[1].clone()]);
    let statuses = github::statuses(&only, &[]);
    assert_eq!(
        (statuses[0].context().as_str(), statuses[0].state),
        ("nfcron", "failure")
    );
}

#[test]
fn a_run_failure_is_said_once_and_forgets_nothing_else() {
    let config = Config {
        targets: vec![deliver::Target::parse(1, "https://hooks.example/x").expect("target")],
        ..Config::default()
    };
    let mut memory = Memory::default();
    let drifted = plan(vec![step("p", "a", unchanged(Some(changed("schedule"))))]);
    let run = |p| Run {
        plan: p,
        outcomes: &[],
        revision: None,
        applying: true,
        swept: true,
    };
    assert_eq!(config.outgoing(&run(&drifted), Some(&mut memory)).len(), 1);
    assert_eq!(
        config
            .run_failed("lock held", None, Some(&mut memory))
            .len(),
        1
    );
    assert_eq!(
        config
            .run_failed("lock held", None, Some(&mut memory))
            .len(),
        0
    );
    assert_eq!(config.run_failed("other", None, Some(&mut memory)).len(), 1);
    // The drift was said before the failures: not again.
    assert_eq!(config.outgoing(&run(&drifted), Some(&mut memory)).len(), 0);
    // That run went through: the same failure later is news.
    assert_eq!(config.run_failed("other", None, Some(&mut memory)).len(), 1);
}
