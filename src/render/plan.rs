//! A plan and its results as text (Terraform-like), JSON (format_version 1)
//! and Markdown (for `$GITHUB_STEP_SUMMARY` or a pull-request comment).
//!
//! Only shown forms reach here: spec values with secrets already replaced by
//! fingerprints.

use serde_json::{json, Value as Json};

use super::Colour;
use crate::apply::Outcome;
use crate::plan::{Action, Change, Plan, Step};

/// Where the "before" side of the plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    State,
    Empty,
}

impl Baseline {
    fn as_str(self) -> &'static str {
        match self {
            Baseline::State => "state",
            Baseline::Empty => "empty",
        }
    }
}

pub struct Report<'a> {
    pub plan: &'a Plan,
    /// One per step.
    pub outcomes: &'a [Outcome],
    pub dry_run: bool,
    pub baseline: Baseline,
    pub api_requests: u64,
}

impl Report<'_> {
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed { .. }))
            .count()
    }

    fn result(&self, i: usize) -> &'static str {
        match &self.outcomes[i] {
            Outcome::Planned => "planned",
            Outcome::Applied => "applied",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped => "skipped",
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

fn address(step: &Step) -> String {
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
    }
}

fn paint(action: Action) -> &'static str {
    match action {
        Action::Create => "32",
        Action::Update => "33",
        Action::Delete | Action::Invalid => "31",
        Action::Orphan => "35",
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
                lines.push(format!("    {sign} {}", op.value().trim_end_matches('\n')));
            }
            lines
        }
    }
}

pub fn summary_line(plan: &Plan) -> String {
    format!(
        "Plan: {} to create, {} to update, {} to delete, {} unchanged, {} invalid.",
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Delete),
        plan.count(Action::Unchanged),
        plan.count(Action::Invalid)
    )
}

pub fn text(report: &Report<'_>, colour: Colour) -> String {
    let mut out = String::new();
    for step in report
        .plan
        .steps
        .iter()
        .filter(|s| s.action != Action::Unchanged)
    {
        let head = format!("{} {}", symbol(step.action), step.action.as_str());
        out.push_str(&colour.paint(paint(step.action), &head));
        out.push(' ');
        out.push_str(&address(step));
        if let Some(file) = &step.file {
            out.push_str(&format!(" ({file})"));
        }
        if let Some(old) = &step.renamed_from {
            out.push_str(&format!(" (renamed from {old})"));
        }
        match step.action {
            Action::Orphan => out.push_str(": recorded in state, no manifest; --prune deletes it"),
            Action::Invalid => out.push_str(&format!(
                ": {}",
                step.reason.as_deref().unwrap_or("invalid manifest")
            )),
            _ => {}
        }
        out.push('\n');
        for change in &step.changes {
            for line in change_lines(change) {
                out.push_str(&format!("    {line}\n"));
            }
        }
        if !step.next_runs.is_empty() {
            out.push_str(&format!("    next runs: {}\n", step.next_runs.join(", ")));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary_line(report.plan));
    out.push('\n');
    if !report.dry_run {
        let applied = report
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Applied))
            .count();
        let failures: Vec<String> = report
            .plan
            .steps
            .iter()
            .zip(report.outcomes)
            .filter_map(|(s, o)| match o {
                Outcome::Failed { message, .. } => {
                    Some(format!("  failed {}: {message}\n", address(s)))
                }
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            out.push('\n');
            out.push_str(&failures.concat());
        }
        out.push_str(&format!(
            "Apply: {applied} applied, {} failed, {} API requests.\n",
            report.failed(),
            report.api_requests
        ));
    }
    out
}

