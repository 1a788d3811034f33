//! `nfcron schedule EXPR`: what a person asks before committing a schedule.
//! The verdict is the one `validate` gives a manifest's `schedule`
//! ([`cron::judge`]); the run times are the ones plans show.

use std::io::Write;

use serde_json::json;

use crate::manifest::cron;
use crate::settings::{DiagnosticsFormat, ScheduleSettings};
use crate::{Error, ExitStatus};

pub fn run(settings: &ScheduleSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let after = settings.after.unwrap_or_else(jiff::Timestamp::now);
    let verdict = cron::judge(&settings.expr);
    let next: Vec<jiff::Timestamp> = verdict
        .schedule
        .as_ref()
        .map(|s| s.next_runs(after, settings.count))
        .unwrap_or_default();
    let text = match settings.output {
        DiagnosticsFormat::Json => {
            let diagnostics: Vec<_> = verdict
                .problems
                .iter()
                .map(|p| json!({"code": p.code().as_str(), "message": p.message(true)}))
                .collect();
            let next: Vec<String> = next.iter().map(ToString::to_string).collect();
            let mut text = serde_json::to_string_pretty(&json!({
                "schedule": settings.expr,
                "valid": verdict.schedule.is_some(),
                "diagnostics": diagnostics,
                "next": next,
            }))
            .expect("a JSON value serialises");
            text.push('\n');
            text
        }
        DiagnosticsFormat::Text => text(settings, &verdict, after, &next),
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(if verdict.schedule.is_some() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn text(
    settings: &ScheduleSettings,
    verdict: &cron::Verdict,
    after: jiff::Timestamp,
    next: &[jiff::Timestamp],
) -> String {
    // Debug quoting shows stray spaces, tabs and newlines.
    let shown = format!("{:?}", settings.expr);
    if verdict.schedule.is_none() {
        let mut text = format!("{shown}: invalid\n");
        for p in &verdict.problems {
            text.push_str(&format!("error[{}]: {}\n", p.code(), p.message(true)));
        }
        return text;
    }
    let mut text = format!("{shown}: valid\n");
    if settings.count == 0 {
        return text;
    }
    text.push_str(&format!("next runs after {after:.0} (UTC):\n"));
    for at in next {
        let weekday = at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a");
        text.push_str(&format!("  {at}  {weekday}\n"));
    }
    if next.is_empty() {
        text.push_str(
            "  none: no time matches within five years, where Kubernetes stops looking\n",
        );
    } else if next.len() < settings.count {
        text.push_str(
            "  no further run within five years of the last, where Kubernetes stops looking\n",
        );
    }
    text
}
