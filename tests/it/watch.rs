//! `nfcron watch` as a real process: a real directory (notify), a real Git
//! repository (git2), the real listener, and the fake API. Waiting is on
//! events (the daemon's JSON log lines) or deadline-bounded, never on fixed
//! sleeps.

use crate::common;
use crate::fake;
use crate::support::hostile_server::black_hole;
use crate::support::sidecar::{metric, signature, Sidecar, HOOK_SECRET, WAIT};

use std::time::{Duration, Instant};

use common::{git_commit, manifest, mkfifo, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

/// The next `reconciled` event that changed something (a file event may
/// also bring runs with nothing to do, e.g. for an editor's swap file).
fn next_change(watch: &mut Sidecar) -> Value {
    reconciled(watch, |v| v["api_requests"].as_u64() != Some(0))
}

/// The next `reconciled` event for which `done` holds.
fn reconciled(watch: &mut Sidecar, done: impl Fn(&Value) -> bool) -> Value {
    watch.next_where("matching `reconciled` event", |v| {
        v["message"] == "reconciled" && done(v)
    })
}

/// A watch over a Git remote (file://) whose first commit holds Job A,
/// past its first run's start.
struct GitWatch {
    origin: tempfile::TempDir,
    repo: git2::Repository,
    _ws: Workspace,
    fake: Fake,
    watch: Sidecar,
}

impl GitWatch {
    /// `watch --git <origin> ARGS`.
    fn start(args: &[&str]) -> GitWatch {
        let (origin, repo, _, url) =
            common::git_origin("jobs.d/a.yaml", &manifest("Job A", "0 1 * * *"));
        let ws = Workspace::new();
        let fake = Fake::spawn(0);
        let args = [&["--git", url.as_str()][..], args].concat();
        let watch = Sidecar::start(ws.path(), &fake.url, TOKEN, &args);
        GitWatch {
            origin,
            repo,
            _ws: ws,
            fake,
            watch,
        }
    }
}

/// `watch ARGS` over a directory of one manifest, `jobs.d/a.yaml`.
fn one_job_watch(args: &[&str]) -> (Workspace, Fake, Sidecar) {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    let watch = Sidecar::start(ws.path(), &fake.url, TOKEN, args);
    (ws, fake, watch)
}

/// A directory of two manifests (Job A at 01:00, Job B at 02:00) and a
/// fake API to apply them to.
fn two_jobs() -> (Workspace, Fake) {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    (ws, Fake::spawn(0))
}

#[test]
fn edits_are_applied_readiness_flips_and_metrics_match_the_fake() {
    let (ws, fake) = two_jobs();
    // Slow enough that the first reconcile is still running when asked.
    fake.set_latency(Duration::from_millis(400));
    let mut watch = Sidecar::start(ws.path(), &fake.url, TOKEN, &["--resync", "1h"]);
    assert_eq!(watch.get("/healthz").0, 200);
    let (status, body) = watch.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("first reconcile"), "{body}");
    let first = watch.next("reconciled");
    assert_eq!(first["create"], 2);
    assert_eq!(watch.get("/readyz").0, 200);
    fake.set_latency(Duration::ZERO);

    // A plain edit: exactly one PUT.
    let puts = fake.count("PUT");
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 3 * * *"));
    let run = next_change(&mut watch);
    assert_eq!(
        (run["update"].as_u64(), run["api_requests"].as_u64()),
        (Some(1), Some(1)),
        "{run}"
    );
    assert_eq!(fake.count("PUT"), puts + 1);
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 3 * * *");

    // An editor-style save: write a temp file, rename it over the manifest.
    ws.write("jobs.d/.b.yaml.swp", "swap");
    ws.write("jobs.d/b.yaml.tmp~", manifest("Job B", "0 4 * * *"));
    std::fs::rename(
        ws.path().join("jobs.d/b.yaml.tmp~"),
        ws.path().join("jobs.d/b.yaml"),
    )
    .expect("rename");
    let run = next_change(&mut watch);
    assert_eq!(run["update"], 1, "{run}");
    assert_eq!(common::acme_schedule(&fake, "job-b"), "0 4 * * *");

    // Metrics parse and agree with the fake's log.
    let (status, text) = watch.get("/metrics");
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
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn an_idle_watcher_sends_nothing_over_a_resync() {
    let (_ws, fake, mut watch) = one_job_watch(&["--resync", "200ms"]);
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
    assert_eq!(watch.terminate().code, 0);
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
    let mut watch = Sidecar::start(
        ws.path(),
        &fake.url,
        TOKEN,
        &["--concurrency", "1", "--shutdown-timeout", "500ms"],
    );
    watch.next("job");
    assert_eq!(watch.terminate().code, 0);
    assert!(
        ws.path().join(".nfcron/state.json").exists(),
        "a state was written"
    );
    let recorded = common::state_ids(&ws);
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
    let GitWatch {
        origin: _origin,
        repo,
        _ws,
        fake,
        mut watch,
    } = GitWatch::start(&["--interval", "1h", "--resync", "1h"]);
    assert_eq!(watch.next("reconciled")["create"], 1);
    let rev = git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 2 * * *")))],
        "second",
    );

    let body = br#"{"ref":"refs/heads/main","after":"forged"}"#;
    assert_eq!(watch.github_hook(body, "wrong").0, 401);
    assert_eq!(watch.github_hook(body, HOOK_SECRET).0, 202);
    let seen = watch.until("reconciled");
    let runs = seen.iter().filter(|l| l.is("reconciled")).count();
    assert_eq!(runs, 1, "the bad webhook triggered nothing");
    let run = seen.last().expect("run").value();
    assert_eq!(
        (run["update"].as_u64(), run["revision"].as_str()),
        (Some(1), Some(rev.as_str())),
        "{run}"
    );
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 2 * * *");
    let (_, metrics) = watch.get("/metrics");
    assert_eq!(
        metric(
            &metrics,
            &format!("nfcron_source_revision_info{{revision=\"{rev}\"}}")
        ),
        1.0
    );
    // GitLab's token header works too.
    assert_eq!(watch.gitlab_hook().0, 202);
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn a_failed_fetch_prunes_nothing_and_makes_the_sidecar_unready() {
    let GitWatch {
        origin,
        repo: _repo,
        _ws,
        fake,
        mut watch,
    } = GitWatch::start(&["--interval", "1h", "--prune", "--allow-empty"]);
    watch.next("reconciled");
    std::fs::remove_dir_all(origin.path()).expect("the remote goes away");
    let body = b"{}";
    assert_eq!(
        watch
            .http(
                "POST",
                "/hooks/git",
                &[("X-Signature", signature(body, HOOK_SECRET))],
                body
            )
            .0,
        202
    );
    let failed = watch.next("fetch failed; keeping the last good revision");
    assert_eq!(failed["level"], "ERROR");
    let (status, reason) = watch.get("/readyz");
    assert_eq!(status, 503);
    assert!(reason.contains("source unreachable"), "{reason}");
    assert_eq!(fake.count("DELETE"), 0);
    assert_eq!(fake.job_ids("acme"), ["job-a"]);
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn drift_sweeps_find_and_correct_changes_made_behind_the_sidecar() {
    let (ws, fake) = two_jobs();
    let mut watch = Sidecar::start(
        ws.path(),
        &fake.url,
        TOKEN,
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
    let fixed = next_change(&mut watch);
    assert_eq!(fixed["update"], 1, "{fixed}");
    assert_eq!(common::acme_schedule(&fake, "job-b"), "0 2 * * *");
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn a_webhook_burst_fetches_at_once_whatever_the_debounce_and_gives_at_most_two_runs() {
    // A debounce no test would wait out: a webhook that waited for it
    // would never be applied.
    let GitWatch {
        origin: _origin,
        repo,
        _ws,
        fake,
        mut watch,
    } = GitWatch::start(&["--interval", "1h", "--resync", "1h", "--debounce", "1h"]);
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
        assert_eq!(watch.github_hook(body, HOOK_SECRET).0, 202);
    }
    let first = watch.next("reconciled");
    assert_eq!(first["update"], 1, "{first}");
    fake.set_latency(Duration::ZERO);
    // At most one follow-up: whatever comes within a few seconds more.
    let mut runs = 1;
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(v) = watch.poll(deadline.saturating_duration_since(Instant::now())) {
        if v["message"] == "reconciled" {
            runs += 1;
            assert_eq!(v["api_requests"], 0, "the follow-up has nothing to do: {v}");
        }
    }
    assert!(runs <= 2, "{runs} runs for a burst of 10 webhooks");
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 2 * * *");
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn watch_keeps_applying_edits_with_a_fifo_in_its_directory() {
    let (ws, fake, mut watch) = one_job_watch(&["--resync", "1h"]);
    reconciled(&mut watch, |_| true);
    assert_eq!(fake.job_ids("acme"), ["job-a"]);

    mkfifo(&ws.path().join("jobs.d/pipe.yaml"));
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 2 * * *"));
    reconciled(&mut watch, |v| v["update"] == 1);
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 2 * * *");
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 3 * * *"));
    reconciled(&mut watch, |v| v["create"] == 1);
    assert_eq!(fake.job_ids("acme"), ["job-a", "job-b"]);
    let code = watch.terminate().code;
    assert!(
        code == 0 || code == 1,
        "SIGTERM ends the watch: exit {code}"
    );
}

// ---- SIGTERM while a run is stuck ----------------------------------------

fn assert_prompt_exit(watch: Sidecar, shutdown_timeout: Duration) {
    let exit = watch.terminate();
    let (code, took) = (exit.code, exit.took);
    assert_eq!(code, 0);
    // The margin the watchdog allows, plus slack for a loaded machine.
    let limit = shutdown_timeout + Duration::from_millis(2500);
    assert!(
        took < limit,
        "exited {took:?} after SIGTERM (limit {limit:?})"
    );
}

#[test]
fn sigterm_exits_within_the_shutdown_timeout_while_an_api_request_never_answers() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let (addr, requests) = black_hole();
    let watch = Sidecar::start(
        ws.path(),
        &format!("http://{addr}"),
        TOKEN,
        &["--timeout", "1h", "--shutdown-timeout", "500ms"],
    );
    let first = requests.recv_timeout(WAIT).expect("an API request");
    assert!(first.starts_with(b"PUT ") || first.starts_with(b"GET "));
    assert_prompt_exit(watch, Duration::from_millis(500));
}

#[test]
fn sigterm_exits_within_the_shutdown_timeout_while_a_git_fetch_never_answers() {
    let ws = Workspace::new();
    let (addr, requests) = black_hole();
    let fake = Fake::spawn(0);
    let url = format!("http://{addr}/jobs.git");
    let watch = Sidecar::start(
        ws.path(),
        &fake.url,
        TOKEN,
        &["--git", &url, "--shutdown-timeout", "500ms"],
    );
    requests.recv_timeout(WAIT).expect("a Git request");
    assert_prompt_exit(watch, Duration::from_millis(500));
}

#[test]
fn sigterm_exits_within_the_shutdown_timeout_while_a_run_blocks_on_a_fifo() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    let state = ws.path().join("state.fifo");
    let c = std::ffi::CString::new(state.to_str().expect("utf-8")).expect("path");
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut watch = Sidecar::start(
        ws.path(),
        &fake.url,
        TOKEN,
        &[
            "--state",
            state.to_str().expect("utf-8"),
            "--shutdown-timeout",
            "500ms",
        ],
    );
    // Hold the write end once nfcron opens the read end, and never write:
    // its read blocks. (Should state loading refuse a FIFO instead, the
    // run ends and the exit is prompt all the same.)
    let deadline = Instant::now() + WAIT;
    let _writer = loop {
        // SAFETY: a valid C string; the descriptor is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
        if fd >= 0 {
            // SAFETY: fd was just opened and is owned by nothing else.
            break Some(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        }
        if watch
            .poll(Duration::from_millis(10))
            .is_some_and(|v| v["message"] == "reconciled" || v["message"] == "reconcile failed")
        {
            break None;
        }
        assert!(Instant::now() < deadline, "nfcron never read the state");
    };
    assert_prompt_exit(watch, Duration::from_millis(500));
}
