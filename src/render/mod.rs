//! Everything nfcron prints as data: diagnostics (text, JSON and GitHub
//! workflow commands), plans, and the
//! JSON Schema of the manifest format. Renderers take plain data and return
//! strings; the commands decide where they go.

pub mod diagnostics;
pub mod github;
pub mod json_schema;
pub mod plan;
pub mod status;

/// Whether to colour text output: only on a terminal, never with `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub bool);

impl Colour {
    pub fn detect(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> Colour {
        Colour(is_terminal && no_color.is_none_or(|v| v.is_empty()))
    }

    pub(crate) fn paint(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}
