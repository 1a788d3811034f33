//! The model every stage shares: what nfcron last applied for each job
//! (`State`, `Record`), what the API refused for good (`Rejection`), one
//! committed `Change`, and the store's errors. No I/O here: the file
//! store's format, journal, lock and key live in `store/file/`, the
//! database's in `store/postgres.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::manifest::JobKey;
use crate::secret::{Redacted, KEY_LEN};

/// What nfcron last applied for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub file: String,
    /// Keyed digest of the full applied spec, secrets included.
    pub digest: String,
    /// The applied spec, secrets replaced by fingerprints.
    pub spec: Redacted,
    /// RFC 3339, UTC.
    pub applied_at: String,
    /// Source revision (a Git commit) the spec came from, when known.
    pub revision: Option<String>,
}

/// A spec the API refused with a permanent error (a 4xx other than 401,
/// 408, 409 and 429): not sent again until its digest changes or
/// `reconcile --retry-rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Keyed digest of the refused spec.
    pub digest: String,
    pub status: u16,
    /// The API's message, already escaped and cut to 1 KiB.
    pub message: String,
    /// RFC 3339, UTC.
    pub rejected_at: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub jobs: BTreeMap<JobKey, Record>,
    /// Jobs whose last PUT the API refused for good, keyed like `jobs`.
    pub rejected: BTreeMap<JobKey, Rejection>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid ({why}); refusing to guess what was applied. Move it away to start from an empty baseline")]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write state file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another nfcron run (pid {pid}) is applying with this state; lock file {path}")]
    Locked { path: PathBuf, pid: String },
    #[error("another nfcron run is applying with the state {location}: {holder}")]
    HeldBy { location: String, holder: String },
    #[error("the state {location} is no longer held by this replica (its database session was lost, or another replica leads): nothing more is committed")]
    NotLeading { location: String },
    #[error("state database URL {shown} is not valid: {why}")]
    BadUrl { shown: String, why: String },
    #[error("state database {shown}: cannot {doing}")]
    Database {
        shown: String,
        doing: &'static str,
        #[source]
        source: DbCause,
    },
    #[error("state database {shown}: no answer from {host} to {step} within {after:?}")]
    DatabaseDeadline {
        shown: String,
        host: String,
        step: &'static str,
        after: std::time::Duration,
    },
    #[error("cannot take the state lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not valid: expected {KEY_LEN} bytes in hex")]
    BadKey { path: PathBuf },
    #[error("cannot create a random key")]
    Random(#[source] getrandom::Error),
}

/// One change to the recorded state, committed after the API took (or
/// refused for good) a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The job was PUT (or adopted as it is live): its record, and no
    /// rejection any more.
    Applied(JobKey, Record),
    /// The job was deleted: neither record nor rejection.
    Deleted(JobKey),
    /// The API refused this spec for good.
    Rejected(JobKey, Rejection),
    /// A rejection no longer held back (the manifest is gone, or
    /// `--retry-rejected`).
    Forgotten(JobKey),
}

impl Change {
    /// The job the change is about.
    pub fn key(&self) -> &JobKey {
        match self {
            Change::Applied(key, _)
            | Change::Deleted(key)
            | Change::Rejected(key, _)
            | Change::Forgotten(key) => key,
        }
    }

    /// Applies the change to an in-memory state.
    pub fn apply_to(&self, state: &mut State) {
        match self {
            Change::Applied(key, record) => {
                state.rejected.remove(key);
                state.jobs.insert(key.clone(), record.clone());
            }
            Change::Deleted(key) => {
                state.rejected.remove(key);
                state.jobs.remove(key);
            }
            Change::Rejected(key, rejection) => {
                state.rejected.insert(key.clone(), rejection.clone());
            }
            Change::Forgotten(key) => {
                state.rejected.remove(key);
            }
        }
    }
}

/// A driver or server error as shown: its text (with its causes) with the
/// password hidden. The driver's error is not kept, so nothing can format
/// it unredacted later.
#[derive(Debug)]
pub struct DbCause(String);

impl DbCause {
    /// Text already cleared of the password.
    pub(crate) fn from_text(text: String) -> DbCause {
        DbCause(text)
    }
}

impl std::fmt::Display for DbCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbCause {}
