//! The error policy (issue 13, items 1 and 2), through the real binary
//! against the fake API: a job the API refuses for good (a 4xx) is sent
//! once per spec, a transient failure (5xx) is retried until it lands, and
//! a refused token is picked up again from `--token-file` without a
//! restart. Every test counts the requests the fake received; waiting is
//! on log events or the fake's log, deadline-bounded.

use crate::common;
use crate::fake;

use std::path::Path;
use std::time::Duration;

use common::{job, manifest, put_status, Run, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

use crate::support::sidecar::{metric, Sidecar, WAIT};

fn reconcile(ws: &Workspace, fake: &Fake, extra: &[&str]) -> Run {
    let mut args = vec!["reconcile", "--output", "json"];
    args.extend_from_slice(extra);
    ws.nfcron_env(
        &args,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

fn state(ws: &Workspace) -> Value {
    let text = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    serde_json::from_str(&text).expect("state is JSON")
}

#[test]
fn a_job_the_api_refuses_with_400_is_recorded_and_not_sent_again_until_retry_rejected() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    let fake = Fake::spawn(0);
    // The first PUT (Job A's, with --concurrency 1) is refused.
    fake.inject(put_status(400, 1));

    let first = reconcile(&ws, &fake, &["--concurrency", "1"]);
    assert_eq!(
        first.code, 1,
        "a rejected job is an error: {}",
        first.stderr
    );
    let report = first.json();
    assert_eq!(report["summary"]["rejected"], 1, "{report:#}");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    let a = job(&report, "job-a");
    assert_eq!(a["result"], "rejected", "{a:#}");
    assert_eq!(a["error"]["status"], 400, "{a:#}");
    assert!(
        a["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("injected fault")),
        "the API's message is reported: {a:#}"
    );
    assert_eq!(job(&report, "job-b")["result"], "applied");
    assert_eq!(fake.count("PUT"), 2);
    let recorded = state(&ws);
    let rejected = recorded["rejected"].as_array().expect("a rejected list");
    assert_eq!(rejected.len(), 1, "{recorded:#}");
    assert_eq!(rejected[0]["id"], "job-a");
    assert_eq!(rejected[0]["status"], 400);
    assert!(rejected[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("injected fault")));

    // Same spec: nothing is sent, not even a list call, and it still fails.
    fake.clear_log();
    let second = reconcile(&ws, &fake, &[]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    let report = second.json();
    assert_eq!(fake.requests().len(), 0, "{:?}", fake.requests());
    assert_eq!(report["summary"]["api_requests"], 0);
    assert_eq!(report["summary"]["rejected"], 1, "{report:#}");
    let a = job(&report, "job-a");
    assert_eq!(
        (&a["action"], &a["result"]),
        (&"rejected".into(), &"rejected".into())
    );
    assert_eq!(a["error"]["status"], 400, "{a:#}");
    let text = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    );
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout.contains("x rejected acme/job-a") && text.stdout.contains("HTTP 400"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("1 rejected"), "{}", text.stdout);
    assert_eq!(fake.requests().len(), 0);

    // --retry-rejected sends it once more; the API takes it this time.
    let third = reconcile(&ws, &fake, &["--retry-rejected"]);
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    assert_eq!(job(&third.json(), "job-a")["result"], "applied");
    assert_eq!(fake.count("PUT"), 1);
    assert!(fake.job(None, "acme", "job-a").is_some());
    // Applied: the rejection is gone, and the file reads as before.
    assert!(state(&ws).get("rejected").is_none(), "{:#}", state(&ws));
}

#[test]
fn a_rejected_job_is_sent_again_once_its_manifest_changes() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    fake.inject(put_status(422, 1));
    assert_eq!(reconcile(&ws, &fake, &[]).code, 1);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 1);
    assert_eq!(fake.count("PUT"), 1);
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 4 * * *"));
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fake.count("PUT"), 2);
    assert_eq!(job(&run.json(), "job-a")["result"], "applied");
}

#[test]
fn the_rejection_of_a_job_whose_manifest_is_removed_is_forgotten() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 2 * * *"));
    let fake = Fake::spawn(0);
    fake.inject(put_status(403, 1));
    assert_eq!(reconcile(&ws, &fake, &["--concurrency", "1"]).code, 1);
    assert_eq!(state(&ws)["rejected"][0]["id"], "job-a");
    std::fs::remove_file(ws.path().join("jobs.d/a.yaml")).expect("rm");
    fake.clear_log();
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["summary"]["rejected"], 0);
    assert_eq!(fake.requests().len(), 0);
    assert!(state(&ws).get("rejected").is_none(), "{:#}", state(&ws));
    // Back with the same spec: sent once more.
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fake.count("PUT"), 1);
}

