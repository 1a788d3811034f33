//! `nfcron reconcile` against the fake Northflank API on 127.0.0.1:0, run
//! as a user runs it. Every test counts the requests the fake received.

use crate::common;
use crate::fake;

use common::{job, Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};
use hyper::Method;
use serde_json::Value;

fn manifest(name: &str, schedule: &str) -> String {
    format!(
        "kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n  runtimeEnvironment:\n    DATABASE_URL: \"${{NFCRON_TEST_DB:-postgres://default}}\"\n"
    )
}

struct Env {
    ws: Workspace,
    fake: Fake,
}

impl Env {
    /// A workspace with `n` jobs (`Job A`, `Job B`, ...) and a fake API.
    fn new(n: usize) -> Env {
        let ws = Workspace::new();
        for i in 0..n {
            let letter = (b'a' + i as u8) as char;
            ws.write(
                &format!("jobs.d/{letter}.yaml"),
                manifest(&format!("Job {}", letter.to_ascii_uppercase()), "0 3 * * *"),
            );
        }
        Env {
            ws,
            fake: Fake::spawn(0),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut env = vec![
            ("NORTHFLANK_API_URL", self.fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ];
        env.extend_from_slice(extra);
        let mut full = vec!["reconcile"];
        full.extend_from_slice(args);
        self.ws.nfcron_env(&full, &env)
    }

    fn state(&self) -> Value {
        let text =
            std::fs::read_to_string(self.ws.path().join(".nfcron/state.json")).expect("state file");
        serde_json::from_str(&text).expect("state parses")
    }

    fn state_ids(&self) -> Vec<String> {
        self.state()["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn summary(run: &Run) -> Value {
    run.json()["summary"].clone()
}

#[test]
fn first_apply_creates_every_job_and_the_second_sends_nothing() {
    let env = Env::new(3);
    let run = env.run(&["--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = summary(&run);
    // With no state, one list call looks for the jobs live before creating.
    assert_eq!(
        (
            s["create"].as_u64(),
            s["api_requests"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(3), Some(4), Some(0))
    );
    assert_eq!((env.fake.count("GET"), env.fake.count("PUT")), (1, 3));
    assert_eq!(env.fake.job_ids("acme"), ["job-a", "job-b", "job-c"]);
    assert_eq!(env.state_ids(), ["job-a", "job-b", "job-c"]);
    for j in run.json()["jobs"].as_array().expect("jobs") {
        assert_eq!(j["result"], "applied");
        assert_eq!(j["next_runs"].as_array().map(Vec::len), Some(3));
    }

    env.fake.clear_log();
    let run = env.run(&["--output", "json", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "no changes: 0 even with --detailed-exitcode");
    assert_eq!(summary(&run)["unchanged"], 3);
    assert_eq!(summary(&run)["api_requests"], 0);
    assert_eq!(
        env.fake.requests(),
        vec![],
        "a no-op reconcile sends nothing"
    );
}

#[test]
fn editing_one_field_sends_exactly_one_put_with_that_change() {
    let env = Env::new(3);
    assert_eq!(env.run(&[]).code, 0);
    env.fake.clear_log();
    env.ws
        .write("jobs.d/b.yaml", manifest("Job B", "30 4 * * *"));
    let run = env.run(&["--output", "json", "--detailed-exitcode"]);
    assert_eq!(
        run.code, 2,
        "changes applied, --detailed-exitcode: {}",
        run.stderr
    );
    assert_eq!(env.fake.count("PUT"), 1);
    assert_eq!(env.fake.requests().len(), 1);
    let report = run.json();
    let b = job(&report, "job-b");
    assert_eq!(b["action"], "update");
    assert_eq!(
        b["changes"],
        serde_json::json!([{"path": "schedule", "before": "0 3 * * *", "after": "30 4 * * *"}])
    );
    assert_eq!(common::acme_schedule(&env.fake, "job-b"), "30 4 * * *");
}

#[test]
fn dry_run_sends_no_write_takes_no_lock_writes_nothing_and_exits_2() {
    let env = Env::new(2);
    let run = env.run(&["--dry-run", "--detailed-exitcode", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        env.fake.count("PUT") + env.fake.count("DELETE"),
        0,
        "no writes"
    );
    assert_eq!(
        env.fake.count("GET"),
        1,
        "one list call to look for the jobs live"
    );
    assert!(
        !env.ws.path().join(".nfcron").exists(),
        "a dry-run writes nothing, not even the lock or key"
    );
    let report = run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["baseline"], "live");
    assert_eq!(job(&report, "job-a")["result"], "planned");
    // Offline (no token): an empty baseline, said on stderr.
    let offline = env
        .ws
        .nfcron(&["reconcile", "--dry-run", "--output", "json"]);
    assert_eq!(offline.json()["baseline"], "empty");
    assert!(
        offline.stderr.contains("empty baseline"),
        "{}",
        offline.stderr
    );
    // Without --detailed-exitcode pending changes are still success.
    assert_eq!(env.run(&["--dry-run"]).code, 0);
}

#[test]
fn offline_dry_run_needs_no_token_and_plans_against_state() {
    let env = Env::new(2);
    assert_eq!(env.run(&[]).code, 0);
    env.ws
        .write("jobs.d/a.yaml", manifest("Job A", "0 5 * * *"));
    let run = env
        .ws
        .nfcron(&["reconcile", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["baseline"], "state");
    assert_eq!(report["summary"]["update"], 1);
    assert_eq!(report["summary"]["unchanged"], 1);
    assert_eq!(report["summary"]["api_requests"], 0);
}

#[test]
fn applying_without_a_token_is_an_error() {
    let env = Env::new(1);
    let run = env.ws.nfcron(&["reconcile"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("NORTHFLANK_API_TOKEN"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_400_on_one_job_leaves_the_others_applied_and_its_state_untouched() {
    let env = Env::new(3);
    assert_eq!(env.run(&[]).code, 0);
    let before = env.state();
    env.ws
        .write("jobs.d/a.yaml", manifest("Job A", "1 1 * * *"));
    env.ws
        .write("jobs.d/b.yaml", manifest("Job B", "2 2 * * *"));
    env.fake.inject(common::put_status(400, 1));
    let run = env.run(&["--output", "json", "--concurrency", "1"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    let a = job(&report, "job-a");
    // A 400 is permanent: reported (and recorded) as rejected.
    assert_eq!(a["result"], "rejected");
    assert_eq!(a["error"]["status"], 400);
    assert!(
        a["error"]["message"]
            .as_str()
            .expect("message")
            .contains("injected fault"),
        "{a}"
    );
    assert_eq!(job(&report, "job-b")["result"], "applied");
    assert_eq!(report["summary"]["rejected"], 1);
    assert_eq!(env.fake.count("PUT"), 3 + 2, "a 400 is not retried");
    let after = env.state();
    let record = |s: &Value, id: &str| {
        s["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
    };
    assert_eq!(
        record(&after, "job-a"),
        record(&before, "job-a"),
        "failed job's state untouched"
    );
    assert_ne!(record(&after, "job-b"), record(&before, "job-b"));
    // The next run does not send the rejected spec again (still an
    // error); --retry-rejected sends what was rejected, and only that.
    env.fake.clear_log();
    assert_eq!(env.run(&[]).code, 1);
    assert_eq!(env.fake.count("PUT"), 0);
    assert_eq!(env.run(&["--retry-rejected"]).code, 0);
    assert_eq!(env.fake.count("PUT"), 1);
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let env = Env::new(2);
    env.fake.inject(FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
        times: 1,
        after: 0,
    });
    let run = env.run(&["--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["create"], 2);
    assert_eq!(
        summary(&run)["api_requests"],
        4,
        "a list, two PUTs and one retry"
    );
    assert_eq!(env.fake.count("PUT"), 3);
    assert_eq!(env.state_ids().len(), 2);
}

#[test]
fn retries_stop_at_retry_max_time() {
    let env = Env::new(1);
    env.fake.inject(FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status: 503,
            retry_after: Some(5),
        },
        times: 100,
        after: 0,
    });
    let run = env.run(&["--output", "json", "--retry-max-time", "2s"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        env.fake.count("PUT"),
        1,
        "a 5 s Retry-After is beyond a 2 s budget: no second attempt"
    );
    assert!(!env.ws.path().join(".nfcron/state.json").exists());
}

#[test]
fn a_held_lock_fails_fast_naming_the_holder() {
    let env = Env::new(1);
    let _held = nfcron::store::file::StateLock::acquire(&env.ws.path().join(".nfcron/state.json"))
        .expect("lock");
    let run = env.run(&[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert_eq!(env.fake.requests(), vec![]);
}

#[test]
fn prune_deletes_only_what_nfcron_applied() {
    let env = Env::new(3);
    assert_eq!(env.run(&[]).code, 0);
    // A job nfcron never applied lives in the same project.
    let other = Workspace::new();
    other.write("jobs.d/x.yaml", manifest("Hand Made", "0 1 * * *"));
    let made = other.nfcron_env(
        &["reconcile", "--state", "elsewhere/state.json"],
        &[
            ("NORTHFLANK_API_URL", env.fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(made.code, 0);
    std::fs::remove_file(env.ws.path().join("jobs.d/c.yaml")).expect("rm");
    env.fake.clear_log();

    let run = env.run(&["--output", "json"]);
    assert_eq!(run.code, 0);
    assert_eq!(job(&run.json(), "job-c")["action"], "orphan");
    assert_eq!(env.fake.count("DELETE"), 0, "no --prune, no delete");

    let run = env.run(&["--prune", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(job(&run.json(), "job-c")["action"], "delete");
    assert_eq!(env.fake.count("DELETE"), 1);
    assert_eq!(env.fake.job_ids("acme"), ["hand-made", "job-a", "job-b"]);
    assert_eq!(env.state_ids(), ["job-a", "job-b"]);
}

#[test]
fn prune_is_skipped_when_a_manifest_cannot_be_parsed() {
    let env = Env::new(2);
    assert_eq!(env.run(&[]).code, 0);
    std::fs::remove_file(env.ws.path().join("jobs.d/b.yaml")).expect("rm");
    env.ws
        .write("jobs.d/broken.yaml", "kind: CronJob\nspec: [unclosed\n");
    env.fake.clear_log();
    let run = env.run(&["--prune", "--output", "json"]);
    assert_eq!(run.code, 1, "an invalid manifest is an error");
    assert_eq!(env.fake.count("DELETE"), 0);
    assert_eq!(job(&run.json(), "job-b")["action"], "orphan");
    assert!(run.stderr.contains("prune skipped"), "{}", run.stderr);
}

#[test]
fn prune_with_no_manifests_needs_allow_empty() {
    let env = Env::new(2);
    assert_eq!(env.run(&[]).code, 0);
    for f in ["a", "b"] {
        std::fs::remove_file(env.ws.path().join(format!("jobs.d/{f}.yaml"))).expect("rm");
    }
    env.fake.clear_log();
    let run = env.run(&["--prune"]);
    assert_eq!(run.code, 0);
    assert_eq!(env.fake.count("DELETE"), 0);
    assert!(run.stderr.contains("--allow-empty"), "{}", run.stderr);
    let run = env.run(&["--prune", "--allow-empty"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.fake.count("DELETE"), 2);
}

#[test]
fn too_many_deletions_delete_nothing_and_fail() {
    let env = Env::new(4);
    assert_eq!(env.run(&[]).code, 0);
    for f in ["a", "b", "c"] {
        std::fs::remove_file(env.ws.path().join(format!("jobs.d/{f}.yaml"))).expect("rm");
    }
    env.fake.clear_log();
    let run = env.run(&["--prune", "--max-deletions", "2"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("3 jobs would be deleted"),
        "{}",
        run.stderr
    );
    assert_eq!(env.fake.requests(), vec![]);
    let run = env.run(&["--prune", "--max-deletions", "3"]);
    assert_eq!(run.code, 0);
    assert_eq!(env.fake.count("DELETE"), 3);
}

#[test]
fn a_new_name_in_the_same_file_shows_as_a_rename() {
    let env = Env::new(1);
    assert_eq!(env.run(&[]).code, 0);
    env.ws
        .write("jobs.d/a.yaml", manifest("Job Renamed", "0 3 * * *"));
    let run = env.run(&["--dry-run", "--output", "json"]);
    let report = run.json();
    let created = job(&report, "job-renamed");
    assert_eq!(created["action"], "create");
    assert_eq!(created["renamed_from"], "job-a");
    assert_eq!(job(&report, "job-a")["action"], "orphan");
    let text = env.run(&["--dry-run"]).stdout;
    assert!(
        text.contains("+ create acme/job-renamed (jobs.d/a.yaml) (renamed from job-a)"),
        "{text}"
    );
}

#[test]
fn an_unset_variable_makes_its_job_invalid_and_the_rest_apply() {
    let env = Env::new(1);
    env.ws.write(
        "jobs.d/z.yaml",
        manifest("Job Z", "0 3 * * *").replace(
            "${NFCRON_TEST_DB:-postgres://default}",
            "${NFCRON_TEST_UNSET}",
        ),
    );
    let run = env.run(&["--output", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(job(&report, "job-z")["action"], "invalid");
    assert!(job(&report, "job-z")["error"]["message"]
        .as_str()
        .expect("message")
        .contains("NFCRON_TEST_UNSET"));
    assert_eq!(job(&report, "job-a")["result"], "applied");
    assert_eq!(env.fake.count("PUT"), 1);
}

#[test]
fn team_scoped_manifests_use_team_routes() {
    let env = Env::new(0);
    env.ws.write(
        "jobs.d/t.yaml",
        format!("team: platform\n{}", manifest("Team Job", "0 3 * * *")),
    );
    assert_eq!(env.run(&[]).code, 0);
    let paths: Vec<String> = env.fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/teams/platform/projects/acme/jobs",
            "/v1/teams/platform/projects/acme/jobs/cron"
        ]
    );
    assert!(env.fake.job(Some("platform"), "acme", "team-job").is_some());
}

#[test]
fn corrupt_state_stops_the_run_before_any_request() {
    let env = Env::new(1);
    env.ws
        .write(".nfcron/state.json", "{\"format_version\":1,\"jobs\":[{");
    let run = env.run(&[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not valid"), "{}", run.stderr);
    assert_eq!(env.fake.requests(), vec![]);
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let env = Env::new(1);
    let run = env.ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", "http://api.example.com"),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("https"), "{}", run.stderr);
}

#[test]
fn bad_flags_exit_1() {
    let env = Env::new(1);
    for args in [
        &["--concurrency", "0"][..],
        &["--timeout", "soon"],
        &["--output", "yaml"],
        &["--max-deletions", "-1"],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 1, "{args:?}");
    }
    assert_eq!(env.fake.requests(), vec![]);
}

#[test]
fn token_from_a_file_with_a_trailing_newline() {
    let env = Env::new(1);
    env.ws.write("token", format!("{TOKEN}\n"));
    let run = env.ws.nfcron_env(
        &["reconcile", "--token-file", "token"],
        &[("NORTHFLANK_API_URL", env.fake.url.as_str())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.fake.count("PUT"), 1);
}

#[test]
fn no_artefact_holds_a_secret_or_the_token() {
    let env = Env::new(2);
    let secret = "postgres://admin:Sup3rS3cret@db.internal/prod";
    let vars = [("NFCRON_TEST_DB", secret)];
    let mut artefacts = Vec::new();
    let everything = "trace,hyper=trace,hyper_util=trace,reqwest=trace,rustls=trace,h2=trace";
    for args in [
        &["--log-level", everything][..],
        &["--dry-run", "--output", "markdown"],
        &["--output", "json", "--log-level", "trace"],
    ] {
        let run = env.run_env(args, &vars);
        artefacts.push(run.stdout);
        artefacts.push(run.stderr);
    }
    // A changed secret shows as changed, by fingerprint only.
    let run = env.run_env(
        &["--output", "json", "--log-level", "trace"],
        &[("NFCRON_TEST_DB", "postgres://admin:An0therS3cret@db/prod")],
    );
    let report = run.json();
    let change = &job(&report, "job-a")["changes"][0];
    assert_eq!(change["path"], "runtimeEnvironment.DATABASE_URL");
    assert!(change["before"]
        .as_str()
        .expect("fp")
        .starts_with("(sensitive, fp "));
    assert_ne!(change["before"], change["after"]);
    artefacts.push(run.stdout);
    artefacts.push(run.stderr);
    artefacts
        .push(std::fs::read_to_string(env.ws.path().join(".nfcron/state.json")).expect("state"));
    assert!(
        artefacts
            .iter()
            .any(|a| a.contains("TRACE") || a.contains("DEBUG")),
        "trace logging was on"
    );
    for (i, a) in artefacts.iter().enumerate() {
        for needle in [TOKEN, secret, "Sup3rS3cret", "An0therS3cret"] {
            assert!(!a.contains(needle), "artefact {i} holds {needle}:\n{a}");
        }
    }
    // The fake did receive the real values: redaction is in output only.
    assert_eq!(
        env.fake.job(None, "acme", "job-a").expect("job")["runtimeEnvironment"]["DATABASE_URL"],
        "postgres://admin:An0therS3cret@db/prod"
    );
}

#[test]
fn markdown_plan_has_a_table_and_a_diff_per_job() {
    let env = Env::new(2);
    let run = env.run(&["--dry-run", "--output", "markdown"]);
    assert_eq!(run.code, 0);
    let md = run.stdout;
    assert!(md.starts_with("### nfcron plan"), "{md}");
    assert!(
        md.contains("| + create | `acme/job-a` | `jobs.d/a.yaml` | planned |"),
        "{md}"
    );
    assert_eq!(md.matches("<details>").count(), 2);
    assert!(md.contains("+ schedule: \"0 3 * * *\""), "{md}");
}

#[test]
fn nothing_is_sent_while_the_rate_limit_is_used_up() {
    let env = Env::new(5);
    // Three requests left in a window that resets in one second.
    env.fake
        .set_rate_limit(3, 3, std::time::Duration::from_secs(1));
    let run = env.run(&["--output", "json", "--concurrency", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["create"], 5);
    assert_eq!(summary(&run)["api_requests"], 6, "a list and five PUTs");
    let statuses: Vec<u16> = env.fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses, [200; 6],
        "the client waited for the reset instead of collecting 429s"
    );
    assert!(run.stderr.contains("rate limit used up"), "{}", run.stderr);
}

#[test]
fn a_reset_beyond_retry_max_time_fails_without_sending() {
    let env = Env::new(3);
    env.fake
        .set_rate_limit(2, 2, std::time::Duration::from_secs(3600));
    let run = env.run(&[
        "--output",
        "json",
        "--concurrency",
        "1",
        "--retry-max-time",
        "1s",
    ]);
    assert_eq!(run.code, 1);
    assert_eq!(
        env.fake.requests().len(),
        2,
        "a list and one PUT used the budget; nothing after them"
    );
    let report = run.json();
    assert_eq!(report["summary"]["failed"], 2);
    assert_eq!(env.state_ids(), ["job-a"]);
}

#[test]
fn slow_responses_time_out_and_retries_stay_bounded() {
    let env = Env::new(1);
    env.fake.inject(FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Delay(std::time::Duration::from_secs(3)),
        times: 100,
        after: 0,
    });
    let run = env.run(&[
        "--output",
        "json",
        "--timeout",
        "200ms",
        "--retry-max-time",
        "3s",
    ]);
    assert_eq!(run.code, 1);
    let report = run.json();
    let message = job(&report, "job-a")["error"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(message.contains("no response within 200ms"), "{message}");
    let sent = report["summary"]["api_requests"].as_u64().expect("count");
    // Attempt 1 times out at 0.2 s; the first backoff (0.5-1 s) fits in 3 s,
    // so attempt 2 always happens; a fourth cannot start before 3 s.
    assert!(
        (2..=3).contains(&sent),
        "timeouts are retried, within --retry-max-time: {sent}"
    );
}

#[test]
fn extra_sensitive_paths_are_fingerprinted() {
    let env = Env::new(1);
    let run = env.run(&[
        "--dry-run",
        "--output",
        "json",
        "--sensitive",
        "deployment.external.imagePath",
    ]);
    assert!(!run.stdout.contains("nginx:1.27"), "{}", run.stdout);
    let report = run.json();
    let image = job(&report, "job-a")["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["path"] == "deployment.external.imagePath")
        .expect("image change")["after"]
        .clone();
    assert!(
        image
            .as_str()
            .expect("string")
            .starts_with("(sensitive, fp "),
        "{image}"
    );
}

#[test]
fn a_path_made_sensitive_after_it_was_applied_shows_no_old_value_and_no_false_change() {
    let env = Env::new(1);
    assert_eq!(env.run(&[]).code, 0, "applied with the image in the clear");
    env.ws
        .write("jobs.d/a.yaml", manifest("Job A", "0 4 * * *"));
    let sensitive = ["--sensitive", "deployment.external.imagePath"];
    for output in ["json", "text", "markdown", "github"] {
        let mut args = vec!["--dry-run", "--output", output];
        args.extend(sensitive);
        let run = env.run(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            !run.stdout.contains("nginx:1.27"),
            "{output}: {}",
            run.stdout
        );
        assert!(!run.stderr.contains("nginx:1.27"), "{}", run.stderr);
    }
    let mut args = vec!["--dry-run", "--output", "json"];
    args.extend(sensitive);
    let report = env.run(&args).json();
    let paths: Vec<&str> = job(&report, "job-a")["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["schedule"], "the image is unchanged: {report:#}");
    // Drift reads compare it the same way: nothing drifted, nothing shown.
    env.ws
        .write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    let mut args = vec!["--dry-run", "--refresh", "--output", "json"];
    args.extend(sensitive);
    let run = env.run(&args);
    assert!(!run.stdout.contains("nginx:1.27"), "{}", run.stdout);
    assert_eq!(
        job(&run.json(), "job-a")["action"],
        "unchanged",
        "{}",
        run.stdout
    );
}

#[test]
fn secrets_the_api_quotes_back_in_errors_are_never_shown_logged_or_stored() {
    // A quote, a backslash and a tab: quoted in JSON they change form.
    const SECRET: &str = "postgres://u:Ech0\"pw\\x\ty@db";
    let env = Env::new(1);
    let secret_env = [("NFCRON_TEST_DB", SECRET), ("RUST_LOG", "nfcron=trace")];
    // A 503 quoting the body (retried: the retry is logged), then a 400
    // quoting it (permanent: reported and recorded as rejected).
    for status in [503, 400] {
        env.fake.inject(FaultRule {
            method: Some(Method::PUT),
            fault: Fault::Echo { status },
            times: 1,
            after: 0,
        });
    }
    for output in ["json", "text"] {
        let run = env.run_env(&["--output", output], &secret_env);
        assert_eq!(run.code, 1, "{}", run.stderr);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("Ech0"), "{output}: {text}");
        }
        assert!(run.stdout.contains("(sensitive)"), "{}", run.stdout);
    }
    let state = std::fs::read_to_string(env.ws.path().join(".nfcron/state.json")).expect("state");
    assert!(!state.contains("Ech0"), "{state}");
    assert!(
        state.contains("refused: "),
        "the rejection is recorded: {state}"
    );
    assert!(
        env.fake
            .requests()
            .iter()
            .filter(|r| r.status == 503)
            .count()
            == 1,
        "the 503 was met (and retried)"
    );
}

#[test]
fn text_plan_lists_results_per_job_when_applying() {
    let env = Env::new(2);
    let run = env.run(&[]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("+ create acme/job-a (jobs.d/a.yaml)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("    + schedule: \"0 3 * * *\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Plan: 2 to create, 0 to update, 0 to delete, 0 unchanged, 0 invalid."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  applied acme/job-a\n  applied acme/job-b\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("Apply: 2 applied, 0 failed, 3 API requests.\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_refused_token_stops_the_run_after_one_request() {
    let env = Env::new(5);
    env.fake.set_token("rotated-token");
    let run = env.run(&["--output", "json", "--concurrency", "1"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        env.fake.requests().len(),
        1,
        "after a 401 nothing more is sent"
    );
    let report = run.json();
    assert_eq!(report["summary"]["failed"], 5);
    assert_eq!(env.fake.requests()[0].status, 401);
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
    // The first request is the list call that looks for the jobs live
    // (no state yet): each job fails with its 401, and none is PUT blind.
    assert_eq!(job(&report, "job-b")["error"]["status"], 401, "{report:#}");
    assert!(job(&report, "job-b")["error"]["message"]
        .as_str()
        .expect("message")
        .contains("HTTP 401"));
    assert_eq!(env.fake.count("PUT"), 0);
    assert!(!env.ws.path().join(".nfcron/state.json").exists());
}

/// A manifest using every field the newest official request type added
/// since the reference page: a Dockerfile job and one job per newer
/// builder.
fn newest_fields() -> Vec<(String, String)> {
    let head = |name: &str| {
        format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n    gpu:\n      enabled: true\n      configuration:\n        gpuType: h100\n        gpuCount: 2\n  backoffLimit: 1\n  activeDeadlineSeconds: null\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  stageId: production\n  infrastructure:\n    architecture: arm\n")
    };
    let vcs = "  deployment:\n    vcs:\n      projectUrl: https://github.com/acme/app\n      projectType: github\n      projectBranch: main\n    storage:\n      useHdbStorage: true\n      usePdSsdStorage: false\n    gpu:\n      configuration:\n        gpuType: h100\n        gpuCount: 1\n  buildConfiguration:\n    enableGitLfs: true\n";
    let mut files = vec![(
        "dockerfile".to_string(),
        format!("{}{vcs}  buildSettings:\n    dockerfile:\n      dockerFilePath: /Dockerfile\n      dockerWorkDir: /\n      buildkit:\n        useCache: true\n        cacheStorageSize: 32768\n  dockerSecretMounts:\n    npm-token_1:\n      data: \"${{NFCRON_TEST_MOUNT}}\"\n      encoding: utf-8\n", head("Dockerfile Job")),
    )];
    for builder in [
        "HEROKU_24",
        "GOOGLE_22",
        "PAKETO_JAMMY_TINY",
        "PAKETO_JAMMY_BASE",
        "PAKETO_JAMMY_FULL",
    ] {
        let name = format!("Built {}", builder.replace('_', " "));
        files.push((
            builder.to_lowercase(),
            format!("{}{vcs}  buildSettings:\n    buildpack:\n      builder: {builder}\n      buildContext: /app\n", head(&name)),
        ));
    }
    files
}

#[test]
fn the_newest_official_fields_validate_and_are_sent_as_written() {
    let env = Env::new(0);
    for (file, text) in newest_fields() {
        env.ws.write(&format!("jobs.d/{file}.yaml"), text);
    }
    let secret = [("NFCRON_TEST_MOUNT", "m0unt-S3cret")];
    let valid = env.ws.nfcron_env(&["validate"], &secret);
    assert_eq!(valid.code, 0, "{}\n{}", valid.stdout, valid.stderr);
    let run = env.run_env(&["--output", "json"], &secret);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(env.fake.count("PUT"), 6);
    let state = std::fs::read_to_string(env.ws.path().join(".nfcron/state.json")).expect("state");
    for artefact in [&run.stdout, &run.stderr, &state] {
        assert!(!artefact.contains("m0unt-S3cret"), "{artefact}");
    }
    let sent = env
        .fake
        .job(None, "acme", "dockerfile-job")
        .expect("dockerfile job");
    for (pointer, value) in [
        ("/stageId", serde_json::json!("production")),
        ("/infrastructure/architecture", serde_json::json!("arm")),
        ("/billing/gpu/configuration/gpuCount", serde_json::json!(2)),
        (
            "/deployment/gpu/configuration/gpuCount",
            serde_json::json!(1),
        ),
        ("/deployment/storage/useHdbStorage", serde_json::json!(true)),
        (
            "/deployment/storage/usePdSsdStorage",
            serde_json::json!(false),
        ),
        ("/buildConfiguration/enableGitLfs", serde_json::json!(true)),
        (
            "/buildSettings/dockerfile/buildkit/useCache",
            serde_json::json!(true),
        ),
        (
            "/buildSettings/dockerfile/buildkit/cacheStorageSize",
            serde_json::json!(32768),
        ),
        (
            "/dockerSecretMounts/npm-token_1/data",
            serde_json::json!("m0unt-S3cret"),
        ),
        ("/activeDeadlineSeconds", Value::Null),
    ] {
        assert_eq!(sent.pointer(pointer), Some(&value), "{pointer} in {sent:#}");
    }
    let built = env
        .fake
        .job(None, "acme", "built-paketo-jammy-full")
        .expect("buildpack job");
    assert_eq!(
        built.pointer("/buildSettings/buildpack/builder"),
        Some(&serde_json::json!("PAKETO_JAMMY_FULL"))
    );
    // Read back with --refresh: nothing the reads cannot return is drift.
    env.fake.clear_log();
    let run = env.run_env(
        &["--output", "json", "--refresh", "--detailed-exitcode"],
        &secret,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(summary(&run)["drift"], 0, "{}", run.stdout);
}

#[test]
fn a_suspended_job_has_no_next_runs_in_any_plan_format() {
    let env = Env::new(1);
    env.ws.write(
        "jobs.d/s.yaml",
        format!("{}  suspended: true\n", manifest("Sleeper", "*/5 * * * *")),
    );
    let run = env.run(&["--dry-run", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(job(&report, "sleeper")["next_runs"], serde_json::json!([]));
    assert_eq!(job(&report, "sleeper")["suspended"], true);
    assert_eq!(
        job(&report, "job-a")["next_runs"].as_array().map(Vec::len),
        Some(3),
        "a job that is not suspended lists its runs"
    );
    let text = env.run(&["--dry-run"]).stdout;
    assert!(text.contains("next runs: none (suspended)"), "{text}");
    let markdown = env.run(&["--dry-run", "--output", "markdown"]).stdout;
    assert!(
        markdown.contains("# next runs: none (suspended)"),
        "{markdown}"
    );
    let github = env.run(&["--dry-run", "--output", "github"]).stdout;
    assert!(github.contains("suspended, no next run"), "{github}");
    assert_eq!(env.fake.count("PUT"), 0);
}

#[test]
fn unknown_fields_are_sent_verbatim_only_when_allowed() {
    let env = Env::new(0);
    env.ws.write(
        "jobs.d/n.yaml",
        format!(
            "{}  spotInstances:\n    enabled: true\n",
            manifest("Newer", "0 3 * * *")
        ),
    );
    let refused = env.run(&["--output", "json"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert_eq!(env.fake.count("PUT"), 0);
    // An API newer than this nfcron: it knows the field.
    env.fake.accept_newer_fields(&["spotInstances"]);
    let run = env.run(&["--output", "json", "--allow-unknown-fields"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(env.fake.count("PUT"), 1);
    assert!(
        run.stderr.contains("spotInstances"),
        "a warning: {}",
        run.stderr
    );
    let sent = env.fake.job(None, "acme", "newer").expect("job");
    assert_eq!(sent["spotInstances"], serde_json::json!({"enabled": true}));
    // No read returns it: never drift, never re-sent.
    env.fake.clear_log();
    let run = env.run(&[
        "--output",
        "json",
        "--allow-unknown-fields",
        "--refresh",
        "--drift",
        "correct",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(summary(&run)["drift"], 0, "{}", run.stdout);
    assert_eq!(env.fake.count("PUT"), 0);
}
