//! The file store: `state.json` with a journal beside it that each commit
//! appends to (one fsynced line per change), folded into `state.json`
//! when the applying run ends (its lock is released) and when an applying
//! run loads; `key` and `state.lock` beside them. `format` is the file
//! format and the journal, `disk` the atomic-write primitives, `lock` and
//! `key` the files beside the state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Change, Held, Store};
use crate::secret::Keyed;
use crate::state::{State, StateError};

pub(in crate::store) mod disk;
pub mod format;
pub mod key;
pub mod lock;
#[cfg(test)]
mod primitives_tests;

pub use lock::StateLock;

/// `--state PATH`. Keeps the state it last read or committed (snapshot
/// plus journal), so that folding writes it from memory.
#[derive(Debug)]
pub struct FileStore {
    /// Where the state lives: `--state` with symbolic links followed, so
    /// that a write replaces the file a link points to, never the link
    /// (the key, lock and journal live beside that file).
    path: PathBuf,
    /// `--state` as given, for messages.
    given: PathBuf,
    /// `None` until loaded or committed to; then the state as snapshot and
    /// journal hold it.
    current: Arc<Mutex<Option<State>>>,
    /// This store holds the lock: it may fold the journal.
    locked: Arc<AtomicBool>,
    /// The journal's length after its last complete line (known once
    /// loaded): where the next append goes.
    journal_len: Arc<Mutex<Option<u64>>>,
}

