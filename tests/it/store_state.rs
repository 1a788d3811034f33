//! The state through the binary against the fake: `nfcron state list |
//! migrate | unlock`, and its edge cases: a lost `.nfcron/` adopted within
//! `--max-reads` without a blind PUT, a state file that cannot be written,
//! temp files left by kills, a lost key, a corrupt record and an
//! unsupported `format_version`.

use crate::common;
use crate::fake;
use crate::support::pg;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::{job, Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};
use serde_json::Value;

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

// ---- edge cases -------------------------------------------------------------

const SECRET: &str = "st4te-Edge-secret";

/// A job with an external image and a runtime environment: adopting it
/// costs three reads (job, deployment, runtime-environment).
fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n  runtimeEnvironment:\n    API_KEY: \"${{NFCRON_TEST_KEY}}\"\n")
}

fn api_env(fake: &Fake) -> [(&str, &str); 3] {
    [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
        ("NFCRON_TEST_KEY", SECRET),
    ]
}

fn reconcile(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    let mut full = vec!["reconcile", "--output", "json"];
    full.extend_from_slice(args);
    ws.nfcron_env(&full, &api_env(fake))
}

/// `nfcron ARGS` on a full disk, as a file size limit: every state write
/// fails with EFBIG (SIGXFSZ ignored), whoever runs the test (root ignores
/// a read-only directory).
fn on_a_full_disk(ws: &Workspace, fake: &Fake, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.current_dir(ws.path())
        .args(args)
        .env("NO_COLOR", "1")
        .envs(api_env(fake));
    // SAFETY: async-signal-safe calls only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                // Below one journal line: the first commit fails.
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run nfcron")
}

