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
use crate::plan::{Action, Drift, Step};

use super::plan::{address, Report};

/// The message part of a workflow command. Other control characters (ESC
/// would recolour the log) are written as `\u{1b}`, as the text output does;
/// a `##[` is broken as in [`inert`], so that no reader of the line can take
/// it for a second command.
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
    break_legacy_markers(&out).into_owned()
}

/// What `##[` becomes: the second `#` written as a JSON/Unicode escape, so
/// that a JSON log line still decodes to the very text it held.
const LEGACY_BROKEN: &str = "#\\u0023[";

/// What a `:` that would open a line becomes.
const COLON_BROKEN: &str = "\\u003a";

fn break_legacy_markers(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("##[") {
        // One pass is enough: the replacement neither ends in `#` nor has
        // `#[` after its first `#`, so no new `##[` can form across it.
        text.replace("##[", LEGACY_BROKEN).into()
    } else {
        text.into()
    }
}

/// Text that is not a workflow command nfcron means (plan lines, diffs,
/// file names, API messages, log lines), made so that GitHub's runner reads
/// no command in it: the runner splits its input at `\n` and `\r`, takes a
/// line that starts with `::` after leading whitespace for a command, and
/// one that holds `##[` anywhere for a legacy one. Such a line gets its
/// opening `:` written `\u003a` and each `##[` written `#\u0023[`; all other
/// text is kept byte for byte, line breaks included.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        let line = break_legacy_markers(line);
        let body = line.trim_start();
        if body.starts_with("::") {
            out.push_str(&line[..line.len() - body.len()]);
            out.push_str(COLON_BROKEN);
            out.push_str(&body[1..]);
        } else {
            out.push_str(&line);
        }
        let Some(brk) = tail.chars().next() else {
            return out;
        };
        out.push(brk);
        rest = &tail[brk.len_utf8()..];
    }
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
    out.push_str(&inert(&super::diagnostics::summary(catalog)));
    out.push('\n');
    out
}

/// `nfcron reconcile --output github`: a command per diagnostic, a
/// `::notice` per job created, updated or deleted (`::error` when the API
/// refused it or it failed), a `::warning` per drifted job and for blocked
/// pruning; then the plain text plan for the log.
pub fn plan(report: &Report<'_>, diagnostics: &[Diagnostic]) -> String {
    let mut out: String = diagnostics.iter().map(diagnostic).collect();
    for (i, step) in report.plan.steps.iter().enumerate() {
        if let Some((level, what, message)) = step_command(report, i, step) {
            let file = step.file.clone().unwrap_or_default();
            let title = format!("nfcron {what}");
            out.push_str(&command(
                level,
                &[("file", file), ("title", title)],
                &message,
            ));
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
    out.push_str(&inert(&super::plan::text(report, super::Colour(false))));
    out
}

/// The command step `i` gets, as its level, the word of its title and its
/// message; `None` for a step with nothing to say.
fn step_command(
    report: &Report<'_>,
    i: usize,
    step: &Step,
) -> Option<(&'static str, &'static str, String)> {
    let action = step.action();
    let who = address(step);
    Some(match (&report.outcomes[i], action) {
        (Outcome::Failed(f), _) => (
            "error",
            "failed",
            format!("{} {who} failed: {}", action.as_str(), f.message()),
        ),
        (Outcome::Rejected(f), _) => (
            "error",
            "rejected",
            format!("the API refused {who}: {}", f.message()),
        ),
        (Outcome::NotAttempted, _) => (
            "error",
            "not attempted",
            format!("{who} was not written: the state file cannot be written"),
        ),
        (_, Action::Create | Action::Update | Action::Delete) => {
            ("notice", action.as_str(), write_notice(step, report.dry_run))
        }
        (_, Action::Rejected) => (
            "error",
            "rejected",
            format!(
                "the API refused {who} earlier; not sent again until its manifest changes (or reconcile --retry-rejected)"
            ),
        ),
        (_, Action::Unchanged) if step.drift().is_some_and(Drift::found) => {
            let fields = match step.drift() {
                Some(Drift::Changed(changes)) => {
                    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
                    format!("changed outside nfcron: {}", paths.join(", "))
                }
                _ => "deleted outside nfcron".to_string(),
            };
            ("warning", "drift", format!("{who} drifted: {fields}"))
        }
        _ => return None,
    })
}

/// `would update acme/p/job: schedule; next run ...` for a write.
fn write_notice(step: &Step, dry_run: bool) -> String {
    let action = step.action();
    let verb = if dry_run { "would " } else { "" };
    let mut message = format!("{verb}{} {}", action.as_str(), address(step));
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
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::diagnostic::Code;
    use crate::manifest::yaml::Span;

    /// Lines the runner would take for a command: split at `\n` and `\r`,
    /// `::` after leading whitespace, or `##[` anywhere.
    fn runner_commands(text: &str) -> Vec<&str> {
        text.split(['\n', '\r'])
            .filter(|line| line.trim_start().starts_with("::") || line.contains("##["))
            .collect()
    }

    /// Inverse of `inert`, for the property that nothing else changed.
    fn revive(text: &str) -> String {
        text.replace(LEGACY_BROKEN, "##[")
            .split('\n')
            .map(|line| {
                let body = line.trim_start();
                match body.strip_prefix(COLON_BROKEN) {
                    Some(rest) if rest.starts_with(':') => {
                        format!("{}:{rest}", &line[..line.len() - body.len()])
                    }
                    _ => line.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn inert_text_holds_no_command_the_runner_would_read() {
        let hostile =
            "  ::stop-commands::abc\nx ##[add-mask]y\r::error::z\n\u{a0}::warning::w\n###[a]";
        assert_eq!(runner_commands(hostile).len(), 5);
        let safe = inert(hostile);
        assert_eq!(runner_commands(&safe), Vec::<&str>::new(), "{safe}");
        assert_eq!(
            safe,
            "  \\u003a:stop-commands::abc\nx #\\u0023[add-mask]y\r\\u003a:error::z\n\u{a0}\\u003a:warning::w\n##\\u0023[a]"
        );
        assert_eq!(inert("plain: text\n"), "plain: text\n");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(22),
            failure_persistence: None,
            ..Default::default()
        })]
        #[test]
        fn no_content_survives_inert_as_a_command(
            text in "([:#\\[\\] \t\r\n\u{a0}\u{2003}a-z%,=]|::|##\\[|\\\\){0,60}"
        ) {
            let safe = inert(&text);
            proptest::prop_assert!(runner_commands(&safe).is_empty(), "{:?} -> {:?}", text, safe);
            if !text.contains('\\') && !text.contains('\r') {
                proptest::prop_assert_eq!(revive(&safe), text);
            }
        }

        #[test]
        fn annotation_data_is_one_line_with_no_second_command(text in "\\PC{0,40}|[:#\\[\\]\r\n%]{0,40}") {
            let line = command("notice", &[("file", text.clone())], &text);
            proptest::prop_assert_eq!(line.matches('\n').count(), 1);
            proptest::prop_assert!(!line.contains('\r') && !line.contains("##["), "{:?}", line);
        }
    }

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
