//! The API client through the real binary.
//!
//! - Against hostile servers: a small HTTP server made in each test
//!   (tests/it/support/hostile_server.rs) answers with redirects, absurd
//!   numbers, endless or huge bodies. Each run ends with a clear error and
//!   exit 1: never a panic (101), a hang, unbounded memory, a followed
//!   redirect, or a flood of server text.
//! - Against the fake failing in each way the API can, on a 50-job apply:
//!   the run ends, jobs that got a 2xx are in state and no others, jobs
//!   that did not are reported failed and the next run applies them, and
//!   the requests stay within the retry bounds.
//! - Its settings: tokens, URLs, schemes, proxies and timeouts refused
//!   before any request, in the user's words.

use crate::common;
use crate::fake;
use crate::support::hostile_server as hostile;
use crate::support::sidecar::Sidecar;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::Duration;

use common::{state_ids, Run, Workspace};
use fake::{Fake, Fault, FaultRule};
use hostile::{empty_list, endless, huge_error, put_ok, respond, Hostile, Request};
use hyper::Method;
use serde_json::Value;

const TOKEN: &str = "nf-hostile-t0ken";
const MANIFEST: &str = "kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n    DB_PASSWORD: hunter2-secret\n";

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", MANIFEST);
    ws
}

fn reconcile(ws: &Workspace, server: &Hostile, args: &[&str]) -> Run {
    let mut full = vec!["reconcile"];
    full.extend_from_slice(args);
    ws.nfcron_env(
        &full,
        &[
            ("NORTHFLANK_API_URL", server.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

/// The one job's entry in a JSON report.
fn job(run: &Run) -> Value {
    let report = run.json();
    assert_eq!(
        report["jobs"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    report["jobs"][0].clone()
}

fn error_message(run: &Run) -> String {
    job(run)["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("an error message: {}", run.stdout))
        .to_string()
}

fn count(server: &Hostile, method: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == method)
        .count()
}

/// Lists answer with an empty list; PUTs with `put`.
fn api(
    put: impl Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> Hostile {
    Hostile::spawn(move |request, stream| match request.method.as_str() {
        "GET" => empty_list(stream, &[]),
        _ => put(request, stream),
    })
}

// ---- redirects ------------------------------------------------------------

#[test]
fn a_307_on_put_is_not_followed_and_the_job_is_not_recorded_as_applied() {
    let elsewhere = Hostile::spawn(put_ok);
    let location = format!(
        "http://admin:pw-in-location@{}/v1/projects/acme/jobs/cron",
        elsewhere.addr
    );
    let server = api(move |_, stream| respond(stream, 307, &[("Location", &location)], b""));
    let ws = workspace();
    let run = reconcile(&ws, &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        elsewhere.connections(),
        0,
        "the redirect target received nothing: {:?}",
        elsewhere.requests()
    );
    assert_eq!(count(&server, "PUT"), 1, "a redirect is not retried");
    assert!(
        state_ids(&ws).is_empty(),
        "the job is not recorded as applied"
    );
    let message = error_message(&run);
    let shown = format!("http://{}/v1/projects/acme/jobs/cron", elsewhere.addr);
    assert!(message.contains("HTTP 307 redirect to"), "{message}");
    assert!(message.contains(&shown), "{message}");
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("pw-in-location"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert_eq!(job(&run)["result"], "failed");

    // The text plan names the Location too.
    let text = reconcile(&ws, &server, &[]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains(&shown) || text.stderr.contains(&shown),
        "{}\n{}",
        text.stdout,
        text.stderr
    );
    assert_eq!(elsewhere.connections(), 0);
}

#[test]
fn a_redirect_on_the_list_call_is_not_followed_either() {
    let elsewhere = Hostile::spawn(|_, stream| empty_list(stream, &[]));
    let location = format!("http://{}/v1/projects/acme/jobs", elsewhere.addr);
    let server = Hostile::spawn(move |request, stream| match request.method.as_str() {
        "GET" => respond(stream, 302, &[("Location", &location)], b""),
        _ => respond(stream, 301, &[("Location", "https://evil.example/x")], b""),
    });
    let run = reconcile(&workspace(), &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(elsewhere.connections(), 0);
    assert!(run.stderr.contains("HTTP 302 redirect"), "{}", run.stderr);
    // The job could not be looked for live: it fails with the list's error
    // and is not PUT blind.
    assert_eq!(job(&run)["result"], "failed");
    assert_eq!(job(&run)["error"]["status"], 302, "{}", run.stdout);
    assert_eq!(count(&server, "PUT"), 0);
}

// ---- item 5: every number from a server is saturated ---------------------

const U64_MAX: &str = "18446744073709551615";

#[test]
fn a_rate_limit_reset_of_u64_max_does_not_panic_reconcile() {
    let server = Hostile::spawn(|request, stream| {
        let absurd = [
            ("x-ratelimit-limit", U64_MAX),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", U64_MAX),
        ];
        match request.method.as_str() {
            "GET" => empty_list(stream, &absurd),
            _ => put_ok(request, stream),
        }
    });
    let run = reconcile(&workspace(), &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "not 101: {}", run.stderr);
    assert_eq!(
        count(&server, "PUT"),
        0,
        "nothing is sent past a used-up budget"
    );
    let message = error_message(&run);
    assert!(
        message.contains("rate limit is used up and resets in 36500d or more"),
        "{message}"
    );
}

#[test]
fn huge_rate_limit_counts_saturate() {
    let server = Hostile::spawn(|request, stream| {
        let absurd = [
            ("x-ratelimit-limit", "99999999999999999999999999999"),
            ("x-ratelimit-remaining", U64_MAX),
            ("x-ratelimit-reset", U64_MAX),
        ];
        match request.method.as_str() {
            "GET" => empty_list(stream, &absurd),
            _ => put_ok(request, stream),
        }
    });
    let ws = workspace();
    let run = reconcile(&ws, &server, &["--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(state_ids(&ws), ["job-a"]);
}

fn retry_after(value: &'static str) -> Hostile {
    api(move |_, stream| {
        respond(
            stream,
            429,
            &[("Retry-After", value), ("Content-Type", "application/json")],
            br#"{"error":{"status":429,"message":"Too many requests"}}"#,
        )
    })
}

#[test]
fn a_ten_year_retry_after_is_reported_as_a_wait_beyond_retry_max_time() {
    let server = retry_after("315360000");
    let run = reconcile(
        &workspace(),
        &server,
        &["--output", "json", "--retry-max-time", "2m"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(count(&server, "PUT"), 1, "not retried");
    let message = error_message(&run);
    assert!(
        message.contains("rate limited: the API asks to wait 3650d; beyond --retry-max-time (2m)"),
        "{message}"
    );
    assert_eq!(job(&run)["error"]["status"], 429);
}

#[test]
fn a_retry_after_of_u64_max_seconds_does_not_panic() {
    let server = retry_after(U64_MAX);
    let run = reconcile(&workspace(), &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "not 101: {}", run.stderr);
    assert_eq!(count(&server, "PUT"), 1);
    let message = error_message(&run);
    assert!(
        message.contains("the API asks to wait 36500d or more; beyond --retry-max-time (2m)"),
        "{message}"
    );
}

#[test]
fn a_retry_after_http_date_in_year_9999_does_not_panic() {
    let server = retry_after("Fri, 31 Dec 9999 23:59:59 GMT");
    let run = reconcile(&workspace(), &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "not 101: {}", run.stderr);
    assert_eq!(count(&server, "PUT"), 1);
    let message = error_message(&run);
    assert!(
        message.contains("rate limited: the API asks to wait"),
        "{message}"
    );
}

#[test]
fn watch_survives_a_rate_limit_reset_of_u64_max() {
    let server = Hostile::spawn(|request, stream| {
        let absurd = [
            ("x-ratelimit-limit", U64_MAX),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", U64_MAX),
            ("Retry-After", U64_MAX),
        ];
        match request.method.as_str() {
            "GET" => empty_list(stream, &absurd),
            _ => put_ok(request, stream),
        }
    });
    let ws = workspace();
    let mut watch = Sidecar::builder(ws.path(), &server.url, TOKEN)
        .env_remove("NFCRON_WEBHOOK_SECRET")
        .no_listener()
        .start();
    // The first run reads the absurd headers, then must go on to report.
    watch.next("reconciled");
    assert!(watch.running(), "watch is still running");
    assert_eq!(count(&server, "PUT"), 0);
    assert_eq!(watch.terminate().code, 0, "watch exits cleanly, not 101");
}

// ---- every body read has a cap ------------------------------------------

#[test]
fn an_endless_response_body_fails_with_a_clear_error() {
    let server = Hostile::spawn(|_, stream| endless(stream));
    let ws = workspace();
    let run = reconcile(&ws, &server, &["--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let message = error_message(&run);
    assert!(
        message.contains("the response is larger than 8 MiB; stopped reading it"),
        "{message}"
    );
    assert!(
        run.stderr.contains("larger than 8 MiB"),
        "the list call's failure is logged: {}",
        run.stderr
    );
    assert!(state_ids(&ws).is_empty());
}

#[test]
fn endless_bodies_at_concurrency_64_stay_within_the_in_flight_cap() {
    // The list call finds nothing live; every PUT's answer never ends.
    let server = Hostile::spawn(|request, stream| match request.method.as_str() {
        "GET" => empty_list(stream, &[]),
        _ => endless(stream),
    });
    let ws = Workspace::new();
    for i in 0..64 {
        ws.write(
            &format!("jobs.d/{i:02}.yaml"),
            MANIFEST.replace("Job A", &format!("Job {i:02}")),
        );
    }
    let run = reconcile(&ws, &server, &["--output", "json", "--concurrency", "64"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let messages: Vec<&str> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["error"]["message"].as_str().expect("every job failed"))
        .collect();
    assert_eq!(messages.len(), 64);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the responses being read at once passed 16 MiB together")),
        "64 endless bodies at once cannot each take 8 MiB: {messages:#?}"
    );
    assert!(state_ids(&ws).is_empty());
}

/// A 400 whose `message` is 50 MB of text, with a control character to
/// forge a log line.
fn fifty_megabyte_error(stream: &mut TcpStream) -> std::io::Result<()> {
    huge_error(
        stream,
        "the disk is full\\nERROR forged line ",
        50 * 1024 * 1024,
    )
}

#[test]
fn a_50_mb_error_message_is_cut_to_1_kib_everywhere() {
    let server = api(|_, stream| fifty_megabyte_error(stream));
    let ws = workspace();
    for format in ["json", "text"] {
        let run = reconcile(&ws, &server, &["--output", format, "--log-level", "debug"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stdout.len() < 8 * 1024 && run.stderr.len() < 8 * 1024,
            "{format}: stdout {} bytes, stderr {} bytes",
            run.stdout.len(),
            run.stderr.len()
        );
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("the disk is full"), "{all}");
        assert!(all.contains("[truncated]"), "{all}");
        assert!(
            !all.lines().any(|l| l.starts_with("ERROR forged")),
            "a newline from the server cannot start a line: {all}"
        );
        if format == "json" {
            let message = error_message(&run);
            assert!(message.len() < 1024 + 200, "{}", message.len());
        }
    }
    assert!(state_ids(&ws).is_empty());
}

// ---- tokens, URLs, schemes, proxies, zero timeouts -----------------------

#[test]
fn a_token_with_an_inner_newline_is_refused_as_a_token_problem() {
    let server = api(put_ok);
    let ws = workspace();
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", server.url.as_str()),
            ("NORTHFLANK_API_TOKEN", "nf-first\nsecond-half-of-token"),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("the API token from NORTHFLANK_API_TOKEN holds a line break"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("API URL"), "{}", run.stderr);
    assert!(!run.stderr.contains("second-half"), "{}", run.stderr);
    assert!(!run.stderr.contains("nf-first"), "{}", run.stderr);
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_token_file_with_an_inner_nul_or_newline_is_refused_as_a_token_problem() {
    let server = api(put_ok);
    let ws = workspace();
    for (content, kind) in [
        (&b"nf-first\0second-half\n"[..], "control character"),
        (&b"nf-first\nsecond-half\n"[..], "line break"),
        (&b"nf-first\xffsecond-half\n"[..], "not valid UTF-8"),
    ] {
        let file = ws.write("token", content);
        let run = ws.nfcron_env(
            &["reconcile", "--token-file", file.to_str().expect("path")],
            &[("NORTHFLANK_API_URL", server.url.as_str())],
        );
        assert_eq!(run.code, 1);
        assert!(
            run.stderr.contains("the API token from --token-file"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(kind), "{kind}: {}", run.stderr);
        assert!(!run.stderr.contains("API URL"), "{}", run.stderr);
        assert!(!run.stderr.contains("second-half"), "{}", run.stderr);
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn an_endless_token_file_is_refused_not_read_forever() {
    let ws = workspace();
    let run = ws.nfcron_env(&["reconcile", "--token-file", "/dev/zero"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("the token file /dev/zero is larger than 16 KiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_token_file_with_one_trailing_newline_is_fine() {
    let server = api(put_ok);
    let ws = workspace();
    let file = ws.write("token", format!("{TOKEN}\n"));
    let run = ws.nfcron_env(
        &["reconcile", "--token-file", file.to_str().expect("path")],
        &[("NORTHFLANK_API_URL", server.url.as_str())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bearer = format!("Bearer {TOKEN}");
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str())));
    assert_eq!(count(&server, "PUT"), 1);
}

#[test]
fn userinfo_in_the_api_url_is_refused_without_echoing_the_password() {
    let server = api(put_ok);
    let ws = workspace();
    let with_userinfo = format!("http://admin:hunter2-pw@{}", server.addr);
    // From the environment and from the flag, with and without a token.
    let runs = [
        ws.nfcron_env(
            &["reconcile"],
            &[
                ("NORTHFLANK_API_URL", with_userinfo.as_str()),
                ("NORTHFLANK_API_TOKEN", TOKEN),
            ],
        ),
        ws.nfcron_env(
            &["reconcile", "--api-url", &with_userinfo],
            &[("NORTHFLANK_API_TOKEN", TOKEN)],
        ),
        ws.nfcron_env(
            &["reconcile", "--dry-run"],
            &[("NORTHFLANK_API_URL", with_userinfo.as_str())],
        ),
        ws.nfcron_env(
            &["import", "--project", "acme"],
            &[
                ("NORTHFLANK_API_URL", with_userinfo.as_str()),
                ("NORTHFLANK_API_TOKEN", TOKEN),
            ],
        ),
    ];
    for run in runs {
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("holds a user name or password"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("hunter2-pw"), "{}", run.stderr);
        assert!(!run.stdout.contains("hunter2-pw"), "{}", run.stdout);
    }
    assert_eq!(server.connections(), 0, "nothing was sent, Basic or Bearer");
}

#[test]
fn a_non_http_scheme_is_refused_as_unsupported_not_as_plain_http() {
    let ws = workspace();
    for url in ["ftp://127.0.0.1/", "file:///tmp/api"] {
        let run = ws.nfcron_env(
            &["reconcile", "--api-url", url],
            &[("NORTHFLANK_API_TOKEN", TOKEN)],
        );
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("unsupported scheme"), "{}", run.stderr);
        assert!(!run.stderr.contains("plain http"), "{}", run.stderr);
    }
    // Plain http stays allowed on loopback only.
    let run = ws.nfcron_env(
        &["reconcile", "--api-url", "http://api.example.com"],
        &[("NORTHFLANK_API_TOKEN", TOKEN)],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("plain http"), "{}", run.stderr);
    let server = api(put_ok);
    let run = reconcile(&ws, &server, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn plain_http_to_loopback_never_goes_through_a_proxy_from_the_environment() {
    let proxy = Hostile::spawn(|_, stream| respond(stream, 502, &[], b""));
    let server = api(put_ok);
    let ws = workspace();
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", server.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            ("HTTP_PROXY", proxy.url.as_str()),
            ("http_proxy", proxy.url.as_str()),
            ("ALL_PROXY", proxy.url.as_str()),
            ("NO_PROXY", ""),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        proxy.connections(),
        0,
        "the token did not travel via the proxy"
    );
    assert_eq!(count(&server, "PUT"), 1);
}

#[test]
fn a_zero_request_timeout_is_refused() {
    let ws = workspace();
    for command in [
        &["reconcile"][..],
        &["watch"],
        &["import", "--project", "acme"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--timeout", "0s"]);
        let run = ws.nfcron_env(&args, &[("NORTHFLANK_API_TOKEN", TOKEN)]);
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.stderr.contains("is zero"), "{}", run.stderr);
    }
    let run = ws.nfcron_env(&["reconcile", "--timeout", "0"], &[]);
    assert_eq!(run.code, 1);
}

// ---- the fake failing in each way the API can -------------------------------

const JOBS: usize = 50;
/// One list call for adoption, then one PUT per job.
const CLEAN_REQUESTS: u64 = 1 + JOBS as u64;
/// Retries after the first attempt (RetryPolicy::default).
const MAX_RETRIES: u64 = 8;

fn setup() -> (Workspace, Fake) {
    let ws = Workspace::new();
    for i in 0..JOBS {
        ws.write(
            &format!("jobs.d/{i:02}.yaml"),
            common::manifest(&format!("Job {i:02}"), &format!("{} 3 * * *", i % 60)),
        );
    }
    (ws, Fake::spawn(0))
}

fn reconcile_json(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    let mut full = vec!["reconcile", "--output", "json"];
    full.extend_from_slice(args);
    ws.nfcron_env(
        &full,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", fake::TOKEN),
        ],
    )
}

/// What the faulty run did.
struct Survived {
    /// Requests it sent, retries included.
    sent: u64,
    /// Jobs it reported failed (the next run applied them).
    failed: usize,
}

/// The checks every fault must pass.
fn survives(fault: FaultRule, args: &[&str]) -> Survived {
    let (ws, fake) = setup();
    fake.inject(fault);
    let run = reconcile_json(&ws, &fake, args);
    assert!(
        run.code == 0 || run.code == 1,
        "the run ended with {}: {}",
        run.code,
        run.stderr
    );
    let report = run.json();
    let failed: BTreeSet<String> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["result"] == "failed")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    let applied: BTreeSet<String> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["result"] == "applied")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        applied.len() + failed.len(),
        JOBS,
        "every job applied or reported failed"
    );
    assert_eq!(
        state_ids(&ws).into_iter().collect::<BTreeSet<_>>(),
        applied,
        "state holds exactly the jobs the client saw a 2xx for"
    );
    let live: BTreeSet<String> = fake.job_ids("acme").into_iter().collect();
    assert!(
        applied.is_subset(&live),
        "nothing is in state that the API lacks"
    );
    assert_eq!(run.code == 0, failed.is_empty());
    let sent = report["summary"]["api_requests"].as_u64().expect("count");
    assert!(
        sent <= CLEAN_REQUESTS * (1 + MAX_RETRIES),
        "{sent} requests is past the retry bound"
    );

    // The next run, with the API healthy again, applies exactly the rest.
    fake.clear_faults();
    fake.clear_log();
    let again = reconcile_json(&ws, &fake, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let puts: BTreeSet<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .filter_map(|r| r.job.clone())
        .collect();
    assert_eq!(
        puts, failed,
        "the next run PUTs the failed jobs and only those"
    );
    assert_eq!(state_ids(&ws).len(), JOBS);
    Survived {
        sent,
        failed: failed.len(),
    }
}

fn fault_status(status: u16, retry_after: Option<u64>, times: usize) -> FaultRule {
    FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status,
            retry_after,
        },
        times,
        after: 0,
    }
}

#[test]
fn rate_limited_with_retry_after() {
    let run = survives(fault_status(429, Some(1), 8), &[]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 8, "each 429 costs one retry");
    assert_eq!(run.failed, 0);
}

#[test]
fn rate_limited_without_retry_after() {
    let run = survives(fault_status(429, None, 8), &[]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 8);
    assert_eq!(run.failed, 0);
}

#[test]
fn server_errors_500_502_503() {
    for code in [500, 502, 503] {
        let run = survives(fault_status(code, None, 6), &[]);
        assert_eq!(run.sent, CLEAN_REQUESTS + 6, "HTTP {code}");
        assert_eq!(run.failed, 0, "HTTP {code}");
    }
}

#[test]
fn a_server_error_that_outlasts_the_retry_budget_fails_the_job() {
    // 200 consecutive 503s: retries run out (time and count), jobs fail,
    // and the next run applies them.
    let run = survives(fault_status(503, None, 200), &["--retry-max-time", "2s"]);
    assert!(run.sent > CLEAN_REQUESTS, "{}", run.sent);
    assert_eq!(
        run.failed, JOBS,
        "no job outlasts 200 consecutive 503s within 2 s"
    );
}

#[test]
fn responses_slower_than_the_timeout() {
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Delay(Duration::from_secs(2)),
        times: 6,
        after: 0,
    };
    let run = survives(fault, &["--timeout", "300ms"]);
    assert_eq!(run.sent, CLEAN_REQUESTS + 6, "each timeout costs one retry");
    assert_eq!(run.failed, 0);
}

#[test]
fn dropped_connections_mid_request() {
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Drop,
        times: 6,
        after: 0,
    };
    let run = survives(fault, &[]);
    assert!(
        (CLEAN_REQUESTS + 6..=CLEAN_REQUESTS + 12).contains(&run.sent),
        "{}",
        run.sent
    );
    assert_eq!(run.failed, 0);
}

#[test]
fn the_api_starts_refusing_the_token() {
    // After 20 good PUTs the token is refused: nothing more is sent.
    let fault = FaultRule {
        method: Some(Method::PUT),
        fault: Fault::Status {
            status: 401,
            retry_after: None,
        },
        times: 1000,
        after: 20,
    };
    let run = survives(fault, &["--concurrency", "1"]);
    assert_eq!(
        run.sent,
        CLEAN_REQUESTS - (JOBS as u64 - 20) + 1,
        "one list, 20 PUTs, one refused, then nothing"
    );
    assert_eq!(run.failed, JOBS - 20);
}