pub fn json(report: &Report<'_>) -> String {
    let plan = report.plan;
    let jobs: Vec<Json> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let error = match (&report.outcomes[i], s.action) {
                (Outcome::Failed { status, message }, _) => json!({"status": status, "message": message}),
                (_, Action::Invalid) => json!({"status": null, "message": s.reason.as_deref().unwrap_or("invalid manifest")}),
                _ => Json::Null,
            };
            json!({
                "team": s.key.as_ref().and_then(|k| k.team.clone()),
                "project": s.key.as_ref().map(|k| k.project.clone()),
                "id": s.key.as_ref().map(|k| k.id.clone()),
                "name": s.name,
                "file": s.file,
                "action": s.action.as_str(),
                "result": report.result(i),
                "changes": s.changes.iter().map(|c| json!({"path": c.path, "before": c.before, "after": c.after})).collect::<Vec<_>>(),
                "renamed_from": s.renamed_from,
                "next_runs": s.next_runs,
                "error": error,
            })
        })
        .collect();
    let report_json = json!({
        "format_version": 1,
        "dry_run": report.dry_run,
        "baseline": report.baseline.as_str(),
        "summary": {
            "create": plan.count(Action::Create),
            "update": plan.count(Action::Update),
            "delete": plan.count(Action::Delete),
            "orphan": plan.count(Action::Orphan),
            "unchanged": plan.count(Action::Unchanged),
            "invalid": plan.count(Action::Invalid),
            "failed": report.failed(),
            "api_requests": report.api_requests,
        },
        "jobs": jobs,
    });
    let mut text = serde_json::to_string_pretty(&report_json).expect("JSON values serialise");
    text.push('\n');
    text
}

/// Markdown is capped at this many characters (GitHub's step summary and
/// comment limits are larger; this leaves room around it).
pub const MARKDOWN_CAP: usize = 60_000;

pub fn markdown(report: &Report<'_>) -> String {
    let plan = report.plan;
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut head = String::from("### nfcron plan\n\n");
    head.push_str(&format!("**{}**", summary_line(plan)));
    if !report.dry_run {
        head.push_str(&format!(
            " Applied with {} failed, {} API requests.",
            report.failed(),
            report.api_requests
        ));
    }
    head.push_str("\n\n");
    let shown: Vec<(usize, &Step)> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.action != Action::Unchanged)
        .collect();
    if shown.is_empty() {
        head.push_str("No changes.\n");
        return head;
    }
    let mut rows =
        String::from("| action | job | file | result | detail |\n|---|---|---|---|---|\n");
    for (i, s) in &shown {
        let detail = match s.action {
            Action::Invalid => s.reason.clone().unwrap_or_default(),
            Action::Orphan => "in state, no manifest".into(),
            _ => match (&report.outcomes[*i], &s.renamed_from) {
                (Outcome::Failed { message, .. }, _) => message.clone(),
                (_, Some(old)) => format!("{} field(s); renamed from `{old}`", s.changes.len()),
                _ => format!("{} field(s)", s.changes.len()),
            },
        };
        rows.push_str(&format!(
            "| {} {} | `{}` | `{}` | {} | {} |\n",
            symbol(s.action),
            s.action.as_str(),
            cell(&address(s)),
            cell(s.file.as_deref().unwrap_or("")),
            report.result(*i),
            cell(&detail)
        ));
    }
    let mut details = Vec::new();
    for (_, s) in shown.iter().filter(|(_, s)| !s.changes.is_empty()) {
        let mut d = format!(
            "<details><summary>{} {} <code>{}</code></summary>\n\n```diff\n",
            symbol(s.action),
            s.action.as_str(),
            address(s)
        );
        for change in &s.changes {
            for line in change_lines(change) {
                let line = line.replacen("~ ", "! ", 1);
                d.push_str(&line);
                d.push('\n');
            }
        }
        if !s.next_runs.is_empty() {
            d.push_str(&format!("# next runs: {}\n", s.next_runs.join(", ")));
        }
        d.push_str("```\n\n</details>\n\n");
        details.push(d);
    }
    let mut out = head;
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
            "\n_Cut to fit {MARKDOWN_CAP} characters: {} of {} rows and every diff left out; run with `--output text` for the full plan._\n",
            shown.len() - kept.saturating_sub(2),
            shown.len()
        ));
        return out;
    }
    out.push_str(&rows);
    out.push('\n');
    let total = details.len();
    let mut cut = 0;
    for d in details {
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
