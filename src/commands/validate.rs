//! `nfcron validate`: read, check, report. Sends nothing anywhere.

use std::io::Write;

use crate::manifest::{self, LoadOptions};
use crate::render::{diagnostics, github};
use crate::settings::{ValidateFormat, ValidateSettings};
use crate::source;
use crate::{Error, ExitStatus};

pub fn run(settings: &ValidateSettings, out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let files = source::dir::read(&settings.path);
    let lookup = |name: &str| std::env::var(name).ok();
    let catalog = manifest::load(
        &files,
        &LoadOptions {
            default_project: settings.project.as_deref(),
            require_env: settings.require_env,
            lookup: &lookup,
            allow_unknown_fields: settings.allow_unknown_fields,
        },
    );
    tracing::debug!(
        files = catalog.files,
        jobs = catalog.jobs.len(),
        "validated"
    );
    let report = match settings.output {
        ValidateFormat::Text => diagnostics::text(&catalog, &files, settings.colour),
        ValidateFormat::Json => diagnostics::json(&catalog),
        ValidateFormat::Github => github::diagnostics(&catalog),
    };
    out.write_all(report.as_bytes()).map_err(Error::Output)?;
    Ok(if catalog.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
