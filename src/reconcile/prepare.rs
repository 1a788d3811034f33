//! Manifests made ready to plan: digests and redaction per job, and the
//! files whose problems block pruning. Pure.

use std::collections::BTreeSet;

use crate::manifest::{self, Catalog};
use crate::plan::{Desired, Invalid, PruneBlock};
use crate::secret::{self, Keyed};
use crate::source::SourceFile;
use crate::state::State;

/// Every file with an error diagnostic (or an `io`, `yaml` or
/// `file-too-large` one, whatever its severity), with the first: whatever
/// the loader could not turn into a job (an unreadable entry, broken YAML)
/// may hold the manifest of a managed job, so it blocks pruning.
pub fn file_problems(catalog: &Catalog) -> Vec<PruneBlock> {
    use crate::manifest::diagnostic::Code;
    let mut seen = BTreeSet::new();
    catalog
        .diagnostics
        .iter()
        .filter(|d| d.is_error() || matches!(d.code, Code::Io | Code::Yaml | Code::FileTooLarge))
        .filter(|d| seen.insert(d.file.as_str()))
        .map(|d| PruneBlock {
            file: d.file.clone(),
            reason: d.one_line(),
        })
        .collect()
}

/// Files that are still there but hold no job document while the state
/// records jobs applied from them: an emptied file, or an editor's save
/// caught half-way (truncate, then write). Their jobs are not deleted:
/// deleting them takes deleting the file (or removing their documents from
/// a file that still holds another).
pub fn emptied_files(files: &[SourceFile], catalog: &Catalog, recorded: &State) -> Vec<PruneBlock> {
    let with_documents: BTreeSet<&str> = catalog.jobs.iter().map(|j| j.file.as_str()).collect();
    let present: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut seen = BTreeSet::new();
    recorded
        .jobs
        .values()
        .map(|r| r.file.as_str())
        .filter(|f| present.contains(f) && !with_documents.contains(f))
        .filter(|f| seen.insert(*f))
        .map(|f| PruneBlock {
            file: f.to_string(),
            reason: "holds no job document now, but jobs were applied from it (an emptied file, or a save caught half-way?); delete the file to delete its jobs".into(),
        })
        .collect()
}

/// Valid manifests become desired jobs (digested, redacted, with their next
/// runs); the rest, and those missing a variable, are invalid.
pub fn prepare(
    catalog: &Catalog,
    keyed: &Keyed,
    sensitive: &[String],
) -> (Vec<Desired>, Vec<Invalid>) {
    // Digests and redaction are per job: on every core, order kept.
    let parts = crate::parallel::map_chunks(&catalog.jobs, 256, |jobs| {
        let mut desired = Vec::new();
        let mut invalid = Vec::new();
        for job in jobs {
            prepare_one(job, keyed, sensitive, &mut desired, &mut invalid);
        }
        (desired, invalid)
    });
    let (mut desired, mut invalid) = (Vec::new(), Vec::new());
    for (d, i) in parts {
        desired.extend(d);
        invalid.extend(i);
    }
    (desired, invalid)
}

fn prepare_one(
    job: &manifest::JobManifest,
    keyed: &Keyed,
    sensitive: &[String],
    desired: &mut Vec<Desired>,
    invalid: &mut Vec<Invalid>,
) {
    let reason = if !job.valid {
        Some(
            job.problem
                .clone()
                .unwrap_or_else(|| "invalid manifest".into()),
        )
    } else if !job.missing_env.is_empty() {
        let (noun, verb) = if job.missing_env.len() > 1 {
            ("variables", "are")
        } else {
            ("variable", "is")
        };
        Some(format!(
            "environment {noun} {} {verb} not set and {verb} without a default: nfcron cannot know what to send",
            job.missing_env.join(", ")
        ))
    } else {
        None
    };
    match (reason, &job.key, &job.name) {
        (None, Some(key), Some(name)) => desired.push({
            let spec = job.spec.value();
            Desired {
                key: key.clone(),
                name: name.clone(),
                file: job.file.clone(),
                shown: secret::Redacted::of(&spec, keyed, sensitive),
                digest: keyed.digest(&spec),
                spec: job.spec.clone(),
            }
        }),
        (reason, key, name) => invalid.push(Invalid {
            key: key.clone(),
            name: name.clone(),
            file: job.file.clone(),
            reason: reason.unwrap_or_else(|| "invalid manifest".into()),
        }),
    }
}
