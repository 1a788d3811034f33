//! Crash consistency: a 200-job apply killed with SIGKILL at 20 points,
//! restarted each time. The state file always parses, ends equal to the
//! API's jobs, and no job is PUT more than once plus the kills that caught
//! it in flight.

use crate::common;
use crate::fake;
use crate::support::kills;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::Workspace;
use fake::{Fake, TOKEN};
use serde_json::Value;

const JOBS: usize = 200;
const KILLS: usize = 20;
const CONCURRENCY: usize = 4;

/// The recorded job ids, as `nfcron state list` reads them (the state file
/// with its journal replayed, without the lock); `None` before the first
/// commit. A state that does not load fails the test.
fn state(ws: &Workspace) -> Option<BTreeSet<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(ws.path())
        .args(["state", "list", "--output", "json"])
        .output()
        .expect("run nfcron state list");
    assert!(
        out.status.success(),
        "the state always loads: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).expect("state list JSON");
    let jobs = state["jobs"].as_array().expect("jobs");
    (!jobs.is_empty() || ws.path().join(".nfcron/state.json").exists()).then(|| {
        jobs.iter()
            .map(|j| j["id"].as_str().expect("id").to_string())
            .collect()
    })
}

#[test]
fn sigkill_at_twenty_points_leaves_a_state_the_next_run_trusts() {
    let ws = Workspace::new();
    for f in 0..JOBS / 10 {
        let docs: Vec<String> = (0..10)
            .map(|j| {
                let n = f * 10 + j;
                format!("kind: CronJob\nproject: acme\nspec:\n  name: Job {n:03}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{} 3 * * *\"\n  concurrencyPolicy: forbid\n", n % 60)
            })
            .collect();
        ws.write(&format!("jobs.d/{f:02}.yaml"), docs.join("---\n"));
    }
    let fake = Fake::spawn(0);
    fake.set_latency(Duration::from_millis(15));
    let kills_in_flight = kills::apply_killed(
        ws.path(),
        &fake,
        &["reconcile", "--concurrency", &CONCURRENCY.to_string()],
        KILLS,
        || state(&ws).unwrap_or_default(),
    );
    // The last, uninterrupted run.
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let recorded = state(&ws).expect("state");
    let live: BTreeSet<String> = fake.job_ids("acme").into_iter().collect();
    assert_eq!(recorded.len(), JOBS);
    assert_eq!(recorded, live, "state matches the API's jobs exactly");
    kills::assert_puts_within(&fake, &kills_in_flight);
    // A further run trusts the state: nothing to do, nothing sent.
    fake.clear_log();
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 0);
    assert_eq!(fake.requests(), vec![]);
    // Temp files a kill left between create and rename are gone: each
    // applying run removes them under the lock.
    let temps: Vec<String> = std::fs::read_dir(ws.path().join(".nfcron"))
        .expect(".nfcron")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".state.") && n.ends_with(".tmp"))
        .collect();
    assert_eq!(temps, Vec::<String>::new(), "temp files left behind");
    // A run that ends folds the journal into the state file.
    assert!(
        !ws.path().join(".nfcron/state.json.journal").exists(),
        "the journal was folded"
    );
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state.json"),
    )
    .expect("state.json parses");
    assert_eq!(file["jobs"].as_array().expect("jobs").len(), JOBS);
}
