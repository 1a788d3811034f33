//! `state.lock`: the advisory lock of an applying run, naming its pid;
//! `state unlock --force` for a lock whose holder is gone.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::disk::{ensure_dir, parent, remove_stale_temps};
use crate::state::StateError;

/// The advisory lock of an applying run. Held until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock beside `state_path`, or fails at once naming the pid
    /// that holds it.
    pub fn acquire(state_path: &Path) -> Result<StateLock, StateError> {
        let dir = parent(state_path);
        let path = dir.join("state.lock");
        let lock_err = |source| StateError::Lock {
            path: path.clone(),
            source,
        };
        ensure_dir(dir).map_err(lock_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(StateError::Locked {
                    path,
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        let acquired = std::time::SystemTime::now();
        file.set_len(0).map_err(lock_err)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(lock_err)?;
        file.sync_all().map_err(lock_err)?;
        // Every writer of the state holds this lock, so a temp file from
        // before it was taken belongs to a run that is gone.
        remove_stale_temps(dir, acquired);
        Ok(StateLock { _file: file })
    }
}

/// Whether no process `pid` runs on this host (a positive pid that
/// `kill(pid, 0)` reports as absent).
pub fn pid_gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    pid > 0
        && unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// What `state unlock --force` did.
#[derive(Debug, PartialEq)]
pub enum Unlocked {
    /// The lock file was removed; the pid it named, if any.
    Removed { path: PathBuf, pid: Option<String> },
    /// There was no lock file.
    Absent { path: PathBuf },
}

/// Removes the lock file beside `state_path` when no live process holds
/// it: a lock whose holder is gone. A lock a running nfcron holds is
/// refused (`Locked`): stop that run first.
pub fn force_unlock(state_path: &Path) -> Result<Unlocked, StateError> {
    let path = parent(state_path).join("state.lock");
    let lock_err = |source| StateError::Lock {
        path: path.clone(),
        source,
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Unlocked::Absent { path }),
        Err(e) => return Err(lock_err(e)),
    };
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    let pid = Some(pid.trim().to_string()).filter(|p| !p.is_empty());
    match file.try_lock() {
        Ok(()) => {}
        // The kernel releases a dead process's flock: a held one has a
        // live holder, even when its pid is not visible here (another PID
        // namespace: a sidecar container beside a `kubectl exec`).
        Err(fs::TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                path,
                pid: pid.unwrap_or_else(|| "unknown".into()),
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
    }
    fs::remove_file(&path).map_err(lock_err)?;
    Ok(Unlocked::Removed { path, pid })
}