#[test]
fn a_state_file_without_rejections_from_an_older_nfcron_still_loads() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    let recorded = state(&ws);
    assert_eq!(recorded["format_version"], 1);
    assert!(recorded.get("rejected").is_none(), "{recorded:#}");
    fake.clear_log();
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(job(&run.json(), "job-a")["action"], "unchanged");
    assert_eq!(fake.requests().len(), 0);
}

#[test]
fn a_503_is_retried_and_lands() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    fake.inject(put_status(503, 2));
    let run = reconcile(&ws, &fake, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(job(&report, "job-a")["result"], "applied");
    assert_eq!(report["summary"]["rejected"], 0);
    assert_eq!(fake.count("PUT"), 3);
    assert!(fake.job(None, "acme", "job-a").is_some());
    assert!(state(&ws).get("rejected").is_none());
}

// ---- watch ----

/// `nfcron watch` against `fake` with `env` and `args`, no drift sweep and
/// no webhook; without a token unless `env` has one (a test gives it in
/// `--token-file` instead).
fn start_watch(dir: &Path, fake: &Fake, env: &[(&str, &str)], args: &[&str]) -> Sidecar {
    let mut builder = Sidecar::builder(dir, &fake.url, "")
        .env_remove("NORTHFLANK_API_TOKEN")
        .env_remove("NFCRON_WEBHOOK_SECRET");
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    builder.args(&["--drift-interval", "0"]).args(args).start()
}

#[test]
fn watch_puts_a_job_the_api_refuses_once_across_three_resyncs_and_again_once_after_its_file_changes(
) {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    fake.inject(put_status(400, 1));
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &[("NORTHFLANK_API_TOKEN", TOKEN)],
        &["--resync", "300ms", "--debounce", "100ms"],
    );
    let first = watch.next("reconciled");
    assert_eq!(first["rejected"], 1, "{first}");
    for i in 0..3 {
        let resync = watch.next("reconciled");
        assert_eq!(resync["rejected"], 1, "resync {i}: {resync}");
        assert_eq!(resync["api_requests"], 0, "resync {i}: {resync}");
    }
    assert_eq!(fake.count("PUT"), 1, "{:?}", fake.requests());
    let (_, text) = watch.get("/metrics");
    assert_eq!(
        metric(&text, "nfcron_jobs{state=\"rejected\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "nfcron_jobs{state=\"failed\"}"),
        0.0,
        "{text}"
    );

    ws.write("jobs.d/a.yaml", manifest("Job A", "0 5 * * *"));
    assert!(
        fake.wait_until(WAIT, |log| log.iter().filter(|r| r.method == "PUT").count()
            >= 2),
        "the changed manifest was not sent"
    );
    // Every later run has nothing to send.
    for _ in 0..3 {
        watch.next("reconciled");
    }
    assert_eq!(fake.count("PUT"), 2, "{:?}", fake.requests());
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 5 * * *");
    let (_, text) = watch.get("/metrics");
    assert_eq!(
        metric(&text, "nfcron_jobs{state=\"rejected\"}"),
        0.0,
        "{text}"
    );
}

#[test]
fn watch_schedules_no_backoff_retry_for_a_run_whose_only_error_is_a_rejection() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    fake.inject(put_status(404, 1));
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &[("NORTHFLANK_API_TOKEN", TOKEN)],
        &["--resync", "1h"],
    );
    let first = watch.next("reconciled");
    assert_eq!(first["rejected"], 1, "{first}");
    // A failed run is retried after 5 s: none may come.
    watch.no_run_within(Duration::from_secs(6));
    assert_eq!(fake.count("PUT"), 1);
}

#[test]
fn watch_retries_a_run_whose_put_got_503_until_it_lands() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    // No retries within a run (--retry-max-time 0s): the run fails, and
    // the sidecar's backoff retry (5 s later) lands it.
    fake.inject(put_status(503, 1));
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &[("NORTHFLANK_API_TOKEN", TOKEN)],
        &["--resync", "1h", "--retry-max-time", "0s"],
    );
    let first = watch.next("reconciled");
    assert_eq!(first["rejected"], 0, "{first}");
    assert!(
        fake.wait_until(WAIT, |log| log
            .iter()
            .any(|r| r.method == "PUT" && r.status == 200)),
        "the 503 was never retried to success: {:?}",
        fake.requests()
    );
    watch.poll_until("/readyz", 200);
    assert!(fake.job(None, "acme", "job-a").is_some());
}

/// Replaces `path` the way a secret mount does: a new file renamed over it.
fn rotate(path: &Path, token: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{token}\n")).expect("write token");
    std::fs::rename(&tmp, path).expect("rename token");
}

