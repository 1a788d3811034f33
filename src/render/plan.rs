//! A plan and its results as text (Terraform-like), JSON (format_version 1)
//! and Markdown (for `$GITHUB_STEP_SUMMARY` or a pull-request comment).
//!
//! Only shown forms reach here: spec values with secrets already replaced by
//! fingerprints.

use serde_json::{json, Value as Json};

use super::Colour;
use crate::apply::Outcome;
use crate::plan::{Action, Change, Drift, Kind, Plan, PruneBlock, Step};

pub use crate::reconcile::Baseline;

pub struct Report<'a> {
    pub plan: &'a Plan,
    /// One per step.
    pub outcomes: &'a [Outcome],
    pub dry_run: bool,
    pub baseline: Baseline,
    pub api_requests: u64,
    /// Live jobs no manifest or record names (counted, never touched).
    pub unmanaged: usize,
    /// The source revision planned (a Git commit), when known.
    pub revision: Option<&'a str>,
}

impl Report<'_> {
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count()
    }

    /// Jobs the API refused for good: in this run, or earlier with the
    /// same spec (not sent again).
    pub fn rejected(&self) -> usize {
        self.plan.count(Action::Rejected)
            + self
                .outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Rejected(_)))
                .count()
    }

    /// Writes never sent because the state file could not be written.
    pub fn not_attempted(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::NotAttempted))
            .count()
    }

    fn result(&self, i: usize) -> &'static str {
        match &self.outcomes[i] {
            Outcome::Planned => "planned",
            Outcome::Applied => "applied",
            Outcome::Failed(_) => "failed",
            Outcome::Rejected(_) => "rejected",
            Outcome::Skipped if self.plan.steps[i].action() == Action::Rejected => "rejected",
            Outcome::Skipped => "skipped",
            Outcome::NotAttempted => "not_attempted",
        }
    }
}

/// `-> "0 3 * * *"`: values as JSON, absent as `(none)`.
fn value(v: &Option<Json>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

pub(super) fn address(step: &Step) -> String {
    match &step.key {
        Some(key) => key.to_string(),
        None => step.name.clone().unwrap_or_else(|| "(unknown job)".into()),
    }
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Orphan => "?",
        Action::Invalid => "!",
        Action::Unchanged => "=",
        Action::Unverified => "*",
        Action::Rejected => "x",
    }
}

fn paint(action: Action) -> &'static str {
    match action {
        Action::Create => "32",
        Action::Update => "33",
        Action::Delete | Action::Invalid | Action::Rejected => "31",
        Action::Orphan | Action::Unverified => "35",
        Action::Unchanged => "2",
    }
}

/// A change as lines; multi-line strings as a unified diff.
fn change_lines(change: &Change) -> Vec<String> {
    let multiline = |v: &Option<Json>| {
        v.as_ref()
            .and_then(Json::as_str)
            .filter(|s| s.contains('\n'))
            .map(str::to_string)
    };
    match (multiline(&change.before), multiline(&change.after)) {
        (None, None) => {
            let line = match (&change.before, &change.after) {
                (None, after) => format!("+ {}: {}", change.path, value(after)),
                (before, None) => format!("- {}: {}", change.path, value(before)),
                (before, after) => {
                    format!("~ {}: {} -> {}", change.path, value(before), value(after))
                }
            };
            vec![line]
        }
        (before, after) => {
            let (a, b) = (before.unwrap_or_default(), after.unwrap_or_default());
            let diff = similar::TextDiff::from_lines(&a, &b);
            let mut lines = vec![format!("~ {}:", change.path)];
            for op in diff.iter_all_changes() {
                let sign = match op.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                lines.push(format!(
                    "    {sign} {}",
                    escape_controls(op.value().trim_end_matches('\n'))
                ));
            }
            lines
        }
    }
}

