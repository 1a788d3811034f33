//! Peak memory of the release binary against hostile API servers (a small
//! std server made here, tests/it/support/hostile_server.rs):
//!
//! - an endless response body on every call, 1 job;
//! - the same, 8 jobs at the default concurrency (4 bodies read at once);
//! - the same, 64 jobs at `--concurrency 64` (the in-flight cap holds);
//! - a 50 MB error message on every PUT, 8 jobs.
//!
//! Each is the child's peak RSS (wait4), the median of a few runs; the goal
//! is under 100 MiB. Run with `cargo bench --bench hostile_api`.

#[path = "../tests/it/support/hostile_server.rs"]
mod hostile;

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hostile::{empty_list, endless, huge_error, Hostile};

const RUNS: usize = 3;
const GOAL_MIB: f64 = 100.0;

fn manifests(dir: &Path, jobs: usize) {
    std::fs::create_dir_all(dir.join("jobs.d")).expect("mkdir");
    for i in 0..jobs {
        std::fs::write(
            dir.join(format!("jobs.d/{i:02}.yaml")),
            format!("kind: CronJob\nproject: bench\nspec:\n  name: Job {i:02}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n"),
        )
        .expect("write");
    }
}

fn fifty_megabyte_error(stream: &mut TcpStream) -> std::io::Result<()> {
    huge_error(stream, "", 50 * 1024 * 1024)
}

/// One run of `nfcron reconcile`: wall time, peak RSS in KiB, exit code.
fn run_once(dir: &Path, server: &Hostile, concurrency: &str) -> (Duration, i64, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.current_dir(dir)
        .args(["reconcile", "--output", "json", "--retry-max-time", "0s"])
        .args(["--concurrency", concurrency])
        .env("NORTHFLANK_API_URL", &server.url)
        .env("NORTHFLANK_API_TOKEN", "bench-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (elapsed, peak, code) = common::run_measured(cmd);
    assert_ne!(code, -1, "nfcron was killed by a signal");
    (elapsed, peak, code)
}

fn measure(name: &str, jobs: usize, concurrency: &str, server: &Hostile) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    manifests(dir.path(), jobs);
    let mut rss = Vec::new();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let (took, kib, code) = run_once(dir.path(), server, concurrency);
        assert_eq!(code, 1, "{name}: the run fails cleanly (exit 1)");
        rss.push(kib);
        times.push(took);
    }
    rss.sort();
    times.sort();
    let median = rss[RUNS / 2] as f64 / 1024.0;
    println!(
        "{name:<44} peak RSS median {median:6.1} MiB  max {:6.1} MiB  wall {:6.0} ms",
        rss[RUNS - 1] as f64 / 1024.0,
        times[RUNS / 2].as_secs_f64() * 1000.0
    );
    median
}

fn main() {
    // The list call finds nothing live (a failed list now stops the run
    // before any PUT); every PUT's answer never ends.
    let endless_server = Hostile::spawn(|request, stream| match request.method.as_str() {
        "GET" => empty_list(stream, &[]),
        _ => endless(stream),
    });
    let error_server = Hostile::spawn(|request, stream| match request.method.as_str() {
        "GET" => empty_list(stream, &[]),
        _ => fifty_megabyte_error(stream),
    });
    println!("hostile API, release binary, {RUNS} runs each (goal < {GOAL_MIB} MiB)");
    let worst = [
        measure("endless body, 1 job", 1, "4", &endless_server),
        measure(
            "endless body, 8 jobs, concurrency 4",
            8,
            "4",
            &endless_server,
        ),
        measure(
            "endless body, 64 jobs, concurrency 64",
            64,
            "64",
            &endless_server,
        ),
        measure("50 MB error message, 8 jobs", 8, "4", &error_server),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    assert!(worst < GOAL_MIB, "peak RSS {worst:.1} MiB is over the goal");
}
