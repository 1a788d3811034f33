//! Manifest bombs inside the file-size limit (issue 10, item 8): wall time
//! and peak RSS of the real release binary, `nfcron validate` and
//! `nfcron reconcile --dry-run` (offline), on
//!
//! - a 440 KB file: a 200 KB scalar aliased 60,000 times;
//! - 170,000 empty documents (`--- ~`) in 1 MiB;
//! - 149,000 empty mappings (`--- {}`, each an invalid manifest) in 1 MiB.
//!
//! The goal is under 100 MiB peak RSS each. Run with
//! `cargo bench --bench hostile_inputs`; one line per figure.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const RUNS: usize = 3;
const GOAL_KIB: i64 = 100 * 1024;

fn alias_file() -> String {
    let mut text = format!("a: &a {}\nb: [", "x".repeat(200_000));
    for _ in 0..60_000 {
        text.push_str("*a, ");
    }
    text.push_str("]\n");
    text
}

/// Runs the binary once; returns wall time, the child's peak RSS in KiB and
/// its exit code.
fn run_once(dir: &Path, args: &[&str]) -> (Duration, i64, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("NORTHFLANK_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    common::run_measured(cmd)
}

/// One job whose runtime environment holds `n` keys (just under 1 MiB at
/// 60,000): the duplicate-key check must stay linear.
fn many_keys(n: usize) -> String {
    let mut text = String::from("kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing: {deploymentPlan: nf-compute-20}\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n");
    for i in 0..n {
        text.push_str(&format!("    K{i}: \"v\"\n"));
    }
    text
}

fn main() {
    // The bombs are refused (exit 1); 60,000 environment variables make a
    // valid job (exit 0), just a large one.
    let cases: [(&str, String, i32); 4] = [
        ("200 KB scalar aliased 60,000 times", alias_file(), 1),
        ("170,000 empty documents", "--- ~\n".repeat(170_000), 1),
        ("149,000 empty mappings", "--- {}\n".repeat(149_000), 1),
        ("60,000 keys in one mapping", many_keys(60_000), 0),
    ];
    let commands: [(&str, &[&str]); 4] = [
        ("validate", &["validate", "jobs.d"]),
        (
            "validate --output json",
            &["validate", "--output", "json", "jobs.d"],
        ),
        ("reconcile --dry-run", &["reconcile", "--dry-run", "jobs.d"]),
        (
            "reconcile --dry-run --output json",
            &["reconcile", "--dry-run", "--output", "json", "jobs.d"],
        ),
    ];
    let mut over = Vec::new();
    for (name, text, expected) in &cases {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("jobs.d")).expect("mkdir");
        std::fs::write(dir.path().join("jobs.d/bomb.yaml"), text).expect("write");
        println!("{name} ({:.0} KB):", text.len() as f64 / 1000.0);
        for (label, args) in commands {
            let mut times = Vec::new();
            let mut rss = Vec::new();
            for _ in 0..RUNS {
                let (t, r, code) = run_once(dir.path(), args);
                assert_eq!(code, *expected, "{label} on {name}: exit {expected}");
                times.push(t);
                rss.push(r);
            }
            times.sort();
            rss.sort();
            let max = rss[RUNS - 1];
            println!(
                "  {label:<34} wall median {:>8.1} ms  peak RSS max {:>6.1} MiB",
                times[RUNS / 2].as_secs_f64() * 1000.0,
                max as f64 / 1024.0
            );
            if max > GOAL_KIB {
                over.push(format!("{label} on {name}"));
            }
        }
    }
    assert!(over.is_empty(), "over 100 MiB peak RSS: {over:?}");
}
