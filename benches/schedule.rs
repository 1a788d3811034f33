//! What a schedule's next run times cost: `cron::parse` plus
//! `next_runs(now, 3)` (what a plan computes for each job it writes) for a
//! common schedule, a rare one and one that never runs (each run searches
//! the whole five-year limit). The median of several rounds.
//!
//! Run with `cargo bench --bench schedule`. Prints one line per figure.

use std::time::{Duration, Instant};

use nfcron::manifest::cron;

const ROUNDS: usize = 7;
const CALLS: u32 = 2_000;

fn median_per_call(schedule: &str, runs: usize) -> Duration {
    let after: jiff::Timestamp = "2026-11-28T16:07:30Z".parse().expect("timestamp");
    let mut rounds: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..CALLS {
                let s = cron::parse(std::hint::black_box(schedule)).expect("valid");
                std::hint::black_box(s.next_runs(after, runs));
            }
            start.elapsed() / CALLS
        })
        .collect();
    rounds.sort();
    rounds[ROUNDS / 2]
}

fn main() {
    for (label, schedule) in [
        ("common", "0 3 * * *"),
        ("steps and names", "*/15 9-17 * JAN-MAR MON-FRI"),
        ("rare (29 Feb on a Monday)", "0 0 29 2 1"),
        ("never runs (30 Feb)", "0 0 30 2 *"),
    ] {
        let t = median_per_call(schedule, 3);
        println!(
            "schedule next 3 runs, {label} `{schedule}`: {:.1} µs per job",
            t.as_secs_f64() * 1e6
        );
    }
}
