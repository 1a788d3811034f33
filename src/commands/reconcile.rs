//! `nfcron reconcile`: plan against the last-applied state, apply only what
//! changed, and exit with a code a pipeline can trust.

use std::io::Write;

use crate::plan;
use crate::reconcile::{self, off_runtime, Input};
use crate::render::plan::{self as render, Report};
use crate::settings::{OutputFormat, ReconcileSettings, SourceSettings};
use crate::source;
use crate::source::git_base;
use crate::{Error, ExitStatus};

pub fn run(settings: &ReconcileSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let runtime = super::runtime()?;
    let status = runtime.block_on(run_async(settings, out));
    // Whatever the run awaited is done; what is left on the blocking pool
    // (a name lookup for a receiver given up on) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    status
}

async fn run_async(settings: &ReconcileSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let client = settings.api.client()?;
    if let Some(base) = &settings.base {
        let SourceSettings::Dir(path) = &settings.source else {
            return Err(Error::Usage(
                "--base plans a local work tree; it does not combine with --git".into(),
            ));
        };
        // Git tree reads and parsing: on the blocking pool.
        let (path, base) = (path.clone(), base.clone());
        let (head, base_files, revision) =
            off_runtime(move || git_base::files(&path, &base)).await?;
        let head = Input::new(head.into(), Some(revision));
        let run = reconcile::plan_base(head, &base_files, &settings.reconcile).await?;
        return finish(settings, &run, out);
    }
    let (files, revision) = match &settings.source {
        SourceSettings::Dir(path) => {
            let path = path.clone();
            (off_runtime(move || source::dir::read(&path)).await, None)
        }
        SourceSettings::Git(git) => {
            let git = git.clone();
            let snapshot = match off_runtime(move || git.sync()).await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    let outs = match &e {
                        source::git::GitError::Unverified(refusal) => {
                            let reason = refusal.reason.to_string();
                            settings.notify.refused_source(&refusal.commit, &reason)
                        }
                        other => {
                            let error = format!("fetch failed: {}", crate::errors::chain(other));
                            settings.notify.run_failed(&error, None, None)
                        }
                    };
                    deliver(outs).await;
                    return Err(e.into());
                }
            };
            (snapshot.files, Some(snapshot.revision))
        }
    };
    let input = Input::new(files.into(), revision.clone());
    let run = match reconcile::reconcile(&settings.reconcile, input, client.as_ref()).await {
        Ok(run) => run,
        Err(e) => {
            let error = crate::apply::chain(&e);
            let revision = revision.as_deref();
            deliver(settings.notify.run_failed(&error, revision, None)).await;
            return Err(e.into());
        }
    };
    let status = finish(settings, &run, out)?;
    notify(settings, &run).await;
    Ok(status)
}

/// How long a one-shot run waits for its notifications and statuses in
/// all: a receiver that hangs costs this, never more.
const NOTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Tells `--notify` receivers and GitHub what the run did. Whether they
/// heard it does not change the exit code: the run's own outcome does.
async fn notify(settings: &ReconcileSettings, run: &reconcile::RunReport) {
    let config = &settings.notify;
    if config.is_empty() {
        return;
    }
    let outs = config.outgoing(
        &crate::notifications::Run {
            plan: &run.plan,
            outcomes: &run.outcomes,
            revision: run.revision.as_deref(),
            applying: !settings.reconcile.dry_run,
            swept: run.refreshed > 0,
        },
        None,
    );
    deliver(outs).await;
}

/// Sends `outs`, waiting at most [`NOTIFY_DEADLINE`] for them all.
async fn deliver(outs: Vec<crate::notifications::deliver::Outgoing>) {
    if outs.is_empty() {
        return;
    }
    let sender = match crate::notifications::deliver::Sender::new() {
        Ok(sender) => sender,
        Err(e) => {
            tracing::warn!(error = %crate::apply::chain(&e), "cannot make the notification client");
            return;
        }
    };
    let tally = sender.send_all(outs, NOTIFY_DEADLINE).await;
    if tally.failed > 0 {
        tracing::warn!(
            sent = tally.sent,
            failed = tally.failed,
            "some notifications were not delivered"
        );
    }
}

fn finish(
    settings: &ReconcileSettings,
    run: &reconcile::RunReport,
    out: &mut dyn Write,
) -> Result<ExitStatus, Error> {
    // With --output github the diagnostics are annotations on stdout.
    if settings.output != OutputFormat::Github {
        for d in &run.catalog.diagnostics {
            eprintln!("{}", d.one_line());
        }
    }
    let report = Report {
        plan: &run.plan,
        outcomes: &run.outcomes,
        dry_run: settings.reconcile.dry_run,
        baseline: run.baseline,
        api_requests: run.api_requests,
        unmanaged: run.unmanaged,
        revision: run.revision.as_deref(),
    };
    let written = match settings.output {
        // Written as it is made: a large plan is never held as text too.
        OutputFormat::Json => render::json_to(&report, out),
        OutputFormat::Text => out.write_all(render::text(&report, settings.colour).as_bytes()),
        OutputFormat::Markdown => out.write_all(render::markdown(&report).as_bytes()),
        OutputFormat::Github => {
            out.write_all(crate::render::github::plan(&report, &run.catalog.diagnostics).as_bytes())
        }
    };
    written.map_err(Error::Output)?;
    // A rejected job is an error the user must fix (exit 1), whether it
    // was refused in this run or in an earlier one.
    let errors = report.failed() > 0
        || report.rejected() > 0
        || report.not_attempted() > 0
        || run.plan.count(plan::Action::Invalid) > 0
        || run.plan.blocked_deletions.is_some()
        || (settings.reconcile.plan.prune && !run.plan.prune_blocked.is_empty());
    Ok(if errors {
        ExitStatus::Failure
    } else if settings.detailed_exitcode && (run.plan.pending() || run.plan.drifted() > 0) {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
