//! An apply killed with SIGKILL at several points, for the crash tests of
//! each state store: how many kills caught each job in flight, and the
//! bound that sets on its PUTs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fake::{Fake, TOKEN};

/// Starts `nfcron ARGS` in `dir` against `fake` up to `kills` times and
/// kills each with SIGKILL after 1 to 8 more PUTs (a different depth each
/// time); stops early once an apply finishes before its kill point. After
/// each kill, `recorded` reads the job ids the state holds: every one must
/// be live in the API, and a live job it lacks was in flight at the kill.
/// Per job, how many kills caught it in flight.
pub fn apply_killed(
    dir: &Path,
    fake: &Fake,
    args: &[&str],
    kills: usize,
    recorded: impl Fn() -> BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let mut in_flight: BTreeMap<String, usize> = BTreeMap::new();
    for kill in 0..kills {
        let puts_before = fake.count("PUT");
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfcron"))
            .current_dir(dir)
            .args(args)
            .env("NORTHFLANK_API_URL", &fake.url)
            .env("NORTHFLANK_API_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        let target = puts_before + 1 + kill % 8;
        let reached = fake.wait_until(Duration::from_secs(20), |log| {
            log.iter().filter(|r| r.method == "PUT").count() >= target
        });
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        if !reached {
            break; // the apply finished before this kill point
        }
        // Jobs the API has but the state lacks were in flight at the kill.
        let recorded = recorded();
        for id in fake
            .job_ids("acme")
            .into_iter()
            .filter(|id| !recorded.contains(id))
        {
            *in_flight.entry(id).or_default() += 1;
        }
        assert!(
            recorded
                .iter()
                .all(|id| fake.job(None, "acme", id).is_some()),
            "state claims a job the API lacks"
        );
    }
    in_flight
}

/// Asserts that no job was PUT more than once plus the kills that caught
/// it in flight.
pub fn assert_puts_within(fake: &Fake, in_flight: &BTreeMap<String, usize>) {
    let mut puts: BTreeMap<String, usize> = BTreeMap::new();
    for r in fake.requests().iter().filter(|r| r.method == "PUT") {
        *puts
            .entry(r.job.clone().expect("PUTs name their job"))
            .or_default() += 1;
    }
    for (id, n) in &puts {
        let allowed = 1 + in_flight.get(id).copied().unwrap_or(0);
        assert!(*n <= allowed, "{id} was PUT {n} times; {allowed} allowed");
    }
}
