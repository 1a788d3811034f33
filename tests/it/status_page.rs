//! The sidecar's status page (`GET /`), through the real binary against
//! the fake API: rows and states, escaping, no secret, no API request per
//! view, the HTTP contract (headers, HEAD, other methods), and the page as
//! headless Chromium renders it (DOM and a screenshot). Waiting is on log
//! events, deadline-bounded, never on fixed sleeps.

use crate::common;
use crate::fake;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Workspace;
use fake::{Fake, Fault, FaultRule, TOKEN};

use crate::support::sidecar::Sidecar;

/// A secret value the manifests pull in from the environment.
const DB_PASSWORD: &str = "hunter2-St4tus-page-secret";

/// The status page's Content-Security-Policy, exactly.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// A file name and a job name that would run script if shown raw.
const HOSTILE_FILE: &str = "<img src=x onerror=alert(1)>.yaml";
const HOSTILE_NAME: &str = "<script>alert('pwned')</script>";

/// A manifest that needs one read for drift (no secrets: a secret
/// sub-resource costs a second read, more than a 1 s sweep's slice may).
fn plain_manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")
}

fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n    DB_PASSWORD: \"${{STATUS_DB_PASSWORD}}\"\n")
}

/// `nfcron watch ARGS` against `fake`, the manifests' secret in its
/// environment, the webhook off.
fn start_sidecar(dir: &Path, fake: &Fake, args: &[&str]) -> Sidecar {
    Sidecar::builder(dir, &fake.url, TOKEN)
        .env("STATUS_DB_PASSWORD", DB_PASSWORD)
        .env_remove("NFCRON_WEBHOOK_SECRET")
        .args(args)
        .start()
}

/// The body of `GET /`, which must answer 200.
fn get_page(sidecar: &Sidecar) -> String {
    let (status, head, body) = sidecar.http("GET", "/", &[], b"");
    assert_eq!(status, 200, "{head}\n{body}");
    body
}

/// The `<tr>` of one job (by its `team/project/id`).
fn row<'a>(page: &'a str, job: &str) -> &'a str {
    let start = page
        .find(&format!("<tr data-job=\"{job}\""))
        .unwrap_or_else(|| panic!("no row for {job} in:\n{page}"));
    let len = page[start..].find("</tr>").expect("row end");
    &page[start..start + len]
}

/// Rows in `state` (their `data-state`).
fn rows_in<'a>(page: &'a str, state: &str) -> Vec<&'a str> {
    page.match_indices("<tr ")
        .map(|(i, _)| &page[i..i + page[i..].find("</tr>").expect("row end")])
        .filter(|r| r.contains(&format!("data-state=\"{state}\"")))
        .collect()
}

/// The element with this id, up to its closing tag's start.
fn by_id<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{page}"));
    let open = page[..start].rfind('<').expect("the element's tag");
    let tag: String = page[open + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let len = page[start..]
        .find(&format!("</{tag}>"))
        .expect("element end");
    &page[start..start + len]
}

/// Three jobs: one in sync (with a secret from the environment), one the
/// fake refuses for good (400), one invalid manifest with a name and file
/// name made of markup. No timers left to fire: no drift sweep, a resync an
/// hour away, nothing failed (no retry).
fn quiet_sidecar() -> (Workspace, Fake, Sidecar) {
    let ws = Workspace::new();
    ws.write("jobs.d/alpha.yaml", manifest("Alpha Rejected", "0 1 * * *"));
    ws.write("jobs.d/beta.yaml", manifest("Beta", "30 2 * * *"));
    ws.write(
        &format!("jobs.d/{HOSTILE_FILE}"),
        manifest(HOSTILE_NAME, "0 3 * * *"),
    );
    let fake = Fake::spawn(0);
    // With --concurrency 1 the PUTs go in plan order: alpha's is first.
    fake.inject(common::put_status(400, 1));
    let mut sidecar = start_sidecar(
        ws.path(),
        &fake,
        &[
            "--resync",
            "1h",
            "--drift-interval",
            "0",
            "--concurrency",
            "1",
        ],
    );
    let run = sidecar.next("reconciled");
    assert_eq!(
        (&run["create"], &run["rejected"], &run["invalid"]),
        // Creates as planned: alpha's was refused.
        (&2.into(), &1.into(), &1.into()),
        "{run}"
    );
    (ws, fake, sidecar)
}

