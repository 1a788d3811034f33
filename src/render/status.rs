//! The status page as HTML: one self-contained document (inline CSS, no
//! script, no external asset) drawn from a [`View`].
//!
//! Every value is spliced through maud's `(expr)`, which HTML-escapes it:
//! a job name, file path or API message holding markup shows as text. The
//! only unescaped text is the constant style sheet. The listener adds a
//! `Content-Security-Policy` that forbids scripts anyway.

use jiff::Timestamp;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::status::{Budget, LastRun, Row, RunOutcome, Source, View};

/// Rows drawn at most; problems sort first, so what is left out is in sync.
pub const MAX_ROWS: usize = 1000;

/// Seconds between the browser's reloads.
pub const REFRESH_SECONDS: u32 = 10;

/// Next runs shown per job.
const NEXT_RUNS: usize = 3;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2933; background: #f5f7fa; }
h1 { margin: 0; font-size: 22px; }
h2 { margin: 0 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: #52606d; }
header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; margin-bottom: 18px; }
.muted { color: #7b8794; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 12px; margin-bottom: 18px; }
.card { background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; padding: 12px 14px; }
.card p { margin: 2px 0; }
.big { font-size: 20px; font-weight: 600; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, "DejaVu Sans Mono", monospace; font-size: 12.5px; word-break: break-all; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; }
th, td { text-align: left; vertical-align: top; padding: 8px 10px; border-bottom: 1px solid #e4e7eb; }
th { background: #f0f4f8; font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #52606d; }
tbody tr:hover { background: #f8fafc; }
.name { color: #52606d; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.in-sync { background: #e3f9e5; color: #05400a; }
.drifted { background: #fff3c4; color: #5c3c00; }
.rejected, .failed { background: #ffe3e3; color: #610404; }
.invalid { background: #f2ebfe; color: #44056e; }
.unverified, .orphaned { background: #e4e7eb; color: #323f4b; }
.detail { margin-top: 4px; color: #52606d; font-size: 12.5px; max-width: 46em; overflow-wrap: anywhere; }
.pills { display: flex; flex-wrap: wrap; gap: 6px; }
ol.runs { margin: 0; padding-left: 18px; }
.bad { color: #a61b1b; font-weight: 600; }
.ok { color: #0e7c16; font-weight: 600; }
"#;

/// The whole page, as of `now`.
pub fn page(view: &View, now: Timestamp) -> String {
    let shown = view.rows.len().min(MAX_ROWS);
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "nfcron status" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "nfcron status" }
                    span.muted {
                        "drawn " (when(now)) " · refreshes every " (REFRESH_SECONDS) " s · up since " (when(view.started_at))
                    }
                }
                section.cards {
                    div.card id="source" { h2 { "Source" } (source(view)) }
                    div.card id="last-run" { h2 { "Last run" } (last_run(view.last_run.as_ref(), now)) }
                    div.card id="budget" { h2 { "API budget" } (budget(view.budget.as_ref(), now)) }
                    div.card id="summary" {
                        h2 { "Jobs" }
                        p.big { (view.rows.len()) }
                        div.pills {
                            @for (state, n) in view.counts() {
                                span class={ "state " (state.token()) } data-count=(n) { (n) " " (state.label()) }
                            }
                        }
                    }
                }
                @if let Some(leader) = &view.standby {
                    p id="standby" {
                        "Standby: another replica (" (leader) ") leads and applies. This one follows the source, relays webhooks to it and takes over if it goes; the table is what this replica last planned."
                    }
                }
                @if view.planned_at.is_none() {
                    p id="no-run" { "No run has planned yet: the first reconcile has not completed." }
                }
                table id="jobs" {
                    thead {
                        tr {
                            th { "Job" }
                            th { "Source file" }
                            th { "State" }
                            th { "Last applied" }
                            th { "Next runs (UTC)" }
                        }
                    }
                    tbody {
                        @for row in &view.rows[..shown] { (job_row(row, now)) }
                    }
                }
                @if view.rows.len() > shown {
                    p.muted id="not-shown" {
                        (view.rows.len() - shown) " more jobs not shown (the table lists " (MAX_ROWS) ", problems first)."
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// Text from manifests as the page may show it: control and
/// bidirectional-override characters escaped (a name holding U+202E would
/// otherwise draw the text after it reversed), at most 1 KiB.
fn visible(text: &str) -> String {
    crate::api::shown(text, 1024)
}

fn job_row(row: &Row, now: Timestamp) -> Markup {
    html! {
        tr data-job=[row.job.as_deref()] data-state=(row.state.token()) {
            td {
                @match &row.job {
                    Some(job) => span.mono.job { (job) },
                    None => span.muted { "(no id)" },
                }
                @if let Some(name) = &row.name { div.name { (visible(name)) } }
            }
            td {
                @if let Some(file) = &row.file { code.file { (file) } }
            }
            td {
                span class={ "state " (row.state.token()) } { (row.state.label()) }
                @if let Some(detail) = &row.detail { div.detail { (visible(detail)) } }
            }
            td {
                @match &row.applied {
                    Some(applied) => {
                        div { (shown_time(&applied.at)) }
                        @if let Some(revision) = &applied.revision {
                            div { "rev " code title=(revision) { (short(revision)) } }
                        }
                        div.muted title="keyed digest of the applied spec (secrets are never shown)" {
                            "spec " code { (applied.fingerprint) }
                        }
                    }
                    None => span.muted { "never" },
                }
            }
            td {
                @if row.suspended {
                    span.muted { "suspended" }
                } @else if let Some(schedule) = &row.schedule {
                    ol.runs {
                        @for run in schedule.next_runs(now, NEXT_RUNS) {
                            li { (minute(run)) }
                        }
                    }
                } @else {
                    span.muted { "—" }
                }
            }
        }
    }
}

fn source(view: &View) -> Markup {
    html! {
        @match &view.source {
            Source::Dir(path) => p { "directory " code { (path) } },
            Source::Git { branch, path } => p {
                "Git, branch " code { (branch.as_deref().unwrap_or("(the remote's default)")) }
                @if !path.is_empty() { ", path " code { (path) } }
            },
        }
        @match &view.revision {
            Some(revision) => p { "revision " code id="revision" title=(revision) { (revision) } },
            None => p.muted { "no revision (a directory has none)" },
        }
    }
}

fn last_run(run: Option<&LastRun>, now: Timestamp) -> Markup {
    let Some(run) = run else {
        return html! { p.muted { "none yet" } };
    };
    html! {
        @match &run.outcome {
            RunOutcome::Completed { created, updated, deleted, unchanged, invalid, rejected, failed, drift_read, api_requests } => {
                p {
                    @if *failed > 0 { span.bad { "completed with failures" } } @else { span.ok { "completed" } }
                    " " (ago(run.ended_at, now)) " in " (millis(run.took)) " ms"
                }
                p id="run-counts" {
                    (created) " created, " (updated) " updated, " (deleted) " deleted, "
                    (unchanged) " unchanged, " (invalid) " invalid, " (rejected) " rejected, "
                    (failed) " failed"
                }
                p.muted { (api_requests) " API requests; drift read on " (drift_read) " jobs" }
            }
            RunOutcome::Failed { reason } => {
                p { span.bad { "failed" } " " (ago(run.ended_at, now)) " after " (millis(run.took)) " ms" }
                p.detail { (reason) }
            }
        }
    }
}

fn budget(budget: Option<&Budget>, now: Timestamp) -> Markup {
    let Some(b) = budget else {
        return html! { p.muted { "not known yet (no API answer so far)" } };
    };
    html! {
        p.big id="budget-left" {
            @match (b.remaining, b.limit) {
                (Some(left), Some(limit)) => { (left) " of " (limit) }
                (Some(left), None) => { (left) }
                (None, Some(limit)) => { "? of " (limit) }
                (None, None) => { "?" }
            }
        }
        p { "requests left" @if let Some(reset) = b.reset_at {
            @if reset > now { ", resets in " (minutes_until(now, reset)) } @else { ", reset since" }
        } }
        p.muted { "as of " (ago(b.as_of, now)) }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn minute(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

/// A stored RFC 3339 time, shown like the others (as stored if it does
/// not parse).
fn shown_time(stored: &str) -> String {
    stored
        .parse::<Timestamp>()
        .map_or_else(|_| stored.to_string(), when)
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

fn ago(then: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    let rel = match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    };
    format!("{rel} ({})", when(then))
}

fn minutes_until(now: Timestamp, then: Timestamp) -> String {
    let secs = then.as_second().saturating_sub(now.as_second()).max(0);
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", (secs + 59) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Applied, Board, JobState};

    fn view(rows: Vec<Row>) -> View {
        let mut v = (*Board::new(Source::Dir("jobs.d".into())).view()).clone();
        v.rows = rows;
        v
    }

    fn row(job: &str, name: &str, file: &str, state: JobState) -> Row {
        Row {
            job: Some(job.into()),
            name: Some(name.into()),
            file: Some(file.into()),
            state,
            detail: None,
            applied: None,
            schedule: None,
            suspended: false,
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let mut r = row(
            "acme/<b>x</b>",
            "<script>alert(1)</script>",
            "jobs.d/<img src=x onerror=alert(1)>.yaml",
            JobState::Invalid,
        );
        r.detail = Some("\"quoted\" & <i>".into());
        r.applied = Some(Applied {
            at: "<at>".into(),
            revision: Some("\"><svg onload=x>".into()),
            fingerprint: "'abc'".into(),
        });
        let mut bidi = row("p/b", "evil\u{202e}gpj.exe", "b.yaml", JobState::Invalid);
        bidi.detail = Some("bad\u{2066}detail\u{0007}".into());
        let mut v = view(vec![r, bidi]);
        // A leader's host name comes from the database: any text.
        v.standby = Some("host <u>evil</u>, pid 1, since now".into());
        let html = page(&v, Timestamp::UNIX_EPOCH);
        assert!(html.contains("(host &lt;u&gt;evil&lt;/u&gt;, pid 1, since now) leads"));
        assert!(
            !html.contains('\u{202e}') && !html.contains('\u{2066}') && !html.contains('\u{7}')
        );
        assert!(html.contains(r"evil\u{202e}gpj.exe"), "{html}");
        for raw in ["<u>evil", "<img", "<b>x", "<i>", "<svg", "<at>", "\"><svg"] {
            assert!(!html.contains(raw), "{raw} unescaped in:\n{html}");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("jobs.d/&lt;img src=x onerror=alert(1)&gt;.yaml"));
        assert!(html.contains("&quot;quoted&quot; &amp; &lt;i&gt;"));
        // The only tags are the page's own: no script at all.
        assert!(!html.to_ascii_lowercase().contains("<script"));
    }

    #[test]
    fn rows_past_the_cap_are_counted_not_drawn() {
        let rows = (0..MAX_ROWS + 5)
            .map(|i| row(&format!("p/job-{i}"), "n", "f.yaml", JobState::InSync))
            .collect();
        let html = page(&view(rows), Timestamp::UNIX_EPOCH);
        assert_eq!(html.matches("<tr data-job=").count(), MAX_ROWS);
        assert!(html.contains("5 more jobs not shown"), "{html}");
    }

    #[test]
    fn next_runs_are_computed_when_drawn() {
        let mut r = row("p/a", "a", "a.yaml", JobState::InSync);
        r.schedule = Some(crate::manifest::cron::parse("30 2 * * *").expect("valid"));
        let now: Timestamp = "2026-11-28T23:00:00Z".parse().expect("time");
        let html = page(&view(vec![r]), now);
        for day in ["2026-11-29 02:30", "2026-11-30 02:30", "2026-12-01 02:30"] {
            assert!(html.contains(&format!("<li>{day}</li>")), "{day} in {html}");
        }
    }

    #[test]
    fn a_suspended_job_shows_no_next_runs() {
        let mut r = row("p/a", "a", "a.yaml", JobState::InSync);
        r.schedule = Some(crate::manifest::cron::parse("30 2 * * *").expect("valid"));
        r.suspended = true;
        let now: Timestamp = "2026-11-28T23:00:00Z".parse().expect("time");
        let html = page(&view(vec![r]), now);
        assert!(!html.contains("2026-11-29 02:30"), "{html}");
        assert!(html.contains(">suspended<"), "{html}");
    }
}