/// One line of a multi-line value with its control characters (a carriage
/// return, ESC) escaped: raw, they would rewrite the terminal or forge a line.
fn escape_controls(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => c.to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

pub fn summary_line(plan: &Plan) -> String {
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to delete, {} unchanged, {} invalid.",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Delete),
        plan.count(Action::Unchanged),
        plan.count(Action::Invalid)
    );
    if plan.steps.iter().any(|s| s.drift().is_some()) {
        line.push_str(&format!(" Drift: {} job(s).", plan.drifted()));
    }
    let unverified = plan.count(Action::Unverified);
    if unverified > 0 {
        line.push_str(&format!(
            " Unverified: {unverified} job(s) possibly live and not read yet, not written; the next run continues adopting them."
        ));
    }
    let rejected = plan.count(Action::Rejected);
    if rejected > 0 {
        line.push_str(&format!(
            " Rejected: {rejected} job(s) the API refused, not sent again until their manifests change (or --retry-rejected)."
        ));
    }
    line
}

/// What the text says of an orphan (deleted or not) and an unverified job.
const ORPHAN: &str = "recorded in state, no manifest; --prune deletes it";
const ORPHAN_BLOCKED: &str = "recorded in state, no manifest; not deleted: prune is blocked";
const UNVERIFIED: &str =
    "not in state, possibly live and not read (--max-reads reached or the read failed): not written until a run reads it";

/// What the reports say of a job the API refused for good.
const REJECTED: &str = "not sent again until its manifest changes (or reconcile --retry-rejected)";

fn rejected_detail(step: &Step) -> String {
    match &step.kind {
        Kind::Rejected {
            status, message, ..
        } => format!("the API refused this spec (HTTP {status}: {message}); {REJECTED}"),
        _ => String::new(),
    }
}

/// Why an invalid manifest is invalid (empty for other steps).
fn invalid_reason(step: &Step) -> &str {
    match &step.kind {
        Kind::Invalid { reason } => reason,
        _ => "",
    }
}

/// The text block that says which files stopped pruning, and why.
fn prune_blocked_lines(blocks: &[PruneBlock]) -> Vec<String> {
    let mut lines = vec![format!(
        "Prune blocked: {} file(s) hold a document that is invalid or unreadable and could name a managed job; nothing is deleted until they are fixed:",
        blocks.len()
    )];
    lines.extend(blocks.iter().map(|b| format!("  {}: {}", b.file, b.reason)));
    lines
}

/// Drift lines for a job: what the live read found.
fn drift_lines(step: &Step) -> Vec<String> {
    match step.drift() {
        None => Vec::new(),
        Some(Drift::Missing) => vec!["drift: missing (deleted outside nfcron)".to_string()],
        Some(Drift::Unknown) => vec!["drift: unknown (--max-reads reached)".to_string()],
        Some(Drift::Changed(changes)) => {
            let mut lines = vec!["drift: changed outside nfcron".to_string()];
            for c in changes {
                lines.push(format!(
                    "  ~ {}: {} (live) -> {} (applied)",
                    c.path,
                    value(&c.before),
                    value(&c.after)
                ));
            }
            lines
        }
    }
}

