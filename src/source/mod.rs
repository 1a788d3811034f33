//! Where manifests come from. Today: a directory or a file on disk
//! ([`dir`]). Each source yields [`SourceFile`]s in a stable order; a file
//! that cannot be read is still yielded, carrying its problem, so that one
//! bad file is reported and never hides the rest.

pub mod dir;
pub mod git;
pub mod git_base;

/// Manifest files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user would write it (`jobs.d/team/a.yaml`).
    pub path: String,
    pub content: Result<String, ReadProblem>,
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadProblem {
    TooLarge { bytes: u64 },
    Io(String),
}
