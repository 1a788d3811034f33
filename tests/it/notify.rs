//! `--notify` and `--github-status` through the binary: receivers are real
//! HTTP servers on 127.0.0.1 that record what reached them; the API is the
//! fake.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Run, Workspace};
use crate::fake::{Fake, TOKEN};
use crate::support::hostile_server::{respond, Hostile, Request};
use crate::support::sidecar::signature;

const SECRET: &str = "notify-s3cret-value";
const DB_SECRET: &str = "postgres://u:db-s3cret@db/x";
const GITHUB_TOKEN: &str = "ghs_t0ken-for-statuses";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn manifest(name: &str) -> String {
    format!(
        "kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n  runtimeEnvironment:\n    DATABASE_URL: \"{DB_SECRET}\"\n"
    )
}

/// A receiver that answers 200 to everything.
fn receiver() -> Hostile {
    Hostile::spawn(|_, stream| respond(stream, 200, &[], b"ok"))
}

struct Env {
    ws: Workspace,
    fake: Fake,
}

impl Env {
    fn new() -> Env {
        let ws = Workspace::new();
        for name in ["Job A", "Job B", "Job C"] {
            let file = name.to_lowercase().replace(' ', "-");
            ws.write(&format!("jobs.d/{file}.yaml"), manifest(name));
        }
        Env {
            ws,
            fake: Fake::spawn(0),
        }
    }

    fn reconcile(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut env = vec![
            ("NORTHFLANK_API_URL", self.fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            ("NFCRON_NOTIFY_SECRET", SECRET),
        ];
        env.extend_from_slice(extra);
        let mut full = vec!["reconcile", "--concurrency", "1"];
        full.extend_from_slice(args);
        self.ws.nfcron_env(&full, &env)
    }

    /// The first PUT is refused for good (400); the rest succeed.
    fn refuse_first_put(&self) {
        self.fake.inject(crate::common::put_status(400, 1));
    }
}

fn json(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("a JSON body")
}

fn by_event<'a>(requests: &'a [Request], event: &str) -> &'a Request {
    requests
        .iter()
        .find(|r| json(r)["event"] == event)
        .unwrap_or_else(|| panic!("no `{event}` notification in {requests:#?}"))
}

fn no_secret_in(requests: &[Request]) {
    for r in requests {
        let text = format!("{r:?}{}", String::from_utf8_lossy(&r.body));
        for secret in [SECRET, "db-s3cret", TOKEN, GITHUB_TOKEN] {
            let in_auth = r
                .header("authorization")
                .is_some_and(|a| a.contains(secret));
            assert!(
                in_auth || !String::from_utf8_lossy(&r.body).contains(secret),
                "{secret} in {text}"
            );
        }
    }
}

#[test]
fn an_apply_with_a_refusal_sends_one_signed_notification_per_kind_and_a_slack_message() {
    let env = Env::new();
    let generic = receiver();
    let slack = receiver();
    env.refuse_first_put();
    let hook = format!("{}/hook", generic.url);
    let slack_url = format!("slack+{}/services/T0/B0/xyz", slack.url);
    let run = env.reconcile(&["--notify", &hook, "--notify", &slack_url], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    let requests = generic.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for r in &requests {
        assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/hook"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("x-signature"),
            Some(signature(&r.body, SECRET).as_str())
        );
    }
    let rejected = json(by_event(&requests, "rejected"));
    assert_eq!(rejected["severity"], "error");
    assert_eq!(rejected["project"], "acme");
    assert_eq!(rejected["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(rejected["jobs"][0]["id"], "job-a");
    assert_eq!(rejected["jobs"][0]["action"], "create");
    assert_eq!(rejected["jobs"][0]["result"], "rejected");
    assert!(rejected["jobs"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("400")));
    let applied = json(by_event(&requests, "applied"));
    assert_eq!(applied["severity"], "info");
    let ids: Vec<&str> = applied["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["job-b", "job-c"]);
    for field in ["summary", "timestamp", "revision"] {
        assert!(applied.get(field).is_some(), "no {field} in {applied}");
    }
    assert!(applied["timestamp"]
        .as_str()
        .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()));

    let slacked = slack.requests();
    assert_eq!(slacked.len(), 2, "{slacked:#?}");
    assert!(slacked.iter().all(|r| r.header("x-signature").is_none()));
    let texts: Vec<String> = slacked
        .iter()
        .map(|r| json(r)["text"].as_str().expect("text").to_string())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("job-a") && t.contains("refused")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("job-b") && t.contains("job-c")),
        "{texts:?}"
    );
    no_secret_in(&requests);
    no_secret_in(&slacked);
    assert!(
        !run.stderr.contains("/services/T0/B0/xyz"),
        "{}",
        run.stderr
    );

    // Nothing changed since: a no-op run tells nobody anything.
    let (generic, slack) = (receiver(), receiver());
    let hook = format!("{}/hook", generic.url);
    let slack_url = format!("slack+{}/x", slack.url);
    let quiet = env.reconcile(&["--notify", &hook, "--notify", &slack_url], &[]);
    // Still 1: job-a's refusal stands until its manifest changes.
    assert_eq!(quiet.code, 1, "{}", quiet.stderr);
    assert_eq!(generic.requests().len() + slack.requests().len(), 0);
}