pub fn text(report: &Report<'_>, colour: Colour) -> String {
    let mut out = String::new();
    for step in &report.plan.steps {
        if step.action() != Action::Unchanged {
            text_step(&mut out, step, report.plan, colour);
        } else if step.drift().is_some() {
            // An unchanged job is shown only when a live read says something.
            text_job_line(&mut out, &colour.paint("35", "~ drift"), step);
            out.push('\n');
            for line in drift_lines(step) {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    if !report.plan.prune_blocked.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        for line in prune_blocked_lines(&report.plan.prune_blocked) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary_line(report.plan));
    out.push('\n');
    if !report.dry_run {
        text_results(&mut out, report, colour);
    }
    out
}

/// `<head> <address> (<file>)`, the line that opens a job in the text.
fn text_job_line(out: &mut String, head: &str, step: &Step) {
    out.push_str(head);
    out.push(' ');
    out.push_str(&address(step));
    if let Some(file) = &step.file {
        out.push_str(&format!(" ({file})"));
    }
}

/// A job the plan does something with (or says something of): its line,
/// then its changes and next runs.
fn text_step(out: &mut String, step: &Step, plan: &Plan, colour: Colour) {
    let head = format!("{} {}", symbol(step.action()), step.action().as_str());
    text_job_line(out, &colour.paint(paint(step.action()), &head), step);
    if let Some(old) = step.renamed_from() {
        out.push_str(&format!(" (renamed from {old})"));
    }
    match step.action() {
        Action::Orphan if plan.prune_blocked.is_empty() => out.push_str(&format!(": {ORPHAN}")),
        Action::Orphan => out.push_str(&format!(": {ORPHAN_BLOCKED}")),
        Action::Unverified => out.push_str(&format!(": {UNVERIFIED}")),
        Action::Rejected => out.push_str(&format!(": {}", rejected_detail(step))),
        Action::Invalid => out.push_str(&format!(": {}", invalid_reason(step))),
        _ => {}
    }
    out.push('\n');
    for change in step.changes() {
        for line in change_lines(change) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if step.drift().is_some() {
        out.push_str("    (corrects drift)\n");
    }
    if let Some(line) = next_runs_line(step) {
        out.push_str(&format!("    {line}\n"));
    }
}

/// `next runs: ...` for a job that has them (or is suspended).
fn next_runs_line(step: &Step) -> Option<String> {
    if step.suspended() {
        Some("next runs: none (suspended)".to_string())
    } else if !step.next_runs().is_empty() {
        Some(format!("next runs: {}", step.next_runs().join(", ")))
    } else {
        None
    }
}

/// What the apply did: a line per write that was not a plain success
/// (and per success), then the counts.
fn text_results(out: &mut String, report: &Report<'_>, colour: Colour) {
    let results: Vec<String> = report
        .plan
        .steps
        .iter()
        .zip(report.outcomes)
        .filter_map(|(s, o)| match o {
            Outcome::Applied => Some(format!(
                "  {} {}\n",
                colour.paint("32", "applied"),
                address(s)
            )),
            Outcome::Failed(failure) => Some(format!(
                "  {} {}: {}\n",
                colour.paint("31", "failed"),
                address(s),
                failure.message()
            )),
            Outcome::Rejected(failure) => Some(format!(
                "  {} {}: {}; {REJECTED}\n",
                colour.paint("31", "rejected"),
                address(s),
                failure.message()
            )),
            Outcome::NotAttempted => Some(format!(
                "  {} {}: the state file cannot be written, so the run stopped before it\n",
                colour.paint("31", "not attempted"),
                address(s)
            )),
            _ => None,
        })
        .collect();
    if !results.is_empty() {
        out.push('\n');
        out.push_str(&results.concat());
    }
    let applied = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Applied))
        .count();
    let not_attempted = match report.not_attempted() {
        0 => String::new(),
        n => format!(", {n} not attempted"),
    };
    let rejected = match report.rejected() {
        0 => String::new(),
        n => format!(", {n} rejected"),
    };
    out.push_str(&format!(
        "Apply: {applied} applied, {} failed{rejected}{not_attempted}, {} API requests.\n",
        report.failed(),
        report.api_requests
    ));
}

/// The JSON report written as it is made: no tree of it, no copy of its
/// text (a job with 60,000 changes is written change by change).
pub fn json_to(report: &Report<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use std::io::Write;
    let plan = report.plan;
    let top = ReportOut {
        format_version: 1,
        dry_run: report.dry_run,
        baseline: report.baseline.as_str(),
        source: json!({"revision": report.revision}),
        summary: json!({
            "create": plan.count(Action::Create),
            "update": plan.count(Action::Update),
            "delete": plan.count(Action::Delete),
            "orphan": plan.count(Action::Orphan),
            "unchanged": plan.count(Action::Unchanged),
            "invalid": plan.count(Action::Invalid),
            "failed": report.failed(),
            "api_requests": report.api_requests,
            "drift": plan.drifted(),
            "unmanaged": report.unmanaged,
            "unverified": plan.count(Action::Unverified),
            "not_attempted": report.not_attempted(),
            "rejected": report.rejected(),
        }),
        prune_blocked: plan
            .prune_blocked
            .iter()
            .map(|b| json!({"file": b.file, "reason": b.reason}))
            .collect(),
        jobs: Jobs(report),
    };
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &top).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[derive(serde::Serialize)]
struct ReportOut<'a> {
    format_version: u32,
    dry_run: bool,
    baseline: &'static str,
    source: Json,
    summary: Json,
    prune_blocked: Vec<Json>,
    jobs: Jobs<'a>,
}

