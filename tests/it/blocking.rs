//! Blocking work off the runtime (issue 13, item 4), through the real
//! binary against the fake API: while the state file's fsync is held for
//! 2 s (`NFCRON_TEST_FSYNC_DELAY`, a test-only stand-in for a slow volume),
//! `/healthz` keeps answering.
//!
//! The sidecar runs with one runtime worker (`TOKIO_WORKER_THREADS=1`): a
//! fsync on a worker would then hold every request, so the test fails
//! unless the fsync runs on the blocking pool. A blocked runtime makes the
//! first probe of the hold wait for all of it (2 s); the limit is a quarter
//! of that, so a loaded machine's scheduling jitter (probes of 190-200 ms
//! were seen with five builds running) cannot fail the test, while a fsync
//! on the runtime always does. Waiting is on log events,
//! deadline-bounded, never on fixed sleeps.

use crate::common;
use crate::fake;

use std::time::{Duration, Instant};

use common::Workspace;
use fake::{Fake, TOKEN};

use crate::support::sidecar::{Sidecar, WAIT};

const HOLD: Duration = Duration::from_secs(2);
/// A quarter of the hold: see the module's comment.
const PROBE_LIMIT: Duration = Duration::from_millis(500);

const MANIFEST: &str = "kind: CronJob\nproject: acme\nspec:\n  name: nightly\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n";

/// One `GET /healthz`: its status and how long the answer took.
fn healthz(watch: &Sidecar) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _, _) = watch.http("GET", "/healthz", &[], b"");
    (status, started.elapsed())
}

#[test]
fn healthz_answers_while_a_state_fsync_is_held_for_2s() {
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    ws.write("jobs/nightly.yaml", MANIFEST);
    let mut watch = Sidecar::builder(ws.path(), &fake.url, TOKEN)
        .global(&["--log-format", "json"])
        .args(&["jobs"])
        .env("NFCRON_TEST_FSYNC_DELAY", "2s")
        .env("TOKIO_WORKER_THREADS", "1")
        .env_remove("NFCRON_WEBHOOK_SECRET")
        .start();

    // The first run PUTs the job, then saves the state: the save's fsync
    // is held for HOLD. Probe /healthz until the job's line (written once
    // the save is done) arrives.
    watch.next("NFCRON_TEST_FSYNC_DELAY: holding the state fsync");
    let held = Instant::now();
    let mut probes = Vec::new();
    let deadline = held + WAIT;
    let applied = loop {
        assert!(
            Instant::now() < deadline,
            "the job was not recorded within {WAIT:?} of the held fsync"
        );
        probes.push(healthz(&watch));
        // Waits for the next log line at most 20 ms: paces the probes
        // without sleeping past the event.
        // (A watch that exited fails the next probe's connect.)
        if let Some(line) = watch.poll(Duration::from_millis(20)) {
            if line["message"] == "job" || line["message"] == "reconciled" {
                break line;
            }
        }
    };
    let during = held.elapsed();
    let slowest = probes
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} /healthz probes during the {during:?} hold; slowest {slowest:?}",
        probes.len()
    );
    assert!(
        during >= HOLD - Duration::from_millis(200),
        "the fsync was not held: the job was recorded {during:?} after the hold began ({applied})"
    );
    for (i, (status, took)) in probes.iter().enumerate() {
        assert_eq!(
            *status,
            200,
            "probe {i} of {}: /healthz said {status}",
            probes.len()
        );
        assert!(
            *took <= PROBE_LIMIT,
            "probe {i} of {} took {took:?} (> {PROBE_LIMIT:?}) while the state fsync was held: blocking work on the runtime",
            probes.len()
        );
    }
    assert!(
        probes.len() >= 10,
        "only {} probes during the {during:?} hold",
        probes.len()
    );
    assert_eq!(fake.count("PUT"), 1, "one PUT for the one job");
}
