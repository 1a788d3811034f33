//! `nfcron validate` on 10,000 manifests in 1,000 files: wall time and peak
//! RSS of the real release binary, the median of several runs.
//!
//! Run with `cargo bench --bench validate`. Prints one line per figure; the
//! README's performance table quotes them.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FILES: usize = 1_000;
const JOBS_PER_FILE: usize = 10;
const RUNS: usize = 7;

fn manifest(n: usize) -> String {
    let deployment = match n % 3 {
        0 => "  deployment:\n    external:\n      imagePath: \"ghcr.io/acme/job:${TAG:-latest}\"\n    docker:\n      configType: customCommand\n      customCommand: run\n".to_string(),
        1 => "  deployment:\n    vcs:\n      projectUrl: https://github.com/acme/jobs\n      projectType: github\n      projectBranch: main\n  buildSettings:\n    dockerfile:\n      dockerFilePath: /Dockerfile\n      dockerWorkDir: /\n".to_string(),
        _ => "  deployment:\n    internal:\n      id: build-service\n      buildSHA: latest\n  healthChecks:\n    - protocol: HTTP\n      type: readinessProbe\n      path: /healthz\n      port: 8080\n      initialDelaySeconds: 10\n      periodSeconds: 30\n      timeoutSeconds: 2\n      failureThreshold: 3\n".to_string(),
    };
    format!(
        "apiVersion: nfcron/v1\nkind: CronJob\nproject: bench\nspec:\n  name: Job {n:05}\n  description: Benchmark job number {n}.\n  tags: [bench, load]\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 2\n  activeDeadlineSeconds: 600\n  schedule: \"{} {} * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n    DATABASE_URL: \"${{DB_URL:-postgres://db/{n}}}\"\n    MODE: batch\n{deployment}",
        n % 60,
        n % 24
    )
}

fn generate(dir: &Path) {
    for f in 0..FILES {
        let mut text = String::new();
        for j in 0..JOBS_PER_FILE {
            if j > 0 {
                text.push_str("---\n");
            }
            text.push_str(&manifest(f * JOBS_PER_FILE + j));
        }
        let sub = dir.join(format!("team-{:02}", f % 20));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("jobs-{f:04}.yaml")), text).expect("write");
    }
}

/// Runs the binary once; returns wall time and the child's peak RSS in KiB.
fn run_once(dir: &Path) -> (Duration, i64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.args(["validate", "--output", "json"])
        .arg(dir)
        .stdout(Stdio::null());
    let (elapsed, peak, code) = common::run_measured(cmd);
    assert_eq!(code, 0, "validate failed on generated input");
    (elapsed, peak)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate(dir.path());
    let bytes: u64 = walk_size(dir.path());
    run_once(dir.path()); // warm the page cache
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let (t, r) = run_once(dir.path());
        times.push(t);
        rss.push(r);
    }
    times.sort();
    rss.sort();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "validate: {} manifests in {FILES} files ({:.1} MiB), {RUNS} runs, {} cores",
        FILES * JOBS_PER_FILE,
        bytes as f64 / 1048576.0,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let _ = writeln!(
        out,
        "  wall  min {:>7.1} ms  median {:>7.1} ms  max {:>7.1} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
    let _ = writeln!(
        out,
        "  peak RSS  median {:.1} MiB  max {:.1} MiB",
        rss[RUNS / 2] as f64 / 1024.0,
        rss[RUNS - 1] as f64 / 1024.0
    );
    print!("{out}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(Result::ok)
        .map(|e| {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                walk_size(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}
