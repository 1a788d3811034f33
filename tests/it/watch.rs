//! `nfcron watch` as a real process: a real directory (notify), a real Git
//! repository (git2), the real listener, and the fake API. Waiting is on
//! events (the daemon's JSON log lines) or deadline-bounded, never on fixed
//! sleeps.

use crate::common;
use crate::fake;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{git_commit, git_init, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

const SECRET: &str = "hook-s3cret";
const WAIT: Duration = Duration::from_secs(20);

fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")
}

/// A running `nfcron watch` and its log, line by line.
struct Watch {
    child: Child,
    events: Receiver<Value>,
    addr: String,
}

impl Watch {
    fn start(dir: &Path, fake: &Fake, args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfcron"))
            .current_dir(dir)
            .args([
                "--log-format",
                "json",
                "--log-level",
                "info",
                "watch",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env("NORTHFLANK_API_URL", &fake.url)
            .env("NORTHFLANK_API_TOKEN", TOKEN)
            .env("NFCRON_WEBHOOK_SECRET", SECRET)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nfcron watch");
        let (tx, events) = mpsc::channel();
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    // The banner is a JSON line under --log-format json.
                    if let Some(addr) = v["url"].as_str().and_then(|u| u.strip_prefix("http://")) {
                        let _ = addr_tx.send(addr.to_string());
                    }
                    let _ = tx.send(v);
                }
            }
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("the listener came up");
        Watch {
            child,
            events,
            addr,
        }
    }