/// The report's jobs, each written as it is reached.
struct Jobs<'a>(&'a Report<'a>);

impl serde::Serialize for Jobs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let report = self.0;
        s.collect_seq(
            report
                .plan
                .steps
                .iter()
                .enumerate()
                .map(|(i, step)| JobOut { report, i, step }),
        )
    }
}

struct JobOut<'a> {
    report: &'a Report<'a>,
    i: usize,
    step: &'a Step,
}

#[derive(serde::Serialize)]
struct ChangeOut<'a> {
    path: &'a str,
    before: &'a Option<Json>,
    after: &'a Option<Json>,
}

#[derive(serde::Serialize)]
struct DriftFieldOut<'a> {
    path: &'a str,
    recorded: &'a Option<Json>,
    live: &'a Option<Json>,
}

/// Items written one at a time from an iterator made on demand.
struct Seq<F>(F);

impl<F, I> serde::Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

impl serde::Serialize for JobOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (report, i, step) = (self.report, self.i, self.step);
        let error = match (&report.outcomes[i], &step.kind) {
            (Outcome::Failed(f) | Outcome::Rejected(f), _) => {
                json!({"status": f.status(), "message": f.message()})
            }
            (
                _,
                Kind::Rejected {
                    status, message, ..
                },
            ) => {
                json!({"status": status, "message": message})
            }
            (_, Kind::Invalid { reason }) => json!({"status": null, "message": reason}),
            _ => Json::Null,
        };
        let key = step.key.as_ref();
        let mut m = s.serialize_map(Some(12))?;
        m.serialize_entry("team", &key.and_then(|k| k.team.as_deref()))?;
        m.serialize_entry("project", &key.map(|k| k.project.as_str()))?;
        m.serialize_entry("id", &key.map(|k| k.id.as_str()))?;
        m.serialize_entry("name", &step.name)?;
        m.serialize_entry("file", &step.file)?;
        m.serialize_entry("action", step.action().as_str())?;
        m.serialize_entry("result", report.result(i))?;
        m.serialize_entry(
            "changes",
            &Seq(|| {
                step.changes().iter().map(|c| ChangeOut {
                    path: &c.path,
                    before: &c.before,
                    after: &c.after,
                })
            }),
        )?;
        m.serialize_entry("renamed_from", &step.renamed_from())?;
        m.serialize_entry("next_runs", step.next_runs())?;
        m.serialize_entry("suspended", &step.suspended())?;
        m.serialize_entry("error", &error)?;
        match step.drift() {
            None => m.serialize_entry("drift", &Json::Null)?,
            Some(Drift::Changed(changes)) => m.serialize_entry(
                "drift",
                &DriftOut {
                    kind: "changed",
                    fields: Seq(|| {
                        changes.iter().map(|c| DriftFieldOut {
                            path: &c.path,
                            recorded: &c.after,
                            live: &c.before,
                        })
                    }),
                },
            )?,
            Some(d) => m.serialize_entry("drift", &json!({"kind": d.kind(), "fields": []}))?,
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct DriftOut<F> {
    kind: &'static str,
    fields: F,
}

/// Markdown is capped at this many characters (GitHub's step summary and
/// comment limits are larger; this leaves room around it).
pub const MARKDOWN_CAP: usize = 60_000;

pub fn markdown(report: &Report<'_>) -> String {
    let head = markdown_head(report);
    let shown: Vec<(usize, &Step)> = report
        .plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.action() != Action::Unchanged)
        .collect();
    if shown.is_empty() {
        return head + "No changes.\n";
    }
    let mut rows =
        String::from("| action | job | file | result | detail |\n|---|---|---|---|---|\n");
    for (i, s) in &shown {
        rows.push_str(&markdown_row(report, *i, s));
    }
    let diffs: Vec<String> = shown
        .iter()
        .filter(|(_, s)| !s.changes().is_empty())
        .map(|(_, s)| markdown_diff(s))
        .collect();
    fit_markdown(head, &rows, diffs, shown.len())
}

