//! The state stores compared on the release binary against the fake API:
//!
//! - first apply of 2,000 and 10,000 jobs with the file store and with the
//!   PostgreSQL store: wall time, CPU time, bytes nfcron wrote to storage,
//!   requests;
//! - plan (dry-run) of 10,000 unchanged jobs from each: wall time, peak RSS;
//! - failover of two `watch` replicas on one namespace (default
//!   `--failover-check`, 2 s): from SIGKILL of the leader to the standby
//!   leading, and to its first PUT of an edit made at the kill, median of 5.
//!
//! PostgreSQL: the machine's server on 127.0.0.1:5432 (database `test`), a
//! schema made for the run. `NFCRON_BENCH_JOBS=2000` limits the sizes.
//! Run with `cargo bench --bench store`.

#[path = "../tests/it/support/bench_jobs.rs"]
mod bench_jobs;
#[path = "../examples/fake-northflank/server.rs"]
mod fake;
#[path = "../tests/it/support/sidecar.rs"]
mod sidecar;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Measured {
    wall: Duration,
    cpu: Duration,
    /// Bytes the process caused to be written to storage (write_bytes of
    /// /proc/self/io: reaped children's counts are added to the parent's).
    written: u64,
    max_rss_kib: i64,
    code: i32,
}

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn run(dir: &Path, fake: &fake::Fake, args: &[&str]) -> Measured {
    let before = write_bytes();
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(dir)
        .args(args)
        .env("NORTHFLANK_API_URL", &fake.url)
        .env("NORTHFLANK_API_TOKEN", fake::TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nfcron");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for this child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child, once (std's Child is not waited).
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let wall = start.elapsed();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        written: write_bytes() - before,
        max_rss_kib: usage.ru_maxrss,
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    }
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("NFCRON_BENCH_JOBS") {
        Ok(n) => vec![n.parse().expect("NFCRON_BENCH_JOBS is a number")],
        Err(_) => vec![2_000, 10_000],
    };
    let mut admin =
        postgres::Client::connect("postgres://postgres@127.0.0.1:5432/test", postgres::NoTls)
            .expect("PostgreSQL on 127.0.0.1:5432 (database test)");
    let schema = format!("bench_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("schema");
    for &jobs in &sizes {
        for store in ["file", "postgres"] {
            let fake = fake::Fake::spawn(0);
            fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));
            let dir = tempfile::tempdir().expect("dir");
            bench_jobs::generate(dir.path(), jobs);
            let namespace = format!("n{jobs}");
            let url =
                format!("postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}");
            let state: Vec<&str> = match store {
                "file" => vec![],
                _ => vec!["--state", &url, "--state-namespace", &namespace],
            };
            let mut args = vec!["reconcile", "--concurrency", "8"];
            args.extend(&state);
            let first = run(dir.path(), &fake, &args);
            assert_eq!(first.code, 0, "{store} first apply");
            println!(
                "{store:>8} store, {jobs:>6} jobs, first apply: {:>6} requests  wall {:>8.1} s  cpu {:>7.1} s  written {:>8.1} MB",
                fake.requests().len(),
                first.wall.as_secs_f64(),
                first.cpu.as_secs_f64(),
                first.written as f64 / 1e6
            );
            if jobs == 10_000 || sizes.len() == 1 {
                let mut args = vec!["reconcile", "--dry-run"];
                args.extend(&state);
                let mut plans: Vec<Measured> =
                    (0..3).map(|_| run(dir.path(), &fake, &args)).collect();
                plans.sort_by_key(|m| m.wall);
                let m = &plans[1];
                assert_eq!(m.code, 0);
                println!(
                    "{store:>8} store, {jobs:>6} jobs, plan unchanged: wall {:>8.1} ms  peak RSS {:>6.1} MiB (median of 3)",
                    m.wall.as_secs_f64() * 1000.0,
                    m.max_rss_kib as f64 / 1024.0
                );
            }
        }
    }
    let url = format!("postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}");
    let mut leads = Vec::new();
    let mut applies = Vec::new();
    for round in 0..5 {
        let (lead, apply) = failover(&url, &format!("failover{round}"));
        leads.push(lead);
        applies.push(apply);
    }
    leads.sort();
    applies.sort();
    println!(
        "failover (2 replicas, --failover-check 2s): kill -9 -> standby leads {:>6.0} ms, -> its PUT of an edit {:>6.0} ms (median of 5)",
        leads[2].as_secs_f64() * 1000.0,
        applies[2].as_secs_f64() * 1000.0
    );
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// One failover: the time from SIGKILL of the leader to the standby
/// leading, and to the fake's PUT of an edit written at the kill.
fn failover(url: &str, namespace: &str) -> (Duration, Duration) {
    let fake = fake::Fake::spawn(0);
    let dir = tempfile::tempdir().expect("dir");
    bench_jobs::generate(dir.path(), 1);
    let args = ["jobs.d", "--state", url, "--state-namespace", namespace];
    let mut a = sidecar::Sidecar::start(dir.path(), &fake.url, fake::TOKEN, &args);
    a.next("leading: this replica applies now");
    a.next("reconciled");
    let mut b = sidecar::Sidecar::start(dir.path(), &fake.url, fake::TOKEN, &args);
    b.next("standing by: another replica leads and applies");
    let puts = fake.count("PUT");
    a.kill9();
    let killed = Instant::now();
    let file = dir.path().join("jobs.d/jobs-0000.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("0 3 * * *", "0 4 * * *")).expect("write");
    b.next("leading: this replica applies now");
    let lead = killed.elapsed();
    assert!(
        fake.wait_until(Duration::from_secs(30), |log| {
            log.iter().filter(|r| r.method == "PUT").count() > puts
        }),
        "the new leader applied the edit"
    );
    (lead, killed.elapsed())
}
