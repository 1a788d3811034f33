//! `nfcron validate`, run as a user runs it: each constraint kind of the
//! reference page, broken on purpose, must come back with the exact code,
//! field path, line and column.

use crate::common;

use common::Workspace;
use serde_json::Value;

/// A valid manifest; `extra` lines are appended inside `spec` from line 10.
fn job(extra: &str) -> String {
    format!(
        "kind: CronJob\nproject: acme\nspec:\n  name: Nightly Report\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 2\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n{extra}"
    )
}

/// `job("")` with one line replaced.
fn job_with(line: usize, replacement: &str) -> String {
    let text = job("");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = replacement;
    lines.join("\n") + "\n"
}

fn job_without(line: usize) -> String {
    let text = job("");
    let lines: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| i + 1 != line)
        .map(|(_, l)| l)
        .collect();
    lines.join("\n") + "\n"
}

struct Expect {
    code: &'static str,
    path: &'static str,
    line: u64,
    column: u64,
}

fn diagnostics(run: &common::Run) -> Vec<Value> {
    run.json()["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .clone()
}

/// Validates `manifest` alone and expects exactly one diagnostic.
fn assert_single(manifest: &str, expect: Expect) -> Value {
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", manifest);
    let run = ws.nfcron(&["validate", "--output", "json"]);
    let found = diagnostics(&run);
    assert_eq!(
        found.len(),
        1,
        "expected one diagnostic for:\n{manifest}\ngot: {found:#?}"
    );
    let d = &found[0];
    assert_eq!(d["code"], expect.code, "{d:#}");
    assert_eq!(d["path"], expect.path, "{d:#}");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(expect.line), Some(expect.column)),
        "{d:#}"
    );
    assert_eq!(d["file"], "jobs.d/job.yaml");
    let severity = d["severity"].as_str().expect("severity");
    assert_eq!(
        run.code,
        if severity == "error" { 1 } else { 0 },
        "{}",
        run.stderr
    );
    d.clone()
}