/// A table cell's text: a `|` would end the cell, a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The title, the summary and what stopped pruning.
fn markdown_head(report: &Report<'_>) -> String {
    let plan = report.plan;
    let mut head = String::from("### nfcron plan\n\n");
    head.push_str(&format!("**{}**", summary_line(plan)));
    if !report.dry_run {
        head.push_str(&format!(
            " Applied with {} failed, {} rejected, {} API requests.",
            report.failed(),
            report.rejected(),
            report.api_requests
        ));
    }
    head.push_str("\n\n");
    if !plan.prune_blocked.is_empty() {
        head.push_str(&format!(
            "**Prune blocked**: {} file(s) hold a document that is invalid or unreadable and could name a managed job; nothing is deleted until they are fixed:\n\n",
            plan.prune_blocked.len()
        ));
        for b in &plan.prune_blocked {
            head.push_str(&format!("- `{}`: {}\n", cell(&b.file), cell(&b.reason)));
        }
        head.push('\n');
    }
    head
}

/// The table row of step `i`.
fn markdown_row(report: &Report<'_>, i: usize, s: &Step) -> String {
    let detail = match s.action() {
        Action::Unchanged => format!("drift: {}", drift_lines(s).join("; ")),
        Action::Invalid => invalid_reason(s).to_string(),
        Action::Orphan if report.plan.prune_blocked.is_empty() => "in state, no manifest".into(),
        Action::Orphan => "in state, no manifest; prune blocked".into(),
        Action::Unverified => UNVERIFIED.into(),
        Action::Rejected => rejected_detail(s),
        _ => match (&report.outcomes[i], s.renamed_from()) {
            (Outcome::Failed(f), _) => f.message(),
            (Outcome::Rejected(f), _) => format!("{}; {REJECTED}", f.message()),
            (_, Some(old)) => format!("{} field(s); renamed from `{old}`", s.changes().len()),
            _ => format!("{} field(s)", s.changes().len()),
        },
    };
    format!(
        "| {} {} | `{}` | `{}` | {} | {} |\n",
        symbol(s.action()),
        s.action().as_str(),
        cell(&address(s)),
        cell(s.file.as_deref().unwrap_or("")),
        report.result(i),
        cell(&detail)
    )
}

/// A job's changes as a folded `diff` block.
fn markdown_diff(s: &Step) -> String {
    let mut d = format!(
        "<details><summary>{} {} <code>{}</code></summary>\n\n```diff\n",
        symbol(s.action()),
        s.action().as_str(),
        address(s)
    );
    for change in s.changes() {
        for line in change_lines(change) {
            // `!` is what a diff block colours as a change.
            d.push_str(&line.replacen("~ ", "! ", 1));
            d.push('\n');
        }
    }
    if let Some(line) = next_runs_line(s) {
        d.push_str(&format!("# {line}\n"));
    }
    d.push_str("```\n\n</details>\n\n");
    d
}

