//! What validation says about a manifest: one [`Diagnostic`] per problem,
//! with file, position and field path. Broken input is data; nothing here
//! stops at the first problem.

use std::fmt;

use super::yaml::{Pos, Span};

/// The stable machine-readable kinds of problem (the JSON `code` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Yaml,
    Kind,
    ApiVersion,
    Project,
    Required,
    Type,
    Pattern,
    Length,
    Range,
    Enum,
    UnknownField,
    OneOf,
    Conditional,
    Cron,
    DuplicateId,
    EnvMissing,
    FileTooLarge,
    Io,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Yaml => "yaml",
            Code::Kind => "kind",
            Code::ApiVersion => "api-version",
            Code::Project => "project",
            Code::Required => "required",
            Code::Type => "type",
            Code::Pattern => "pattern",
            Code::Length => "length",
            Code::Range => "range",
            Code::Enum => "enum",
            Code::UnknownField => "unknown-field",
            Code::OneOf => "one-of",
            Code::Conditional => "conditional",
            Code::Cron => "cron",
            Code::DuplicateId => "duplicate-id",
            Code::EnvMissing => "env-missing",
            Code::FileTooLarge => "file-too-large",
            Code::Io => "io",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, located. `message` never holds a value that came from the
/// environment or from a sensitive field; `sensitive` tells renderers to mask
/// the source line too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it (`jobs.d/a.yaml`).
    pub file: String,
    pub pos: Pos,
    /// Characters to underline on the source line.
    pub width: u32,
    /// Field path in the document (`spec.deployment.external.imagePath`);
    /// empty for problems of the whole file.
    pub path: String,
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// The field holds a secret (runtime environment, files, build
    /// arguments): the source line is masked when shown.
    pub sensitive: bool,
}

impl Diagnostic {
    pub fn error(
        code: Code,
        span: Span,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: String::new(),
            pos: span.start,
            width: span.width.max(1),
            path: path.into(),
            severity: Severity::Error,
            code,
            message: message.into(),
            sensitive: false,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `error[cron] jobs.d/a.yaml:8:13 spec.schedule: minute 61 is outside 0-59`
    pub fn one_line(&self) -> String {
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!(" {}", crate::source::display_text(&self.path))
        };
        format!(
            "{}[{}] {}:{}:{}{path}: {}",
            self.severity.as_str(),
            self.code,
            self.file,
            self.pos.line,
            self.pos.column,
            crate::source::display_text(&self.message)
        )
    }
}
