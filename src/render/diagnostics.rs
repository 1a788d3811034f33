//! Diagnostics as text (one block each, with the source line and a caret,
//! like rustc) and as the JSON report of `nfcron validate --output json`.

use std::collections::HashMap;

use serde::Serialize;

use super::Colour;
use crate::manifest::diagnostic::{Code, Diagnostic, Severity};
use crate::manifest::mask::{self, LineMask};
use crate::manifest::Catalog;
use crate::source::{display_text, SourceFile};

/// The text report: every diagnostic, then the summary line.
///
/// Linear in the size of the files and the number of diagnostics: a file's
/// lines (and their masks) are found once, the first time a diagnostic
/// points into it, not once per diagnostic.
pub fn text(catalog: &Catalog, files: &[SourceFile], colour: Colour) -> String {
    let mut sources: HashMap<&str, Source<'_>> = files
        .iter()
        .filter_map(|f| {
            f.content
                .as_ref()
                .ok()
                .map(|t| (f.path.as_str(), Source::new(t)))
        })
        .collect();
    let mut out = String::new();
    for d in &catalog.diagnostics {
        let line = sources
            .get_mut(d.file.as_str())
            .and_then(|s| s.line(d.pos.line));
        block(&mut out, d, line, colour);
        out.push('\n');
    }
    out.push_str(&summary(catalog));
    out.push('\n');
    out
}

/// A file's text, its lines and their masks, indexed on first use.
struct Source<'a> {
    text: &'a str,
    lines: Option<(Vec<&'a str>, Vec<LineMask>)>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        Source { text, lines: None }
    }

    /// Line `number` (1-based) and its mask.
    fn line(&mut self, number: u32) -> Option<(&'a str, LineMask)> {
        let text = self.text;
        let (lines, masks) = self
            .lines
            .get_or_insert_with(|| (text.lines().collect(), mask::masks(text)));
        let i = (number as usize).checked_sub(1)?;
        Some((*lines.get(i)?, *masks.get(i)?))
    }
}

/// `N files, N jobs: N valid, N invalid`
pub fn summary(catalog: &Catalog) -> String {
    format!(
        "{} files, {} jobs: {} valid, {} invalid",
        catalog.files,
        catalog.jobs.len(),
        catalog.valid(),
        catalog.invalid()
    )
}

fn block(out: &mut String, d: &Diagnostic, source: Option<(&str, LineMask)>, colour: Colour) {
    let (label, paint) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    out.push_str(&format!(
        "{}{}\n",
        colour.paint(paint, &format!("{label}[{}]", d.code)),
        colour.paint("1", &format!(": {}", display_text(&d.message)))
    ));
    let line_no = d.pos.line.to_string();
    let gutter = " ".repeat(line_no.len());
    out.push_str(&format!(
        "{gutter}{} {}:{}:{}\n",
        colour.paint("1;34", "-->"),
        d.file,
        d.pos.line,
        d.pos.column
    ));
    if let Some((line, masked)) = source {
        // Every code, YAML syntax errors included: the line's own place
        // decides, and a diagnostic in a secret field hides at least the
        // value.
        let shown = if d.sensitive || stray_entry(d) {
            masked.secret().apply(line)
        } else {
            masked.mask.apply(line)
        };
        // A line may hold ESC or other controls: never sent raw.
        let shown = display_text(&shown).into_owned();
        let bar = colour.paint("1;34", "|");
        let caret_at: String = shown
            .chars()
            .take(d.pos.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let visible = shown
            .chars()
            .count()
            .saturating_sub(d.pos.column.saturating_sub(1) as usize)
            .max(1);
        let width = (d.width as usize).clamp(1, visible);
        out.push_str(&format!("{gutter} {bar}\n"));
        out.push_str(&format!(
            "{} {bar} {}\n",
            colour.paint("1;34", &line_no),
            shown
        ));
        out.push_str(&format!(
            "{gutter} {bar} {caret_at}{}\n",
            colour.paint(paint, &"^".repeat(width))
        ));
    }
    if !d.path.is_empty() {
        out.push_str(&format!("{gutter} = field: {}\n", display_text(&d.path)));
    }
}

/// An unknown field that is no field's misspelling (no "did you mean"):
/// often a secret's entry indented to the wrong level. The message names
/// the key; the value is not needed, and is hidden.
fn stray_entry(d: &Diagnostic) -> bool {
    d.code == Code::UnknownField && !d.message.contains("; did you mean `")
}

/// The JSON report (format_version 1).
///
/// Written straight from borrowed fields, with no JSON value tree in
/// between: 30,000 diagnostics cost their text, not ten times it.
pub fn json(catalog: &Catalog) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        format_version: u32,
        files: usize,
        jobs: usize,
        valid: usize,
        invalid: usize,
        diagnostics: Vec<Entry<'a>>,
    }
    #[derive(Serialize)]
    struct Entry<'a> {
        file: &'a str,
        line: u32,
        column: u32,
        path: &'a str,
        severity: &'static str,
        code: &'static str,
        message: &'a str,
    }
    let report = Report {
        format_version: 1,
        files: catalog.files,
        jobs: catalog.jobs.len(),
        valid: catalog.valid(),
        invalid: catalog.invalid(),
        diagnostics: catalog
            .diagnostics
            .iter()
            .map(|d| Entry {
                file: &d.file,
                line: d.pos.line,
                column: d.pos.column,
                path: &d.path,
                severity: d.severity.as_str(),
                code: d.code.as_str(),
                message: &d.message,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).expect("plain data serialises");
    text.push('\n');
    text
}
