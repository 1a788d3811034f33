//! Secrets stay out of every output: an API token the server quotes back,
//! a password in the API's URL, spec secrets on lines the YAML parser
//! refuses or aliased out of their field. Each is looked for in stdout,
//! stderr, logs, the state and the sidecar's pages.

use crate::common;
use crate::fake;
use crate::support::sidecar;

use common::{manifest, Run, Workspace};
use fake::{Fake, Fault, FaultRule, TOKEN};

use crate::support::sidecar::WAIT;

const JOB: &str = "kind: CronJob\nproject: acme\nspec:\n  name: Nightly\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n";

/// `nfcron ARGS` within [`WAIT`]: a hang fails the test.
fn bounded(ws: &Workspace, args: &[&str]) -> Run {
    ws.nfcron_within(args, &[], WAIT).0
}

fn echo_token(fake: &Fake, status: u16) {
    fake.clear_faults();
    fake.inject(FaultRule {
        method: Some(hyper::Method::PUT),
        fault: Fault::EchoToken { status },
        times: 1000,
        after: 0,
    });
}

fn assert_no_token(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "the token is in {what}:\n{text}");
}

#[test]
fn an_api_token_quoted_back_in_an_error_is_hidden_in_every_output_log_and_state() {
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    for status in [401, 422] {
        echo_token(&fake, status);
        for output in ["text", "json", "markdown", "github"] {
            let run: Run = ws.nfcron_env(
                &[
                    "--log-level",
                    "trace",
                    "reconcile",
                    "--retry-rejected",
                    "--output",
                    output,
                ],
                &env,
            );
            assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
            assert!(
                run.stdout.contains("is not valid") || run.stderr.contains("is not valid"),
                "the message is shown, the token hidden: {}{}",
                run.stdout,
                run.stderr
            );
            assert_no_token(&format!("{status} {output} stdout"), &run.stdout);
            assert_no_token(&format!("{status} {output} stderr"), &run.stderr);
        }
        let state =
            std::fs::read_to_string(ws.path().join(".nfcron/state.json")).unwrap_or_default();
        assert_no_token("the state file", &state);
    }
    let state = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    assert!(
        state.contains("is not valid"),
        "the 422 is recorded: {state}"
    );

    // The sidecar, refused afresh: its log, status page and metrics.
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let mut sidecar = sidecar::Sidecar::start(ws.path(), &fake.url, TOKEN, &["jobs.d"]);
    sidecar.next("reconciled");
    for path in ["/", "/metrics", "/readyz"] {
        let (_, body) = sidecar.get(path);
        assert_no_token(path, &body);
    }
    let log = serde_json::to_string(sidecar.drain()).expect("json");
    assert_no_token("the sidecar's log", &log);
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
            runs.push(bounded(&ws, &["validate", "--output", output]));
            runs.push(bounded(
                &ws,
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
fn a_secret_entry_indented_out_of_its_field_is_masked() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        format!("kind: CronJob\nproject: acme\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  runtimeEnvironment:\n  DB_PASSWORD: {SECRET}\n  concurencyPolicy: forbid\n"),
    );
    let run = bounded(&ws, &["validate"]);
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

#[test]
fn env_values_never_show_in_help() {
    let ws = Workspace::new();
    let env = [
        (
            "NORTHFLANK_API_URL",
            "https://admin:hunter2-pw@api.example.com",
        ),
        ("NORTHFLANK_API_TOKEN", "nf-secret-token-value"),
        ("NFCRON_PROJECT", "project-from-env-value"),
        ("NFCRON_STATE", "/state-from-env-value"),
    ];
    for command in ["reconcile", "watch", "import", "validate"] {
        let run = ws.nfcron_env(&[command, "--help"], &env);
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        for (name, value) in env {
            assert!(!run.stdout.contains(value), "{command} --help shows {name}");
        }
        assert!(
            run.stdout.contains("[env: NFCRON_PROJECT]"),
            "{command}: the variable is still named: {}",
            run.stdout
        );
    }
}
