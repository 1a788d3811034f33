//! Live state against the fake API: drift on managed fields only, secrets
//! by fingerprint, correction, adoption after state loss, and the exact
//! number of reads each path spends.

use crate::common;
use crate::fake;

use common::{job, Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};
use serde_json::{json, Value};

/// A job with no runtime environment: one GET reads all it sets.
fn plain(name: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n")
}

/// A job with an external image and a secret: job + deployment +
/// runtime-environment, three GETs.
fn with_secret(name: &str) -> String {
    format!("{}  deployment:\n    external:\n      imagePath: nginx:1.27\n  runtimeEnvironment:\n    API_KEY: \"${{NFCRON_TEST_KEY}}\"\n", plain(name))
}

const SECRET: &str = "first-Secr3t-value";

struct Env {
    ws: Workspace,
    fake: Fake,
}

impl Env {
    fn new(files: &[(&str, String)]) -> Env {
        let ws = Workspace::new();
        for (name, text) in files {
            ws.write(&format!("jobs.d/{name}.yaml"), text);
        }
        Env {
            ws,
            fake: Fake::spawn(0),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["reconcile", "--output", "json"];
        full.extend_from_slice(args);
        self.ws.nfcron_env(
            &full,
            &[
                ("NORTHFLANK_API_URL", self.fake.url.as_str()),
                ("NORTHFLANK_API_TOKEN", TOKEN),
                ("NFCRON_TEST_KEY", SECRET),
            ],
        )
    }

    /// Applies everything, then forgets the fake's request log.
    fn applied(self) -> Env {
        let run = self.run(&[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        self.fake.clear_log();
        self
    }
}

#[test]
fn changes_behind_nfcrons_back_are_drift_with_exactly_those_fields() {
    let env = Env::new(&[
        ("a", plain("Job A")),
        ("b", plain("Job B")),
        ("c", plain("Job C")),
    ])
    .applied();
    env.fake
        .edit_job("acme", "job-a", |b| b["schedule"] = json!("0 4 * * *"));
    env.fake.edit_job("acme", "job-b", |b| {
        b.insert("suspended".into(), json!(true));
    });
    env.fake
        .edit_job("acme", "job-c", |b| b["concurrencyPolicy"] = json!("allow"));
    let run = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "drift counts as a change: {}", run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["drift"], 3);
    assert_eq!(
        job(&report, "job-a")["drift"],
        json!({"kind": "changed", "fields": [{"path": "schedule", "recorded": "0 3 * * *", "live": "0 4 * * *"}]})
    );
    // The manifest does not set `suspended`; the API's default is false, so
    // a suspension in the UI is drift all the same.
    assert_eq!(
        job(&report, "job-b")["drift"],
        json!({"kind": "changed", "fields": [{"path": "suspended", "recorded": null, "live": true}]})
    );
    assert_eq!(
        job(&report, "job-c")["drift"]["fields"],
        json!([{"path": "concurrencyPolicy", "recorded": "forbid", "live": "allow"}])
    );
    assert_eq!(
        job(&report, "job-a")["action"],
        "unchanged",
        "warn reports, it does not write"
    );
    assert_eq!(env.fake.count("PUT"), 0);
    assert_eq!(
        env.fake.count("GET"),
        3,
        "one GET per job: nothing else is set"
    );
    assert!(
        run.stderr.contains("drift"),
        "drift is logged: {}",
        run.stderr
    );
}

#[test]
fn server_filled_defaults_and_spelling_are_not_drift() {
    // The fake fills activeDeadlineSeconds, disabledCI, suspended and tags,
    // and capitalises the concurrency policy, as the API does.
    let env = Env::new(&[("a", plain("Job A"))]).applied();
    let run = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = run.json();
    assert_eq!(report["summary"]["drift"], 0);
    assert_eq!(job(&report, "job-a")["drift"], Value::Null);
}

#[test]
fn correct_restores_a_drifted_job_with_one_put() {
    let env = Env::new(&[("a", plain("Job A")), ("b", plain("Job B"))]).applied();
    env.fake
        .edit_job("acme", "job-a", |b| b["schedule"] = json!("0 4 * * *"));
    let run = env.run(&["--refresh", "--drift", "correct"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(job(&report, "job-a")["action"], "update");
    assert_eq!(job(&report, "job-a")["result"], "applied");
    assert_eq!(env.fake.count("PUT"), 1);
    assert_eq!(common::acme_schedule(&env.fake, "job-a"), "0 3 * * *");
    env.fake.clear_log();
    let again = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(again.code, 0);
    assert_eq!(again.json()["summary"]["drift"], 0);
}

#[test]
fn a_deleted_job_is_missing_and_recreated_under_correct() {
    let env = Env::new(&[("a", plain("Job A"))]).applied();
    env.fake.delete_job("acme", "job-a");
    let run = env.run(&["--refresh"]);
    assert_eq!(
        job(&run.json(), "job-a")["drift"],
        json!({"kind": "missing", "fields": []})
    );
    assert_eq!(env.fake.count("PUT"), 0);
    let run = env.run(&["--refresh", "--drift", "correct"]);
    assert_eq!(run.code, 0);
    assert_eq!(job(&run.json(), "job-a")["action"], "create");
    assert!(env.fake.job(None, "acme", "job-a").is_some());
}

#[test]
fn dry_run_refresh_shows_the_correction_and_sends_only_gets() {
    let env = Env::new(&[("a", plain("Job A"))]).applied();
    env.fake
        .edit_job("acme", "job-a", |b| b["schedule"] = json!("0 4 * * *"));
    let run = env.run(&[
        "--refresh",
        "--drift",
        "correct",
        "--dry-run",
        "--detailed-exitcode",
    ]);
    assert_eq!(run.code, 2);
    let report = run.json();
    assert_eq!(job(&report, "job-a")["action"], "update");
    assert_eq!(job(&report, "job-a")["result"], "planned");
    assert!(
        env.fake.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        env.fake.requests()
    );
}

#[test]
fn a_changed_secret_is_drift_without_its_value_anywhere() {
    let env = Env::new(&[("s", with_secret("Secret Job"))]).applied();
    env.fake.edit_job("acme", "secret-job", |b| {
        b["runtimeEnvironment"]["API_KEY"] = json!("second-Secr3t-value")
    });
    let run = env.run(&["--refresh", "--log-level", "trace"]);
    let report = run.json();
    let fields = &job(&report, "secret-job")["drift"]["fields"];
    assert_eq!(fields[0]["path"], "runtimeEnvironment.API_KEY");
    assert_eq!(fields[0]["live"], "(sensitive, changed)");
    assert!(fields[0]["recorded"]
        .as_str()
        .expect("fp")
        .starts_with("(sensitive, fp "));
    let state = std::fs::read_to_string(env.ws.path().join(".nfcron/state.json")).expect("state");
    for artefact in [&run.stdout, &run.stderr, &state] {
        for secret in [SECRET, "second-Secr3t-value", TOKEN] {
            assert!(!artefact.contains(secret), "{secret} leaked");
        }
    }
}

#[test]
fn each_read_path_spends_exactly_what_it_needs() {
    // Plain: GET job. With secret + image: job, deployment, runtime-environment.
    let env = Env::new(&[("a", plain("Job A")), ("s", with_secret("Secret Job"))]).applied();
    let run = env.run(&["--refresh"]);
    assert_eq!(run.json()["summary"]["api_requests"], 1 + 3);
    let paths: Vec<String> = env.fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/projects/acme/jobs/job-a",
            "/v1/projects/acme/jobs/secret-job",
            "/v1/projects/acme/jobs/secret-job/deployment",
            "/v1/projects/acme/jobs/secret-job/runtime-environment",
        ]
    );
    env.fake.clear_log();
    // --drift off, or no --refresh: no reads at all.
    assert_eq!(
        env.run(&["--refresh", "--drift", "off"]).json()["summary"]["api_requests"],
        0
    );
    assert_eq!(env.run(&[]).json()["summary"]["api_requests"], 0);
    assert_eq!(env.fake.requests(), vec![]);
}

#[test]
fn max_reads_caps_live_reads_and_reports_the_rest_unknown() {
    let env = Env::new(&[
        ("a", plain("Job A")),
        ("b", plain("Job B")),
        ("c", plain("Job C")),
    ])
    .applied();
    let run = env.run(&["--refresh", "--max-reads", "2"]);
    let report = run.json();
    assert_eq!(report["summary"]["api_requests"], 2);
    assert_eq!(job(&report, "job-c")["drift"]["kind"], "unknown");
    assert_eq!(env.fake.requests().len(), 2);
}

#[test]
fn losing_the_state_directory_causes_no_re_put() {
    let env = Env::new(&[
        ("a", plain("Job A")),
        ("b", plain("Job B")),
        ("s", with_secret("Secret Job")),
    ])
    .applied();
    std::fs::remove_dir_all(env.ws.path().join(".nfcron")).expect("rm .nfcron");
    let run = env.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["baseline"], "live");
    assert_eq!(report["summary"]["unchanged"], 3);
    assert_eq!(env.fake.count("PUT"), 0);
    // One list serves all three; then each job's own reads (1 + 1 + 3).
    assert_eq!(env.fake.count("GET"), 1 + 5);
    // And the state is rebuilt: the next run is a no-op with no request.
    env.fake.clear_log();
    assert_eq!(env.run(&[]).json()["summary"]["api_requests"], 0);
    assert_eq!(env.fake.requests(), vec![]);
}

/// A lost `.nfcron/` and a list call that keeps failing: whether the jobs
/// are live is unknown, so none is PUT blind; they fail with the list's
/// error (exit 1) and the next run, with the list back, adopts them.
#[test]
fn a_failed_list_call_after_state_loss_puts_nothing_blind() {
    let env = Env::new(&[("a", plain("Job A")), ("b", plain("Job B"))]).applied();
    std::fs::remove_dir_all(env.ws.path().join(".nfcron")).expect("rm .nfcron");
    env.fake.clear_log();
    env.fake.inject(FaultRule {
        method: Some(hyper::Method::GET),
        fault: Fault::Status {
            status: 500,
            retry_after: None,
        },
        times: 1000,
        after: 0,
    });
    let run = env.run(&["--retry-max-time", "1s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(env.fake.count("PUT"), 0, "no blind PUT");
    let report = run.json();
    assert_eq!(report["summary"]["failed"], 2, "{report:#}");
    assert_eq!(job(&report, "job-a")["error"]["status"], 500, "{report:#}");
    // The list is back: adopted, still without a PUT.
    env.fake.clear_faults();
    let run = env.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["unchanged"], 2);
    assert_eq!(env.fake.count("PUT"), 0);
}

#[test]
fn adoption_updates_a_live_job_that_differs() {
    let env = Env::new(&[("a", plain("Job A"))]).applied();
    env.fake
        .edit_job("acme", "job-a", |b| b["schedule"] = json!("0 4 * * *"));
    std::fs::remove_dir_all(env.ws.path().join(".nfcron")).expect("rm .nfcron");
    let run = env.run(&[]);
    let report = run.json();
    assert_eq!(job(&report, "job-a")["action"], "update");
    assert_eq!(
        job(&report, "job-a")["changes"],
        json!([{"path": "schedule", "before": "0 4 * * *", "after": "0 3 * * *"}])
    );
    assert_eq!(env.fake.count("PUT"), 1);
}

#[test]
fn unmanaged_live_jobs_are_counted_and_never_deleted() {
    let env = Env::new(&[("a", plain("Job A"))]);
    // A job made by someone else in the same project.
    let other = Workspace::new();
    other.write("jobs.d/x.yaml", plain("Hand Made"));
    let made = other.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", env.fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(made.code, 0);
    let run = env.run(&["--prune", "--allow-empty"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["unmanaged"], 1);
    assert_eq!(env.fake.count("DELETE"), 0);
    assert_eq!(env.fake.job_ids("acme"), ["hand-made", "job-a"]);
}

#[test]
fn the_bundled_jobs_show_no_false_drift() {
    let ws = Workspace::new().with_bundled_jobs();
    let env = Env {
        ws,
        fake: Fake::spawn(0),
    }
    .applied();
    let run = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = run.json();
    assert_eq!(report["summary"]["drift"], 0, "{report:#}");
    assert_eq!(env.fake.count("PUT"), 0);
}

/// A job deploying `image`, with a TCP health check: the fake answers
/// in the official read shapes (host stripped, `registryProvider`,
/// `httpPort: null` beside `tcpSocketPort`).
fn on_registry(name: &str, image: &str) -> String {
    format!("{}  deployment:\n    external:\n      imagePath: {image}\n  healthChecks:\n    - protocol: TCP\n      type: livenessProbe\n      port: 5432\n      initialDelaySeconds: 5\n      periodSeconds: 30\n      timeoutSeconds: 2\n      failureThreshold: 3\n", plain(name))
}

fn six_registries() -> Env {
    Env::new(&[
        (
            "github",
            on_registry("On GitHub", "ghcr.io/acme/report:1.4"),
        ),
        (
            "gitlab",
            on_registry("On GitLab", "registry.gitlab.com/acme/tools/sync:2"),
        ),
        (
            "ecr",
            on_registry(
                "On ECR",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/etl:7",
            ),
        ),
        (
            "library",
            on_registry("On Hub Library", "docker.io/library/busybox:1.36"),
        ),
        ("hub", on_registry("On Hub", "nginx:1.27")),
        (
            "private",
            on_registry("On Private", "registry.acme.dev:5000/ops/cleanup:3"),
        ),
    ])
}

#[test]
fn images_on_six_registries_and_a_tcp_check_read_back_without_drift() {
    let env = six_registries().applied();
    // The fake stores the image as sent and reads it back without host.
    let stored = env.fake.job(None, "acme", "on-github").expect("job");
    assert_eq!(
        stored["deployment"]["external"]["imagePath"],
        "ghcr.io/acme/report:1.4"
    );

    let run = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["drift"], 0, "{report:#}");
    // job + deployment + health-checks for each of the six.
    assert_eq!(env.fake.requests().len(), 6 * 3);
    assert_eq!(env.fake.count("PUT"), 0);

    env.fake.clear_log();
    let run = env.run(&["--refresh", "--drift", "correct"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.fake.count("PUT"), 0, "nothing to correct");

    // State lost: adoption reads each job and writes none.
    std::fs::remove_dir_all(env.ws.path().join(".nfcron")).expect("rm state");
    env.fake.clear_log();
    let run = env.run(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.fake.count("PUT"), 0, "{}", run.stdout);
    assert_eq!(env.fake.count("GET"), 1 + 6 * 3);
}

#[test]
fn an_image_that_moved_path_or_registry_is_drift() {
    let env = six_registries().applied();
    env.fake.edit_job("acme", "on-github", |b| {
        b["deployment"]["external"]["imagePath"] = json!("ghcr.io/acme/report:1.5");
    });
    env.fake.edit_job("acme", "on-gitlab", |b| {
        // Same path, another registry.
        b["deployment"]["external"]["imagePath"] = json!("ghcr.io/acme/tools/sync:2");
    });
    env.fake.edit_job("acme", "on-hub", |b| {
        b["deployment"]["external"]["imagePath"] = json!("docker.io/library/nginx:1.28");
    });
    let run = env.run(&["--refresh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["drift"], 3, "{report:#}");
    let fields = |id: &str| job(&report, id)["drift"]["fields"].clone();
    assert_eq!(
        fields("on-github"),
        json!([{"path": "deployment.external.imagePath", "recorded": "ghcr.io/acme/report:1.4", "live": "ghcr.io/acme/report:1.5"}])
    );
    assert_eq!(
        fields("on-gitlab")[0]["live"],
        json!("ghcr.io/acme/tools/sync:2")
    );
    assert_eq!(fields("on-hub")[0]["live"], json!("nginx:1.28"));
    assert_eq!(job(&report, "on-ecr")["drift"], Value::Null);
}

#[test]
fn fields_no_read_returns_are_never_drift() {
    let env = Env::new(&[(
        "bp",
        format!("{}  deployment:\n    vcs:\n      projectUrl: https://github.com/acme/app\n      projectType: github\n      projectBranch: main\n  buildSettings:\n    buildpack:\n      builder: HEROKU_24\n      buildContext: /app\n  infrastructure:\n    architecture: arm\n  stageId: prod\n", plain("Buildpack Job")),
    )])
    .applied();
    let run = env.run(&["--refresh", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["summary"]["drift"], 0, "{}", run.stdout);
}
