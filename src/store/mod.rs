//! The seam between the reconcile core and where state is kept.
//!
//! The core (`reconcile`, `apply`, `commands::import`) sees a [`Store`]:
//! take the lock, load the records, read (or create) the HMAC key, commit
//! changes one record at a time. It never opens a state file itself.
//!
//! - [`file::FileStore`]: `.nfcron/state.json` beside its key and lock
//!   file, the default (see `state.rs` for the format).
//! - [`postgres::PostgresStore`]: `--state postgres://...`, rows per job
//!   in a namespace, a session-level advisory lock.
//! - [`memory::MemoryStore`]: records in memory, for unit tests of the
//!   core and for `reconcile --base`, which plans against records made from
//!   another revision's manifests.
//!
//! Every method is blocking (file I/O, fsyncs): callers run them on the
//! blocking pool (`reconcile::off_runtime`).

pub mod file;
pub mod memory;
mod pg_deadline;
mod pg_params;
mod pg_service;
mod pg_tls;
pub mod postgres;

use std::path::Path;
use std::sync::Arc;

use crate::secret::Keyed;
use crate::state::{State, StateError};

pub use crate::state::Change;

/// The lock of an applying run, held until dropped.
pub type Held = Box<dyn Send + Sync>;

/// Where the last-applied state lives.
pub trait Store: Send + Sync {
    /// Where, for messages: a path (a URL would have its password removed).
    fn location(&self) -> String;

    /// What holding no state yet means here, for the warning that says the
    /// run plans against an empty baseline.
    fn nothing_recorded(&self) -> &'static str {
        "no state file"
    }

    /// Takes the lock an applying run holds from before it loads the state
    /// until after its last commit, or fails at once naming its holder.
    fn lock(&self) -> Result<Held, StateError>;

    /// The recorded state; `None` when there is none yet (the first run).
    /// State that cannot be read as written is an error, never `None`.
    fn load(&self) -> Result<Option<State>, StateError>;

    /// The HMAC key of this state. When there is none: with `create`, one is
    /// made and kept; without (a dry-run writes nothing), a throwaway one.
    fn key(&self, create: bool) -> Result<Keyed, StateError>;

    /// The key as stored; `None` when there is none (never made up).
    fn stored_key(&self) -> Result<Option<Keyed>, StateError>;

    /// Replaces the key (`state migrate`, into a store that holds no
    /// state yet), so that fingerprints made with it stay valid.
    fn set_key(&self, key: &Keyed) -> Result<(), StateError>;

    /// Makes `changes` durable, in order, before it returns: a change
    /// counts only once this returned `Ok`. Called with the lock held, one
    /// call at a time.
    fn commit(&self, changes: &[Change]) -> Result<(), StateError>;

    /// Checked before each write to the API: an error means this process
    /// may no longer write (a `watch` replica whose session lost the
    /// lock). Stores without leaders always allow it.
    fn fence(&self) -> Result<(), StateError> {
        Ok(())
    }
}

/// The store `--state` names: a `postgres://` URL (with `namespace`), or a
/// file path.
pub fn open(state: &Path, namespace: &str) -> Result<Arc<dyn Store>, StateError> {
    match target(state)? {
        Some(target) => Ok(Arc::new(postgres::PostgresStore::new(target, namespace))),
        None => Ok(Arc::new(file::FileStore::new(state))),
    }
}

/// For `watch`: with a `postgres://` state, the store of a replica that
/// applies only while it leads; `None` for a file (one sidecar per file,
/// which `reconcile` opens per run).
pub fn open_replica(
    state: &Path,
    namespace: &str,
) -> Result<Option<Arc<postgres::PostgresStore>>, StateError> {
    Ok(target(state)?.map(|target| Arc::new(postgres::PostgresStore::replica(target, namespace))))
}

/// The database `state` names, resolved with libpq's environment
/// variables; `None` for a file path.
fn target(state: &Path) -> Result<Option<postgres::Target>, StateError> {
    match state.to_str().filter(|s| postgres::is_url(s)) {
        Some(url) => {
            // A libpq variable that is not UTF-8 is an error, not unset: a
            // stray byte in PGSSLMODE would otherwise turn TLS off.
            if let Some(name) = pg_params::VARIABLES
                .iter()
                .find(|name| matches!(std::env::var(name), Err(std::env::VarError::NotUnicode(_))))
            {
                return Err(StateError::BadUrl {
                    shown: postgres::redact_url(url),
                    why: format!("{name} is not UTF-8"),
                });
            }
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            postgres::Target::parse(url, &env).map(Some)
        }
        None => Ok(None),
    }
}

/// `--state-namespace` when not given.
pub const DEFAULT_NAMESPACE: &str = "default";
