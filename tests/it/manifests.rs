//! What the loader makes of the files it finds, through the real binary:
//! YAML bombs, deep nesting, huge files and symlink loops, names that are
//! not UTF-8 or hold control characters, FIFOs, sockets and devices named
//! like manifests, job ids from names with tabs or newlines, and nested
//! defaults in `${...}` references. Each gets a clear, located error (or
//! the id the API gives), and the valid manifests beside it still validate.

use crate::common;
use crate::fake;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::{diagnostics, manifest, mkfifo, Run, Workspace};
use fake::{Fake, TOKEN};

use crate::support::sidecar::WAIT;

fn reconcile(ws: &Workspace, fake: &Fake, args: &[&str]) -> Run {
    let mut full = vec!["reconcile"];
    full.extend_from_slice(args);
    ws.nfcron_env(
        &full,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

/// `nfcron ARGS` within [`WAIT`]: a read that blocks fails the test.
fn bounded(ws: &Workspace, args: &[&str]) -> Run {
    ws.nfcron_within(args, &[], WAIT).0
}

/// `validate --output json` on a directory of one valid manifest and
/// hostile ones: the valid one still validates; the diagnostics.
fn validate(ws: &Workspace) -> Vec<(String, String, String)> {
    let run = bounded(ws, &["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = run.json();
    assert_eq!(
        report["valid"], 1,
        "the valid manifest is still valid: {report:#}"
    );
    diagnostics(&run)
}

fn one(ws: &Workspace) -> (String, String, String) {
    let mut found = validate(ws);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn a_manifest_whose_name_is_not_utf8_is_an_io_diagnostic() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Job A", "0 3 * * *"));
    let bad = ws
        .path()
        .join("jobs.d")
        .join(OsStr::from_bytes(b"\xff-job.yaml"));
    std::fs::write(&bad, manifest("Job B", "0 3 * * *")).expect("write");
    // Not named like a manifest: not read, as for any other file.
    std::fs::write(
        ws.path()
            .join("jobs.d")
            .join(OsStr::from_bytes(b"notes\xff.txt")),
        "x",
    )
    .expect("write");
    let run = bounded(&ws, &["validate", "--output", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["valid"], 1);
    assert_eq!(
        diagnostics(&run),
        [(
            "jobs.d/\\xff-job.yaml".to_string(),
            "io".to_string(),
            "cannot read: the file name is not valid UTF-8; rename it".to_string()
        )]
    );
}

#[test]
fn validate_does_not_block_on_a_fifo_socket_or_device_named_like_a_manifest() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Job A", "0 3 * * *"));
    mkfifo(&ws.path().join("jobs.d/pipe.yaml"));
    let _socket = std::os::unix::net::UnixListener::bind(ws.path().join("jobs.d/sock.yaml"))
        .expect("bind a socket");
    std::os::unix::fs::symlink("/dev/zero", ws.path().join("jobs.d/zero.yaml")).expect("symlink");
    // A FIFO not named like a manifest is not a manifest.
    mkfifo(&ws.path().join("jobs.d/pipe.txt"));

    let run = bounded(&ws, &["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["valid"], 1);
    let found: Vec<(String, String, String)> = diagnostics(&run);
    let expect = |file: &str, what: &str| {
        (
            format!("jobs.d/{file}"),
            "io".to_string(),
            format!("cannot read: not a regular file but {what}"),
        )
    };
    assert_eq!(
        found,
        [
            expect("pipe.yaml", "a FIFO"),
            expect("sock.yaml", "a socket"),
            expect("zero.yaml", "a character device"),
        ]
    );

    // The FIFO given as the path itself.
    let run = bounded(&ws, &["validate", "jobs.d/pipe.yaml"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("not a regular file but a FIFO"),
        "{}",
        run.stdout
    );
}

#[test]
fn reconcile_does_not_block_on_a_fifo_named_like_a_manifest() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Job A", "0 3 * * *"));
    mkfifo(&ws.path().join("jobs.d/pipe.yaml"));
    let run = bounded(&ws, &["reconcile", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("jobs.d/pipe.yaml") && run.stderr.contains("FIFO"),
        "{}",
        run.stderr
    );
}

#[test]
fn file_names_with_control_characters_are_printed_escaped() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/evil\nerror[io]: forged\u{1b}[2J.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  nmae: x\n",
    );
    let shown = "jobs.d/evil\\nerror[io]: forged\\u{1b}[2J.yaml";
    for output in ["text", "json"] {
        let run = bounded(&ws, &["validate", "--output", output]);
        assert_eq!(run.code, 1);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains('\u{1b}'), "{all}");
        assert!(!all.contains("\nerror[io]: forged"), "{all}");
        if output == "json" {
            assert_eq!(run.json()["diagnostics"][0]["file"], shown);
        } else {
            assert!(all.contains(&format!("--> {shown}:3:1")), "{all}");
        }
    }
    let run = bounded(&ws, &["reconcile", "--dry-run"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains('\u{1b}') && !all.contains("\nerror[io]: forged"),
        "{all}"
    );
    assert!(all.contains(shown), "{all}");
}

#[test]
fn a_tab_in_a_name_gives_the_id_the_api_gives() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        manifest("\"Nightly\\tReport\"", "0 3 * * *"),
    );
    ws.write("jobs.d/b.yaml", manifest("Daily Report", "0 4 * * *"));
    let fake = Fake::spawn(0);
    let run = reconcile(&ws, &fake, &["--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fake.job_ids("acme"), ["daily-report", "nightly\treport"]);
    let report = run.json();
    let ids: Vec<&str> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(&"nightly\treport"), "{ids:?}");

    // The next run finds both in step, and a prune deletes neither.
    fake.clear_log();
    let run = reconcile(&ws, &fake, &["--prune", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["unchanged"], 2, "{}", run.stdout);
    assert_eq!(fake.requests(), vec![]);
    assert_eq!(fake.job_ids("acme"), ["daily-report", "nightly\treport"]);

    // Its id travels percent-encoded: a drift read finds it, and a prune
    // deletes exactly it, never `nightlyreport` (the path with the tab
    // stripped, as a URL parser does with a raw one).
    ws.write("jobs.d/c.yaml", manifest("Nightlyreport", "0 5 * * *"));
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    let run = reconcile(&ws, &fake, &["--refresh", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["drift"], 0, "{}", run.stdout);
    std::fs::remove_file(ws.path().join("jobs.d/a.yaml")).expect("remove");
    let run = reconcile(&ws, &fake, &["--prune"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fake.job_ids("acme"), ["daily-report", "nightlyreport"]);
}

#[test]
fn nested_defaults_and_escaped_dollars_are_resolved() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: \"nginx:${NFCRON_TEST_TAG:-${NFCRON_TEST_FALLBACK}}\"\n  runtimeEnvironment:\n    PRICE: \"${NFCRON_TEST_UNSET:-x$$y}\"\n",
    );
    let fake = Fake::spawn(0);
    let run = ws.nfcron_env(
        &["reconcile"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            ("NFCRON_TEST_FALLBACK", "1.27"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let job = fake.job(None, "acme", "job-a").expect("job");
    assert_eq!(job["deployment"]["external"]["imagePath"], "nginx:1.27");
    assert_eq!(job["runtimeEnvironment"]["PRICE"], "x$y");
}

#[test]
fn control_characters_in_keys_and_lines_are_printed_escaped() {
    let ws = Workspace::new();
    // A key spelt with a YAML escape, and a raw ESC on a line of its own.
    ws.write(
        "jobs.d/a.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  \"x\\e[2J\\nerror: forged\": 1\n",
    );
    ws.write(
        "jobs.d/b.yaml",
        "kind: CronJob\n# \u{1b}[2J\nspec: \u{1b}]0;title\u{7}\n",
    );
    for args in [&["validate"][..], &["reconcile", "--dry-run"][..]] {
        let run = bounded(&ws, args);
        assert_eq!(run.code, 1);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all}");
        assert!(!all.contains("\nerror: forged"), "{all}");
        assert!(all.contains("x\\u{1b}[2J\\nerror: forged"), "{all}");
    }
}

/// The name pattern's `\s` lets a newline or a carriage return into a name
/// and so into the id: printed raw it would forge a plan or log line.
#[test]
fn a_newline_in_a_job_name_cannot_forge_a_plan_or_log_line() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        manifest("\"Line\\nApplied\\rFake\"", "0 3 * * *"),
    );
    for output in ["text", "markdown"] {
        let run = ws.nfcron(&[
            "reconcile",
            "--dry-run",
            "--output",
            output,
            "--log-level",
            "debug",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("line\\napplied\\rfake"),
            "{}",
            run.stdout
        );
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains('\r'), "{text}");
            assert!(
                !text.lines().any(|l| l.starts_with("applied")),
                "a forged line: {text}"
            );
        }
    }
}

#[test]
fn billion_laughs() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Fine Job", "0 3 * * *"));
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    ws.write("jobs.d/bomb.yaml", bomb);
    let (file, code, message) = one(&ws);
    assert_eq!((file.as_str(), code.as_str()), ("jobs.d/bomb.yaml", "yaml"));
    assert!(message.contains("alias bomb"), "{message}");
}

#[test]
fn deeply_nested_document() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Fine Job", "0 3 * * *"));
    ws.write(
        "jobs.d/deep.yaml",
        format!("spec: {}{}\n", "[".repeat(50_000), "]".repeat(50_000)),
    );
    let (file, code, message) = one(&ws);
    assert_eq!((file.as_str(), code.as_str()), ("jobs.d/deep.yaml", "yaml"));
    assert!(
        message.contains("nesting") || message.contains("recursion"),
        "{message}"
    );
}

#[test]
fn ten_megabyte_file() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Fine Job", "0 3 * * *"));
    ws.write(
        "jobs.d/huge.yaml",
        format!("# {}\n", "x".repeat(10 * 1024 * 1024)),
    );
    let (file, code, message) = one(&ws);
    assert_eq!(
        (file.as_str(), code.as_str()),
        ("jobs.d/huge.yaml", "file-too-large")
    );
    assert!(message.contains("1 MiB"), "{message}");
}

#[test]
fn symlink_loop() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", manifest("Fine Job", "0 3 * * *"));
    std::os::unix::fs::symlink("../jobs.d", ws.path().join("jobs.d/again")).expect("symlink");
    std::os::unix::fs::symlink("self.yaml", ws.path().join("jobs.d/self.yaml")).expect("symlink");
    let found = validate(&ws);
    let codes: Vec<(&str, &str)> = found
        .iter()
        .map(|(f, c, _)| (f.as_str(), c.as_str()))
        .collect();
    assert_eq!(codes, [("jobs.d/again", "io"), ("jobs.d/self.yaml", "io")]);
    assert!(
        found
            .iter()
            .all(|(_, _, m)| m.contains("symlink loop") || m.contains("loop")),
        "{found:#?}"
    );
}
