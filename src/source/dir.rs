//! Manifests in a directory tree (or a single file): `*.yaml` and `*.yml`,
//! walked recursively in sorted order, following symlinks with loop
//! detection, skipping hidden entries and editor leftovers.
//!
//! Every entry that could hold a manifest is accounted for: a directory or
//! manifest whose name is not UTF-8, and a FIFO, socket or device named like
//! a manifest, is yielded as unreadable (an `io` diagnostic, which blocks
//! pruning), never skipped and never opened blocking.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ReadProblem, SourceFile, MAX_FILE_BYTES};

/// Reads every manifest file under `root`. A missing `root` is one
/// unreadable file, so callers report it like any other.
pub fn read(root: &Path) -> Vec<SourceFile> {
    read_with(root, &mut read_file)
}

fn read_with(root: &Path, reader: &mut dyn FnMut(&Path) -> SourceFile) -> Vec<SourceFile> {
    let mut files = Vec::new();
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {
            let mut ancestors = HashSet::new();
            walk(root, &mut ancestors, &mut files, reader);
        }
        Ok(_) => files.push(reader(root)),
        Err(e) => files.push(SourceFile {
            path: display(root),
            content: Err(ReadProblem::Io(io_message(&e))),
        }),
    }
    files
}

/// Remembers files by size and modification time so that a re-read after a
/// file event reads only what changed.
#[derive(Debug, Default)]
pub struct DirCache {
    files: HashMap<String, (std::time::SystemTime, u64, SourceFile)>,
}

impl DirCache {
    /// Like [`read`], reusing the content of unchanged files.
    pub fn read(&mut self, root: &Path) -> Vec<SourceFile> {
        let mut seen = HashMap::new();
        let files = read_with(root, &mut |path: &Path| {
            let display = display(path);
            let stamp = fs::metadata(path)
                .ok()
                .and_then(|m| m.modified().ok().map(|t| (t, m.len())));
            if let (Some((time, len)), Some((t, l, cached))) = (stamp, self.files.get(&display)) {
                if time == *t && len == *l {
                    seen.insert(display, (time, len, cached.clone()));
                    return cached.clone();
                }
            }
            let file = read_file(path);
            if let Some((time, len)) = stamp {
                seen.insert(display, (time, len, file.clone()));
            }
            file
        });
        self.files = seen;
        files
    }
}

/// Watches `root` recursively; any change sends on `changed` (dropped when
/// one is already waiting: the reader looks at everything anyway).
pub fn watch(
    root: &Path,
    changed: tokio::sync::mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Whether a file name is one nfcron reads as a manifest.
pub fn is_manifest_name(name: &str) -> bool {
    let leftover = name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913";
    !leftover && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

fn walk(
    dir: &Path,
    ancestors: &mut HashSet<PathBuf>,
    files: &mut Vec<SourceFile>,
    reader: &mut dyn FnMut(&Path) -> SourceFile,
) {
    let unreadable = |path: &Path, why: String| SourceFile {
        path: display(path),
        content: Err(ReadProblem::Io(why)),
    };
    let canonical = match fs::canonicalize(dir) {
        Ok(c) => c,
        Err(e) => {
            files.push(unreadable(dir, io_message(&e)));
            return;
        }
    };
    if !ancestors.insert(canonical.clone()) {
        files.push(unreadable(
            dir,
            "symlink loop: this directory contains itself".into(),
        ));
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            files.push(unreadable(dir, io_message(&e)));
            ancestors.remove(&canonical);
            return;
        }
    };
    let mut names: Vec<(OsString, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) if !e.file_name().as_bytes().starts_with(b".") => {
                names.push((e.file_name(), e.path()))
            }
            Ok(_) => {}
            // An entry that cannot be listed could be a manifest: the
            // directory is reported, never taken as complete.
            Err(e) => files.push(unreadable(
                dir,
                format!("cannot list every entry: {}", io_message(&e)),
            )),
        }
    }
    names.sort();
    for (raw, path) in names {
        let utf8 = raw.to_str();
        // Suffixes and prefixes are ASCII: a lossy copy answers for names
        // that are not UTF-8 too.
        let manifest = is_manifest_name(&raw.to_string_lossy());
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => match utf8 {
                Some(_) => walk(&path, ancestors, files, reader),
                None => files.push(unreadable(
                    &path,
                    "the directory name is not valid UTF-8, so the manifests in it are not read; rename it".into(),
                )),
            },
            Ok(_) if !manifest => {}
            Ok(_) if utf8.is_none() => files.push(unreadable(
                &path,
                "the file name is not valid UTF-8; rename it".into(),
            )),
            Ok(meta) if !meta.is_file() => {
                // Never opened: a FIFO would block the read forever.
                files.push(unreadable(&path, not_a_file(&meta.file_type())))
            }
            Ok(_) => files.push(reader(&path)),
            Err(e) if manifest || fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) => {
                let message = if e.raw_os_error() == Some(libc::ELOOP) {
                    "symlink loop".to_string()
                } else {
                    io_message(&e)
                };
                files.push(unreadable(&path, message));
            }
            Err(_) => {}
        }
    }
    ancestors.remove(&canonical);
}

/// Why an entry that is not a regular file is not read.
fn not_a_file(kind: &fs::FileType) -> String {
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    };
    format!("not a regular file but {what}")
}

fn read_file(path: &Path) -> SourceFile {
    SourceFile {
        path: display(path),
        content: read_bounded(path),
    }
}

fn read_bounded(path: &Path) -> Result<String, ReadProblem> {
    // Non-blocking, and the type checked on the open file: an entry swapped
    // for a FIFO after the walk looked at it fails here instead of hanging.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| ReadProblem::Io(io_message(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| ReadProblem::Io(io_message(&e)))?;
    if !meta.is_file() {
        return Err(ReadProblem::Io(not_a_file(&meta.file_type())));
    }
    let declared = meta.len();
    if declared > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge { bytes: declared });
    }
    // The size can change between the stat and the read: never read more
    // than the limit plus one byte.
    let mut bytes = Vec::with_capacity(declared as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadProblem::Io(io_message(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        ReadProblem::Io(format!(
            "not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn display(path: &Path) -> String {
    super::display_path(path)
}

pub(crate) fn io_message(e: &std::io::Error) -> String {
    // The OS's words without the "(os error N)" suffix.
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names() {
        assert!(is_manifest_name("a.yaml"));
        assert!(is_manifest_name("a.yml"));
        assert!(!is_manifest_name("a.yaml~"));
        assert!(!is_manifest_name(".#a.yaml"));
        assert!(!is_manifest_name(".a.yaml.swp"));
        assert!(!is_manifest_name("a.yaml.swx"));
        assert!(!is_manifest_name("4913"));
        assert!(!is_manifest_name("README.md"));
    }

    /// The walk looks before it reads; an entry swapped for a FIFO in
    /// between reaches the read, which must not block on it.
    #[test]
    fn reading_a_fifo_swapped_in_after_the_walk_does_not_block() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.yaml");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_file(&path)));
        let file = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the read returned instead of blocking on the FIFO");
        assert_eq!(
            file.content,
            Err(ReadProblem::Io("not a regular file but a FIFO".into()))
        );
    }
}
