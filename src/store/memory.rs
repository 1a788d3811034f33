//! A store in memory: for unit tests of the reconcile core (they count
//! commits and see the lock) and for `reconcile --base`, whose baseline is
//! made from another revision's manifests and is never kept.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Change, Held, Store};
use crate::secret::Keyed;
use crate::state::{State, StateError};

#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<Option<State>>,
    key: Mutex<Keyed>,
    locked: Arc<AtomicBool>,
    /// Every successful commit call, in order: what a test asserts on.
    commits: Mutex<Vec<Vec<Change>>>,
    /// Commits still to refuse (a full disk, a lost connection).
    failing: std::sync::atomic::AtomicUsize,
}

impl MemoryStore {
    /// A store holding `state` (`None`: no state yet) and `key`.
    pub fn new(state: Option<State>, key: Keyed) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(state),
            key: Mutex::new(key),
            locked: Arc::new(AtomicBool::new(false)),
            commits: Mutex::new(Vec::new()),
            failing: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The next `n` commits fail (and change nothing).
    pub fn fail_commits(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    /// The state as committed so far.
    pub fn state(&self) -> Option<State> {
        self.state.lock().expect("memory store").clone()
    }

    pub fn commits(&self) -> Vec<Vec<Change>> {
        self.commits.lock().expect("memory store").clone()
    }

    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::SeqCst)
    }
}

/// Releases the memory store's lock when dropped.
struct MemoryLock(Arc<AtomicBool>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    fn lock(&self) -> Result<Held, StateError> {
        if self.locked.swap(true, Ordering::SeqCst) {
            return Err(StateError::Locked {
                path: "memory".into(),
                pid: std::process::id().to_string(),
            });
        }
        Ok(Box::new(MemoryLock(self.locked.clone())))
    }

    fn load(&self) -> Result<Option<State>, StateError> {
        Ok(self.state())
    }

    fn key(&self, _create: bool) -> Result<Keyed, StateError> {
        Ok(Keyed::new(*self.key.lock().expect("memory store").bytes()))
    }

    fn stored_key(&self) -> Result<Option<Keyed>, StateError> {
        self.key(false).map(Some)
    }

    fn set_key(&self, key: &Keyed) -> Result<(), StateError> {
        *self.key.lock().expect("memory store") = Keyed::new(*key.bytes());
        Ok(())
    }

    fn commit(&self, changes: &[Change]) -> Result<(), StateError> {
        let failing = self.failing.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing.store(failing - 1, Ordering::SeqCst);
            return Err(StateError::Write {
                path: "memory".into(),
                source: std::io::Error::other("commit refused (fail_commits)"),
            });
        }
        let mut state = self.state.lock().expect("memory store");
        let state = state.get_or_insert_with(State::default);
        for change in changes {
            change.apply_to(state);
        }
        self.commits
            .lock()
            .expect("memory store")
            .push(changes.to_vec());
        Ok(())
    }
}
