//! Hostile manifests and directory entries through the real binary (issue
//! 10): names that are not UTF-8, FIFOs, sockets and devices named like
//! manifests, names with control characters, secrets on lines the YAML
//! parser refuses, job ids from names with tabs, and nested defaults in
//! `${...}` references.

use crate::common;
use crate::fake;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{Run, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

use crate::support::sidecar::{Sidecar, WAIT};

fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")
}

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

/// Runs `nfcron` with a deadline: a hang fails the test instead of
/// blocking it.
fn nfcron_bounded(dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(dir)
        .args(args)
        .env_remove("NORTHFLANK_API_TOKEN")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nfcron");
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        let _ = tx.send((out, err));
    });
    let Ok((stdout, stderr)) = rx.recv_timeout(WAIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("nfcron {args:?} did not finish within {WAIT:?} (blocked on a FIFO?)");
    };
    let status = child.wait().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// `(file, code, message)` of every diagnostic of `validate --output json`.
fn diagnostics(run: &Run) -> Vec<(String, String, String)> {
    run.json()["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().expect("file").to_string(),
                d["code"].as_str().expect("code").to_string(),
                d["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

#[test]
fn prune_sends_no_delete_when_a_directory_of_applied_jobs_gets_a_latin1_name() {
    let ws = Workspace::new();
    for n in ["A", "B", "C"] {
        ws.write(
            &format!("jobs.d/team/{n}.yaml"),
            manifest(&format!("Job {n}"), "0 3 * * *"),
        );
    }
    ws.write("jobs.d/other.yaml", manifest("Job D", "0 4 * * *"));
    let fake = Fake::spawn(0);
    assert_eq!(reconcile(&ws, &fake, &[]).code, 0);
    assert_eq!(fake.job_ids("acme").len(), 4);

    // `café` in Latin-1: not UTF-8.
    let latin1 = ws.path().join("jobs.d").join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::rename(ws.path().join("jobs.d/team"), &latin1).expect("rename");
    fake.clear_log();
    let run = reconcile(&ws, &fake, &["--prune", "--output", "json"]);
    assert_eq!(fake.count("DELETE"), 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fake.job_ids("acme").len(), 4);
    assert_eq!(run.code, 1, "an unreadable entry is an error");
    assert!(
        run.stderr.contains("jobs.d/caf\\xe9") && run.stderr.contains("not valid UTF-8"),
        "the entry is named, escaped: {}",
        run.stderr
    );

    let run = nfcron_bounded(ws.path(), &["validate", "--output", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        diagnostics(&run),
        [(
            "jobs.d/caf\\xe9".to_string(),
            "io".to_string(),
            "cannot read: the directory name is not valid UTF-8, so the manifests in it are not read; rename it".to_string()
        )]
    );
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
    let run = nfcron_bounded(ws.path(), &["validate", "--output", "json"]);
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

    let run = nfcron_bounded(ws.path(), &["validate", "--output", "json"]);
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
    let run = nfcron_bounded(ws.path(), &["validate", "jobs.d/pipe.yaml"]);
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
    let run = nfcron_bounded(ws.path(), &["reconcile", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("jobs.d/pipe.yaml") && run.stderr.contains("FIFO"),
        "{}",
        run.stderr
    );
}

/// The next `reconciled` event for which `done` holds.
fn reconciled(watch: &mut Sidecar, done: impl Fn(&Value) -> bool) -> Value {
    watch.next_where("matching `reconciled` event", |v| {
        v["message"] == "reconciled" && done(v)
    })
}

#[test]
fn watch_keeps_applying_edits_with_a_fifo_in_its_directory() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 1 * * *"));
    let fake = Fake::spawn(0);
    let mut watch = Sidecar::start(ws.path(), &fake.url, TOKEN, &["--resync", "1h"]);
    reconciled(&mut watch, |_| true);
    assert_eq!(fake.job_ids("acme"), ["job-a"]);

    mkfifo(&ws.path().join("jobs.d/pipe.yaml"));
    ws.write("jobs.d/a.yaml", manifest("Job A", "0 2 * * *"));
    reconciled(&mut watch, |v| v["update"] == 1);
    assert_eq!(
        fake.job(None, "acme", "job-a").expect("job")["schedule"],
        "0 2 * * *"
    );
    ws.write("jobs.d/b.yaml", manifest("Job B", "0 3 * * *"));
    reconciled(&mut watch, |v| v["create"] == 1);
    assert_eq!(fake.job_ids("acme"), ["job-a", "job-b"]);
    let code = watch.terminate().code;
    assert!(
        code == 0 || code == 1,
        "SIGTERM ends the watch: exit {code}"
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
        let run = nfcron_bounded(ws.path(), &["validate", "--output", output]);
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
    let run = nfcron_bounded(ws.path(), &["reconcile", "--dry-run"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains('\u{1b}') && !all.contains("\nerror[io]: forged"),
        "{all}"
    );
    assert!(all.contains(shown), "{all}");
}

const SECRET: &str = "hunter2-new";

/// Manifests whose broken line is a secret's: every report must mask it.
fn secret_cases() -> Vec<(&'static str, String)> {
    let head = "kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n";
    vec![
        (
            "duplicate key",
            format!("{head}  runtimeEnvironment:\n    DB_PASSWORD: \"old\"\n    DB_PASSWORD: \"{SECRET}\"\n"),
        ),
        (
            "unterminated quote",
            format!("{head}  buildArguments:\n    DB_PASSWORD: \"{SECRET}\n"),
        ),
        (
            "tab",
            format!("{head}  runtimeEnvironment:\n\tDB_PASSWORD: \"{SECRET}\"\n"),
        ),
        (
            "flow mapping",
            format!("{head}  runtimeFiles: {{\"/etc/pw\": {{data: {SECRET}, encoding: utf-8}},\n    \"/etc/pw\": {{data: {SECRET}}}}}\n"),
        ),
        (
            "block scalar",
            format!("{head}  buildFiles:\n    /k:\n      data: |\n        {SECRET}\n      data: again\n"),
        ),
        (
            "unknown field spelt like a secret field",
            format!("{head}  runtimeEnviroment:\n    DB_PASSWORD: {SECRET}\n"),
        ),
        (
            "anchor aliased into a secret field",
            format!("x-env: &env {{DB_PASSWORD: {SECRET}}}\n{head}  runtimeEnvironment: *env\n"),
        ),
        (
            "wrong type",
            format!("{head}  runtimeEnvironment:\n    DB_PASSWORD: [{SECRET}]\n"),
        ),
        (
            "one-line flow spec",
            format!("kind: CronJob\nproject: acme\nspec: {{name: Job A, schedule: \"0 3 * * *\", runtimeEnvironment: {{DB: {SECRET}}}, bad: [}}\n"),
        ),
    ]
}

#[test]
fn secrets_on_lines_yaml_refuses_are_masked_in_every_report() {
    for (case, text) in secret_cases() {
        let ws = Workspace::new();
        ws.write("jobs.d/a.yaml", &text);
        let mut runs = Vec::new();
        for output in ["text", "json"] {
            runs.push(nfcron_bounded(ws.path(), &["validate", "--output", output]));
            runs.push(nfcron_bounded(
                ws.path(),
                &["reconcile", "--dry-run", "--output", output],
            ));
        }
        for run in &runs {
            assert_eq!(
                run.code, 1,
                "{case}: the manifest is invalid\n{}",
                run.stdout
            );
            assert!(
                !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
                "{case}: the secret leaked:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
        // The text report still shows where: the line, masked.
        assert!(
            runs[0].stdout.contains(" | ") && runs[0].stdout.contains("(sensitive)")
                || case == "unknown field spelt like a secret field",
            "{case}: {}",
            runs[0].stdout
        );
    }
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
fn a_git_tree_entry_whose_name_is_not_utf8_is_an_io_diagnostic() {
    let ws = Workspace::new();
    let repo = common::git_init(ws.path());
    common::git_commit(
        &repo,
        &[
            ("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *"))),
            ("jobs.d/team/b.yaml", Some(&manifest("Job B", "0 2 * * *"))),
        ],
        "two jobs",
    );
    let jobs = ws.path().join("jobs.d");
    std::fs::rename(jobs.join("team"), jobs.join(OsStr::from_bytes(b"caf\xe9"))).expect("rename");
    std::fs::rename(
        jobs.join("a.yaml"),
        jobs.join(OsStr::from_bytes(b"\xe9t\xe9.yaml")),
    )
    .expect("rename");
    common::git_commit(&repo, &[], "Latin-1 names");

    let run = ws.nfcron(&[
        "reconcile",
        "--dry-run",
        "--base",
        "HEAD~1",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for name in ["jobs.d/caf\\xe9", "jobs.d/\\xe9t\\xe9.yaml"] {
        assert!(
            run.stderr
                .contains(&format!("error[io] {name}:1:1: cannot read: the")),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
}

#[test]
fn a_secret_entry_indented_out_of_its_field_is_masked() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        format!("kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n  DB_PASSWORD: {SECRET}\n  concurencyPolicy: forbid\n"),
    );
    let run = nfcron_bounded(ws.path(), &["validate"]);
    assert_eq!(run.code, 1);
    assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
    assert!(
        run.stdout.contains("  DB_PASSWORD: (sensitive)"),
        "{}",
        run.stdout
    );
    // A misspelt field is shown: its value helps and is no secret.
    assert!(
        run.stdout.contains("  concurencyPolicy: forbid"),
        "{}",
        run.stdout
    );
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
        let run = nfcron_bounded(ws.path(), args);
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

/// An anchor in a secret field aliased into a shown one would print the
/// secret in the plan as that field's value: refused, and never shown.
#[test]
fn an_alias_out_of_a_secret_field_is_refused_and_never_shown() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        format!(
            "{}  runtimeEnvironment:\n    DB_PASSWORD: &a \"hunter2-alias\"\n  description: *a\n",
            manifest("Job A", "0 3 * * *")
        ),
    );
    for args in [
        &["validate", "--output", "json"][..],
        &["validate"][..],
        &["reconcile", "--dry-run"][..],
        &["reconcile", "--dry-run", "--output", "json"][..],
    ] {
        let run = ws.nfcron(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("hunter2-alias"), "{args:?}: {text}");
        }
        assert!(
            run.stdout.contains("out of a secret field")
                || run.stderr.contains("out of a secret field"),
            "{args:?}: {} {}",
            run.stdout,
            run.stderr
        );
    }
}