#[test]
fn a_refused_token_turns_readyz_503_and_a_new_token_in_the_token_file_recovers_without_restart() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let token_file = ws.write("secret/token", format!("{TOKEN}\n"));
    let fake = Fake::spawn(0);
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &[],
        &[
            "--token-file",
            token_file.to_str().expect("utf-8 path"),
            "--resync",
            "1h",
            "--debounce",
            "100ms",
        ],
    );
    watch.next("reconciled");
    watch.poll_until("/readyz", 200);
    assert_eq!(fake.count("PUT"), 1);

    // The API stops taking the old token; the next run is refused.
    fake.set_token("nf-rotated-token-2");
    fake.clear_log();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 6 * * *"));
    let body = watch.poll_until("/readyz", 503);
    assert!(body.contains("token refused"), "{body}");
    let (_, text) = watch.get("/metrics");
    assert_eq!(metric(&text, "nfcron_token_refused"), 1.0, "{text}");
    // One 401, then nothing more in that run.
    let refused: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(refused.first(), Some(&401), "{refused:?}");
    assert!(refused.iter().all(|s| *s == 401), "{refused:?}");
    assert!(!text.contains("nf-rotated") && !text.contains(TOKEN));

    // The secret is rotated: picked up without a restart.
    rotate(&token_file, "nf-rotated-token-2");
    let ready = watch.poll_until("/readyz", 200);
    assert_eq!(ready.trim(), "ready");
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 6 * * *");
    let (_, text) = watch.get("/metrics");
    assert_eq!(metric(&text, "nfcron_token_refused"), 0.0, "{text}");
    let pid = watch.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "restarted?");
}

#[test]
fn a_token_refused_in_one_run_is_tried_again_by_the_next_run() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    fake.set_token("nf-not-yet-granted");
    let mut watch = start_watch(
        ws.path(),
        &fake,
        &[("NORTHFLANK_API_TOKEN", TOKEN)],
        &["--resync", "1h"],
    );
    watch.next("reconciled");
    let body = watch.poll_until("/readyz", 503);
    assert!(body.contains("token refused"), "{body}");
    assert_eq!(fake.job(None, "acme", "job-a"), None);
    // Granted on the API side: the latch lasted one run, and the backoff
    // retry (5 s later) lands the job.
    fake.set_token(TOKEN);
    watch.poll_until("/readyz", 200);
    assert!(fake.job(None, "acme", "job-a").is_some());
}

#[test]
fn a_409_or_408_is_transient_retried_within_the_run_and_lands() {
    for status in [409, 408] {
        let ws = Workspace::new();
        ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
        let fake = Fake::spawn(0);
        fake.inject(put_status(status, 1));
        let run = reconcile(&ws, &fake, &[]);
        assert_eq!(run.code, 0, "{status}: {}\n{}", run.stdout, run.stderr);
        let report = run.json();
        assert_eq!(job(&report, "job-a")["result"], "applied", "{status}");
        assert_eq!(report["summary"]["rejected"], 0, "{status}");
        assert_eq!(fake.count("PUT"), 2, "{status}");
        assert!(state(&ws).get("rejected").is_none(), "{status}");
    }
}

/// CPU time (user + system) of process `pid`, from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

#[test]
fn a_refused_token_beside_the_log_file_does_not_feed_on_its_own_log() {
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", manifest("Nightly", "0 3 * * *"));
    let secrets = ws.path().join("run");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    let token_file = secrets.join("token");
    std::fs::write(&token_file, "refused-token\n").expect("token");
    let log_path = secrets.join("nfcron.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let fake = Fake::spawn(0);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(ws.path())
        .env_remove("NORTHFLANK_API_TOKEN")
        .env_remove("RUST_LOG")
        .env("NORTHFLANK_API_URL", &fake.url)
        .env("NO_COLOR", "1")
        .args(["--log-format", "json", "watch", "jobs.d", "--listen", "off"])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--state")
        .arg(secrets.join("state.json"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start nfcron watch");
    let pid = child.id();
    let lines = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // The first run is refused; then six seconds of what follows.
    fake.wait_until(Duration::from_secs(30), |log| !log.is_empty());
    assert!(
        fake.requests().iter().any(|r| r.status == 401),
        "the token is refused"
    );
    let cpu0 = cpu_time(pid);
    // Six seconds, or until the log has 100 lines (looked at whenever the
    // sidecar calls the API, and at the end).
    fake.wait_until(Duration::from_secs(6), |_| lines() >= 100);
    let (cpu, logged) = (cpu_time(pid) - cpu0, lines());

    // A new token in the file is still picked up.
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let put = fake.wait_arrived(Duration::from_secs(30), "PUT", 1);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    eprintln!("refused token beside the log: {logged} lines, {cpu:?} CPU in 6 s");
    assert!(
        logged < 100,
        "{logged} log lines in 6 s:\n{}",
        &text[..text.len().min(3000)]
    );
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU in 6 s");
    assert!(put, "the new token is used: {text}");
}