#[test]
fn the_base_manifest_is_valid() {
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", job(""));
    let run = ws.nfcron(&["validate", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(diagnostics(&run), Vec::<Value>::new());
}

#[test]
fn yaml_syntax() {
    let d = assert_single(
        &job("  tags: [a, b\n"),
        Expect {
            code: "yaml",
            path: "",
            line: 11,
            column: 1,
        },
    );
    assert!(
        d["message"]
            .as_str()
            .expect("message")
            .starts_with("invalid YAML"),
        "{d}"
    );
}

#[test]
fn kind_missing_and_wrong() {
    assert_single(
        &job_without(1),
        Expect {
            code: "kind",
            path: "kind",
            line: 1,
            column: 1,
        },
    );
    assert_single(
        &job_with(1, "kind: Job"),
        Expect {
            code: "kind",
            path: "kind",
            line: 1,
            column: 7,
        },
    );
}

#[test]
fn api_version() {
    let manifest = format!("apiVersion: nfcron/v2\n{}", job(""));
    assert_single(
        &manifest,
        Expect {
            code: "api-version",
            path: "apiVersion",
            line: 1,
            column: 13,
        },
    );
}

#[test]
fn project_missing_unless_given_by_flag_or_env() {
    let manifest = job_without(2);
    assert_single(
        &manifest,
        Expect {
            code: "project",
            path: "project",
            line: 1,
            column: 1,
        },
    );
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", &manifest);
    assert_eq!(ws.nfcron(&["validate", "--project", "acme"]).code, 0);
    assert_eq!(
        ws.nfcron_env(&["validate"], &[("NFCRON_PROJECT", "acme")])
            .code,
        0
    );
}

#[test]
fn required_field_points_at_its_parent_key() {
    let d = assert_single(
        &job_without(8),
        Expect {
            code: "required",
            path: "spec.schedule",
            line: 3,
            column: 1,
        },
    );
    assert_eq!(d["message"], "missing required field `schedule`");
    assert_single(
        &job_with(6, "    buildPlan: nf-compute-200"),
        Expect {
            code: "required",
            path: "spec.billing.deploymentPlan",
            line: 5,
            column: 3,
        },
    );
}

#[test]
fn type_mismatch() {
    let d = assert_single(
        &job_with(7, "  backoffLimit: \"2\""),
        Expect {
            code: "type",
            path: "spec.backoffLimit",
            line: 7,
            column: 17,
        },
    );
    assert!(
        d["message"]
            .as_str()
            .expect("message")
            .contains("expected an integer, found string"),
        "{d}"
    );
    assert_single(
        &job("  suspended: yes\n"),
        Expect {
            code: "type",
            path: "spec.suspended",
            line: 10,
            column: 14,
        },
    );
}

#[test]
fn string_pattern() {
    assert_single(
        &job_with(4, "  name: nightly_report"),
        Expect {
            code: "pattern",
            path: "spec.name",
            line: 4,
            column: 9,
        },
    );
    assert_single(
        &job("  tags: [ok, \"not ok\"]\n"),
        Expect {
            code: "pattern",
            path: "spec.tags[1]",
            line: 10,
            column: 14,
        },
    );
    assert_single(
        &job("  deployment:\n    external:\n      imagePath: nginx\n"),
        Expect {
            code: "pattern",
            path: "spec.deployment.external.imagePath",
            line: 12,
            column: 18,
        },
    );
}

#[test]
fn string_length() {
    let d = assert_single(
        &job_with(4, "  name: ab"),
        Expect {
            code: "length",
            path: "spec.name",
            line: 4,
            column: 9,
        },
    );
    assert_eq!(d["message"], "must be 3 to 52 characters long, not 2");
    let long = format!("  description: {}\n", "a".repeat(201));
    assert_single(
        &job(&long),
        Expect {
            code: "length",
            path: "spec.description",
            line: 10,
            column: 16,
        },
    );
}

#[test]
fn numeric_range() {
    assert_single(
        &job("  activeDeadlineSeconds: 0\n"),
        Expect {
            code: "range",
            path: "spec.activeDeadlineSeconds",
            line: 10,
            column: 26,
        },
    );
    assert_single(
        &job("  deployment:\n    gracePeriodSeconds: 5\n    external: {imagePath: \"nginx:1\"}\n"),
        Expect {
            code: "range",
            path: "spec.deployment.gracePeriodSeconds",
            line: 11,
            column: 25,
        },
    );
}

#[test]
fn enums_of_strings_and_numbers() {
    let d = assert_single(
        &job_with(9, "  concurrencyPolicy: Forbid"),
        Expect {
            code: "enum",
            path: "spec.concurrencyPolicy",
            line: 9,
            column: 22,
        },
    );
    assert!(
        d["message"]
            .as_str()
            .expect("message")
            .contains("did you mean `forbid`?"),
        "{d}"
    );
    assert_single(
        &job(
            "  deployment:\n    storage: {shmSize: 100}\n    external: {imagePath: \"nginx:1\"}\n",
        ),
        Expect {
            code: "enum",
            path: "spec.deployment.storage.shmSize",
            line: 11,
            column: 24,
        },
    );
}

#[test]
fn unknown_field_with_suggestion() {
    let d = assert_single(
        &job("  concurencyPolicy: forbid\n"),
        Expect {
            code: "unknown-field",
            path: "spec.concurencyPolicy",
            line: 10,
            column: 3,
        },
    );
    assert_eq!(
        d["message"],
        "unknown field `concurencyPolicy`; did you mean `concurrencyPolicy`?"
    );
    let envelope = format!("{}colour: red\n", job(""));
    assert_single(
        &envelope,
        Expect {
            code: "unknown-field",
            path: "colour",
            line: 10,
            column: 1,
        },
    );
    assert_single(
        &job_with(6, "    deploymentPlan: nf-compute-20\n    gpuu: {}"),
        Expect {
            code: "unknown-field",
            path: "spec.billing.gpuu",
            line: 7,
            column: 5,
        },
    );
    // A key given twice is ambiguous: the YAML reader refuses it.
    assert_single(
        &job("  backoffLimit: 3\n"),
        Expect {
            code: "yaml",
            path: "",
            line: 10,
            column: 3,
        },
    );
}

#[test]
fn one_of_names_the_closest_alternative() {
    let d = assert_single(
        &job("  deployment:\n    docker: {configType: default}\n"),
        Expect {
            code: "one-of",
            path: "spec.deployment",
            line: 11,
            column: 5,
        },
    );
    assert!(
        d["message"]
            .as_str()
            .expect("message")
            .contains("add one of `vcs`, `external`, `internal`"),
        "{d}"
    );
    let d = assert_single(
        &job("  buildSettings:\n    dockerfile: {dockerFilePath: /Dockerfile, dockerWorkDir: /}\n    buildpack: {}\n"),
        Expect { code: "one-of", path: "spec.buildSettings", line: 11, column: 5 },
    );
    assert!(
        d["message"].as_str().expect("message").contains(
            "closest is build from a Dockerfile (`dockerfile`), which does not allow `buildpack`"
        ),
        "{d}"
    );
    // An input that plainly means one alternative gets that alternative's
    // own, precise diagnostics instead.
    assert_single(
        &job("  deployment:\n    internal: {id: search-indexer, buildSHA: abc}\n"),
        Expect {
            code: "one-of",
            path: "spec.deployment.internal.buildSHA",
            line: 11,
            column: 46,
        },
    );
}

#[test]
fn conditional_requirements_from_the_descriptions() {
    let d = assert_single(
        &job("  deployment:\n    external: {imagePath: \"nginx:1\"}\n    docker: {configType: customCommand}\n"),
        Expect { code: "conditional", path: "spec.deployment.docker.customCommand", line: 12, column: 26 },
    );
    assert_eq!(
        d["message"],
        "`customCommand` is required when `configType` is `customCommand`"
    );
    let check = "  healthChecks:\n    - protocol: CMD\n      type: livenessProbe\n      initialDelaySeconds: 1\n      periodSeconds: 10\n      timeoutSeconds: 1\n      failureThreshold: 1\n";
    assert_single(
        &job(check),
        Expect {
            code: "conditional",
            path: "spec.healthChecks[0].cmd",
            line: 11,
            column: 17,
        },
    );
}

#[test]
fn cron_meaning_names_the_field() {
    let d = assert_single(
        &job_with(8, "  schedule: \"61 * * * *\""),
        Expect {
            code: "cron",
            path: "spec.schedule",
            line: 8,
            column: 13,
        },
    );
    assert_eq!(d["message"], "minute 61 is outside 0-59");
    let d = assert_single(
        &job_with(8, "  schedule: \"0 3 * * 8\""),
        Expect {
            code: "cron",
            path: "spec.schedule",
            line: 8,
            column: 13,
        },
    );
    assert_eq!(d["message"], "weekday 8 is outside 0-6");
    // Kubernetes' weekdays are 0-6: 7 is refused although the API's
    // pattern matches it.
    let d = assert_single(
        &job_with(8, "  schedule: \"0 0 * * 7\""),
        Expect {
            code: "cron",
            path: "spec.schedule",
            line: 8,
            column: 13,
        },
    );
    assert_eq!(
        d["message"],
        "weekday 7 is outside 0-6; Kubernetes counts Sunday as 0 only"
    );
}

#[test]
fn schedule_the_api_pattern_refuses_is_an_error_with_a_digits_only_rewrite() {
    for (schedule, rewrite) in [
        ("0 9 * * MON-FRI", "0 9 * * 1-5"),
        ("0 */6 * * *", "0 0,6,12,18 * * *"),
    ] {
        let d = assert_single(
            &job_with(8, &format!("  schedule: \"{schedule}\"")),
            Expect {
                code: "pattern",
                path: "spec.schedule",
                line: 8,
                column: 13,
            },
        );
        assert_eq!(d["severity"], "error");
        let message = d["message"].as_str().expect("message");
        assert!(message.contains(&format!("`{rewrite}`")), "{message}");
    }
}

#[test]
fn schedule_from_the_environment_is_judged_but_not_quoted() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/job.yaml",
        job_with(8, "  schedule: \"${NFCRON_TEST_SCHEDULE}\""),
    );
    let run = ws.nfcron_env(
        &["validate", "--output", "json"],
        &[("NFCRON_TEST_SCHEDULE", "0 */6 * * *")],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let found = diagnostics(&run);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["code"], "pattern");
    assert!(!run.stdout.contains("0,6,12,18"), "{}", run.stdout);
}

