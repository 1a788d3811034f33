//! The sidecar's day-two operations, through the real binary against the
//! fake API: both metrics formats (checked by `promtool`), coalescing
//! triggers, and logs an operator can read. Waiting is on log events or the
//! fake's request log, deadline-bounded, never on fixed sleeps.

use crate::common;
use crate::fake;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use common::{manifest, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

use crate::support::hostile_server::black_hole;
use crate::support::sidecar::{metric, Sidecar, HOOK_SECRET, JSON_INFO, WAIT};

/// `nfcron GLOBAL watch ARGS` against `fake`.
fn start_watch(dir: &Path, fake: &Fake, global: &[&str], args: &[&str]) -> Sidecar {
    Sidecar::builder(dir, &fake.url, TOKEN)
        .global(global)
        .args(args)
        .start()
}

/// A workspace with one manifest, `jobs.d/a.yaml`.
fn one_job() -> Workspace {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws
}

/// `watch --resync 1h` (no run of its own while a test waits), after its
/// first run.
fn after_first_run(ws: &Workspace, fake: &Fake) -> Sidecar {
    let mut watch = start_watch(ws.path(), fake, &JSON_INFO, &["--resync", "1h"]);
    watch.next("reconciled");
    watch
}

/// `GET /metrics` asking for `accept`: a 200 of `content_type`; its body.
fn scrape(watch: &Sidecar, accept: &str, content_type: &str) -> String {
    let (status, head, text) = watch.http("GET", "/metrics", &[("Accept", accept.into())], b"");
    assert_eq!(status, 200);
    assert!(
        head.contains(&format!("content-type: {content_type}")),
        "{head}"
    );
    text
}

/// `nfcron GLOBAL watch` with triggers coalesced over `debounce`: no
/// resync or drift sweep to add runs of their own.
fn coalescing(ws: &Workspace, fake: &Fake, global: &[&str], debounce: &str) -> Sidecar {
    start_watch(
        ws.path(),
        fake,
        global,
        &[
            "--resync",
            "1h",
            "--drift-interval",
            "0",
            "--debounce",
            debounce,
        ],
    )
}

/// `promtool check metrics` on `text`: its exit code and output. Missing
/// promtool fails under CI (`.ci/run` installs it) and skips elsewhere.
fn promtool_check(text: &str) -> Option<(i32, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is not installed but CI=true: .ci/run installs it from Debian's `prometheus` package"
            );
            eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus)");
            return None;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    Some((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn promtool_accepts_the_text_004_scrape_and_openmetrics_is_served_when_asked() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    let watch = after_first_run(&ws, &fake);
    // A refused listener request, so that every counter family has samples.
    let (status, _, _) = watch.http("POST", "/hooks/git", &[], b"{}");
    assert_eq!(status, 401);

    // Prometheus text 0.0.4, as an old scraper asks for it.
    let text = scrape(
        &watch,
        "text/plain;version=0.0.4",
        "text/plain; version=0.0.4",
    );
    for line in [
        "# TYPE nfcron_reconcile_runs_total counter",
        "# TYPE nfcron_api_requests_total counter",
        "# TYPE nfcron_http_refused_total counter",
        "# TYPE nfcron_token_refused gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    assert!(!text.contains("# EOF"), "{text}");
    assert_eq!(metric(&text, "nfcron_token_refused"), 0.0);
    assert_eq!(
        metric(&text, "nfcron_reconcile_runs_total{result=\"success\"}"),
        1.0
    );
    if let Some((code, out)) = promtool_check(&text) {
        assert_eq!(
            code, 0,
            "promtool check metrics failed:\n{out}\non:\n{text}"
        );
    }
    // No Accept header at all: 0.0.4 too.
    let (_, head, plain) = watch.http("GET", "/metrics", &[], b"");
    assert!(head.contains("version=0.0.4"), "{head}");
    if let Some((code, out)) = promtool_check(&plain) {
        assert_eq!(code, 0, "{out}");
    }

    // OpenMetrics, as Prometheus asks for it.
    let open = scrape(
        &watch,
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text; version=1.0.0",
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.lines()
            .any(|l| l == "# TYPE nfcron_reconcile_runs counter"),
        "{open}"
    );
    // promtool (2.x) parses only the 0.0.4 text, so the OpenMetrics answer is
    // checked against the same samples instead.
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| !l.starts_with("nfcron_reconcile_duration_seconds"))
            .filter(|l| !l.starts_with("nfcron_last_success"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(samples(&open), samples(&plain));
    let code = watch.terminate().code;
    assert_eq!(code, 0);
}

#[test]
fn a_401_sets_nfcron_token_refused() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    fake.set_token("another-token");
    let watch = after_first_run(&ws, &fake);
    let (_, _, text) = watch.http("GET", "/metrics", &[], b"");
    assert_eq!(metric(&text, "nfcron_token_refused"), 1.0, "{text}");
    assert!(
        metric(
            &text,
            "nfcron_api_requests_total{method=\"GET\",status=\"401\"}"
        ) >= 1.0,
        "{text}"
    );
}

fn webhooks(watch: &Sidecar, n: usize) {
    let body = br#"{"ref":"refs/heads/main"}"#;
    for i in 0..n {
        let (status, reply) = watch.github_hook(body, HOOK_SECRET);
        assert_eq!(status, 202, "webhook {i}: {reply}");
    }
}

fn successful_runs(watch: &Sidecar) -> f64 {
    let (_, _, text) = watch.http("GET", "/metrics", &[], b"");
    metric(&text, "nfcron_reconcile_runs_total{result=\"success\"}")
}

#[test]
fn ten_webhooks_and_a_file_event_during_a_run_give_exactly_one_follow_up_run() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    // The first run's requests take 1.5 s each: everything below lands
    // while it is in progress.
    fake.set_latency(Duration::from_millis(1500));
    let debounce = Duration::from_millis(300);
    let mut watch = coalescing(&ws, &fake, &JSON_INFO, "300ms");
    // The run has read the directory once its first request (the list) is
    // answered; its PUT then takes another 1.5 s.
    assert!(
        fake.wait_until(WAIT, |log| !log.is_empty()),
        "the first run sent nothing"
    );
    webhooks(&watch, 10);
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    let (status, _, body) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(
        status, 503,
        "the first run ended before the triggers: {body}"
    );

    let first = watch.next("reconciled");
    fake.set_latency(Duration::ZERO);
    let follow_up = watch.next("reconciled");
    assert_eq!(follow_up["create"], 1, "{first}\n{follow_up}");
    watch.no_run_within(debounce * 10);
    assert_eq!(successful_runs(&watch), 2.0);
    assert_eq!(fake.count("PUT"), 2);
}

#[test]
fn a_burst_of_webhooks_while_idle_starts_at_once_and_gives_at_most_two_runs() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    // A quiet period no test would wait out: a webhook that waited for it
    // would never run.
    let mut watch = coalescing(&ws, &fake, &JSON_INFO, "1h");
    watch.next("reconciled");
    assert_eq!(successful_runs(&watch), 1.0);
    // The first webhook starts a run at once; those that land during it
    // give one follow-up run, those after it are coalesced into that.
    webhooks(&watch, 10);
    watch.next("reconciled");
    let mut runs = 1;
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(event) = watch.poll(deadline.saturating_duration_since(Instant::now())) {
        runs += usize::from(event["message"] == "reconciled");
    }
    assert!(runs <= 2, "{runs} runs for a burst of 10 webhooks");
    assert_eq!(successful_runs(&watch), 1.0 + runs as f64);
}

