//! The sidecar's own error type (issue 13, item 8): a sidecar that cannot
//! start says so in its own words, as one JSON line under
//! `--log-format json`, and exits 1.

use crate::common;

use common::Workspace;

#[test]
fn watch_without_a_token_names_watch_not_dry_run() {
    let ws = Workspace::new();
    ws.write("jobs/.keep", "");
    let run = ws.nfcron(&["--log-format", "json", "watch", "jobs"]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let line: serde_json::Value = serde_json::from_str(run.stderr.trim())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {}", run.stderr));
    assert_eq!(line["level"], "ERROR");
    let message = line["message"].as_str().expect("message");
    assert!(
        message.starts_with("watch needs an API token"),
        "message: {message}"
    );
    // `watch` has no --dry-run: the one-shot command's advice is not given.
    assert!(!message.contains("--dry-run"), "message: {message}");
}

#[test]
fn watch_on_a_taken_port_fails_with_the_address_and_its_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let ws = Workspace::new();
    ws.write("jobs/.keep", "");
    let run = ws.nfcron_env(
        &["--log-format", "json", "watch", "jobs", "--listen", &addr],
        &[
            ("NORTHFLANK_API_TOKEN", "t0ken"),
            ("NORTHFLANK_API_URL", "http://127.0.0.1:9"),
        ],
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let line: serde_json::Value = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line: {}", run.stderr));
    assert_eq!(line["message"], format!("cannot listen on {addr}"));
    assert!(
        !line["causes"].as_array().expect("causes").is_empty(),
        "the OS error is kept as the cause: {line}"
    );
    assert!(
        !run.stderr.contains("t0ken"),
        "the token leaked: {}",
        run.stderr
    );
}