/// `head`, the table and the diffs, cut to [`MARKDOWN_CAP`]: diffs go
/// first, then table rows; what was cut is said.
fn fit_markdown(mut out: String, rows: &str, diffs: Vec<String>, jobs: usize) -> String {
    let note_room = 200;
    if out.len() + rows.len() + note_room > MARKDOWN_CAP {
        let mut kept: usize = 0;
        let mut table = String::new();
        for line in rows.lines() {
            if out.len() + table.len() + line.len() + 1 + note_room > MARKDOWN_CAP {
                break;
            }
            table.push_str(line);
            table.push('\n');
            kept += 1;
        }
        out.push_str(&table);
        out.push_str(&format!(
            "\n_Cut to fit {MARKDOWN_CAP} characters: {} of {jobs} rows and every diff left out; run with `--output text` for the full plan._\n",
            jobs - kept.saturating_sub(2),
        ));
        return out;
    }
    out.push_str(rows);
    out.push('\n');
    let total = diffs.len();
    let mut cut = 0;
    for d in diffs {
        if cut > 0 || out.len() + d.len() + note_room > MARKDOWN_CAP {
            cut += 1;
            continue;
        }
        out.push_str(&d);
    }
    if cut > 0 {
        out.push_str(&format!(
            "_Cut to fit {MARKDOWN_CAP} characters: the diffs of {cut} of {total} jobs are left out; run with `--output text` for the full plan._\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::JobKey;
    use crate::plan::{Step, Write};

    fn big_plan(jobs: usize) -> Plan {
        let steps = (0..jobs)
            .map(|i| Step {
                key: Some(JobKey {
                    team: None,
                    project: "p".into(),
                    id: format!("job-{i:05}"),
                }),
                name: Some(format!("Job {i:05}")),
                file: Some(format!("jobs.d/{i:05}.yaml")),
                kind: Kind::Update(Write {
                    desired: i,
                    changes: vec![Change {
                        path: "description".into(),
                        before: Some(json!("x".repeat(200))),
                        after: Some(json!("y".repeat(200))),
                    }],
                    renamed_from: None,
                    next_runs: vec!["2026-11-29T03:00:00Z".into()],
                    suspended: false,
                    drift: None,
                }),
            })
            .collect();
        Plan {
            steps,
            ..Plan::default()
        }
    }

    fn report(plan: &Plan, outcomes: &[Outcome]) -> String {
        markdown(&Report {
            plan,
            outcomes,
            dry_run: true,
            baseline: Baseline::State,
            api_requests: 0,
            unmanaged: 0,
            revision: None,
        })
    }

    #[test]
    fn markdown_is_capped_and_says_what_was_cut() {
        let small = big_plan(3);
        let md = report(
            &small,
            &[Outcome::Planned, Outcome::Planned, Outcome::Planned],
        );
        assert_eq!(md.matches("<details>").count(), 3);
        assert!(!md.contains("Cut to fit"));

        for jobs in [200, 2000] {
            let plan = big_plan(jobs);
            let md = report(&plan, &vec![Outcome::Planned; jobs]);
            assert!(
                md.chars().count() <= MARKDOWN_CAP,
                "{jobs} jobs: {} characters",
                md.len()
            );
            assert!(md.contains("Cut to fit 60000 characters"), "{jobs} jobs");
            assert!(
                md.contains("**Plan: 0 to create, "),
                "the summary always survives"
            );
        }
    }

    #[test]
    fn multi_line_values_are_diffed_line_by_line() {
        let change = Change {
            path: "deployment.docker.customCommand".into(),
            before: Some(json!("a\nb\nc\n")),
            after: Some(json!("a\nB\nc\n")),
        };
        assert_eq!(
            change_lines(&change),
            [
                "~ deployment.docker.customCommand:",
                "      a",
                "    - b",
                "    + B",
                "      c"
            ]
        );
    }

    fn step(id: Option<&str>, file: &str, kind: Kind) -> Step {
        Step {
            key: id.map(|id| JobKey {
                team: None,
                project: "p".into(),
                id: id.into(),
            }),
            name: id.map(str::to_string),
            file: Some(file.into()),
            kind,
        }
    }

    fn write(changes: Vec<Change>, renamed: Option<&str>, suspended: bool) -> Write {
        Write {
            desired: 0,
            changes,
            renamed_from: renamed.map(str::to_string),
            next_runs: match suspended {
                true => Vec::new(),
                false => vec!["2026-11-29T03:05:00Z".into(), "2026-11-30T03:05:00Z".into()],
            },
            suspended,
            drift: None,
        }
    }

    fn change(path: &str, before: Option<Json>, after: Option<Json>) -> Change {
        Change {
            path: path.into(),
            before,
            after,
        }
    }

    fn api_failure(status: u16) -> crate::apply::Failure {
        crate::apply::Failure::Api(std::sync::Arc::new(crate::api::ApiError::Status {
            call: Box::new(crate::api::Call {
                method: "PUT",
                path: "/v1/projects/p/jobs/cron".into(),
                job: Some("x".into()),
            }),
            status,
            message: "no | good\nat all".into(),
            id: None,
            details: None,
            retry_after: None,
        }))
    }

    /// A step of every kind.
    fn every_step() -> Vec<Step> {
        let schedule = change("schedule", None, Some(json!("5 3 * * *")));
        let described = change("description", Some(json!("a")), Some(json!("b")));
        let mut corrects = write(vec![described.clone()], None, false);
        corrects.drift = Some(Drift::Changed(vec![described.clone()]));
        vec![
            step(
                Some("a"),
                "a.yaml",
                Kind::Create(write(vec![schedule.clone()], None, false)),
            ),
            step(
                Some("b"),
                "b.yaml",
                Kind::Update(write(vec![described.clone()], Some("old-b"), true)),
            ),
            step(Some("c"), "c.yaml", Kind::Update(corrects)),
            step(
                Some("d"),
                "d.yaml",
                Kind::Unchanged {
                    desired: 0,
                    drift: Some(Drift::Changed(vec![described.clone()])),
                },
            ),
            step(
                Some("e"),
                "e.yaml",
                Kind::Unchanged {
                    desired: 0,
                    drift: Some(Drift::Missing),
                },
            ),
            step(
                Some("f"),
                "f.yaml",
                Kind::Unchanged {
                    desired: 0,
                    drift: None,
                },
            ),
            step(
                Some("g"),
                "g.yaml",
                Kind::Delete {
                    changes: vec![change("schedule", Some(json!("1 * * * *")), None)],
                },
            ),
            step(Some("h"), "h.yaml", Kind::Orphan),
            step(
                None,
                "i.yaml",
                Kind::Invalid {
                    reason: "spec.schedule: not a | cron".into(),
                },
            ),
            step(Some("j"), "j.yaml", Kind::Unverified { desired: 0 }),
            step(
                Some("k"),
                "k.yaml",
                Kind::Rejected {
                    desired: 0,
                    status: 422,
                    message: "bad image".into(),
                },
            ),
            step(
                Some("l"),
                "l.yaml",
                Kind::Create(write(vec![schedule.clone()], None, false)),
            ),
            step(
                Some("m"),
                "m.yaml",
                Kind::Create(write(vec![schedule], None, false)),
            ),
        ]
    }

    /// A step of every kind, and every outcome a step can have.
    fn every_kind(prune_blocked: bool) -> (Plan, Vec<Outcome>) {
        let steps = every_step();
        let outcomes = vec![
            Outcome::Applied,
            Outcome::Failed(api_failure(503)),
            Outcome::Applied,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::NotAttempted,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Rejected(api_failure(422)),
            Outcome::NotAttempted,
        ];
        let blocks = match prune_blocked {
            true => vec![PruneBlock {
                file: "x|y.yaml".into(),
                reason: "cannot parse".into(),
            }],
            false => Vec::new(),
        };
        let plan = Plan {
            steps,
            prune_blocked: blocks,
            ..Plan::default()
        };
        (plan, outcomes)
    }

    /// Every renderer the plan has, on every kind of step: text (plain and
    /// coloured), Markdown and GitHub commands, applied and dry-run.
    fn render_every_kind() -> String {
        let mut out = String::new();
        for (blocked, dry_run) in [(false, false), (true, true)] {
            let (plan, outcomes) = every_kind(blocked);
            let outcomes = match dry_run {
                true => vec![Outcome::Planned; outcomes.len()],
                false => outcomes,
            };
            let report = Report {
                plan: &plan,
                outcomes: &outcomes,
                dry_run,
                baseline: Baseline::State,
                api_requests: 7,
                unmanaged: 0,
                revision: None,
            };
            out.push_str(&text(&report, Colour(false)));
            out.push_str("=====\n");
            out.push_str(&text(&report, Colour(true)));
            out.push_str("=====\n");
            out.push_str(&markdown(&report));
            out.push_str("=====\n");
            out.push_str(&super::super::github::plan(&report, &[]));
            out.push_str("=====\n");
        }
        out
    }

    /// Byte for byte: the snapshot was taken from the renderers before
    /// they were split into one function per part.
    #[test]
    fn every_kind_of_step_renders_as_its_snapshot() {
        insta::assert_snapshot!("every_kind", render_every_kind());
    }
}