#[test]
fn a_lost_state_is_adopted_over_several_runs_without_a_blind_put() {
    // 99 applied + 1 new: one list page (100 a page) on every run.
    const JOBS: usize = 99;
    let ws = Workspace::new();
    for i in 0..JOBS {
        ws.write(
            &format!("jobs.d/{i:03}.yaml"),
            manifest(&format!("Job {i:03}"), "0 3 * * *"),
        );
    }
    let fake = Fake::spawn(0);
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fake.count("PUT"), JOBS);
    std::fs::remove_dir_all(ws.path().join(".nfcron")).expect("rm .nfcron");
    // One job nfcron never applied: the list shows it is not live, so it
    // is a create even while the budget is short.
    ws.write("jobs.d/new.yaml", manifest("Job New", "0 4 * * *"));

    // 1 list + 10 jobs x 3 reads (job, deployment, runtime-environment).
    const BUDGET: usize = 31;
    const PER_RUN: usize = 10;
    let mut adopted = 0;
    for runs in 1.. {
        assert!(runs <= JOBS.div_ceil(PER_RUN), "adoption does not progress");
        fake.clear_log();
        let run = reconcile(
            &ws,
            &fake,
            &["--max-reads", &BUDGET.to_string(), "--detailed-exitcode"],
        );
        let report = run.json();
        let s = &report["summary"];
        let now = PER_RUN.min(JOBS - adopted);
        let left = JOBS - adopted - now;
        let first = runs == 1;
        assert_eq!(
            (
                s["unchanged"].as_u64(),
                s["unverified"].as_u64(),
                s["create"].as_u64(),
                s["update"].as_u64(),
            ),
            (
                // Adopted so far, and the new job once it is recorded.
                Some((adopted + now + usize::from(!first)) as u64),
                Some(left as u64),
                Some(u64::from(first)),
                Some(0),
            ),
            "run {runs}: {s}"
        );
        // Unverified jobs are pending, as changes are: exit 2 while any is
        // left.
        let pending = left > 0 || first;
        assert_eq!(
            run.code,
            if pending { 2 } else { 0 },
            "run {runs}: {}",
            run.stderr
        );
        let puts = fake.count("PUT");
        assert_eq!(
            puts,
            usize::from(first),
            "run {runs}: only the new job is PUT"
        );
        assert_eq!(fake.count("GET"), 1 + 3 * now, "run {runs}");
        assert!(fake.count("GET") <= BUDGET);
        assert_eq!(
            s["api_requests"].as_u64(),
            Some((1 + 3 * now + puts) as u64)
        );
        let unverified = report["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter(|j| j["action"] == "unverified")
            .inspect(|j| assert_eq!(j["result"], "skipped"))
            .count();
        assert_eq!(unverified, left);
        adopted += now;
        if left == 0 {
            assert_eq!(runs, 10);
            break;
        }
    }
    // Everything is recorded again: the next run sends nothing.
    fake.clear_log();
    let run = reconcile(&ws, &fake, &["--max-reads", "31", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["unchanged"], JOBS + 1);
    assert_eq!(fake.requests(), vec![]);
}

#[test]
fn a_state_file_that_cannot_be_written_stops_the_run_at_the_first_failed_save() {
    let ws = Workspace::new();
    for l in ["a", "b", "c"] {
        ws.write(
            &format!("jobs.d/{l}.yaml"),
            manifest(&format!("Job {}", l.to_uppercase()), "0 3 * * *"),
        );
    }
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    let state = ws.path().join(".nfcron/state.json");
    let before = std::fs::read(&state).expect("state");
    assert!(before.len() > 1024, "the limit below must fail the save");
    for l in ["a", "b"] {
        ws.write(
            &format!("jobs.d/{l}.yaml"),
            manifest(&format!("Job {}", l.to_uppercase()), "0 5 * * *"),
        );
    }
    std::fs::remove_file(ws.path().join("jobs.d/c.yaml")).expect("rm");
    fake.clear_log();
    let out = on_a_full_disk(
        &ws,
        &fake,
        &[
            "reconcile",
            "--output",
            "json",
            "--concurrency",
            "1",
            "--prune",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(fake.count("PUT"), 1, "no PUT after the first failed save");
    assert_eq!(fake.count("DELETE"), 0, "nor a DELETE");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let a = job(&report, "job-a");
    assert_eq!(a["result"], "failed");
    assert!(
        a["error"]["message"]
            .as_str()
            .expect("message")
            .contains("cannot write state file"),
        "{a}"
    );
    for id in ["job-b", "job-c"] {
        assert_eq!(job(&report, id)["result"], "not_attempted", "{id}");
    }
    assert_eq!(report["summary"]["not_attempted"], 2);
    assert_eq!(report["summary"]["failed"], 1);
    assert!(stderr.contains("not_attempted=2"), "{stderr}");
    assert_eq!(
        std::fs::read(&state).expect("state"),
        before,
        "state untouched"
    );
    assert_eq!(fake.job_ids("acme"), ["job-a", "job-b", "job-c"]);

    // Writable again: the next run applies both and deletes job-c.
    fake.clear_log();
    let run = reconcile(&ws, &fake, &["--prune"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((fake.count("PUT"), fake.count("DELETE")), (2, 1));
    assert_eq!(fake.job_ids("acme"), ["job-a", "job-b"]);
    assert_eq!(run.json()["summary"]["not_attempted"], 0);
}

#[test]
fn the_text_report_names_jobs_not_attempted() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 3 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 6 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 6 * * *"));
    let out = on_a_full_disk(&ws, &fake, &["reconcile", "--concurrency", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("not attempted acme/job-b: the state file cannot be written"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Apply: 0 applied, 1 failed, 1 not attempted, 1 API requests."),
        "{stdout}"
    );
}

#[test]
fn temp_files_left_by_a_kill_are_removed_under_the_lock() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    let dir = ws.path().join(".nfcron");
    let stale = dir.join(".state.k1LLd9.tmp");
    std::fs::write(&stale, "{\"format_version\":1,\"jo").expect("write");
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("mtime");
    // Not ours: kept.
    let others = [".state.json.tmp", "state.k1LLd9.tmp", ".state.k1LLd9.tmp~"];
    for name in others {
        std::fs::write(dir.join(name), "x").expect("write");
    }
    fake.clear_log();

    // A dry-run takes no lock, so it removes nothing.
    let run = reconcile(&ws, &fake, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(stale.exists());

    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!stale.exists(), "the stale temp file is removed");
    for name in others {
        assert!(dir.join(name).exists(), "{name} is kept");
    }
    assert_eq!(fake.requests(), vec![], "a no-op still sends nothing");
}

#[test]
fn a_lost_key_beside_a_state_is_said_out_loud_and_costs_one_put_per_job() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 4 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    std::fs::remove_file(ws.path().join(".nfcron/key")).expect("remove the key");
    fake.clear_log();

    let plan = reconcile(&ws, &fake, &["--dry-run", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("the key file is missing beside an existing state"),
        "{}",
        plan.stderr
    );
    let report: Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert_eq!(job(&report, "job-a")["action"], "update", "{report:#}");
    assert!(
        !ws.path().join(".nfcron/key").exists(),
        "a dry-run writes no key"
    );
    assert!(!plan.stdout.contains(SECRET) && !plan.stderr.contains(SECRET));

    let apply = reconcile(&ws, &fake, &[]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(fake.count("PUT"), 2, "one PUT per job, once");
    assert!(ws.path().join(".nfcron/key").exists());
    fake.clear_log();
    let again = reconcile(&ws, &fake, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        !again.stderr.contains("key file is missing"),
        "{}",
        again.stderr
    );
    assert_eq!(
        fake.requests(),
        vec![],
        "the new key holds: a no-op sends nothing"
    );
}

#[test]
fn a_recorded_spec_that_is_json_but_no_tree_is_a_corrupt_state_not_a_panic() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    let path = ws.path().join(".nfcron/state.json");
    let good = std::fs::read_to_string(&path).expect("state");
    assert!(good.contains(r#""backoffLimit":1"#), "{good}");
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 4 * * *"));
    for bad in [r#""backoffLimit":1e400"#, r#""backoffLimit":"\ud800""#] {
        std::fs::write(&path, good.replace(r#""backoffLimit":1"#, bad)).expect("edit");
        fake.clear_log();
        for args in [&["--dry-run"][..], &[]] {
            let run = reconcile(&ws, &fake, args);
            assert_eq!(run.code, 1, "{bad} {args:?}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            assert!(
                run.stderr.contains("state file")
                    && run.stderr.contains(".nfcron/state.json")
                    && run.stderr.contains("is not valid"),
                "{}",
                run.stderr
            );
        }
        let list = ws.nfcron_env(&["state", "list"], &api_env(&fake));
        assert_eq!(list.code, 1, "{}", list.stderr);
        assert_eq!(
            fake.requests(),
            vec![],
            "nothing is sent on a corrupt state"
        );
    }
}

#[test]
fn a_state_format_version_0_is_called_older_not_newer() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    ws.write(".nfcron/state.json", "{\"format_version\":0,\"jobs\":[]}\n");
    let fake = Fake::spawn(0);
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("format_version 0 is older than 1 and unsupported"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("newer"), "{}", run.stderr);
    ws.write(".nfcron/state.json", "{\"format_version\":7,\"jobs\":[]}\n");
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("format_version 7 is newer"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests(), vec![], "stopped before any request");
}

#[test]
fn a_project_the_read_budget_cannot_list_is_not_written_blind() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    ws.write(
        "jobs.d/b.yaml",
        manifest("Job B", "0 3 * * *").replace("project: acme", "project: beta"),
    );
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    std::fs::remove_dir_all(ws.path().join(".nfcron")).expect("rm .nfcron");
    fake.clear_log();
    // One read: acme is listed, nothing is left to read job-a or to list
    // beta. Neither job is PUT.
    let run = reconcile(&ws, &fake, &["--max-reads", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(job(&report, "job-a")["action"], "unverified");
    assert_eq!(job(&report, "job-b")["action"], "unverified");
    assert_eq!(
        fake.requests()
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [("GET", "/v1/projects/acme/jobs")]
    );
    // A budget for both: adopted, still no PUT.
    fake.clear_log();
    let run = reconcile(&ws, &fake, &["--max-reads", "8"]);
    assert_eq!(run.json()["summary"]["unchanged"], 2);
    assert_eq!((fake.count("GET"), fake.count("PUT")), (8, 0));
}
