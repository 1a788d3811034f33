//! Highly available `watch` (issue 14, item 4): replicas on one
//! PostgreSQL namespace elect a leader that alone applies; a standby takes
//! over when the leader dies, relays webhooks to it, and nobody applies
//! while the database is gone. The real binary, the fake API and the
//! machine's PostgreSQL (a schema per test); waits are on log events with
//! deadlines.

use crate::common;
use crate::fake;
use crate::support::pg;
use crate::support::sidecar;

use std::time::{Duration, Instant};

use common::Workspace;
use serde_json::Value;
use sidecar::Sidecar;

fn manifest(schedule: &str) -> String {
    common::manifest("nightly", schedule)
}

fn replica(ws: &Workspace, api: &fake::Fake, state: &str, extra: &[&str]) -> Sidecar {
    let mut args = vec!["jobs.d", "--state", state];
    args.extend_from_slice(extra);
    Sidecar::start(ws.path(), &api.url, fake::TOKEN, &args)
}

fn metric(sidecar: &Sidecar, name: &str) -> String {
    let (_, body) = sidecar.get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

fn job_events(events: &[Value]) -> usize {
    events.iter().filter(|v| v["message"] == "job").count()
}

/// A namespace reached through a relay that can cut the database away,
/// the fake API and one manifest: the database, the relay, the state URL
/// through it, the API and the workspace (`None`: no PostgreSQL here).
fn behind_a_relay(schema: &str) -> Option<(pg::Db, pg::Relay, String, fake::Fake, Workspace)> {
    let db = pg::Db::new(schema)?;
    let relay = pg::Relay::spawn();
    let state = relay.url(&db.url);
    let api = fake::Fake::spawn(0);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", manifest("0 1 * * *"));
    Some((db, relay, state, api, ws))
}

#[test]
fn one_replica_applies_and_a_standby_takes_over_within_5s_of_a_kill_9() {
    let Some(db) = pg::Db::new("ha_failover") else {
        return;
    };
    let api = fake::Fake::spawn(0);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", manifest("0 1 * * *"));

    // Default --failover-check (2 s): the figure the README promises.
    let mut a = replica(&ws, &api, &db.url, &[]);
    a.next("leading: this replica applies now");
    a.next("reconciled");
    assert_eq!(
        api.count("PUT"),
        1,
        "the leader's first run creates the job"
    );
    let mut b = replica(&ws, &api, &db.url, &[]);
    b.next("standing by: another replica leads and applies");
    assert_eq!(b.get("/readyz"), (200, "standby\n".to_string()));
    assert_eq!(a.get("/readyz"), (200, "ready\n".to_string()));
    assert_eq!(metric(&a, "nfcron_leader"), "1");
    assert_eq!(metric(&b, "nfcron_leader"), "0");
    // The status page says which replica it is: the standby names the
    // leader it follows.
    let (status, page) = b.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"<p id="standby">Standby: another replica ("#),
        "{page}"
    );
    assert!(page.contains(&format!("pid {}", a.pid())), "{page}");
    assert!(!a.get("/").1.contains(r#"id="standby""#));

    // An edit: both see it, one applies it.
    ws.write("jobs.d/nightly.yaml", manifest("0 2 * * *"));
    let applied = a.next("job");
    assert_eq!(applied["action"], "update", "{applied}");
    a.next("reconciled");
    assert_eq!(api.count("PUT"), 2, "exactly one PUT for the edit");
    assert_eq!(
        job_events(b.drain()),
        0,
        "the standby applied: {:#?}",
        b.seen
    );

    // The leader's node dies; the next edit is applied by the standby.
    a.kill9();
    let killed = Instant::now();
    ws.write("jobs.d/nightly.yaml", manifest("0 3 * * *"));
    b.next("leading: this replica applies now");
    let applied = b.next("job");
    let took = killed.elapsed();
    assert_eq!(applied["action"], "update", "{applied}");
    assert!(
        took < Duration::from_secs(5),
        "the standby applied {took:?} after the leader died"
    );
    b.next("reconciled");
    assert_eq!(api.count("PUT"), 3, "one PUT per edit, never two");
    assert_eq!(metric(&b, "nfcron_leader"), "1");
    assert_eq!(b.get("/readyz"), (200, "ready\n".to_string()));
    assert!(!b.get("/").1.contains(r#"id="standby""#), "a leader now");
    // The state rows say what was applied last.
    assert_eq!(
        db.count("SELECT count(*) FROM nfcron_jobs WHERE spec LIKE '%0 3 * * *%'"),
        1
    );
}

#[test]
fn a_webhook_sent_to_a_standby_reaches_the_leader() {
    let Some(db) = pg::Db::new("ha_webhook") else {
        return;
    };
    let api = fake::Fake::spawn(0);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", manifest("0 1 * * *"));
    let fast = ["--failover-check", "200ms"];
    let mut a = replica(&ws, &api, &db.url, &fast);
    a.next("leading: this replica applies now");
    a.next("reconciled");
    let mut b = replica(&ws, &api, &db.url, &fast);
    b.next("standing by: another replica leads and applies");

    let (status, response) = b.gitlab_hook();
    assert_eq!(status, 202, "{response}");
    b.next("webhook relayed to the leader");
    let relayed = a.next("webhook relayed by a standby");
    assert_eq!(relayed["hooks"], 1, "{relayed}");
    // The relayed webhook makes the leader run (and find nothing to do).
    let run = a.next("reconciled");
    assert_eq!(run["api_requests"], 0, "{run}");
    assert_eq!(api.count("PUT"), 1);
}

#[test]
fn while_the_database_is_down_nobody_applies_and_both_are_unready() {
    let Some((_db, relay, state, api, ws)) = behind_a_relay("ha_restart") else {
        return;
    };
    let fast = ["--failover-check", "200ms"];
    let mut a = replica(&ws, &api, &state, &fast);
    a.next("leading: this replica applies now");
    a.next("reconciled");
    let mut b = replica(&ws, &api, &state, &fast);
    b.next("standing by: another replica leads and applies");

    // The database goes away (every session with it).
    relay.cut();
    a.next("lost the state database session: stepped down, nothing more is committed until this replica leads again");
    a.next("leadership check failed; this replica applies nothing until it leads again");
    b.next("leadership check failed; this replica applies nothing until it leads again");
    for sidecar in [&a, &b] {
        let (status, body) = sidecar.get("/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("state database unreachable"), "{body}");
        assert_eq!(metric(sidecar, "nfcron_leader"), "0");
    }
    // An edit while it is down is applied by nobody...
    ws.write("jobs.d/nightly.yaml", manifest("0 2 * * *"));
    let puts = api.count("PUT");
    let jobs_before = [job_events(a.drain()), job_events(b.drain())];
    // ...and once it is back, by exactly one replica.
    relay.restore();
    const LEADING: &str = "leading: this replica applies now";
    let deadline = Instant::now() + sidecar::WAIT;
    let mut replicas = [a, b];
    let since_restore = [replicas[0].seen.len(), replicas[1].seen.len()];
    let leader = 'found: loop {
        assert!(Instant::now() < deadline, "no replica led again");
        for (i, sidecar) in replicas.iter_mut().enumerate() {
            if let Some(v) = sidecar.poll(Duration::from_millis(20)) {
                if v["message"] == LEADING {
                    break 'found i;
                }
            }
        }
    };
    let standby = 1 - leader;
    replicas[leader].next_where("the edit applied", |v| {
        v["message"] == "job" && v["action"] == "update"
    });
    replicas[leader].next("reconciled");
    // The standby says so (the wait for the leader may have read it).
    const STANDING_BY: &str = "standing by: another replica leads and applies";
    if !replicas[standby].seen[since_restore[standby]..]
        .iter()
        .any(|v| v["message"] == STANDING_BY)
    {
        replicas[standby].next(STANDING_BY);
    }
    assert_eq!(api.count("PUT"), puts + 1, "the edit was applied once");
    assert_eq!(
        job_events(replicas[standby].drain()),
        jobs_before[standby],
        "the standby applied: {:#?}",
        replicas[standby].seen
    );
}

#[test]
fn a_write_the_api_took_as_the_database_went_away_is_recorded_not_sent_again() {
    let Some((db, relay, state, api, ws)) = behind_a_relay("ha_inflight") else {
        return;
    };
    let mut a = replica(&ws, &api, &state, &["--failover-check", "200ms"]);
    a.next("leading: this replica applies now");
    a.next("reconciled");
    assert_eq!(api.count("PUT"), 1);

    // The edit's PUT is answered after 2 s; the database goes while it is
    // in flight, so the API takes it and the state cannot record it.
    api.inject(fake::FaultRule {
        method: Some(hyper::Method::PUT),
        fault: fake::Fault::Delay(Duration::from_secs(2)),
        times: 1,
        after: 0,
    });
    ws.write("jobs.d/nightly.yaml", manifest("0 2 * * *"));
    assert!(
        api.wait_arrived(sidecar::WAIT, "PUT", 2),
        "the edit's PUT was sent"
    );
    relay.cut();
    let unrecorded = a.next_where("the PUT taken but not recorded", |v| {
        v["message"] == "job" && v["action"] == "update"
    });
    assert_eq!(unrecorded["result"], "failed", "{unrecorded}");
    assert_eq!(api.count("PUT"), 2);

    // Back: the replica leads again and records the write it made instead
    // of sending it a second time.
    relay.restore();
    a.next("leading: this replica applies now");
    a.next("recording writes the API took in an earlier run that could not be recorded then (the state database was lost): not sent again");
    let run = a.next("reconciled");
    assert_eq!(run["api_requests"], 0, "{run}");
    assert_eq!(api.count("PUT"), 2, "one PUT for the edit, never two");
    assert_eq!(
        db.count("SELECT count(*) FROM nfcron_jobs WHERE spec LIKE '%0 2 * * *%'"),
        1
    );
}
