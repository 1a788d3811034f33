//! A Git remote over HTTP, measured on the release binary against a real
//! server on loopback: lighttpd running `git http-backend` behind basic
//! auth (the token), serving 2,000 manifests in 2,000 files.
//!
//! - first clone: `reconcile --dry-run --git URL` with an empty
//!   `--git-cache` (clone, read the tree, validate, plan), median of 5;
//! - no-change poll: the same with the warm cache (the fetch finds nothing
//!   new), median of 5;
//! - requests to the Northflank API: 0 (a dry-run plans offline).
//!
//! Needs lighttpd and git (`.ci/run` installs them). Run with
//! `cargo bench --bench git_remote`.

#[path = "../tests/it/support/git_servers.rs"]
mod servers;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const JOBS: usize = 2000;
const TOKEN: &str = "bench-git-token";

fn manifest(n: usize) -> String {
    format!(
        "kind: CronJob\nproject: bench\nspec:\n  name: Job {n:05}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 2\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: ghcr.io/acme/job:1.0\n"
    )
}

/// A work repository at `dir` with one commit of `JOBS` manifests.
fn origin(dir: &Path) {
    let repo = git2::Repository::init(dir).expect("git init");
    repo.set_head("refs/heads/main").expect("HEAD");
    std::fs::create_dir_all(dir.join("jobs.d")).expect("mkdir");
    for n in 0..JOBS {
        std::fs::write(dir.join(format!("jobs.d/job-{n:05}.yaml")), manifest(n)).expect("write");
    }
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let sig = git2::Signature::now("Bench", "bench@example.com").expect("sig");
    repo.commit(Some("HEAD"), &sig, &sig, "jobs", &tree, &[])
        .expect("commit");
}

fn dry_run(work: &Path, url: &str, cache: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(work)
        .args(["reconcile", "--dry-run", "--output", "json", "--git", url])
        .args(["--git-path", "jobs.d", "--git-cache"])
        .arg(cache)
        .env("NFCRON_GIT_TOKEN", TOKEN)
        .env_remove("NORTHFLANK_API_TOKEN")
        .output()
        .expect("run nfcron");
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        report["summary"]["create"].as_u64(),
        Some(JOBS as u64),
        "{}",
        report["summary"]
    );
    (
        wall,
        report["summary"]["api_requests"].as_u64().unwrap_or(0),
    )
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let work = tempfile::tempdir().expect("work");
    let origin_dir = tempfile::tempdir().expect("origin");
    origin(origin_dir.path());
    let root = tempfile::tempdir().expect("repos");
    servers::bare_copy(origin_dir.path(), root.path(), "jobs.git");
    let Some(mut server) = servers::Lighttpd::start(root.path(), &[("x-access-token", TOKEN)])
    else {
        return;
    };
    let url = server.url("jobs.git");

    let mut first = Vec::new();
    let mut poll = Vec::new();
    let mut requests = 0;
    for round in 0..5 {
        let cache = work.path().join(format!("cache-{round}"));
        let (wall, n) = dry_run(work.path(), &url, &cache);
        first.push(wall);
        requests += n;
        let (wall, n) = dry_run(work.path(), &url, &cache);
        poll.push(wall);
        requests += n;
    }
    let log = server.stop();
    println!(
        "--git over HTTP (lighttpd + git http-backend, basic auth), {JOBS} manifests in {JOBS} files:"
    );
    println!(
        "  first clone + plan:      {:>7.1} ms (median of 5)",
        median(first)
    );
    println!(
        "  no-change poll + plan:   {:>7.1} ms (median of 5)",
        median(poll)
    );
    println!(
        "  API requests: {requests}; Git HTTP requests: {} over 10 runs",
        log.len()
    );
}