#[test]
fn a_receiver_that_never_answers_does_not_hold_the_run() {
    let env = Env::new();
    // Reads the request, then answers nothing until nfcron hangs up.
    let silent = Hostile::spawn(|_, stream| {
        let _ = std::io::Read::read(stream, &mut [0; 1]);
        Ok(())
    });
    let started = Instant::now();
    let hook = format!("{}/hook", silent.url);
    let run = env.reconcile(&[], &[("NFCRON_NOTIFY", &hook)]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        !silent.requests().is_empty(),
        "the notification was not even sent"
    );
    assert_eq!(env.fake.count("PUT"), 3);
    assert!(run.stderr.contains("not delivered"), "{}", run.stderr);
    assert!(!run.stderr.contains("/hook"), "{}", run.stderr);
}

#[test]
fn refused_receivers_are_named_without_their_secret_path() {
    let env = Env::new();
    for bad in [
        "http://hooks.example.com/T/B/s3cretpath",
        "slack+ftp://127.0.0.1/s3cretpath",
        "not-a-url/s3cretpath",
    ] {
        let run = env.reconcile(&["--dry-run", "--notify", bad], &[]);
        assert_eq!(run.code, 1, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--notify"), "{}", run.stderr);
        assert!(!run.stderr.contains("s3cretpath"), "{}", run.stderr);
    }
    assert_eq!(env.fake.requests().len(), 0);
}

#[test]
fn an_applying_run_sets_a_github_status_per_project_with_the_token() {
    let env = Env::new();
    let github = Hostile::spawn(|_, stream| respond(stream, 201, &[], b"{}"));
    let github_env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("GITHUB_API_URL", github.url.as_str()),
        ("GITHUB_REPOSITORY", "acme/jobs"),
        ("GITHUB_SHA", SHA),
    ];
    // A dry-run sets none.
    let plan = env.reconcile(&["--dry-run", "--github-status"], &github_env);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(github.requests().len(), 0);

    let run = env.reconcile(&["--github-status"], &github_env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = github.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("/repos/acme/jobs/statuses/{SHA}"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    let body = json(r);
    assert_eq!(body["state"], "success");
    assert_eq!(body["context"], "nfcron/acme");
    let description = body["description"].as_str().expect("description");
    assert!(description.chars().count() < 140, "{description}");
    assert!(description.contains("3 applied"), "{description}");
    assert!(!run.stderr.contains(GITHUB_TOKEN), "{}", run.stderr);

    // A refusal: failure, with --github-repo over GITHUB_REPOSITORY.
    env.ws
        .write("jobs.d/job-a.yaml", manifest("Job A").replace("0 3", "0 4"));
    env.refuse_first_put();
    let run = env.reconcile(
        &["--github-status", "--github-repo", "acme/other"],
        &github_env,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let requests = github.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[1].target,
        format!("/repos/acme/other/statuses/{SHA}")
    );
    assert_eq!(json(&requests[1])["state"], "failure");
}

#[test]
fn github_status_without_a_token_or_repository_says_what_is_missing() {
    let env = Env::new();
    let run = env.reconcile(&["--dry-run", "--github-status"], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("GITHUB_TOKEN"), "{}", run.stderr);
    let run = env.reconcile(&["--dry-run", "--github-status"], &[("GITHUB_TOKEN", "t")]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--github-repo"), "{}", run.stderr);
}

#[test]
fn the_sidecar_tells_each_change_and_a_lasting_invalid_manifest_once() {
    let env = Env::new();
    let generic = receiver();
    let hook = format!("{}/hook", generic.url);
    let mut sidecar = crate::support::sidecar::Sidecar::start(
        env.ws.path(),
        &env.fake.url,
        TOKEN,
        &["--notify", &hook, "--debounce", "50ms"],
    );
    let within = Duration::from_secs(30);
    sidecar.next("reconciled");
    generic.wait_for(1, within);
    assert_eq!(json(&generic.requests()[0])["event"], "applied");
    assert_eq!(
        json(&generic.requests()[0])["jobs"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // An invalid manifest: said once, not again on the next run.
    env.ws
        .write("jobs.d/broken.yaml", "kind: CronJob\nspec: [\n");
    sidecar.next("reconciled");
    generic.wait_for(2, within);
    let invalid = json(&generic.requests()[1]);
    assert_eq!(
        (&invalid["event"], &invalid["severity"]),
        (&"invalid".into(), &"error".into())
    );
    // The same file written again: a run, the same problem.
    env.ws
        .write("jobs.d/broken.yaml", "kind: CronJob\nspec: [\n");
    sidecar.next("reconciled");
    // The next change is the next POST: nothing was queued in between.
    env.ws
        .write("jobs.d/job-b.yaml", manifest("Job B").replace("0 3", "0 5"));
    sidecar.next("reconciled");
    generic.wait_for(3, within);
    let requests = generic.requests();
    let applied = json(&requests[2]);
    assert_eq!(applied["event"], "applied", "{requests:#?}");
    assert_eq!(applied["jobs"][0]["id"], "job-b");
    // Counted once the receiver's answer is in: poll the scrape, waking on
    // the sidecar's next log line or after 50 ms.
    let deadline = Instant::now() + within;
    loop {
        let (status, metrics) = sidecar.get("/metrics");
        assert_eq!(status, 200);
        if metrics.contains("nfcron_notifications_total{result=\"sent\"} 3") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        let _ = sidecar.poll(Duration::from_millis(50));
    }
    assert_eq!(generic.requests().len(), 3);
}

#[test]
fn a_receiver_list_keeps_commas_inside_urls_and_a_failed_run_is_told() {
    let env = Env::new();
    let (first, second) = (receiver(), receiver());
    let list = format!("{}/h?sig=a,b,{}/other", first.url, second.url);
    // The state file is not JSON: the run fails as a whole.
    env.ws.write(".nfcron/state.json", "{ not json");
    let run = env.reconcile(&[], &[("NFCRON_NOTIFY", &list)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for (receiver, target) in [(&first, "/h?sig=a,b"), (&second, "/other")] {
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        assert_eq!(requests[0].target, target);
        let body = json(&requests[0]);
        assert_eq!(
            (&body["event"], &body["severity"]),
            (&"failed".into(), &"error".into())
        );
        assert!(
            body["jobs"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("state")),
            "{body}"
        );
    }
    assert_eq!(env.fake.count("PUT"), 0);
}

#[test]
fn a_receiver_that_hangs_does_not_delay_the_others_in_the_sidecar() {
    let env = Env::new();
    let silent = Hostile::spawn(|_, stream| {
        let _ = std::io::Read::read(stream, &mut [0; 1]);
        Ok(())
    });
    let healthy = receiver();
    let (stuck, hook) = (
        format!("{}/stuck", silent.url),
        format!("{}/hook", healthy.url),
    );
    let mut sidecar = crate::support::sidecar::Sidecar::start(
        env.ws.path(),
        &env.fake.url,
        TOKEN,
        &["--notify", &stuck, "--notify", &hook, "--debounce", "50ms"],
    );
    sidecar.next("reconciled");
    // Each hung POST costs its receiver 5 s per attempt, three attempts:
    // the healthy receiver hears of every run long before that.
    for (n, hour) in [(2, "4"), (3, "5"), (4, "6")] {
        let edited = manifest("Job B").replace("0 3", &format!("0 {hour}"));
        env.ws.write("jobs.d/job-b.yaml", edited);
        sidecar.next("reconciled");
        healthy.wait_for(n, Duration::from_secs(10));
    }
    let events: Vec<Value> = healthy.requests().iter().map(json).collect();
    assert!(
        events.iter().all(|e| e["event"] == "applied"),
        "{events:#?}"
    );
}

#[test]
fn a_git_source_that_cannot_be_fetched_is_told_as_a_failed_run() {
    let env = Env::new();
    let generic = receiver();
    let hook = format!("{}/hook", generic.url);
    let missing = env.ws.path().join("no-such-repository");
    let missing = missing.to_str().expect("utf-8 path");
    let run = env.reconcile(&["--git", missing, "--notify", &hook], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let requests = generic.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let body = json(&requests[0]);
    assert_eq!(body["event"], "failed");
    assert!(
        body["jobs"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("fetch failed")),
        "{body}"
    );
    assert_eq!(env.fake.requests().len(), 0);
}
