//! Reconcile against the fake Northflank API, measured on the release
//! binary:
//!
//! - 2,000 jobs, first apply: requests and wall time;
//! - 2,000 jobs, one changed: requests (must be 1) and wall time of
//!   plan + apply;
//! - 2,000 jobs, none changed: requests (must be 0) and wall time;
//! - 10,000 unchanged jobs planned offline from state: wall time.
//!
//! Run with `cargo bench --bench reconcile`.

#[path = "../tests/it/support/bench_jobs.rs"]
mod bench_jobs;
#[path = "../examples/fake-northflank/server.rs"]
mod fake;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nfcron::manifest::{self, LoadOptions};
use nfcron::state::State;
use nfcron::store::file::key;

struct Measured {
    wall: Duration,
    requests: u64,
    code: i32,
}

fn reconcile(dir: &Path, fake: Option<&fake::Fake>, extra: &[&str]) -> Measured {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.current_dir(dir)
        .args(["reconcile", "--output", "json"])
        .args(extra);
    cmd.env_remove("NORTHFLANK_API_TOKEN");
    if let Some(fake) = fake {
        cmd.env("NORTHFLANK_API_URL", &fake.url)
            .env("NORTHFLANK_API_TOKEN", fake::TOKEN);
    }
    let start = Instant::now();
    let out = cmd.output().expect("run nfcron");
    let wall = start.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");

    Measured {
        wall,
        requests: report["summary"]["api_requests"].as_u64().unwrap_or(0),
        code: out.status.code().unwrap_or(-1),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let fake = fake::Fake::spawn(0);
    fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));

    let dir = tempfile::tempdir().expect("dir");
    bench_jobs::generate(dir.path(), 2000);
    let first = reconcile(dir.path(), Some(&fake), &["--concurrency", "8"]);
    assert_eq!(first.code, 0);
    println!(
        "reconcile, 2,000 jobs, first apply:   {:>5} requests  {:>9.1} ms",
        first.requests,
        ms(first.wall)
    );

    let mut one = Vec::new();
    let mut none = Vec::new();
    let mut previous = "0 3 * * *".to_string();
    for round in 0..5 {
        // Edit the first job of one file; each new schedule is unique, so
        // only that job's line changes.
        let file = dir.path().join("jobs.d/jobs-0100.yaml");
        let text = std::fs::read_to_string(&file).expect("read");
        let schedule = format!("{round} 4 * * *");
        std::fs::write(&file, text.replacen(&previous, &schedule, 1)).expect("write");
        previous = schedule;
        let puts_before = fake.count("PUT");
        let m = reconcile(dir.path(), Some(&fake), &[]);
        assert_eq!((m.code, m.requests), (0, 1), "one change, one request");
        assert_eq!(fake.count("PUT") - puts_before, 1);
        one.push(m.wall);
        let m = reconcile(dir.path(), Some(&fake), &[]);
        assert_eq!((m.code, m.requests), (0, 0), "no change, no request");
        none.push(m.wall);
    }
    one.sort();
    none.sort();
    println!(
        "reconcile, 2,000 jobs, one changed:       1 request   {:>9.1} ms (median of 5)",
        ms(one[2])
    );
    println!(
        "reconcile, 2,000 jobs, none changed:      0 requests  {:>9.1} ms (median of 5)",
        ms(none[2])
    );

    // --refresh of 100 jobs, with and without runtime environment (and an
    // external image) in the manifests: the reads each spends.
    for (label, with_env) in [
        ("without runtime environment", false),
        ("with runtime environment", true),
    ] {
        // A fake of its own: the jobs of the other round (same names) are
        // not live to be adopted, and the count is this round's reads.
        let fake = fake::Fake::spawn(0);
        fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));
        let small = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(small.path().join("jobs.d")).expect("mkdir");
        for n in 0..100 {
            let text = bench_jobs::manifest(100_000 + n);
            let text = if with_env {
                text
            } else {
                text[..text.find("  deployment:").expect("deployment")].to_string()
            };
            std::fs::write(small.path().join(format!("jobs.d/{n:03}.yaml")), text).expect("write");
        }
        assert_eq!(reconcile(small.path(), Some(&fake), &[]).code, 0);
        let m = reconcile(
            small.path(),
            Some(&fake),
            &["--refresh", "--max-reads", "1000"],
        );
        assert_eq!(m.code, 0);
        println!(
            "reconcile --refresh, 100 jobs {label}: {:>4} requests  {:>9.1} ms",
            m.requests,
            ms(m.wall)
        );
    }

    // 10,000 unchanged jobs: the state is built through the library (the
    // same digests an apply records), then planned offline by the binary.
    let big = tempfile::tempdir().expect("dir");
    bench_jobs::generate(big.path(), 10_000);
    let files = nfcron::source::dir::read(&big.path().join("jobs.d"));
    let lookup = |_: &str| None;
    let catalog = manifest::load(
        &files,
        &LoadOptions {
            default_project: None,
            require_env: false,
            lookup: &lookup,
            allow_unknown_fields: false,
        },
    );
    let state_path = big.path().join(".nfcron/state.json");
    let keyed = key::load_key(&state_path, true).expect("key");
    let (desired, invalid) = nfcron::reconcile::prepare(&catalog, &keyed, &[]);
    assert!(invalid.is_empty());
    let mut state = State::default();
    for d in &desired {
        // Jobs are listed by their path relative to the run's directory.
        let mut record = d.record("2026-11-28T00:00:00Z", None);
        record.file = record
            .file
            .replace(&format!("{}/", big.path().display()), "");
        state.jobs.insert(d.key.clone(), record);
    }
    state.save(&state_path).expect("save");
    let mut plans = Vec::new();
    for _ in 0..5 {
        let m = reconcile(big.path(), None, &["--dry-run"]);
        assert_eq!((m.code, m.requests), (0, 0));
        plans.push(m.wall);
    }
    plans.sort();
    println!(
        "plan, 10,000 unchanged jobs from state: 0 requests  {:>9.1} ms (median of 5)",
        ms(plans[2])
    );
}
