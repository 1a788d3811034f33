//! Fault injection: a 50-job apply against a fake API that misbehaves in
//! each way the API can. For each: the run ends, jobs that got a 2xx are in
//! state and no others, jobs that did not are reported failed and the next
//! run applies them, and the requests stay within the retry bounds.

use crate::common;
use crate::fake;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};
use hyper::Method;
use serde_json::Value;

const JOBS: usize = 50;
/// One list call for adoption, then one PUT per job.
const CLEAN_REQUESTS: u64 = 1 + JOBS as u64;
/// Retries after the first attempt (RetryPolicy::default).
const MAX_RETRIES: u64 = 8;

fn setup() -> (Workspace, Fake) {
    let ws = Workspace::new();
    for i in 0..JOBS {
        ws.write(
            &format!("jobs.d/{i:02}.yaml"),
            format!("kind: CronJob\nproject: acme\nspec:\n  name: Job {i:02}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{} 3 * * *\"\n  concurrencyPolicy: forbid\n", i % 60),
        );
    }
    (ws, Fake::spawn(0))
}

fn reconcile(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    let mut full = vec!["reconcile", "--output", "json"];
    full.extend_from_slice(args);
    ws.nfcron_env(
        &full,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

fn state_ids(ws: &Workspace) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(ws.path().join(".nfcron/state.json")) else {
        return BTreeSet::new();
    };
    let state: Value = serde_json::from_str(&text).expect("the state file always parses");
    state["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect()
}

/// What the faulty run did.
struct Survived {
    /// Requests it sent, retries included.
    sent: u64,
    /// Jobs it reported failed (the next run applied them).
    failed: usize,
}

/// The checks every fault must pass.
fn survives(fault: FaultRule, args: &[&str]) -> Survived {
    let (ws, fake) = setup();
    fake.inject(fault);
    let run = reconcile(&ws, &fake, args);
    assert!(
        run.code == 0 || run.code == 1,
        "the run ended with {}: {}",
        run.code,
        run.stderr
    );
    let report = run.json();
    let failed: BTreeSet<String> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["result"] == "failed")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    let applied: BTreeSet<String> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["result"] == "applied")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        applied.len() + failed.len(),
        JOBS,
        "every job applied or reported failed"
    );
    assert_eq!(
        state_ids(&ws),
        applied,
        "state holds exactly the jobs the client saw a 2xx for"
    );
    let live: BTreeSet<String> = fake.job_ids("acme").into_iter().collect();
    assert!(
        applied.is_subset(&live),
        "nothing is in state that the API lacks"
    );
    assert_eq!(run.code == 0, failed.is_empty());
    let sent = report["summary"]["api_requests"].as_u64().expect("count");
    assert!(
        sent <= CLEAN_REQUESTS * (1 + MAX_RETRIES),
        "{sent} requests is past the retry bound"
    );

    // The next run, with the API healthy again, applies exactly the rest.
    fake.clear_faults();
    fake.clear_log();
    let again = reconcile(&ws, &fake, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let puts: BTreeSet<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .filter_map(|r| r.job.clone())
        .collect();
    assert_eq!(
        puts, failed,
        "the next run PUTs the failed jobs and only those"
    );
    assert_eq!(state_ids(&ws).len(), JOBS);
    Survived {
        sent,
        failed: failed.len(),
    }
}

fn status(status: u16, retry_after: Option<u64>, times: usize) -> FaultRule {
    FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status,
            retry_after,
        },
        times,
        after: 0,
    }
}

#[test]
fn rate_limited_with_retry_after() {
    let run = survives(status(429, Some(1), 8), &[]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 8, "each 429 costs one retry");
    assert_eq!(run.failed, 0);
}

#[test]
fn rate_limited_without_retry_after() {
    let run = survives(status(429, None, 8), &[]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 8);
    assert_eq!(run.failed, 0);
}

#[test]
fn server_errors_500_502_503() {
    for code in [500, 502, 503] {
        let run = survives(status(code, None, 6), &[]);
        assert_eq!(run.sent, CLEAN_REQUESTS + 6, "HTTP {code}");
        assert_eq!(run.failed, 0, "HTTP {code}");
    }
}

#[test]
fn a_server_error_that_outlasts_the_retry_budget_fails_the_job() {
    // 200 consecutive 503s: retries run out (time and count), jobs fail,
    // and the next run applies them.
    let run = survives(status(503, None, 200), &["--retry-max-time", "2s"]);
    assert!(run.sent > CLEAN_REQUESTS, "{}", run.sent);
    assert_eq!(
        run.failed, JOBS,
        "no job outlasts 200 consecutive 503s within 2 s"
    );
}

#[test]
fn responses_slower_than_the_timeout() {
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Delay(Duration::from_secs(2)),
        times: 6,
        after: 0,
    };
    let run = survives(fault, &["--timeout", "300ms"]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 6, "each timeout costs one retry");
    assert_eq!(run.failed, 0);
}

#[test]
fn dropped_connections_mid_request() {
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Drop,
        times: 6,
        after: 0,
    };
    let run = survives(fault, &[]);
    assert!(
        (CLEAN_REQUESTS + 6..=CLEAN_REQUESTS + 12).contains(&run.sent),
        "{}",
        run.sent
    );
    assert_eq!(run.failed, 0);
}

#[test]
fn the_api_starts_refusing_the_token() {
    // After 20 good PUTs the token is refused: nothing more is sent.
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status: 401,
            retry_after: None,
        },
        times: 1000,
        after: 20,
    };
    let run = survives(fault, &["--concurrency", "1"]);
    assert_eq!(
        run.sent,
        CLEAN_REQUESTS - (JOBS as u64 - 20) + 1,
        "one list, 20 PUTs, one refused, then nothing"
    );
    assert_eq!(run.failed, JOBS - 20);
}