#[test]
fn backoff_limit_below_zero_is_refused() {
    let d = assert_single(
        &job_with(7, "  backoffLimit: -1"),
        Expect {
            code: "range",
            path: "spec.backoffLimit",
            line: 7,
            column: 17,
        },
    );
    assert_eq!(d["message"], "-1 is less than the minimum 0");
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", job_with(7, "  backoffLimit: 0"));
    assert_eq!(ws.nfcron(&["validate"]).code, 0);
}

#[test]
fn more_than_200_ignore_rules_or_flags_are_refused() {
    let rules: String = (0..201)
        .map(|i| format!("      - \"docs/{i}.md\"\n"))
        .collect();
    let d = assert_single(
        &job(&format!(
            "  buildConfiguration:\n    pathIgnoreRules:\n{rules}"
        )),
        Expect {
            code: "length",
            path: "spec.buildConfiguration.pathIgnoreRules",
            line: 12,
            column: 7,
        },
    );
    assert_eq!(d["message"], "has 201 items; the API accepts at most 200");

    let flags: Vec<String> = (0..201).map(|i| format!("\"[skip {i}]\"")).collect();
    let d = assert_single(
        &job(&format!(
            "  buildConfiguration:\n    ciIgnoreFlags: [{}]\n",
            flags.join(", ")
        )),
        Expect {
            code: "length",
            path: "spec.buildConfiguration.ciIgnoreFlags",
            line: 11,
            column: 20,
        },
    );
    assert_eq!(d["message"], "has 201 items; the API accepts at most 200");

    // 200 is the limit, not past it.
    let ws = Workspace::new();
    let rules: String = (0..200)
        .map(|i| format!("      - \"docs/{i}.md\"\n"))
        .collect();
    ws.write(
        "jobs.d/job.yaml",
        job(&format!(
            "  buildConfiguration:\n    pathIgnoreRules:\n{rules}"
        )),
    );
    let run = ws.nfcron(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn runtime_environment_and_build_argument_values_must_be_strings() {
    let d = assert_single(
        &job("  runtimeEnvironment:\n    PORT: 8080\n"),
        Expect {
            code: "type",
            path: "spec.runtimeEnvironment.PORT",
            line: 11,
            column: 11,
        },
    );
    assert_eq!(
        d["message"],
        "expected a string, found integer; quote the value"
    );
    let d = assert_single(
        &job("  buildArguments:\n    DEBUG: true\n"),
        Expect {
            code: "type",
            path: "spec.buildArguments.DEBUG",
            line: 11,
            column: 12,
        },
    );
    assert_eq!(
        d["message"],
        "expected a string, found boolean; quote the value"
    );

    // The text report says where and what, and still masks the secret line.
    let ws = Workspace::new();
    ws.write(
        "jobs.d/job.yaml",
        job("  runtimeEnvironment:\n    PORT: 8080\n    DEBUG: \"true\"\n"),
    );
    let run = ws.nfcron(&["validate"]);
    assert_eq!(run.code, 1);
    for expected in [
        "error[type]: expected a string, found integer; quote the value",
        "--> jobs.d/job.yaml:11:11",
        "field: spec.runtimeEnvironment.PORT",
    ] {
        assert!(run.stdout.contains(expected), "{expected}: {}", run.stdout);
    }
    assert!(!run.stdout.contains("8080"), "{}", run.stdout);
}

#[test]
fn duplicate_ids_across_files_name_both_places() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", job(""));
    ws.write("jobs.d/b.yaml", job_with(4, "  name: nightly report"));
    let run = ws.nfcron(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1);
    let found = diagnostics(&run);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (d, (file, other)) in found.iter().zip([
        ("jobs.d/a.yaml", "jobs.d/b.yaml:4"),
        ("jobs.d/b.yaml", "jobs.d/a.yaml:4"),
    ]) {
        assert_eq!(d["code"], "duplicate-id");
        assert_eq!(d["file"], file);
        assert_eq!(d["path"], "spec.name");
        assert_eq!(
            (d["line"].as_u64(), d["column"].as_u64()),
            (Some(4), Some(9))
        );
        assert!(
            d["message"].as_str().expect("message").contains(other),
            "{d}"
        );
    }
    // Same name in another project is another job.
    ws.write("jobs.d/b.yaml", job_with(2, "project: other"));
    assert_eq!(ws.nfcron(&["validate"]).code, 0);
}

#[test]
fn env_missing_is_a_warning_unless_required() {
    let manifest = job("  runtimeEnvironment:\n    DB: \"${NFCRON_TEST_UNSET_DB}\"\n");
    let d = assert_single(
        &manifest,
        Expect {
            code: "env-missing",
            path: "spec.runtimeEnvironment.DB",
            line: 11,
            column: 9,
        },
    );
    assert_eq!(d["severity"], "warning");
    assert!(d["message"]
        .as_str()
        .expect("message")
        .contains("NFCRON_TEST_UNSET_DB"));
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", &manifest);
    let run = ws.nfcron(&["validate", "--require-env", "--output", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(diagnostics(&run)[0]["severity"], "error");
    let run = ws.nfcron_env(
        &["validate", "--require-env"],
        &[("NFCRON_TEST_UNSET_DB", "postgres://x")],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn file_too_large() {
    let big = format!("{}# {}\n", job(""), "x".repeat(1024 * 1024));
    assert_single(
        &big,
        Expect {
            code: "file-too-large",
            path: "",
            line: 1,
            column: 1,
        },
    );
}

#[test]
fn unreadable_files_are_diagnostics() {
    let ws = Workspace::new();
    ws.write("jobs.d/ok.yaml", job(""));
    ws.write("jobs.d/latin1.yaml", b"kind: CronJob\nname: \xe9t\xe9\n");
    std::os::unix::fs::symlink("missing.yaml", ws.path().join("jobs.d/dangling.yaml"))
        .expect("symlink");
    std::os::unix::fs::symlink(".", ws.path().join("jobs.d/loop")).expect("symlink");
    let run = ws.nfcron(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    let codes: Vec<(&str, &str)> = report["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().expect("file"),
                d["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("jobs.d/dangling.yaml", "io"),
            ("jobs.d/latin1.yaml", "io"),
            ("jobs.d/loop", "io")
        ]
    );
    assert_eq!(report["valid"], 1);
}

#[test]
fn secrets_never_appear_in_messages_or_snippets() {
    let ws = Workspace::new();
    let manifest = job(
        "  deployment:\n    external: {imagePath: \"${NFCRON_TEST_IMAGE}\"}\n  runtimeEnvironment:\n    API_KEY: [hunter2-literal-secret]\n",
    );
    ws.write("jobs.d/job.yaml", &manifest);
    let env = [("NFCRON_TEST_IMAGE", "env-secret-value-without-tag")];
    for output in ["text", "json"] {
        let run = ws.nfcron_env(&["validate", "--output", output], &env);
        assert_eq!(run.code, 1);
        for secret in ["env-secret-value-without-tag", "hunter2-literal-secret"] {
            assert!(
                !run.stdout.contains(secret),
                "{output} output shows {secret}:\n{}",
                run.stdout
            );
            assert!(
                !run.stderr.contains(secret),
                "{output} stderr shows {secret}"
            );
        }
    }
    let codes: Vec<String> = diagnostics(&ws.nfcron_env(&["validate", "--output", "json"], &env))
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["code"].as_str().unwrap_or(""),
                d["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            "pattern spec.deployment.external.imagePath",
            "type spec.runtimeEnvironment.API_KEY"
        ]
    );
}

#[test]
fn every_problem_of_every_file_is_reported() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", job_with(4, "  name: x"));
    ws.write(
        "jobs.d/b.yaml",
        format!(
            "{}---\n{}",
            job_with(9, "  concurrencyPolicy: sometimes"),
            job_with(4, "  name: Other Job")
        ),
    );
    ws.write("jobs.d/c.yaml", "kind: CronJob\nspec: [unclosed\n");
    let report = ws.nfcron(&["validate", "--output", "json"]).json();
    assert_eq!(report["files"], 3);
    assert_eq!(report["jobs"], 4);
    assert_eq!(report["valid"], 1);
    assert_eq!(report["invalid"], 3);
    let codes: Vec<&str> = report["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["length", "enum", "yaml"]);
}

#[test]
fn bundled_jobs_are_valid_and_a_broken_copy_keeps_the_rest_valid() {
    let ws = Workspace::new().with_bundled_jobs();
    let run = ws.nfcron(&["validate", "jobs.d", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = run.json();
    let jobs = report["jobs"].as_u64().expect("jobs");
    assert!(jobs >= 4, "{report}");
    assert_eq!(report["valid"], jobs);

    ws.write(
        "jobs.d/zz-broken.yaml",
        job_with(8, "  schedule: \"0 25 * * *\""),
    );
    let run = ws.nfcron(&["validate", "jobs.d", "--output", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["valid"], jobs);
    assert_eq!(report["invalid"], 1);
    assert!(
        run.stdout.contains("\"hour 24") || run.stdout.contains("hour 25 is outside 0-23"),
        "{}",
        run.stdout
    );
}

#[test]
fn walk_skips_hidden_entries_and_editor_leftovers_and_reads_subdirectories_in_order() {
    let ws = Workspace::new();
    ws.write("jobs.d/team-b/z.yml", job_with(4, "  name: Zed Job"));
    ws.write("jobs.d/a.yaml", job(""));
    for leftover in [
        ".hidden.yaml",
        ".git/config.yaml",
        "a.yaml~",
        ".#a.yaml",
        ".a.yaml.swp",
        "4913",
        "notes.txt",
    ] {
        ws.write(&format!("jobs.d/{leftover}"), "not: [a manifest");
    }
    let run = ws.nfcron(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout.trim(), "2 files, 2 jobs: 2 valid, 0 invalid");
}

#[test]
fn a_single_file_path_works() {
    let ws = Workspace::new();
    ws.write("one.yaml", job(""));
    let run = ws.nfcron(&["validate", "one.yaml"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.trim(), "1 files, 1 jobs: 1 valid, 0 invalid");
}

#[test]
fn a_missing_path_is_an_io_diagnostic() {
    let ws = Workspace::new();
    let run = ws.nfcron(&["validate", "nowhere", "--output", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(diagnostics(&run)[0]["code"], "io");
}

#[test]
fn multi_document_files_ignore_empty_documents() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/a.yaml",
        format!("---\n# nothing here\n---\n{}---\n", job("")),
    );
    let run = ws.nfcron(&["validate"]);
    assert_eq!(run.stdout.trim(), "1 files, 1 jobs: 1 valid, 0 invalid");
}

#[test]
fn json_report_has_exactly_the_documented_shape() {
    let ws = Workspace::new();
    ws.write("jobs.d/a.yaml", job_with(8, "  schedule: \"61 * * * *\""));
    let report = ws.nfcron(&["validate", "--output", "json"]).json();
    let keys: Vec<&String> = report.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "format_version",
            "files",
            "jobs",
            "valid",
            "invalid",
            "diagnostics"
        ]
    );
    assert_eq!(report["format_version"], 1);
    let d = report["diagnostics"][0].as_object().expect("object");
    let keys: Vec<&String> = d.keys().collect();
    assert_eq!(
        keys,
        ["file", "line", "column", "path", "severity", "code", "message"]
    );
}

#[test]
fn text_report_snapshot() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/job.yaml",
        job("  deployment:\n    external: {imagePath: nginx}\n  runtimeEnvironment:\n    \"BAD KEY\": secret-value\n  concurencyPolicy: forbid\n"),
    );
    let run = ws.nfcron(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(!run.stdout.contains("secret-value"));
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn a_field_newer_than_this_nfcron_is_an_error_that_says_how_to_proceed() {
    let manifest = job("  spotInstances: true\n  regionOverride:\n    x: 1\n");
    let ws = Workspace::new();
    ws.write("jobs.d/job.yaml", &manifest);
    let run = ws.nfcron(&["validate", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let found = diagnostics(&run);
    assert_eq!(found.len(), 2, "{found:#?}");
    let newer = &found[0];
    assert_eq!(newer["path"], "spec.spotInstances");
    assert_eq!(newer["severity"], "error");
    let message = newer["message"].as_str().expect("message");
    assert!(
        message.contains("@northflank/js-client 0.9.5")
            && message.contains("--allow-unknown-fields")
            && message.contains("NFCRON_ALLOW_UNKNOWN_FIELDS"),
        "{message}"
    );

    // Allowed: a warning, and exit 0.
    for run in [
        ws.nfcron(&["validate", "--output", "json", "--allow-unknown-fields"]),
        ws.nfcron_env(
            &["validate", "--output", "json"],
            &[("NFCRON_ALLOW_UNKNOWN_FIELDS", "true")],
        ),
    ] {
        assert_eq!(run.code, 0, "{}", run.stdout);
        let found = diagnostics(&run);
        let severities: Vec<&str> = found
            .iter()
            .filter_map(|d| d["severity"].as_str())
            .collect();
        assert_eq!(severities, ["warning", "warning"], "{found:#?}");
    }
}

#[test]
fn a_misspelt_field_stays_an_error_with_unknown_fields_allowed() {
    for (extra, path) in [
        ("  nmae: Nightly\n", "spec.nmae"),
        ("  runtimeEnviroment:\n    A: b\n", "spec.runtimeEnviroment"),
    ] {
        let ws = Workspace::new();
        ws.write("jobs.d/job.yaml", job(extra));
        let run = ws.nfcron_env(
            &["validate", "--output", "json", "--allow-unknown-fields"],
            &[("NFCRON_ALLOW_UNKNOWN_FIELDS", "true")],
        );
        assert_eq!(run.code, 1, "{}", run.stdout);
        let found = diagnostics(&run);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0]["path"], path);
        assert!(
            found[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("did you mean")),
            "{found:#?}"
        );
    }
}
