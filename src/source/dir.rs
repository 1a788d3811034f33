//! Manifests in a directory tree (or a single file): `*.yaml` and `*.yml`,
//! walked recursively in sorted order, following symlinks with loop
//! detection, skipping hidden entries and editor leftovers.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
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
    let canonical = match fs::canonicalize(dir) {
        Ok(c) => c,
        Err(e) => {
            files.push(SourceFile {
                path: display(dir),
                content: Err(ReadProblem::Io(io_message(&e))),
            });
            return;
        }
    };
    if !ancestors.insert(canonical.clone()) {
        files.push(SourceFile {
            path: display(dir),
            content: Err(ReadProblem::Io(
                "symlink loop: this directory contains itself".into(),
            )),
        });
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            files.push(SourceFile {
                path: display(dir),
                content: Err(ReadProblem::Io(io_message(&e))),
            });
            ancestors.remove(&canonical);
            return;
        }
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok().map(|n| (n, e.path())))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    names.sort();
    for (name, path) in names {
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, ancestors, files, reader),
            Ok(_) if is_manifest_name(&name) => files.push(reader(&path)),
            Ok(_) => {}
            Err(e)
                if is_manifest_name(&name)
                    || fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) =>
            {
                let message = if e.raw_os_error() == Some(40) {
                    "symlink loop".to_string()
                } else {
                    io_message(&e)
                };
                files.push(SourceFile {
                    path: display(&path),
                    content: Err(ReadProblem::Io(message)),
                });
            }
            Err(_) => {}
        }
    }
    ancestors.remove(&canonical);
}

fn read_file(path: &Path) -> SourceFile {
    SourceFile {
        path: display(path),
        content: read_bounded(path),
    }
}

fn read_bounded(path: &Path) -> Result<String, ReadProblem> {
    let file = fs::File::open(path).map_err(|e| ReadProblem::Io(io_message(&e)))?;
    let declared = file.metadata().map(|m| m.len()).unwrap_or(0);
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
    path.to_string_lossy().into_owned()
}

fn io_message(e: &std::io::Error) -> String {
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
}