impl FileStore {
    pub fn new(path: &Path) -> FileStore {
        FileStore {
            path: follow_links(path),
            given: path.to_path_buf(),
            current: Arc::new(Mutex::new(None)),
            locked: Arc::new(AtomicBool::new(false)),
            journal_len: Arc::new(Mutex::new(None)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for FileStore {
    fn location(&self) -> String {
        self.given.display().to_string()
    }

    fn lock(&self) -> Result<Held, StateError> {
        let lock = StateLock::acquire(&self.path)?;
        self.locked.store(true, Ordering::SeqCst);
        Ok(Box::new(FileHeld {
            path: self.path.clone(),
            current: self.current.clone(),
            journal_len: self.journal_len.clone(),
            locked: self.locked.clone(),
            _lock: lock,
        }))
    }

    /// The snapshot with the journal replayed onto it; folded into the
    /// snapshot when this store holds the lock (a dry-run writes nothing).
    fn load(&self) -> Result<Option<State>, StateError> {
        // Without the lock an applying run may append and fold between the
        // two reads: read again until the journal is the same file, as long,
        // before and after (a snapshot folded from a longer journal than the
        // one replayed onto it could bring back what a later line undid).
        let journal_file = format::journal_path(&self.path);
        let identity = || {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&journal_file)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.len()))
        };
        let mut attempt = 0;
        let (journal, mut journal_len, snapshot) = loop {
            let before = identity();
            let (journal, journal_len) = format::read_journal(&self.path)?;
            let snapshot = State::load(&self.path)?;
            attempt += 1;
            if self.locked.load(Ordering::SeqCst) || identity() == before || attempt == 20 {
                break (journal, journal_len, snapshot);
            }
        };
        let loaded = if journal.is_empty() {
            snapshot
        } else {
            let mut state = snapshot.unwrap_or_default();
            for change in &journal {
                change.apply_to(&mut state);
            }
            if self.locked.load(Ordering::SeqCst) {
                format::fold_journal(&self.path, &state)?;
                journal_len = 0;
            }
            Some(state)
        };
        *self.journal_len.lock().expect("journal length") = Some(journal_len);
        // The copy commits fold into: an applying run's only (a read
        // without the lock keeps none, and cannot commit).
        *self.current.lock().expect("state lock") = self
            .locked
            .load(Ordering::SeqCst)
            .then(|| loaded.clone().unwrap_or_default());
        Ok(loaded)
    }

    fn key(&self, create: bool) -> Result<Keyed, StateError> {
        key::load_key(&self.path, create)
    }

    fn stored_key(&self) -> Result<Option<Keyed>, StateError> {
        key::read_key(&self.path)
    }

    fn set_key(&self, key: &Keyed) -> Result<(), StateError> {
        key::replace_key(&self.path, key)
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StateError> {
        if self.current.lock().expect("state lock").is_none() {
            self.load()?;
        }
        let mut journal_len = self.journal_len.lock().expect("journal length");
        // Only under the lock: a commit that arrives after the run let it
        // go (a cancelled run's queued commit) could cut another holder's
        // journal.
        if !self.locked.load(Ordering::SeqCst) {
            return Err(StateError::NotLeading {
                location: self.location(),
            });
        }
        let at = journal_len.unwrap_or_default();
        *journal_len = Some(format::append_journal(&self.path, at, changes)?);
        let mut current = self.current.lock().expect("state lock");
        let state = current.as_mut().expect("loaded above");
        for change in changes {
            change.apply_to(state);
        }
        Ok(())
    }
}

/// `path` with symbolic links followed (at most 40, as the kernel does),
/// whether or not the last one's target exists yet; `path` itself when it
/// is no link or a link cannot be read.
fn follow_links(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        let Some(target) = is_link.then(|| std::fs::read_link(&path).ok()).flatten() else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    path
}

/// The lock of an applying run on a file store. Released after the
/// journal is folded into the snapshot (best effort: a fold that fails
/// leaves the journal, which the next run replays).
struct FileHeld {
    path: PathBuf,
    current: Arc<Mutex<Option<State>>>,
    journal_len: Arc<Mutex<Option<u64>>>,
    locked: Arc<AtomicBool>,
    _lock: StateLock,
}

impl Drop for FileHeld {
    fn drop(&mut self) {
        self.locked.store(false, Ordering::SeqCst);
        // The order commit takes them in.
        let mut journal_len = self.journal_len.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = current.as_ref() {
            match format::fold_journal(&self.path, state) {
                Ok(()) => *journal_len = Some(0),
                Err(e) => {
                    tracing::warn!(error = %crate::errors::chain(&e), "cannot fold the state journal into the state file; the next run replays it")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::JobKey;
    use crate::state::Record;

    fn applied(id: &str) -> Change {
        Change::Applied(
            JobKey {
                team: None,
                project: "p".into(),
                id: id.into(),
            },
            Record {
                name: id.into(),
                file: "jobs.d/a.yaml".into(),
                digest: "d".repeat(64),
                spec: crate::secret::Redacted::assume(&serde_json::json!({"name": id})),
                applied_at: "2026-11-29T00:00:00Z".into(),
                revision: None,
            },
        )
    }

    #[test]
    fn commits_go_to_the_journal_under_the_lock_and_fold_when_it_is_released() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        let journal = format::journal_path(&path);
        let store = FileStore::new(&path);
        // Without the lock nothing is written.
        assert!(matches!(
            store.commit(&[applied("a")]),
            Err(StateError::NotLeading { .. })
        ));
        assert!(!journal.exists() && !path.exists());

        let held = store.lock().expect("lock");
        store.load().expect("load");
        store.commit(&[applied("a")]).expect("commit");
        store.commit(&[applied("b")]).expect("commit");
        assert!(!path.exists(), "a commit appends; the snapshot waits");
        assert_eq!(
            std::fs::read_to_string(&journal)
                .expect("journal")
                .lines()
                .count(),
            2
        );
        // A reader without the lock sees snapshot plus journal.
        let reader = FileStore::new(&path);
        assert_eq!(reader.load().expect("load").expect("state").jobs.len(), 2);
        assert!(journal.exists(), "a reader never folds");

        drop(held);
        assert!(!journal.exists(), "released: folded");
        let snapshot = State::load(&path).expect("load").expect("state");
        assert_eq!(snapshot.jobs.len(), 2);
        // The lock is gone, and so is the right to commit.
        assert!(store.commit(&[applied("c")]).is_err());
        assert!(!journal.exists());
    }

    #[test]
    fn a_state_path_that_is_a_link_writes_through_it_and_keeps_the_link() {
        let dir = tempfile::tempdir().expect("dir");
        let volume = dir.path().join("volume");
        std::fs::create_dir(&volume).expect("mkdir");
        let link = dir.path().join("state.json");
        // Dangling at first: the first fold makes the file it names.
        std::os::unix::fs::symlink("volume/real.json", &link).expect("link");
        let store = FileStore::new(&link);
        assert_eq!(store.location(), link.display().to_string());
        let held = store.lock().expect("lock");
        assert_eq!(store.load().expect("load"), None);
        store.commit(&[applied("a")]).expect("commit");
        drop(held);
        assert!(std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink());
        let real = volume.join("real.json");
        assert_eq!(
            State::load(&real).expect("load").expect("state").jobs.len(),
            1
        );
        // Lock (and journal, key) beside the file, not beside the link.
        assert!(volume.join("state.lock").exists());
        assert!(!dir.path().join("state.lock").exists());
        // Read back through the link.
        let again = FileStore::new(&link);
        assert_eq!(again.load().expect("load").expect("state").jobs.len(), 1);
    }
}
