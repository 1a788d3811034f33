//! Blocking work off the runtime (issue 13, item 4), through the real
//! binary against the fake API: while the state file's fsync is held for
//! 2 s (`NFCRON_TEST_FSYNC_DELAY`, a test-only stand-in for a slow volume),
//! `/healthz` keeps answering.
//!
//! The sidecar runs with one runtime worker (`TOKIO_WORKER_THREADS=1`): a
//! fsync on a worker would then hold every request, so the test fails
//! unless the fsync runs on the blocking pool. A blocked runtime makes the
//! first probe of the hold wait for all of it (2 s); the limit is a quarter
//! of that, so a loaded machine's scheduling jitter (probes of 190-200 ms
//! were seen with five builds running) cannot fail the test, while a fsync
//! on the runtime always does. Waiting is on log events,
//! deadline-bounded, never on fixed sleeps.

use crate::common;
use crate::fake;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::Workspace;
use fake::{Fake, TOKEN};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
const HOLD: Duration = Duration::from_secs(2);
/// A quarter of the hold: see the module's comment.
const PROBE_LIMIT: Duration = Duration::from_millis(500);

const MANIFEST: &str = "kind: CronJob\nproject: acme\nspec:\n  name: nightly\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n";

struct Watch {
    child: Child,
    /// Stderr lines parsed as JSON (`--log-format json`).
    lines: Receiver<Value>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    /// The next event with this message, within [`WAIT`].
    fn next(&self, message: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{message}` within {WAIT:?}; saw {seen:#?}"));
            if line["message"] == message {
                return line;
            }
            seen.push(line);
        }
    }
}

/// One `GET /healthz`: its status and how long the answer took.
fn healthz(addr: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    (status, started.elapsed())
}

#[test]
fn healthz_answers_while_a_state_fsync_is_held_for_2s() {
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    ws.write("jobs/nightly.yaml", MANIFEST);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(ws.path())
        .args([
            "--log-format",
            "json",
            "watch",
            "jobs",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("NORTHFLANK_API_URL", &fake.url)
        .env("NORTHFLANK_API_TOKEN", TOKEN)
        .env("NFCRON_TEST_FSYNC_DELAY", "2s")
        .env("TOKIO_WORKER_THREADS", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nfcron watch");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for raw in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = serde_json::from_str::<Value>(&raw)
                .unwrap_or_else(|_| serde_json::json!({ "message": raw }));
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let watch = Watch { child, lines };
    let banner = watch.next("listening");
    let addr = banner["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .expect("the banner's url")
        .to_string();

    // The first run PUTs the job, then saves the state: the save's fsync
    // is held for HOLD. Probe /healthz until the job's line (written once
    // the save is done) arrives.
    watch.next("NFCRON_TEST_FSYNC_DELAY: holding the state fsync");
    let held = Instant::now();
    let mut probes = Vec::new();
    let deadline = held + WAIT;
    let applied = loop {
        assert!(
            Instant::now() < deadline,
            "the job was not recorded within {WAIT:?} of the held fsync"
        );
        probes.push(healthz(&addr));
        // Waits for the next log line at most 20 ms: paces the probes
        // without sleeping past the event.
        match watch.lines.recv_timeout(Duration::from_millis(20)) {
            Ok(line) if line["message"] == "job" || line["message"] == "reconciled" => break line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("nfcron watch exited"),
        }
    };
    let during = held.elapsed();
    let slowest = probes
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} /healthz probes during the {during:?} hold; slowest {slowest:?}",
        probes.len()
    );
    assert!(
        during >= HOLD - Duration::from_millis(200),
        "the fsync was not held: the job was recorded {during:?} after the hold began ({applied})"
    );
    for (i, (status, took)) in probes.iter().enumerate() {
        assert_eq!(
            *status,
            200,
            "probe {i} of {}: /healthz said {status}",
            probes.len()
        );
        assert!(
            *took <= PROBE_LIMIT,
            "probe {i} of {} took {took:?} (> {PROBE_LIMIT:?}) while the state fsync was held: blocking work on the runtime",
            probes.len()
        );
    }
    assert!(
        probes.len() >= 10,
        "only {} probes during the {during:?} hold",
        probes.len()
    );
    assert_eq!(fake.count("PUT"), 1, "one PUT for the one job");
}
