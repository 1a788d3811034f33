//! `nfcron state list | migrate | unlock` through the binary.

use crate::common;
use crate::fake;
use crate::support::pg;

use common::{Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};

fn manifests(ws: &Workspace, jobs: usize) {
    // A secret: its fingerprint in the state is keyed, so only the same
    // key plans it unchanged.
    let docs: Vec<String> = (0..jobs)
        .map(|n| format!("kind: CronJob\nproject: acme\nspec:\n  name: Job {n:03}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{} 3 * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n    PASSWORD: ${{SECRET}}\n", n % 60))
        .collect();
    ws.write("jobs.d/a.yaml", docs.join("---\n"));
}

fn nfcron(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    ws.nfcron_env(
        args,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            ("SECRET", "hunter2-state-test"),
        ],
    )
}

/// A dry-run against `state` plans no change and sends nothing.
fn plans_nothing(ws: &Workspace, fake: &Fake, state: &str) {
    fake.clear_log();
    let run = nfcron(
        ws,
        fake,
        &[
            "reconcile",
            "--dry-run",
            "--detailed-exitcode",
            "--state",
            state,
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["summary"]["unchanged"], 3, "{}", run.stdout);
    assert_eq!(fake.requests(), vec![]);
}

fn migrate(ws: &Workspace, fake: &Fake, from: &str, to: &str) -> Run {
    nfcron(ws, fake, &["state", "migrate", "--from", from, "--to", to])
}

fn migrate_both_ways(other: &str) {
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    manifests(&ws, 3);
    let first = nfcron(&ws, &fake, &["reconcile"]);
    assert_eq!(first.code, 0, "{}", first.stderr);

    let there = migrate(&ws, &fake, ".nfcron/state.json", other);
    assert_eq!(there.code, 0, "{}", there.stderr);
    assert!(
        there.stdout.starts_with(
            "Migrated 3 jobs and 0 rejections with their key from .nfcron/state.json to "
        ),
        "{}",
        there.stdout
    );
    plans_nothing(&ws, &fake, other);

    let back = migrate(&ws, &fake, other, "back/state.json");
    assert_eq!(back.code, 0, "{}", back.stderr);
    plans_nothing(&ws, &fake, "back/state.json");

    // Never into a state that holds records.
    let again = migrate(&ws, &fake, ".nfcron/state.json", other);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("already holds state (3 jobs, 0 rejected)"),
        "{}",
        again.stderr
    );
    // A source without its key is not migrated with a key made up.
    std::fs::remove_file(ws.path().join("back/key")).expect("remove the key");
    let keyless = migrate(&ws, &fake, "back/state.json", "elsewhere/state.json");
    assert_eq!(keyless.code, 1, "{}", keyless.stderr);
    assert!(
        keyless
            .stderr
            .contains("back/state.json holds state but no key: restore its key first"),
        "{}",
        keyless.stderr
    );
    assert!(!ws.path().join("elsewhere/state.json").exists());
    // Two state files in one directory would share its lock and key.
    let beside = migrate(&ws, &fake, ".nfcron/state.json", ".nfcron/other.json");
    assert_eq!(beside.code, 1, "{}", beside.stderr);
    assert!(
        beside
            .stderr
            .contains("--from and --to are in one directory"),
        "{}",
        beside.stderr
    );
    for run in [&first, &there, &back, &again, &keyless] {
        assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
    }
}

#[test]
fn state_migrate_file_to_file_and_back_plans_zero_changes() {
    migrate_both_ways("moved/state.json");
}

#[test]
fn state_migrate_to_postgres_and_back_plans_zero_changes() {
    let Some(db) = pg::Db::new("migrate_both") else {
        return;
    };
    migrate_both_ways(&db.url);
    assert_eq!(db.count("SELECT count(*) FROM nfcron_jobs"), 3);
}

#[test]
fn state_list_shows_records_and_rejections() {
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    manifests(&ws, 3);
    fake.inject(FaultRule {
        method: Some(hyper::Method::PUT),
        fault: Fault::Status {
            status: 422,
            retry_after: None,
        },
        times: 1,
        after: 2,
    });
    let run = nfcron(&ws, &fake, &["reconcile", "--concurrency", "1"]);
    assert_eq!(run.code, 1, "a rejected job fails the run");
    let list = nfcron(&ws, &fake, &["state", "list", "--output", "json"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let json = list.json();
    assert_eq!(json["format_version"], 1);
    let jobs = json["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["id"], "job-000");
    assert_eq!(jobs[0]["project"], "acme");
    assert!(jobs[0]["applied_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(jobs[0]["revision"], serde_json::Value::Null);
    let rejected = json["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{json}");
    assert_eq!(rejected[0]["id"], "job-002");
    assert_eq!(rejected[0]["status"], 422);
    assert!(rejected[0]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    let text = nfcron(&ws, &fake, &["state", "list"]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("acme/job-002  rejected 422 at "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .ends_with("State .nfcron/state.json: 2 jobs, 1 rejected.\n"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("hunter2") && !list.stdout.contains("hunter2"));
}

#[test]
fn state_unlock_needs_force_removes_a_dead_holders_lock_and_refuses_a_live_one() {
    let ws = Workspace::new();
    let lock = ws.path().join(".nfcron/state.lock");
    // A holder that is gone: its pid named in the file, no flock held.
    let mut gone = std::process::Command::new("true").spawn().expect("true");
    gone.wait().expect("reaped");
    let pid = gone.id().to_string();
    ws.write(".nfcron/state.lock", format!("{pid}\n"));
    let refused = ws.nfcron(&["state", "unlock"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("pass --force"),
        "{}",
        refused.stderr
    );
    assert!(lock.exists());
    let done = ws.nfcron(&["state", "unlock", "--force"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.stdout,
        format!("Unlocked: removed .nfcron/state.lock (held by pid {pid}, which is gone).\n")
    );
    assert!(!lock.exists());
    let none = ws.nfcron(&["state", "unlock", "--force"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.starts_with("Not locked"), "{}", none.stdout);

    // A live holder (this test process) keeps its lock.
    let held = nfcron::store::file::StateLock::acquire(&ws.path().join(".nfcron/state.json"))
        .expect("lock");
    let live = ws.nfcron(&["state", "unlock", "--force"]);
    assert_eq!(live.code, 1);
    assert!(
        live.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        live.stderr
    );
    assert!(lock.exists());
    drop(held);
}
