//! Diagnostics as text (one block each, with the source line and a caret,
//! like rustc) and as the JSON report of `nfcron validate --output json`.

use std::collections::HashMap;

use serde_json::json;

use super::Colour;
use crate::manifest::diagnostic::{Diagnostic, Severity};
use crate::manifest::Catalog;
use crate::source::SourceFile;

/// The text report: every diagnostic, then the summary line.
pub fn text(catalog: &Catalog, files: &[SourceFile], colour: Colour) -> String {
    let sources: HashMap<&str, &str> = files
        .iter()
        .filter_map(|f| {
            f.content
                .as_ref()
                .ok()
                .map(|t| (f.path.as_str(), t.as_str()))
        })
        .collect();
    let mut out = String::new();
    for d in &catalog.diagnostics {
        block(&mut out, d, sources.get(d.file.as_str()).copied(), colour);
        out.push('\n');
    }
    out.push_str(&summary(catalog));
    out.push('\n');
    out
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

fn block(out: &mut String, d: &Diagnostic, source: Option<&str>, colour: Colour) {
    let (label, paint) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    out.push_str(&format!(
        "{}{}\n",
        colour.paint(paint, &format!("{label}[{}]", d.code)),
        colour.paint("1", &format!(": {}", d.message))
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
    if let Some(line) = source.and_then(|s| s.lines().nth(d.pos.line.saturating_sub(1) as usize)) {
        let shown = if d.sensitive {
            mask(line)
        } else {
            line.to_string()
        };
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
        out.push_str(&format!("{gutter} = field: {}\n", d.path));
    }
}

/// A line of a secret field shows its key, never its value.
fn mask(line: &str) -> String {
    match line.find(':') {
        Some(i) => format!("{}: (sensitive)", &line[..i]),
        None => "(sensitive)".to_string(),
    }
}

/// The JSON report (format_version 1).
pub fn json(catalog: &Catalog) -> String {
    let diagnostics: Vec<_> = catalog
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "file": d.file,
                "line": d.pos.line,
                "column": d.pos.column,
                "path": d.path,
                "severity": d.severity.as_str(),
                "code": d.code.as_str(),
                "message": d.message,
            })
        })
        .collect();
    let report = json!({
        "format_version": 1,
        "files": catalog.files,
        "jobs": catalog.jobs.len(),
        "valid": catalog.valid(),
        "invalid": catalog.invalid(),
        "diagnostics": diagnostics,
    });
    let mut text = serde_json::to_string_pretty(&report).expect("a JSON value serialises");
    text.push('\n');
    text
}
