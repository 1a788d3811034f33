//! `nfcron import`: writes one manifest per live cron job, with secrets as
//! `${VAR}` placeholders, and records each job in state so that a reconcile
//! with those variables set plans no change.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::import;
use crate::live::{self, Parts};
use crate::manifest::{self, JobKey, LoadOptions};
use crate::reconcile::{self, ReconcileError};
use crate::registry;
use crate::settings::{DiagnosticsFormat, ImportSettings};
use crate::source::SourceFile;
use crate::state;
use crate::store::{self, Change};
use crate::{Error, ExitStatus};

struct Done {
    project: String,
    id: String,
    file: String,
    variables: Vec<String>,
}

struct Skipped {
    project: String,
    id: String,
    reason: String,
    /// Not a choice (the job could not be read, or is not there): the
    /// import fails.
    failed: bool,
}

pub fn run(settings: &ImportSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let runtime = super::runtime()?;
    runtime.block_on(run_async(settings, out))
}

async fn run_async(settings: &ImportSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let client = settings.api.client()?.ok_or(ReconcileError::NoToken)?;
    // Lock, state and key: the same store calls as an applying reconcile,
    // on the blocking pool.
    let store = store::open(&settings.state_path, &settings.state_namespace)
        .map_err(ReconcileError::from)?;
    let (_lock, keyed) = {
        let store = store.clone();
        reconcile::off_runtime(move || {
            let lock = store.lock()?;
            store.load()?;
            Ok::<_, ReconcileError>((lock, store.key(true)?))
        })
        .await?
    };
    let project = settings.project.as_str();
    let listed = client
        .list_jobs(settings.team.as_deref(), project)
        .await
        .map_err(Error::from)?;
    let wanted: BTreeSet<&str> = settings.jobs.iter().map(String::as_str).collect();
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let (mut imported, mut skipped, mut changes) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = BTreeSet::new();
    for job in &listed {
        let Some(id) = job.get("id").and_then(Json::as_str) else {
            continue;
        };
        if !wanted.is_empty() && !wanted.contains(id) {
            continue;
        }
        seen.insert(id.to_string());
        match import_job(settings, &client, &keyed, now, job, id).await? {
            Ok((done, change)) => {
                changes.extend(change);
                imported.push(done);
            }
            Err(skip) => skipped.push(skip),
        }
    }
    for id in wanted.iter().filter(|id| !seen.contains(**id)) {
        eprintln!("skipped {project}/{id}: no such job");
        skipped.push(Skipped {
            project: project.to_string(),
            id: id.to_string(),
            reason: "not found".into(),
            failed: true,
        });
    }
    if !imported.is_empty() {
        let store = store.clone();
        reconcile::off_runtime(move || store.commit(&changes))
            .await
            .map_err(ReconcileError::from)?;
        env_example(&settings.out, &imported)?;
    }
    let report = render(settings.output, &imported, &skipped, client.requests_sent());
    out.write_all(report.as_bytes()).map_err(Error::Output)?;
    Ok(if skipped.iter().any(|s| s.failed) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Imports the listed job `id` (`job` is what the list said of it): what
/// was written, with the state record to commit (if it reads back); or
/// why it was skipped.
async fn import_job(
    settings: &ImportSettings,
    client: &crate::api::Client,
    keyed: &crate::secret::Keyed,
    now: jiff::Timestamp,
    job: &Json,
    id: &str,
) -> Result<Result<(Done, Option<Change>), Skipped>, Error> {
    let project = settings.project.as_str();
    let skip = |reason: &str, failed: bool| Skipped {
        project: project.to_string(),
        id: id.to_string(),
        reason: reason.to_string(),
        failed,
    };
    let job_type = job.get("jobType").and_then(Json::as_str);
    if job_type.is_some_and(|t| t != "cron") {
        eprintln!("skipped {project}/{id}: a manual job, not a cron job");
        return Ok(Err(skip("manual job", false)));
    }
    let file = settings.out.join(format!("{id}.yaml"));
    let display = file.to_string_lossy().into_owned();
    if file.exists() && !settings.force {
        eprintln!("skipped {project}/{id}: {display} exists (use --force to overwrite)");
        return Ok(Err(skip("file exists (use --force)", false)));
    }
    let key = JobKey {
        team: settings.team.clone(),
        project: project.to_string(),
        id: id.to_string(),
    };
    let raw = match live::read(client, &key, Parts::all()).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(Err(skip("deleted while importing", false))),
        Err(e) => {
            eprintln!("error: {}", crate::apply::chain(&e));
            let reason = format!("cannot read: {}", crate::apply::chain(&e));
            return Ok(Err(skip(&reason, true)));
        }
    };
    let (done, change) = write_one(settings, keyed, now, key, &raw, &file, display)?;
    Ok(Ok((done, change)))
}

/// The import report: JSON, or a line per job and a summary.
fn render(
    output: DiagnosticsFormat,
    imported: &[Done],
    skipped: &[Skipped],
    requests: u64,
) -> String {
    match output {
        DiagnosticsFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "imported": imported.iter().map(|d| json!({"project": d.project, "id": d.id, "file": d.file, "variables": d.variables})).collect::<Vec<_>>(),
                "skipped": skipped.iter().map(|s| json!({"project": s.project, "id": s.id, "reason": s.reason})).collect::<Vec<_>>(),
            }))
            .expect("JSON values serialise");
            text.push('\n');
            text
        }
        DiagnosticsFormat::Text => {
            let mut text = String::new();
            for d in imported {
                text.push_str(&format!("imported {}/{} -> {}", d.project, d.id, d.file));
                if !d.variables.is_empty() {
                    text.push_str(&format!(" (set {})", d.variables.join(", ")));
                }
                text.push('\n');
            }
            text.push_str(&format!(
                "Import: {} imported, {} skipped, {} API requests.\n",
                imported.len(),
                skipped.len(),
                requests
            ));
            text
        }
    }
}

