//! The file store: `state.json` replaced atomically on every commit, with
//! `key` and `state.lock` beside it (the format and the primitives are in
//! `state.rs`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Change, Held, Store};
use crate::secret::Keyed;
use crate::state::{self, State, StateError, StateLock};

/// `--state PATH`. Keeps the state it last read or wrote, so that a commit
/// rewrites the file from memory instead of reading it again.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// `None` until loaded; then the state as it is on disk (after the
    /// last commit, successful or not: a failed commit stops the run).
    current: Mutex<Option<State>>,
}

impl FileStore {
    pub fn new(path: &Path) -> FileStore {
        FileStore {
            path: path.to_path_buf(),
            current: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn lock(&self) -> Result<Held, StateError> {
        Ok(Box::new(StateLock::acquire(&self.path)?))
    }

    fn load(&self) -> Result<Option<State>, StateError> {
        let loaded = State::load(&self.path)?;
        *self.current.lock().expect("state lock") = Some(loaded.clone().unwrap_or_default());
        Ok(loaded)
    }

    fn key(&self, create: bool) -> Result<Keyed, StateError> {
        state::load_key(&self.path, create)
    }

    fn set_key(&self, key: &Keyed) -> Result<(), StateError> {
        state::replace_key(&self.path, key)
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StateError> {
        let mut current = self.current.lock().expect("state lock");
        if current.is_none() {
            *current = Some(State::load(&self.path)?.unwrap_or_default());
        }
        let state = current.as_mut().expect("loaded above");
        for change in changes {
            change.apply_to(state);
        }
        let bytes = state.to_bytes();
        state::write_atomic(&self.path, &bytes)
    }
}
