//! `key`: the HMAC key beside the state (hex, mode 0600) that makes
//! digests and secret fingerprints.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::disk::{ensure_dir, parent, read_regular, write_atomic};
use super::format::journal_path;
use crate::secret::{Keyed, KEY_LEN};
use crate::state::StateError;

/// Reads the HMAC key beside `state_path`. When there is none: with
/// `create`, makes one (mode 0600); without (a dry-run writes nothing), a
/// throwaway key for this run.
pub fn load_key(state_path: &Path, create: bool) -> Result<Keyed, StateError> {
    let dir = parent(state_path);
    let path = dir.join("key");
    match read_key(state_path)? {
        Some(keyed) => Ok(keyed),
        None => {
            let keyed = Keyed::generate().map_err(StateError::Random)?;
            if state_path.exists() || journal_path(state_path).exists() {
                // Nothing recorded can be checked against a new key: each
                // job's digest differs, so each is planned (and, applying,
                // sent) once again. Loud, since it costs a PUT per job.
                tracing::warn!(
                    key = %path.display(),
                    state = %state_path.display(),
                    "the key file is missing beside an existing state: with a new key no recorded digest matches, so every job is planned as changed (sensitive values) and an apply sends each once; restore the key to avoid that"
                );
            }
            if create {
                write_key(dir, &path, &keyed)
                    .map_err(|source| StateError::Write { path, source })?;
            }
            Ok(keyed)
        }
    }
}

/// The HMAC key beside `state_path` as stored; `None` when there is none.
pub fn read_key(state_path: &Path) -> Result<Option<Keyed>, StateError> {
    let path = parent(state_path).join("key");
    match read_regular(&path) {
        Ok(text) => parse_key(text.trim())
            .map(Some)
            .ok_or(StateError::BadKey { path }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

/// Replaces the key beside `state_path` atomically (mode 0600, as the
/// temp file is made): `state migrate` brings a key along.
pub fn replace_key(state_path: &Path, keyed: &Keyed) -> Result<(), StateError> {
    let hex: String = keyed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(
        &parent(state_path).join("key"),
        format!("{hex}\n").as_bytes(),
    )
}

pub(crate) fn parse_key(hex: &str) -> Option<Keyed> {
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(Keyed::new(key))
}

fn write_key(dir: &Path, path: &Path, keyed: &Keyed) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    ensure_dir(dir)?;
    let hex: String = keyed.bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{hex}\n").as_bytes())?;
    file.sync_all()
}
