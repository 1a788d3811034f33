//! Schedules judged and timed as the platform runs them: the API's
//! `schedule` pattern (an unanchored search), Kubernetes' refusal of `TZ`,
//! and robfig/cron v3's standard parser and `Next`. The golden table was
//! computed with robfig/cron v3.0.1 and the API's pattern, by nobody here.

use crate::common;

use common::Workspace;
use nfcron::manifest::cron;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Row {
    schedule: String,
    api_pattern: bool,
    kubernetes: bool,
    accepted: bool,
    after: String,
    next: Vec<String>,
}

fn golden() -> Vec<Row> {
    let text = include_str!("../data/kubernetes-schedules.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn every_row_of_the_kubernetes_golden_table_agrees() {
    let rows = golden();
    assert_eq!(rows.len(), 400, "the table has 400 rows");
    let mut disagreements = Vec::new();
    for row in &rows {
        let verdict = cron::judge(&row.schedule);
        let ours = (
            cron::fits_api_pattern(&row.schedule),
            cron::parse(&row.schedule).is_ok(),
            verdict.schedule.is_some(),
        );
        if ours != (row.api_pattern, row.kubernetes, row.accepted) {
            disagreements.push(format!(
                "{:?}: (api_pattern, kubernetes, accepted) ours {ours:?}, table {:?}",
                row.schedule,
                (row.api_pattern, row.kubernetes, row.accepted)
            ));
            continue;
        }
        // The verdict's reasons are exactly the table's.
        let codes: Vec<&str> = verdict.problems.iter().map(|p| p.code().as_str()).collect();
        let expected: Vec<&str> = [(!row.api_pattern, "pattern"), (!row.kubernetes, "cron")]
            .iter()
            .filter(|(refused, _)| *refused)
            .map(|(_, code)| *code)
            .collect();
        if codes != expected {
            disagreements.push(format!(
                "{:?}: codes {codes:?}, expected {expected:?}",
                row.schedule
            ));
        }
        let after: jiff::Timestamp = row.after.parse().expect("after");
        let next: Vec<String> = verdict
            .schedule
            .map(|s| s.next_runs(after, 5))
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        if next != row.next {
            disagreements.push(format!(
                "{:?} after {}: ours {next:?}, table {:?}",
                row.schedule, row.after, row.next
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} rows disagree:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
}

/// Every schedule Kubernetes accepts and the API's pattern refuses has a
/// digits-only rewrite that both accept and that runs at the same times.
#[test]
fn pattern_refusals_come_with_a_rewrite_that_runs_at_the_same_times() {
    let after: jiff::Timestamp = "2026-11-28T16:07:30Z".parse().expect("after");
    for row in golden().iter().filter(|r| r.kubernetes && !r.api_pattern) {
        let verdict = cron::judge(&row.schedule);
        let rewrite = match verdict.problems.as_slice() {
            [cron::Problem::Pattern { rewrite }] => rewrite.clone(),
            other => panic!("{:?}: {other:?}", row.schedule),
        };
        if row.schedule.starts_with("@every") {
            assert_eq!(rewrite, None, "@every has no fixed times");
            continue;
        }
        let rewrite = rewrite.unwrap_or_else(|| panic!("{:?} has no rewrite", row.schedule));
        let fixed = cron::judge(&rewrite)
            .schedule
            .unwrap_or_else(|| panic!("{:?} -> {rewrite:?} is not valid", row.schedule));
        let original = cron::parse(&row.schedule).expect("kubernetes accepts it");
        assert_eq!(
            fixed.next_runs(after, 40),
            original.next_runs(after, 40),
            "{:?} -> {rewrite:?}",
            row.schedule
        );
    }
}

fn schedule(args: &[&str]) -> common::Run {
    let mut full = vec!["schedule"];
    full.extend_from_slice(args);
    Workspace::new().nfcron(&full)
}

#[test]
fn schedule_json_lists_weekday_steps_over_zero_to_six() {
    let run = schedule(&[
        "0 0 * * 1/2",
        "--after",
        "2026-11-28T16:07:30Z",
        "--count",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json(),
        json!({
            "schedule": "0 0 * * 1/2",
            "valid": true,
            "diagnostics": [],
            "next": ["2026-11-30T00:00:00Z", "2026-12-02T00:00:00Z", "2026-12-04T00:00:00Z"],
        })
    );
    let keys: Vec<String> = run
        .json()
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["schedule", "valid", "diagnostics", "next"]);
}

#[test]
fn schedule_refused_by_the_api_pattern_exits_1_with_the_digits_only_rewrite() {
    let run = schedule(&["0 */6 * * *"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("error[pattern]"), "{}", run.stdout);
    assert!(run.stdout.contains("`0 0,6,12,18 * * *`"), "{}", run.stdout);

    let run = schedule(&["0 */6 * * *", "--output", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["next"], json!([]));
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["diagnostics"][0]["code"], "pattern");
    let message = report["diagnostics"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("`0 0,6,12,18 * * *`"), "{message}");
}

#[test]
fn schedule_with_weekday_7_is_a_cron_error_naming_the_field() {
    let run = schedule(&["0 0 * * 7", "--output", "json"]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["diagnostics"],
        json!([{"code": "cron", "message": "weekday 7 is outside 0-6; Kubernetes counts Sunday as 0 only"}])
    );
}

#[test]
fn schedule_refused_twice_reports_both_reasons_and_tz_is_refused() {
    let run = schedule(&["0 9 * * SAT-SUN", "--output", "json"]);
    assert_eq!(run.code, 1);
    let codes: Vec<Value> = run.json()["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| d["code"].clone())
        .collect();
    assert_eq!(codes, [json!("pattern"), json!("cron")]);

    let run = schedule(&["CRON_TZ=UTC 0 0 * * *", "--output", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["diagnostics"][0]["code"], "cron");
    let message = run.json()["diagnostics"][0]["message"].to_string();
    assert!(message.contains("TZ"), "{message}");
}

#[test]
fn schedule_text_lists_five_runs_after_now_by_default() {
    let before = jiff::Timestamp::now();
    let run = schedule(&["*/15 * * * *"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let times: Vec<jiff::Timestamp> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 5, "{}", run.stdout);
    assert!(times[0] > before, "{}", run.stdout);
    assert!(times
        .windows(2)
        .all(|w| w[1].as_second() - w[0].as_second() == 15 * 60));
}

#[test]
fn schedule_that_never_runs_is_valid_and_says_so() {
    let run = schedule(&["0 0 30 2 *", "--after", "2026-11-28T16:07:30Z"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("none: no time matches within five years"),
        "{}",
        run.stdout
    );
}

#[test]
fn schedule_takes_an_expression_starting_with_a_hyphen_and_refuses_a_bad_after() {
    let run = schedule(&["-1 * * * *", "--output", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["diagnostics"][0]["code"], "cron");

    let run = schedule(&["0 3 * * *", "--after", "yesterday"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("RFC 3339"), "{}", run.stderr);
}

/// A plan's next runs are the command's: the rare date keeps its per-run
/// five-year limit (three runs from 2026, not one).
#[test]
fn plans_list_the_same_next_runs_as_the_schedule_command() {
    let ws = Workspace::new();
    ws.write(
        "jobs.d/leap.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  name: Leap Day\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 0 29 2 *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n",
    );
    let plan = ws.nfcron(&["reconcile", "--dry-run", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let command = ws.nfcron(&["schedule", "0 0 29 2 *", "--count", "3", "--output", "json"]);
    let plan = plan.json();
    let job = &plan["jobs"][0];
    assert_eq!(job["next_runs"], command.json()["next"], "{plan:#}");
    assert_eq!(job["next_runs"].as_array().map(Vec::len), Some(3));
}

#[test]
fn an_every_longer_than_five_years_is_refused_by_schedule_and_validate_alike() {
    let run = schedule(&["@every 1000000h"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("invalid") && run.stdout.contains("longer than five years"),
        "{}",
        run.stdout
    );
    let ok = schedule(&["@every 43800h", "--count", "2"]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(!ok.stdout.contains("no further run"), "{}", ok.stdout);

    let ws = Workspace::new();
    ws.write(
        "jobs.d/rare.yaml",
        "kind: CronJob\nproject: acme\nspec:\n  name: Rare\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"@every 1000000h\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n",
    );
    let validate = ws.nfcron(&["validate"]);
    assert_eq!(validate.code, 1, "{}{}", validate.stdout, validate.stderr);
    assert!(
        format!("{}{}", validate.stdout, validate.stderr).contains("longer than five years"),
        "{}{}",
        validate.stdout,
        validate.stderr
    );
}

#[test]
fn an_after_at_the_end_of_the_calendar_gets_a_clean_error() {
    for after in ["9999-12-31T23:59:00Z", "9995-01-01T00:00:00Z"] {
        let run = schedule(&["0 3 * * *", "--after", after]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(
            run.stderr.contains("later than 9994-12-31T23:59:59Z"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("Unix timestamp"), "{}", run.stderr);
    }
    let run = schedule(&[
        "0 3 * * *",
        "--after",
        "9994-12-31T00:00:00Z",
        "--count",
        "1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("9994-12-31T03:00:00Z"),
        "{}",
        run.stdout
    );
}
