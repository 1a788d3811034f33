//! GitHub Actions workflow commands (`--output github`): one
//! `::error`/`::warning` per diagnostic, so that a pull request shows each
//! problem on its line, and one `::notice` per job a plan changes.
//!
//! Values are escaped as GitHub's runner reads them back
//! (`toolkit/packages/core/src/command.ts`): in the message `%`, `\r` and
//! `\n`; in properties also `:` and `,`. Without it a file named `a,line=1.yaml`
//! or a message holding a newline could forge properties or a second command.
//! Only shown forms reach here, as in the other renderers: messages never hold
//! a secret value, and plan notices name changed fields, never their values.

use crate::apply::Outcome;
use crate::manifest::diagnostic::{Diagnostic, Severity};
use crate::manifest::Catalog;
use crate::plan::{Action, Drift};

use super::plan::{address, Report};

/// The message part of a workflow command. Other control characters (ESC
/// would recolour the log) are written as `\u{1b}`, as the text output does.
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if c.is_control() && c != '\t' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// A property value (`file=`, `title=`): the data escapes plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::name key=value,...::message`, properties in the order given, empty
/// ones left out.
fn command(name: &str, properties: &[(&str, String)], message: &str) -> String {
    let props: Vec<String> = properties
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", escape_property(v)))
        .collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!(
        "::{name}{sep}{}::{}\n",
        props.join(","),
        escape_data(message)
    )
}

/// One command for a diagnostic:
/// `::error file=F,line=L,col=C,title=nfcron <code>::message`.
pub fn diagnostic(d: &Diagnostic) -> String {
    let name = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let known = |n: u32| if n == 0 { String::new() } else { n.to_string() };
    command(
        name,
        &[
            ("file", d.file.clone()),
            ("line", known(d.pos.line)),
            // A column means nothing without its line.
            (
                "col",
                if d.pos.line == 0 {
                    String::new()
                } else {
                    known(d.pos.column)
                },
            ),
            ("title", format!("nfcron {}", d.code)),
        ],
        &d.message,
    )
}

/// `nfcron validate --output github`: a command per diagnostic, then the
/// summary line (plain text: the log shows it, GitHub ignores it).
pub fn diagnostics(catalog: &Catalog) -> String {
    let mut out: String = catalog.diagnostics.iter().map(diagnostic).collect();
    out.push_str(&super::diagnostics::summary(catalog));
    out.push('\n');
    out
}

/// `nfcron reconcile --output github`: a command per diagnostic, a
/// `::notice` per job created, updated or deleted (`::error` when the API
/// refused it or it failed), a `::warning` per drifted job and for blocked
/// pruning; then the plain text plan for the log.
pub fn plan(report: &Report<'_>, diagnostics: &[Diagnostic]) -> String {
    let mut out: String = diagnostics.iter().map(diagnostic).collect();
    let verb = if report.dry_run { "would " } else { "" };
    for (i, step) in report.plan.steps.iter().enumerate() {
        let action = step.action();
        let file = step.file.clone().unwrap_or_default();
        let who = address(step);
        let title = |what: &str| format!("nfcron {what}");
        match (&report.outcomes[i], action) {
            (Outcome::Failed(f), _) => out.push_str(&command(
                "error",
                &[("file", file), ("title", title("failed"))],
                &format!("{} {who} failed: {}", action.as_str(), f.message()),
            )),
            (Outcome::Rejected(f), _) => out.push_str(&command(
                "error",
                &[("file", file), ("title", title("rejected"))],
                &format!("the API refused {who}: {}", f.message()),
            )),
            (Outcome::NotAttempted, _) => out.push_str(&command(
                "error",
                &[("file", file), ("title", title("not attempted"))],
                &format!("{who} was not written: the state file cannot be written"),
            )),
            (_, Action::Create | Action::Update | Action::Delete) => {
                let mut message = format!("{verb}{} {who}", action.as_str());
                if let Some(old) = step.renamed_from() {
                    message.push_str(&format!(" (renamed from {old})"));
                }
                let fields: Vec<&str> = step.changes().iter().map(|c| c.path.as_str()).collect();
                if action == Action::Update && !fields.is_empty() {
                    message.push_str(&format!(": {}", fields.join(", ")));
                }
                if step.drift().is_some() {
                    message.push_str(" (corrects drift)");
                }
                if step.suspended() {
                    message.push_str("; suspended, no next run");
                } else if let Some(next) = step.next_runs().first() {
                    message.push_str(&format!("; next run {next}"));
                }
                out.push_str(&command(
                    "notice",
                    &[("file", file), ("title", title(action.as_str()))],
                    &message,
                ));
            }
            (_, Action::Rejected) => out.push_str(&command(
                "error",
                &[("file", file), ("title", title("rejected"))],
                &format!(
                    "the API refused {who} earlier; not sent again until its manifest changes (or reconcile --retry-rejected)"
                ),
            )),
            (_, Action::Unchanged) if step.drift().is_some_and(Drift::found) => {
                let fields = match step.drift() {
                    Some(Drift::Changed(changes)) => {
                        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
                        format!("changed outside nfcron: {}", paths.join(", "))
                    }
                    _ => "deleted outside nfcron".to_string(),
                };
                out.push_str(&command(
                    "warning",
                    &[("file", file), ("title", title("drift"))],
                    &format!("{who} drifted: {fields}"),
                ));
            }
            _ => {}
        }
    }
    for block in &report.plan.prune_blocked {
        out.push_str(&command(
            "warning",
            &[
                ("file", block.file.clone()),
                ("title", "nfcron prune blocked".into()),
            ],
            &format!("nothing is deleted until this is fixed: {}", block.reason),
        ));
    }
    out.push_str(&super::plan::text(report, super::Colour(false)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::diagnostic::Code;
    use crate::manifest::yaml::Span;

    #[test]
    fn properties_and_data_are_escaped_as_github_reads_them() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a%b\r\nc:d,e"), "a%25b%0D%0Ac%3Ad%2Ce");
        assert_eq!(escape_data("\u{1b}[31m"), "\\u{1b}[31m");
    }

    #[test]
    fn a_diagnostic_is_one_command_with_file_line_col_and_code() {
        let mut d = Diagnostic::error(Code::Cron, Span::default(), "spec.schedule", "bad\nthing");
        d.file = "jobs.d/a,b:c%.yaml".into();
        d.pos.line = 7;
        d.pos.column = 13;
        assert_eq!(
            diagnostic(&d),
            "::error file=jobs.d/a%2Cb%3Ac%25.yaml,line=7,col=13,title=nfcron cron::bad%0Athing\n"
        );
        d.severity = Severity::Warning;
        d.pos.line = 0;
        assert_eq!(
            diagnostic(&d),
            "::warning file=jobs.d/a%2Cb%3Ac%25.yaml,title=nfcron cron::bad%0Athing\n"
        );
    }
}