#[test]
fn under_log_format_json_every_stderr_line_is_json_and_a_used_up_rate_limit_is_one_error() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    // No --log-level and no RUST_LOG: watch's default is info.
    let mut watch = coalescing(&ws, &fake, &["--log-format", "json"], "100ms");
    let mut lines = watch.early.clone();
    let banner = lines
        .last()
        .and_then(|l| l.json.clone())
        .expect("a JSON banner");
    assert_eq!(banner["message"], "listening", "{banner}");
    assert_eq!(banner["level"], "INFO", "{banner}");
    lines.extend(watch.until("reconciled"));
    // One line per job action, at info.
    let job = lines
        .iter()
        .filter_map(|l| l.json.as_ref())
        .find(|v| v["message"] == "job")
        .unwrap_or_else(|| panic!("no `job` event at the default level"));
    assert_eq!(
        (&job["level"], &job["id"], &job["action"], &job["result"]),
        (
            &Value::from("INFO"),
            &Value::from("job-a"),
            &Value::from("create"),
            &Value::from("applied")
        ),
        "{job}"
    );

    // One request left in the hour: the next run's list takes it, and its
    // three writes are refused unsent.
    fake.set_rate_limit(1000, 1, Duration::from_secs(3600));
    for name in ["B", "C", "D"] {
        ws.write(
            &format!("jobs.d/{}.yaml", name.to_lowercase()),
            manifest(&format!("Job {name}"), "0 2 * * *"),
        );
    }
    let run = watch.until("reconciled");
    let errors: Vec<&Value> = run
        .iter()
        .filter_map(|l| l.json.as_ref())
        .filter(|v| v["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().expect("a message");
    assert!(
        message.starts_with("rate limit used up: 3 jobs not attempted, resets in 59m"),
        "{message}"
    );
    assert_eq!(errors[0]["jobs"], 3, "{}", errors[0]);
    assert_eq!(fake.count("PUT"), 1, "nothing sent past the limit");
    lines.extend(run);

    let exit = watch.terminate();
    let (code, rest) = (exit.code, exit.lines);
    assert_eq!(code, 0);
    lines.extend(rest);
    assert!(
        lines
            .iter()
            .any(|l| l.json.as_ref().is_some_and(|v| v["message"] == "stopped")),
        "the log ran to the end"
    );
    for line in &lines {
        assert!(line.json.is_some(), "not JSON: {}", line.raw);
    }
}

#[test]
fn under_log_format_json_a_fatal_error_is_a_json_line_too() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    // The address is taken: watch cannot start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(ws.path())
        .args(["--log-format", "json", "watch", "--listen", &addr])
        .env("NORTHFLANK_API_URL", &fake.url)
        .env("NORTHFLANK_API_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .output()
        .expect("run nfcron watch");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(
        last["message"],
        format!("cannot listen on {addr}"),
        "{last}"
    );
    assert!(
        last["causes"][0].as_str().is_some_and(|c| !c.is_empty()),
        "{last}"
    );
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn healthz_fails_when_a_run_is_stuck_on_a_silent_git_server_past_the_stall_timeout() {
    let ws = Workspace::new();
    let (addr, connections) = black_hole();
    let fake = Fake::spawn(0);
    let url = format!("http://{addr}/jobs.git");
    let started = Instant::now();
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &JSON_INFO,
        &[
            "--git",
            &url,
            "--stall-timeout",
            "1s",
            // The run's own limits: an API call may be silent this long.
            "--timeout",
            "300ms",
            "--retry-max-time",
            "300ms",
            "--shutdown-timeout",
            "500ms",
        ],
    );
    connections.recv_timeout(WAIT).expect("a Git request");
    let body = watch.poll_until("/healthz", 503);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "failed before --stall-timeout"
    );
    assert!(body.starts_with("stalled:"), "{body}");
    let (status, _, body) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(status, 503, "{body}");
    // The probes still answer and SIGTERM still ends it.
    let code = watch.terminate().code;
    assert_eq!(code, 0);
}

