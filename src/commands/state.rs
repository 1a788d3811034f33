//! `nfcron state`: list the records, migrate them between stores (key
//! included, so fingerprints stay), unlock a file store whose lock holder
//! is gone. Runs without the async runtime: every store call blocks.

use std::io::Write;

use serde_json::json;

use crate::reconcile::ReconcileError;
use crate::settings::{DiagnosticsFormat, StateSettings};
use crate::state::StateError;
use crate::store::{self, Change};
use crate::{Error, ExitStatus};

pub fn run(settings: &StateSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    match settings {
        StateSettings::List {
            state,
            namespace,
            output,
        } => list(state, namespace, *output, out),
        StateSettings::Migrate {
            from,
            to,
            namespace,
        } => migrate(from, to, namespace, out),
        StateSettings::Unlock {
            state,
            namespace,
            force,
        } => unlock(state, namespace, *force, out),
    }
}

fn err(e: StateError) -> Error {
    Error::Reconcile(ReconcileError::State(e))
}

fn team(key: &crate::manifest::JobKey) -> serde_json::Value {
    json!(key.team)
}

/// Reads without the lock (as a dry-run does): a consistent snapshot.
fn list(
    at: &std::path::Path,
    namespace: &str,
    output: DiagnosticsFormat,
    out: &mut dyn Write,
) -> Result<ExitStatus, Error> {
    let store = store::open(at, namespace).map_err(err)?;
    let state = store.load().map_err(err)?.unwrap_or_default();
    let text = match output {
        DiagnosticsFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "state": store.location(),
                "jobs": state.jobs.iter().map(|(k, r)| json!({
                    "team": team(k),
                    "project": k.project,
                    "id": k.id,
                    "name": r.name,
                    "file": r.file,
                    "applied_at": r.applied_at,
                    "revision": r.revision,
                })).collect::<Vec<_>>(),
                "rejected": state.rejected.iter().map(|(k, r)| json!({
                    "team": team(k),
                    "project": k.project,
                    "id": k.id,
                    "status": r.status,
                    "message": r.message,
                    "rejected_at": r.rejected_at,
                })).collect::<Vec<_>>(),
            }))
            .expect("JSON values serialise");
            text.push('\n');
            text
        }
        DiagnosticsFormat::Text => {
            let mut text = String::new();
            for (k, r) in &state.jobs {
                text.push_str(&format!(
                    "{k}  {:?}  applied {}{}  from {}\n",
                    r.name,
                    r.applied_at,
                    r.revision
                        .as_deref()
                        .map(|rev| format!(" at {rev}"))
                        .unwrap_or_default(),
                    r.file
                ));
            }
            for (k, r) in &state.rejected {
                text.push_str(&format!(
                    "{k}  rejected {} at {}: {}\n",
                    r.status, r.rejected_at, r.message
                ));
            }
            text.push_str(&format!(
                "State {}: {} jobs, {} rejected.\n",
                store.location(),
                state.jobs.len(),
                state.rejected.len()
            ));
            text
        }
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}

/// Copies records, rejections and key, holding both locks; the target
/// must hold no state (nothing is merged or overwritten).
fn migrate(
    from: &std::path::Path,
    to: &std::path::Path,
    namespace: &str,
    out: &mut dyn Write,
) -> Result<ExitStatus, Error> {
    let (source, target) = (
        store::open(from, namespace).map_err(err)?,
        store::open(to, namespace).map_err(err)?,
    );
    if source.location() == target.location() {
        return Err(Error::Usage(format!(
            "--from and --to name the same state ({})",
            source.location()
        )));
    }
    // Two state files in one directory share its lock and its key.
    let dir = |p: &std::path::Path| -> Option<std::path::PathBuf> {
        let p = p
            .to_str()
            .filter(|s| crate::store::postgres::is_url(s))
            .map_or(Some(p), |_| None)?;
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::canonicalize(parent.unwrap_or(std::path::Path::new("."))).ok()
    };
    if let (Some(a), Some(b)) = (dir(from), dir(to)) {
        if a == b {
            return Err(Error::Usage(format!(
                "--from and --to are in one directory ({}), which holds one lock and one key for both: put the target in another directory",
                a.display()
            )));
        }
    }
    let _from_lock = source.lock().map_err(err)?;
    let _to_lock = target.lock().map_err(err)?;
    let Some(state) = source.load().map_err(err)? else {
        return Err(Error::Usage(format!(
            "{} holds no state: nothing to migrate",
            source.location()
        )));
    };
    if let Some(there) = target.load().map_err(err)? {
        if !there.jobs.is_empty() || !there.rejected.is_empty() {
            return Err(Error::Usage(format!(
                "{} already holds state ({} jobs, {} rejected); migrate only into an empty state",
                target.location(),
                there.jobs.len(),
                there.rejected.len()
            )));
        }
    }
    // A key made up here would turn every recorded digest into a change:
    // the target would plan (and apply) every job once, and would then
    // hold state the real key can no longer be migrated into.
    let Some(key) = source.stored_key().map_err(err)? else {
        return Err(Error::Usage(format!(
            "{} holds state but no key: restore its key first (a file store's `key` beside the state file; a database's nfcron_namespaces row), or every job would be planned as changed after the migration",
            source.location()
        )));
    };
    target.set_key(&key).map_err(err)?;
    let mut changes: Vec<Change> = state
        .jobs
        .iter()
        .map(|(k, r)| Change::Applied(k.clone(), r.clone()))
        .collect();
    changes.extend(
        state
            .rejected
            .iter()
            .map(|(k, r)| Change::Rejected(k.clone(), r.clone())),
    );
    target.commit(&changes).map_err(err)?;
    writeln!(
        out,
        "Migrated {} jobs and {} rejections with their key from {} to {}.",
        state.jobs.len(),
        state.rejected.len(),
        source.location(),
        target.location()
    )
    .map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}

fn unlock(
    at: &std::path::Path,
    namespace: &str,
    force: bool,
    out: &mut dyn Write,
) -> Result<ExitStatus, Error> {
    let store = store::open(at, namespace).map_err(err)?;
    if at.to_str().is_some_and(store::postgres::is_url) {
        return Err(Error::Usage(format!(
            "{}: a PostgreSQL lock is held by its session and goes with it; there is nothing to remove",
            store.location()
        )));
    }
    if !force {
        return Err(Error::Usage(
            "state unlock removes the lock of a run that is gone; pass --force to confirm".into(),
        ));
    }
    let message = match crate::store::file::lock::force_unlock(at).map_err(err)? {
        crate::store::file::lock::Unlocked::Removed { path, pid } => format!(
            "Unlocked: removed {} (held by pid {}, which is gone).\n",
            path.display(),
            pid.as_deref().unwrap_or("unknown")
        ),
        crate::store::file::lock::Unlocked::Absent { path } => {
            format!("Not locked: there is no {}.\n", path.display())
        }
    };
    out.write_all(message.as_bytes()).map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}
