//! The file primitives the state, its journal and its key share: bounded,
//! non-blocking reads of regular files; atomic replacement (temp file,
//! fsync, rename, fsync of the directory); the state directory and its
//! `.gitignore`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::state::StateError;

/// A state file is at most this big (10,000 jobs take about 10 MB).
const MAX_STATE_BYTES: u64 = 1 << 30;

/// Reads a regular file of at most [`MAX_STATE_BYTES`]: a device or FIFO
/// given as `--state` (`/dev/zero` reads forever) is an error, never read.
pub(super) fn read_regular(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular_bytes(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// The bytes of a regular file of at most [`MAX_STATE_BYTES`]. Opened
/// without blocking, so a FIFO (or a device) put where the state, its
/// journal or its key belongs is refused, never waited on.
pub(super) fn read_regular_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    read_regular_at_most(path, MAX_STATE_BYTES)
}

/// The bytes of a regular file of at most `max` bytes, opened without
/// blocking: a FIFO or a device (`/dev/zero`) is refused as "not a regular
/// file", never waited on or read without end. The PostgreSQL store reads
/// its service, password and TLS files through it too.
pub(in crate::store) fn read_regular_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, more than {max}", meta.len()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How [`write_atomic`] names its temp files: `.state.` + 6 random
/// alphanumerics + `.tmp`. A kill between create and rename leaves one
/// behind; [`StateLock::acquire`] removes those (and only those).
const TEMP_PREFIX: &str = ".state.";
const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RAND: usize = 6;

pub(super) fn is_our_temp(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|r| r.len() == TEMP_RAND && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Removes the temp files a killed run left in `dir`: only names of our own
/// pattern, only regular files (never a symlink), only those last modified
/// before `before` (the moment this run took the lock, so none belongs to
/// a run still writing). Called with the lock held. Returns how many went.
pub(super) fn remove_stale_temps(dir: &Path, before: std::time::SystemTime) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_our_temp) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let old = meta.modified().is_ok_and(|m| m <= before);
        if meta.file_type().is_file() && old && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed temp state files left by an interrupted run");
    }
    removed
}

/// Temp file in the same directory, fsync, rename over `path`, fsync of the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let write_err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent(path);
    ensure_dir(dir).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RAND)
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    hold_fsync();
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)?;
    Ok(())
}

/// Test-only: `NFCRON_TEST_FSYNC_DELAY` (a duration such as `2s`, read
/// once per process) makes each state fsync take that much longer, a
/// stand-in for a slow volume. Unset in production: no delay.
fn test_fsync_delay() -> std::time::Duration {
    static DELAY: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("NFCRON_TEST_FSYNC_DELAY")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .unwrap_or_default()
    })
}

pub(super) fn hold_fsync() {
    let delay = test_fsync_delay();
    if !delay.is_zero() {
        tracing::info!(
            hold_ms = delay.as_millis() as u64,
            "NFCRON_TEST_FSYNC_DELAY: holding the state fsync"
        );
        std::thread::sleep(delay);
    }
}

pub(super) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates the state directory with a `.gitignore` of `*`, so that state,
/// key and lock are never committed by accident. Only in a directory of
/// nfcron's own (one this made, or a `.nfcron`): a `*` dropped into a
/// directory that holds other things (`--state state.json` at a
/// repository's root) would hide all of them from Git.
pub(super) fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    let made = !dir.as_os_str().is_empty() && !dir.exists();
    fs::create_dir_all(dir)?;
    let ignore = dir.join(".gitignore");
    let ours = made || dir.file_name().is_some_and(|n| n == ".nfcron");
    if ours && !ignore.exists() {
        fs::write(ignore, "*\n")?;
    }
    Ok(())
}
