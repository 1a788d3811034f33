//! The sidecar, measured on the release binary against the fake API:
//!
//! - file save -> PUT received by the fake, p50 and p95 over 50 edits
//!   (default 200 ms debounce), with 1,000 jobs watched;
//! - webhook -> PUT received, over 10 pushes to a local Git repository
//!   (default debounce: a webhook does not wait for it), and the runs a
//!   burst of 10 webhooks for one push gives (at most 2);
//! - idle RSS of the watcher with 1,000 jobs.
//!
//! Run with `cargo bench --bench watch`.

mod common;
#[path = "../examples/fake-northflank/server.rs"]
mod fake;
#[path = "../tests/it/support/sidecar.rs"]
mod sidecar;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use sidecar::Sidecar;

fn manifest(n: usize, minute: usize) -> String {
    format!("kind: CronJob\nproject: bench\nspec:\n  name: Job {n:05}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{minute} 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: ghcr.io/acme/job:1.0\n")
}

fn start(dir: &Path, fake: &fake::Fake, args: &[&str]) -> Sidecar {
    Sidecar::builder(dir, &fake.url, fake::TOKEN)
        .env("NFCRON_WEBHOOK_SECRET", "bench")
        .args(&["--concurrency", "8"])
        .args(args)
        .start()
}

/// `reconciled` events within `window`.
fn runs_within(watch: &mut Sidecar, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut n = 0;
    while let Some(v) = watch.poll(deadline.saturating_duration_since(Instant::now())) {
        n += usize::from(v["message"] == "reconciled");
    }
    n
}

/// Waits for the fake's `n`-th PUT and returns when it arrived.
fn put_number(fake: &fake::Fake, n: usize) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let puts: Vec<Instant> = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .map(|r| r.at)
            .collect();
        if puts.len() >= n {
            return puts[n - 1];
        }
        assert!(Instant::now() < deadline, "PUT {n} never came");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let fake = fake::Fake::spawn(0);
    fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));

    // 1,000 jobs in 100 files, watched.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("jobs.d")).expect("mkdir");
    for f in 0..100 {
        let docs: Vec<String> = (0..10).map(|j| manifest(f * 10 + j, 0)).collect();
        std::fs::write(
            dir.path().join(format!("jobs.d/{f:03}.yaml")),
            docs.join("---\n"),
        )
        .expect("write");
    }
    let mut watch = start(dir.path(), &fake, &["--resync", "1h"]);
    watch.next("reconciled");
    // Idle: let it settle, then read its resident set.
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = common::status_kib(watch.pid(), "VmRSS:");

    let mut latencies = Vec::new();
    for edit in 1..=50 {
        let puts = fake.count("PUT");
        let file = dir.path().join(format!("jobs.d/{:03}.yaml", edit));
        let docs: Vec<String> = (0..10)
            .map(|j| manifest(edit * 10 + j, if j == 0 { edit % 60 + 1 } else { 0 }))
            .collect();
        let saved = Instant::now();
        std::fs::write(&file, docs.join("---\n")).expect("write");
        let put = put_number(&fake, puts + 1);
        latencies.push(put.duration_since(saved));
        watch.next("reconciled");
    }
    latencies.sort();
    println!(
        "watch, 1,000 jobs: idle RSS {:.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "watch, file save -> PUT (50 edits, 200ms debounce): p50 {:.0} ms  p95 {:.0} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95)
    );
    drop(watch);

    // Webhook -> PUT, on a local Git repository.
    let origin = tempfile::tempdir().expect("origin");
    let repo = git2::Repository::init(origin.path()).expect("init");
    let commit = |minute: usize| {
        std::fs::create_dir_all(origin.path().join("jobs.d")).expect("mkdir");
        std::fs::write(
            origin.path().join("jobs.d/a.yaml"),
            manifest(90_000, minute),
        )
        .expect("write");
        let mut index = repo.index().expect("index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("index");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("Bench", "b@example.com").expect("sig");
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "bench", &tree, &parents)
            .expect("commit");
    };
    commit(0);
    let work = tempfile::tempdir().expect("work");
    let url = format!("file://{}", origin.path().display());
    let mut watch = start(
        work.path(),
        &fake,
        &["--git", &url, "--interval", "1h", "--resync", "1h"],
    );
    watch.next("reconciled");
    let mut hooks = Vec::new();
    for round in 1..=10 {
        commit(round);
        let puts = fake.count("PUT");
        let sent = Instant::now();
        let mut stream = TcpStream::connect(watch.addr()).expect("connect");
        stream
            .write_all(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Gitlab-Token: bench\r\nContent-Length: 2\r\n\r\n{}")
            .expect("post");
        let put = put_number(&fake, puts + 1);
        hooks.push(put.duration_since(sent));
        watch.next("reconciled");
    }
    hooks.sort();
    println!(
        "watch, webhook -> PUT (10 pushes, default 200ms debounce): p50 {:.0} ms  p95 {:.0} ms",
        percentile(&hooks, 0.5),
        percentile(&hooks, 0.95)
    );

    // A burst: 10 webhooks for one push, as a forge retrying or several
    // hooks on one repository send.
    commit(11);
    let puts = fake.count("PUT");
    for _ in 0..10 {
        let mut stream = TcpStream::connect(watch.addr()).expect("connect");
        stream
            .write_all(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Gitlab-Token: bench\r\nContent-Length: 2\r\n\r\n{}")
            .expect("post");
    }
    put_number(&fake, puts + 1);
    let runs = runs_within(&mut watch, Duration::from_secs(3));
    println!("watch, a burst of 10 webhooks for one push: {runs} runs");
}