/// The next three runs of `M H * * *` after now, as the page shows them.
fn next_daily(hour: i8, minute: i8) -> Vec<String> {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let mut day = now
        .date()
        .at(hour, minute, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("UTC");
    if day <= now {
        day = day.tomorrow().expect("tomorrow");
    }
    (0..3)
        .map(|_| {
            let shown = day.strftime("%Y-%m-%d %H:%M").to_string();
            day = day.tomorrow().expect("tomorrow");
            shown
        })
        .collect()
}

#[test]
fn the_status_page_shows_each_job_state_escaped_without_secrets_and_costs_no_request() {
    let (_ws, fake, sidecar) = quiet_sidecar();

    let (status, head, page) = sidecar.http("GET", "/", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/html; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\ncache-control: no-store\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\ncontent-security-policy: {CSP}\r\n")),
        "{head}"
    );
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains(r#"<meta http-equiv="refresh" content="10">"#),
        "{page}"
    );

    // One row per job, in its state.
    let beta = row(&page, "acme/beta");
    assert!(beta.contains(r#"data-state="in-sync""#), "{beta}");
    assert!(beta.contains(">in sync<"), "{beta}");
    assert!(beta.contains("jobs.d/beta.yaml"), "{beta}");
    for run in next_daily(2, 30) {
        assert!(beta.contains(&format!("<li>{run}</li>")), "{run} in {beta}");
    }
    assert!(beta.contains("spec <code>"), "a fingerprint: {beta}");
    let alpha = row(&page, "acme/alpha-rejected");
    assert!(alpha.contains(r#"data-state="rejected""#), "{alpha}");
    assert!(alpha.contains("HTTP 400"), "{alpha}");
    assert!(alpha.contains("never"), "never applied: {alpha}");
    let invalid = rows_in(&page, "invalid");
    assert_eq!(invalid.len(), 1, "{page}");
    assert_eq!(rows_in(&page, "in-sync").len(), 1, "{page}");
    assert_eq!(rows_in(&page, "rejected").len(), 1, "{page}");
    assert_eq!(page.matches("<tr data-").count(), 3, "{page}");

    // Markup in a file name or a job name shows as text.
    assert!(
        invalid[0].contains("jobs.d/&lt;img src=x onerror=alert(1)&gt;.yaml"),
        "{}",
        invalid[0]
    );
    let lower = page.to_ascii_lowercase();
    for raw in ["<script", "<img", "onerror=alert(1)>"] {
        assert!(!lower.contains(raw), "{raw} unescaped in:\n{page}");
    }
    if page.contains("alert(&#39;pwned&#39;)") || page.contains("alert('pwned')") {
        assert!(page.contains("&lt;script&gt;alert("), "{page}");
    }

    // The source, the last run and the budget.
    assert!(by_id(&page, "source").contains("jobs.d"), "{page}");
    let counts = by_id(&page, "run-counts");
    for want in ["1 created", "1 invalid", "1 rejected", "0 failed"] {
        assert!(counts.contains(want), "{want} in {counts}");
    }
    let budget = by_id(&page, "budget-left");
    assert!(budget.contains(" of 1000"), "{budget}");

    // No secret: not the value from the environment, not the token.
    for secret in [DB_PASSWORD, TOKEN] {
        assert!(!page.contains(secret), "{secret} on the page");
    }

    // Drawing the page costs the API nothing, however often.
    let sent = fake.requests().len();
    assert!(sent >= 3, "the run itself talked to the fake: {sent}");
    for _ in 0..20 {
        get_page(&sidecar);
    }
    let (status, head, body) = sidecar.http("HEAD", "/", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD has no body: {body}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("a content-length: {head}"));
    assert!(length > 1000, "{head}");
    assert!(head.contains(CSP), "{head}");
    assert_eq!(fake.requests().len(), sent, "{:#?}", fake.requests());

    // Other methods are refused with what is allowed; queries are ignored.
    for method in ["POST", "PUT", "DELETE"] {
        let (status, head, _) = sidecar.http(method, "/", &[], b"");
        assert_eq!(status, 405, "{method}: {head}");
        assert!(head.contains("\r\nallow: get, head"), "{head}");
    }
    assert_eq!(sidecar.http("GET", "/?refresh=1", &[], b"").0, 200);
    assert_eq!(sidecar.http("GET", "/index.html", &[], b"").0, 404);
}

#[test]
fn the_status_page_shows_drift_failures_and_the_git_revision() {
    let (_origin, _repo, rev, url) = common::git_origin_with(
        &[
            (
                "jobs/alpha.yaml",
                &plain_manifest("Alpha Drift", "0 1 * * *"),
            ),
            (
                "jobs/omega.yaml",
                &plain_manifest("Omega Failing", "0 4 * * *"),
            ),
        ],
        "two jobs",
    );
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    // A 1 s sweep's slice may read limit x 20% / 3600 / 10: five reads, one
    // more than omega's adoption list and alpha's read take each run.
    fake.set_rate_limit(1_000_000, 1_000_000, Duration::from_secs(3600));
    // Alpha's PUT goes first and lands; every PUT after it fails with 503.
    fake.inject(FaultRule {
        method: Some(hyper::Method::PUT),
        fault: Fault::Status {
            status: 503,
            retry_after: None,
        },
        times: 1_000_000,
        after: 1,
    });
    let mut sidecar = start_sidecar(
        ws.path(),
        &fake,
        &[
            "--git",
            &url,
            "--git-path",
            "jobs",
            "--resync",
            "1h",
            "--drift-interval",
            "1s",
            "--concurrency",
            "1",
            "--retry-max-time",
            "0s",
        ],
    );
    let run = sidecar.next("reconciled");
    assert_eq!(run["create"], 2, "{run}");
    fake.edit_job("acme", "alpha-drift", |b| {
        b["schedule"] = serde_json::json!("0 9 * * *")
    });
    let drift = sidecar.next("drift");
    assert_eq!(drift["id"], "alpha-drift", "{drift}");
    // The board is updated before the run's summary line.
    sidecar.next("reconciled");

    let page = get_page(&sidecar);
    let alpha = row(&page, "acme/alpha-drift");
    assert!(alpha.contains(r#"data-state="drifted""#), "{alpha}");
    assert!(alpha.contains("changed live: schedule"), "{alpha}");
    assert!(alpha.contains(&rev[..12]), "applied from {rev}: {alpha}");
    assert!(alpha.contains("jobs/alpha.yaml"), "{alpha}");
    let omega = row(&page, "acme/omega-failing");
    assert!(omega.contains(r#"data-state="failed""#), "{omega}");
    assert!(omega.contains("503"), "{omega}");
    assert!(omega.contains("never"), "{omega}");
    assert!(by_id(&page, "revision").contains(&rev), "{page}");
    assert!(by_id(&page, "source").contains("Git"), "{page}");
    assert!(!page.contains(TOKEN), "the token on the page");
    // A drifted job stays drifted through runs that read nothing.
    sidecar.next("reconciled");
    let page = get_page(&sidecar);
    assert!(
        row(&page, "acme/alpha-drift").contains(r#"data-state="drifted""#),
        "{page}"
    );
}

/// Runs Chromium on `url` with `args`; its stdout. `None` (skipped) when
/// Chromium is not installed, outside CI.
fn chromium(profile: &Path, args: &[String]) -> Option<String> {
    const CHROMIUM: &str = "/usr/bin/chromium";
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{CHROMIUM} is not installed but CI=true: .ci/run installs Debian's `chromium`"
        );
        eprintln!(
            "SKIPPED: {CHROMIUM} is not installed (apt-get install --no-install-recommends chromium)"
        );
        return None;
    }
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let limit = Duration::from_secs(90);
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let out = out.expect("chromium ran");
            assert!(
                out.status.success(),
                "chromium {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(_) => {
            // SAFETY: signalling the child this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("chromium {args:?} did not finish within {limit:?}");
        }
    }
}

#[test]
fn headless_chromium_renders_the_rows_and_states_and_takes_a_screenshot() {
    let (_ws, fake, sidecar) = quiet_sidecar();
    let sent = fake.requests().len();
    // Kept after the test (under cargo's target/tmp) so that a person can
    // look at the screenshot.
    let out: PathBuf = tempfile::Builder::new()
        .prefix("status-page-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
        .keep();
    let url = format!("http://{}/", sidecar.addr());
    let Some(dom) = chromium(
        &out.join("profile-dom"),
        &["--dump-dom".to_string(), url.clone()],
    ) else {
        return;
    };
    // What the browser built: the table, each job's row and state, the
    // hostile names as text and no element made from them.
    assert!(dom.contains(r#"<table id="jobs">"#), "{dom}");
    assert!(row(&dom, "acme/beta").contains(">in sync<"), "{dom}");
    assert!(
        row(&dom, "acme/alpha-rejected").contains(">rejected<"),
        "{dom}"
    );
    let invalid = rows_in(&dom, "invalid");
    assert_eq!(invalid.len(), 1, "{dom}");
    assert!(invalid[0].contains(">invalid<"), "{dom}");
    assert!(
        invalid[0].contains("&lt;img src=x onerror=alert(1)&gt;.yaml"),
        "{dom}"
    );
    let lower = dom.to_ascii_lowercase();
    assert!(
        !lower.contains("<script") && !lower.contains("<img"),
        "{dom}"
    );
    assert!(!dom.contains(DB_PASSWORD), "the secret in the DOM");

    let shot = out.join("status.png");
    chromium(
        &out.join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_string(),
            "--hide-scrollbars".to_string(),
            url,
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("width"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("height"));
    assert_eq!((width, height), (1280, 900));
    // A blank page compresses to a few hundred bytes; text and colour to
    // tens of kilobytes.
    assert!(png.len() > 20_000, "{} bytes only", png.len());
    println!("status page screenshot: {}", shot.display());
    eprintln!("status page screenshot: {}", shot.display());
    // The browser's loads were served from the board: no API request.
    assert_eq!(fake.requests().len(), sent);
}
