//! The same 500-job `jobs.d` kept in step by nfcron and by the naive loop a
//! team would otherwise write (`benches/naive-loop.sh`: curl PUTs every
//! manifest each run), for 0, 1 and 10 changed jobs: requests sent, wall
//! time and CPU time (user + system, children included) of each, and their
//! ratio. Run with `cargo bench --bench side_by_side`.

#[path = "../examples/fake-northflank/server.rs"]
mod fake;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const JOBS: usize = 500;

fn spec(n: usize, minute: usize) -> serde_json::Value {
    serde_json::json!({
        "name": format!("Job {n:03}"),
        "billing": {"deploymentPlan": "nf-compute-20"},
        "backoffLimit": 1,
        "schedule": format!("{minute} 3 * * *"),
        "concurrencyPolicy": "forbid",
        "deployment": {"external": {"imagePath": "ghcr.io/acme/job:1.0"}},
        "runtimeEnvironment": {"MODE": "batch"},
    })
}

/// Writes both forms of the same jobs: manifests for nfcron, JSON bodies
/// for the loop. `changed` jobs get a new schedule minute.
fn write(dir: &Path, changed: usize, round: usize) {
    std::fs::create_dir_all(dir.join("jobs.d")).expect("mkdir");
    std::fs::create_dir_all(dir.join("bodies")).expect("mkdir");
    for n in 0..JOBS {
        let minute = if n < changed { (round * 7) % 60 } else { 0 };
        let body = spec(n, minute);
        let manifest = serde_json::json!({"kind": "CronJob", "project": "bench", "spec": body});
        std::fs::write(
            dir.join(format!("jobs.d/{n:03}.yaml")),
            serde_yaml::to_string(&manifest).expect("yaml"),
        )
        .expect("write");
        std::fs::write(dir.join(format!("bodies/{n:03}.json")), body.to_string()).expect("write");
    }
}

fn children_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Measured {
    requests: usize,
    wall: Duration,
    cpu: Duration,
}

fn measure(fake: &fake::Fake, mut cmd: Command) -> Measured {
    let before = fake.requests().len();
    let cpu = children_cpu();
    let start = Instant::now();
    let status = cmd.status().expect("run");
    let wall = start.elapsed();
    assert!(status.success() || status.code() == Some(2), "{status:?}");
    Measured {
        requests: fake.requests().len() - before,
        wall,
        cpu: children_cpu() - cpu,
    }
}

fn main() {
    let fake = fake::Fake::spawn(0);
    fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));
    let dir = tempfile::tempdir().expect("dir");
    let naive = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/naive-loop.sh");
    let nfcron = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nfcron"));
        c.current_dir(dir.path())
            .args(["reconcile", "--concurrency", "8", "--output", "json"])
            .env("NORTHFLANK_API_URL", &fake.url)
            .env("NORTHFLANK_API_TOKEN", fake::TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let loop_cmd = || {
        let mut c = Command::new("bash");
        c.arg(&naive)
            .arg(dir.path().join("bodies"))
            .env("NORTHFLANK_API_URL", &fake.url)
            .env("NORTHFLANK_API_TOKEN", fake::TOKEN)
            .env("PROJECT", "bench");
        c
    };
    // First apply, not measured: both start from jobs that exist.
    write(dir.path(), 0, 0);
    measure(&fake, nfcron());

    println!(
        "side by side, {JOBS} jobs, one run each (machine: {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("| changed | tool | requests | wall | CPU |");
    println!("|---|---|---|---|---|");
    for (round, changed) in [(1, 0), (2, 1), (3, 10)] {
        write(dir.path(), changed, round);
        let ours = measure(&fake, nfcron());
        let theirs = measure(&fake, loop_cmd());
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {changed} | nfcron | {} | {:.0} ms | {:.0} ms |",
            ours.requests,
            ms(ours.wall),
            ms(ours.cpu)
        );
        println!(
            "| {changed} | naive loop | {} | {:.0} ms | {:.0} ms |",
            theirs.requests,
            ms(theirs.wall),
            ms(theirs.cpu)
        );
        let ratio = |a: f64, b: f64| {
            if a == 0.0 {
                "∞".to_string()
            } else {
                format!("{:.0}x", b / a)
            }
        };
        println!(
            "| {changed} | ratio (loop / nfcron) | {} | {} | {} |",
            ratio(ours.requests as f64, theirs.requests as f64),
            ratio(ms(ours.wall), ms(theirs.wall)),
            ratio(ms(ours.cpu), ms(theirs.cpu))
        );
    }
}
