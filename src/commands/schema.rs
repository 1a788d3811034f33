//! `nfcron schema`: the manifest format as JSON Schema, on stdout.

use std::io::Write;

use crate::render::json_schema;
use crate::{Error, ExitStatus};

pub fn run(out: &mut dyn Write) -> Result<ExitStatus, Error> {
    let mut text = serde_json::to_string_pretty(&json_schema::manifest_schema())
        .expect("a JSON value serialises");
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(ExitStatus::Success)
}