#[test]
fn healthz_stays_ok_across_runs_spaced_wider_than_the_stall_timeout() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    let started = Instant::now();
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &JSON_INFO,
        &[
            "--resync",
            "600ms",
            "--stall-timeout",
            "500ms",
            "--timeout",
            "100ms",
            "--retry-max-time",
            "100ms",
        ],
    );
    for _ in 0..3 {
        watch.next("reconciled");
    }
    assert!(started.elapsed() > Duration::from_secs(1));
    let (status, _, body) = watch.http("GET", "/healthz", &[], b"");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[test]
fn readyz_says_token_refused_after_a_401_and_names_an_unreadable_source() {
    let ws = one_job();
    let fake = Fake::spawn(0);
    fake.set_token("another-token");
    let watch = after_first_run(&ws, &fake);
    let (status, _, body) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: token refused: the API answered 401\n")
    );
    drop(watch);

    // A manifest that cannot be read (a directory's permissions are not
    // enough for root, so a dangling symlink stands in).
    let ws = one_job();
    std::os::unix::fs::symlink(
        ws.path().join("nowhere.yaml"),
        ws.path().join("jobs.d/b.yaml"),
    )
    .expect("symlink");
    let fake = Fake::spawn(0);
    let mut watch = after_first_run(&ws, &fake);
    let (status, _, body) = watch.http("GET", "/readyz", &[], b"");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: source unreadable: jobs.d/b.yaml"),
        "{body}"
    );
    // Once it is gone, the next run is ready.
    std::fs::remove_file(ws.path().join("jobs.d/b.yaml")).expect("rm");
    watch.poll_until("/readyz", 200);
}