/// Writes the manifest of one job read live. Returns what to report and,
/// when the manifest gives the live spec back, the state record a
/// reconcile would then find unchanged.
fn write_one(
    settings: &ImportSettings,
    keyed: &crate::secret::Keyed,
    now: jiff::Timestamp,
    key: JobKey,
    raw: &live::Raw,
    file: &Path,
    display: String,
) -> Result<(Done, Option<Change>), Error> {
    let (project, id) = (key.project.as_str(), key.id.as_str());
    let header = format!("Imported from Northflank by `nfcron import` on {now}: {key}");
    let spec = live::to_spec(raw);
    let external = live::external_image(raw);
    let source = import::Source {
        team: key.team.as_deref(),
        project,
        id,
        live: &spec,
        host_unknown: external.is_some_and(|(_, p)| registry::fixed_host(p).is_none()),
    };
    let manifest = import::manifest_for(&source, settings.all_fields, &settings.sensitive, &header);
    write_file(file, manifest.text.as_bytes()).map_err(|source| Error::Write {
        path: display.clone(),
        source,
    })?;
    let mut change = None;
    if let (Some(name), Some((path, provider))) = (&manifest.registry_host, external) {
        // Not recorded: the record would need the host. A reconcile with
        // the variable set reads the job and adopts it.
        eprintln!(
            "warning: {project}/{id}: the API gives image `{path}` without its registry host (provider `{provider}`); set ${{{name}}} to it for {display}; not recorded in state, the first reconcile reads and adopts it"
        );
    } else {
        match verify(&display, &manifest, keyed, &settings.sensitive, now) {
            Ok(record) => change = Some(Change::Applied(key.clone(), record)),
            Err(problem) => {
                eprintln!("warning: {display}: {problem}; it is written but not recorded in state")
            }
        }
    }
    let done = Done {
        project: project.to_string(),
        id: id.to_string(),
        file: display,
        variables: manifest
            .variables
            .iter()
            .map(|(n, _)| n.clone())
            .chain(manifest.registry_host.clone())
            .collect(),
    };
    Ok((done, change))
}

/// Loads the written manifest back, with its variables set to the live
/// values, as a reconcile would: it must validate and give back the live
/// spec. Returns the state record a reconcile would then find unchanged.
fn verify(
    path: &str,
    manifest: &import::Imported,
    keyed: &crate::secret::Keyed,
    sensitive: &[String],
    now: jiff::Timestamp,
) -> Result<state::Record, String> {
    let lookup = |name: &str| {
        manifest
            .variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
    };
    let files = [SourceFile {
        path: path.to_string(),
        content: Ok(manifest.text.clone()),
    }];
    let catalog = manifest::load(
        &files,
        &LoadOptions {
            default_project: None,
            require_env: true,
            lookup: &lookup,
            allow_unknown_fields: false,
        },
    );
    // The record is what a reconcile with the same --sensitive would
    // store: those fields only as fingerprints.
    let (desired, invalid) = reconcile::prepare(&catalog, keyed, sensitive);
    if let Some(i) = invalid.first() {
        return Err(format!(
            "the live job does not pass validation ({})",
            i.reason
        ));
    }
    let Some(d) = desired.first() else {
        return Err("no job in the written manifest".into());
    };
    if d.spec.value() != manifest.spec {
        return Err("reading it back does not give the live spec".into());
    }
    Ok(d.record(&now.to_string(), None))
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// Lists the variables the imported manifests use in `<out>/.env.example`.
fn env_example(out: &Path, imported: &[Done]) -> Result<(), Error> {
    let names: Vec<&str> = imported
        .iter()
        .flat_map(|d| d.variables.iter().map(String::as_str))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let path = out.join(".env.example");
    write_env_example(&path, &names).map_err(|source| Error::Write {
        path: path.to_string_lossy().into_owned(),
        source,
    })
}

/// Adds `names` to `.env.example` (one `NAME=` a line), keeping what is there.
fn write_env_example(path: &Path, names: &[&str]) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: BTreeSet<String> = existing
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let known: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l.split('=').next().map(str::to_string))
        .collect();
    for name in names.iter().filter(|n| !known.contains(**n)) {
        lines.insert(format!("{name}="));
    }
    let mut text = String::from(
        "# Secrets of imported jobs: set each to its value before `nfcron reconcile`.\n",
    );
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    write_file(path, text.as_bytes())
}