    /// The next log event with this message (others are skipped).
    fn next(&self, message: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["message"] == message => return v,
                Ok(_) => {}
                Err(_) => panic!("no `{message}` event within {WAIT:?}"),
            }
        }
    }

    /// The next `reconciled` event that changed something (a file event
    /// may also bring runs with nothing to do, e.g. for an editor's swap
    /// file).
    fn next_change(&self) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["message"] == "reconciled" && v["api_requests"].as_u64() != Some(0) => {
                    return v
                }
                Ok(_) => {}
                Err(_) => panic!("no reconcile with a change within {WAIT:?}"),
            }
        }
    }

    /// Every event until one with this message; returns them all.
    fn until(&self, message: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{message}` within {WAIT:?}; saw {seen:#?}"));
            let done = v["message"] == message;
            seen.push(v);
            if done {
                return seen;
            }
        }
    }

    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        stream.write_all(body).expect("send body");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    fn terminate(mut self) -> i32 {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "watch did not stop within {WAIT:?} of SIGTERM"
            );
            let _ = self.events.recv_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signature(body: &[u8], secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!(
        "sha256={}",
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// `name{labels} value` lines of the Prometheus text format.
fn metric(text: &str, series: &str) -> f64 {
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not exposition format: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        if name == series {
            return value;
        }
    }
    panic!("no series {series} in:\n{text}")
}

#[test]
fn edits_are_applied_readiness_flips_and_metrics_match_the_fake() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    let fake = Fake::spawn(0);
    // Slow enough that the first reconcile is still running when asked.
    fake.set_latency(Duration::from_millis(400));
    let watch = Watch::start(ws.path(), &fake, &["--resync", "1h"]);
    assert_eq!(watch.http("GET", "/healthz", &[], b"").0, 200);
    let (status, body) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("first reconcile"), "{body}");
    let first = watch.next("reconciled");
    assert_eq!(first["create"], 2);
    assert_eq!(watch.http("GET", "/readyz", &[], b"").0, 200);
    fake.set_latency(Duration::ZERO);

    // A plain edit: exactly one PUT.
    let puts = fake.count("PUT");
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    let run = watch.next_change();
    assert_eq!(
        (run["update"].as_u64(), run["api_requests"].as_u64()),
        (Some(1), Some(1)),
        "{run}"
    );
    assert_eq!(fake.count("PUT"), puts + 1);
    assert_eq!(
        fake.job(None, "acme", "job-a").expect("job")["schedule"],
        "0 3 * * *"
    );

    // An editor-style save: write a temp file, rename it over the manifest.
    ws.write("jobs.d/.b.yaml.swp", "swap");
    ws.write("jobs.d/b.yaml.tmp~", manifest("Job B", "0 4 * * *"));
    std::fs::rename(
        ws.path().join("jobs.d/b.yaml.tmp~"),
        ws.path().join("jobs.d/b.yaml"),
    )
    .expect("rename");
    let run = watch.next_change();
    assert_eq!(run["update"], 1, "{run}");
    assert_eq!(
        fake.job(None, "acme", "job-b").expect("job")["schedule"],
        "0 4 * * *"
    );

    // Metrics parse and agree with the fake's log.
    let (status, text) = watch.http("GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let sent = |m: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.method == m && r.status == 200)
            .count() as f64
    };
    assert_eq!(
        metric(
            &text,
            "nfcron_api_requests_total{method=\"PUT\",status=\"200\"}"
        ),
        sent("PUT")
    );
    assert_eq!(
        metric(
            &text,
            "nfcron_api_requests_total{method=\"GET\",status=\"200\"}"
        ),
        sent("GET")
    );
    assert!(
        metric(&text, "nfcron_reconcile_runs_total{result=\"success\"}") >= 3.0,
        "{text}"
    );
    assert_eq!(metric(&text, "nfcron_jobs{state=\"in_sync\"}"), 2.0);
    assert!(metric(&text, "nfcron_last_success_timestamp_seconds") > 1.7e9);
    assert!(
        text.contains("nfcron_reconcile_duration_seconds_bucket"),
        "{text}"
    );
    assert_eq!(watch.terminate(), 0);
}

#[test]
fn an_idle_watcher_sends_nothing_over_a_resync() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    let watch = Watch::start(ws.path(), &fake, &["--resync", "200ms"]);
    watch.next("reconciled");
    fake.clear_log();
    for _ in 0..2 {
        let run = watch.next("reconciled");
        assert_eq!(
            (run["unchanged"].as_u64(), run["api_requests"].as_u64()),
            (Some(1), Some(0)),
            "{run}"
        );
    }
    assert_eq!(fake.requests(), vec![], "an idle resync spends no request");
    assert_eq!(watch.terminate(), 0);
}

#[test]
fn sigterm_during_an_apply_exits_0_with_consistent_state() {
    let ws = Workspace::new();
    for i in 0..6 {
        ws.write(
            &format!("jobs.d/{i}.yaml"),
            manifest(&format!("Job {i}"), "0 1 * * *"),
        );
    }
    let fake = Fake::spawn(0);
    fake.set_latency(Duration::from_millis(300));
    let watch = Watch::start(
        ws.path(),
        &fake,
        &["--concurrency", "1", "--shutdown-timeout", "500ms"],
    );
    watch.next("job");
    assert_eq!(watch.terminate(), 0);
    let text = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    let state: Value = serde_json::from_str(&text).expect("state parses");
    let recorded: Vec<String> = state["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert!(
        !recorded.is_empty() && recorded.len() < 6,
        "cut short mid-apply: {recorded:?}"
    );
    for id in &recorded {
        assert!(
            fake.job(None, "acme", id).is_some(),
            "{id} is in state but not in the API"
        );
    }
}

#[test]
fn a_push_is_applied_after_a_signed_webhook_and_not_after_a_bad_one() {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "first",
    );
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = format!("file://{}", origin.path().display());
    let watch = Watch::start(
        ws.path(),
        &fake,
        &["--git", &url, "--interval", "1h", "--resync", "1h"],
    );
    assert_eq!(watch.next("reconciled")["create"], 1);
    let rev = git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 2 * * *")))],
        "second",
    );

    let body = br#"{"ref":"refs/heads/main","after":"forged"}"#;
    let (status, _) = watch.http(
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", signature(body, "wrong"))],
        body,
    );
    assert_eq!(status, 401);
    let (status, _) = watch.http(
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", signature(body, SECRET))],
        body,
    );
    assert_eq!(status, 202);
    let seen = watch.until("reconciled");
    let runs = seen.iter().filter(|e| e["message"] == "reconciled").count();
    assert_eq!(runs, 1, "the bad webhook triggered nothing");
    let run = seen.last().expect("run");
    assert_eq!(
        (run["update"].as_u64(), run["revision"].as_str()),
        (Some(1), Some(rev.as_str())),
        "{run}"
    );
    assert_eq!(
        fake.job(None, "acme", "job-a").expect("job")["schedule"],
        "0 2 * * *"
    );
    let (_, metrics) = watch.http("GET", "/metrics", &[], b"");
    assert_eq!(
        metric(
            &metrics,
            &format!("nfcron_source_revision_info{{revision=\"{rev}\"}}")
        ),
        1.0
    );
    // GitLab's token header works too.
    let (status, _) = watch.http(
        "POST",
        "/hooks/git",
        &[("X-Gitlab-Token", SECRET.to_string())],
        b"{}",
    );
    assert_eq!(status, 202);
    assert_eq!(watch.terminate(), 0);
}

#[test]
fn a_failed_fetch_prunes_nothing_and_makes_the_sidecar_unready() {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "first",
    );
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = format!("file://{}", origin.path().display());
    let watch = Watch::start(
        ws.path(),
        &fake,
        &[
            "--git",
            &url,
            "--interval",
            "1h",
            "--prune",
            "--allow-empty",
        ],
    );
    watch.next("reconciled");
    std::fs::remove_dir_all(origin.path()).expect("the remote goes away");
    let body = b"{}";
    assert_eq!(
        watch
            .http(
                "POST",
                "/hooks/git",
                &[("X-Signature", signature(body, SECRET))],
                body
            )
            .0,
        202
    );
    let failed = watch.next("fetch failed; keeping the last good revision");
    assert_eq!(failed["level"], "ERROR");
    let (status, reason) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(status, 503);
    assert!(reason.contains("source unreachable"), "{reason}");
    assert_eq!(fake.count("DELETE"), 0);
    assert_eq!(fake.job_ids("acme"), ["job-a"]);
    assert_eq!(watch.terminate(), 0);
}

#[test]
fn drift_sweeps_find_and_correct_changes_made_behind_the_sidecar() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    let fake = Fake::spawn(0);
    let watch = Watch::start(
        ws.path(),
        &fake,
        &[
            "--drift-interval",
            "1s",
            "--drift",
            "correct",
            "--resync",
            "1h",
        ],
    );
    watch.next("reconciled");
    fake.edit_job("acme", "job-b", |b| {
        b["schedule"] = serde_json::json!("0 9 * * *")
    });
    let drift = watch.next("drift");
    assert_eq!(
        (drift["level"].as_str(), drift["id"].as_str()),
        (Some("WARN"), Some("job-b")),
        "{drift}"
    );
    assert!(
        drift["fields"]
            .as_str()
            .expect("fields")
            .contains("schedule"),
        "{drift}"
    );
    let fixed = watch.next_change();
    assert_eq!(fixed["update"], 1, "{fixed}");
    assert_eq!(
        fake.job(None, "acme", "job-b").expect("job")["schedule"],
        "0 2 * * *"
    );
    assert_eq!(watch.terminate(), 0);
}

#[test]
fn a_webhook_burst_fetches_at_once_whatever_the_debounce_and_gives_at_most_two_runs() {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "first",
    );
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = format!("file://{}", origin.path().display());
    // A debounce no test would wait out: a webhook that waited for it
    // would never be applied.
    let watch = Watch::start(
        ws.path(),
        &fake,
        &[
            "--git",
            &url,
            "--interval",
            "1h",
            "--resync",
            "1h",
            "--debounce",
            "1h",
        ],
    );
    assert_eq!(watch.next("reconciled")["create"], 1);
    git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 2 * * *")))],
        "second",
    );
    // The first run's PUT is slow, so the burst lands during it.
    fake.set_latency(Duration::from_millis(500));
    let body = br#"{"ref":"refs/heads/main"}"#;
    for _ in 0..10 {
        let (status, _) = watch.http(
            "POST",
            "/hooks/git",
            &[("X-Hub-Signature-256", signature(body, SECRET))],
            body,
        );
        assert_eq!(status, 202);
    }
    let first = watch.next("reconciled");
    assert_eq!(first["update"], 1, "{first}");
    fake.set_latency(Duration::ZERO);
    // At most one follow-up: whatever comes within a few seconds more.
    let mut runs = 1;
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Ok(v) = watch
        .events
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if v["message"] == "reconciled" {
            runs += 1;
            assert_eq!(v["api_requests"], 0, "the follow-up has nothing to do: {v}");
        }
    }
    assert!(runs <= 2, "{runs} runs for a burst of 10 webhooks");
    assert_eq!(
        fake.job(None, "acme", "job-a").expect("job")["schedule"],
        "0 2 * * *"
    );
    assert_eq!(watch.terminate(), 0);
}
