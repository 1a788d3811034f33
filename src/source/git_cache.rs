//! The bare repository behind `--git-cache`: one writer at a time (a file
//! lock next to it), a cache that cannot be trusted replaced by a fresh
//! clone swapped in with a rename, and packs folded into one when fetches
//! have piled them up.
//!
//! A clone is made in a temporary directory beside the cache and renamed
//! into place only once it holds the fetched tip: a run killed half-way
//! leaves a temporary directory (removed by the next run) and never a
//! half-made cache. No `git` command is run; everything goes through git2.

use std::fs::File;
use std::path::{Path, PathBuf};

use git2::Repository;

/// The refspec the cache is configured with (what `git fetch` in it
/// would use); nfcron itself fetches only the followed branch.
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";

/// More packs than this after a fetch: they are written into one.
pub const MAX_PACKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot lock the Git cache ({path})")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a fresh Git cache beside {path}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a fresh Git cache in {path}: {}", .error.message())]
    Init { path: String, error: git2::Error },
    #[error("cannot move the fresh Git cache into {path}")]
    Swap {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The cache directory, locked for this process until dropped.
pub struct Cache {
    path: PathBuf,
    /// Held (locked) for as long as the cache is.
    _lock: File,
}

/// A clone being made beside the cache; deleted when dropped unless it
/// was swapped in.
pub struct Fresh {
    pub repo: Repository,
    dir: tempfile::TempDir,
}

impl Cache {
    /// Waits for the lock on `path` (`<path>.lock`, beside it: the cache
    /// directory itself is replaced when it heals), then removes what a
    /// killed run left beside it.
    pub fn lock(path: &Path) -> Result<Cache, CacheError> {
        let shown = super::display_path(path);
        let lock_path = sibling(path, ".lock");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CacheError::Lock {
                path: shown.clone(),
                source,
            })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| CacheError::Lock {
                path: super::display_path(&lock_path),
                source,
            })?;
        file.lock().map_err(|source| CacheError::Lock {
            path: super::display_path(&lock_path),
            source,
        })?;
        let cache = Cache {
            path: path.to_path_buf(),
            _lock: file,
        };
        cache.remove_leftovers();
        Ok(cache)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache, if it can be used for a remote recorded as `remote`
    /// (the URL without its password). `Err(None)`: there is no cache
    /// yet; `Err(Some(why))`: there is one nfcron does not trust.
    pub fn open(&self, remote: &str) -> Result<Repository, Option<String>> {
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
            Err(e) => return Err(Some(format!("cannot read it: {e}"))),
            Ok(meta) if !meta.is_dir() => return Err(Some("it is not a directory".into())),
            Ok(_) => {}
        }
        if std::fs::read_dir(&self.path).is_ok_and(|mut d| d.next().is_none()) {
            return Err(None);
        }
        if !self.path.join("objects").is_dir() {
            return Err(Some("its objects directory is missing".into()));
        }
        let repo = Repository::open_bare(&self.path)
            .map_err(|e| Some(format!("it is not a bare repository: {}", e.message())))?;
        let recorded = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_string));
        match recorded {
            Some(url) if url == remote => Ok(repo),
            Some(url) => Err(Some(format!(
                "it was cloned from `{}`, not `{}`",
                super::display_bytes(url.as_bytes()),
                super::display_bytes(remote.as_bytes())
            ))),
            None => Err(Some("it records no remote (a half-made clone?)".into())),
        }
    }

    /// An empty bare repository beside the cache, configured for `remote`
    /// (recorded without a password: nothing secret goes into its config).
    pub fn fresh(&self, remote: &str) -> Result<Fresh, CacheError> {
        let parent = parent(&self.path);
        std::fs::create_dir_all(parent).map_err(|source| CacheError::Create {
            path: super::display_path(&self.path),
            source,
        })?;
        let dir = tempfile::Builder::new()
            .prefix(&leftover_prefix(&self.path))
            .tempdir_in(parent)
            .map_err(|source| CacheError::Create {
                path: super::display_path(&self.path),
                source,
            })?;
        let init = |dir: &Path| {
            let repo = Repository::init_bare(dir)?;
            repo.remote_with_fetch("origin", remote, FETCH_REFSPEC)?;
            Ok::<_, git2::Error>(repo)
        };
        let repo = init(dir.path()).map_err(|error| CacheError::Init {
            path: super::display_path(dir.path()),
            error,
        })?;
        Ok(Fresh { repo, dir })
    }

    /// Puts `fresh` where the cache is, moving any old cache aside first
    /// and deleting it after. A crash between the two renames leaves no
    /// cache, and the next run clones again.
    pub fn swap_in(&self, fresh: Fresh) -> Result<Repository, CacheError> {
        let swap_error = |source| CacheError::Swap {
            path: super::display_path(&self.path),
            source,
        };
        let Fresh { repo, dir } = fresh;
        drop(repo);
        let old = match std::fs::symlink_metadata(&self.path) {
            Ok(_) => {
                let old = tempfile::Builder::new()
                    .prefix(&leftover_prefix(&self.path))
                    .tempdir_in(parent(&self.path))
                    .map_err(swap_error)?
                    .keep();
                let aside = old.join("old");
                std::fs::rename(&self.path, &aside).map_err(swap_error)?;
                Some(old)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(swap_error(e)),
        };
        let made = dir.keep();
        std::fs::rename(&made, &self.path).map_err(swap_error)?;
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(old);
        }
        Repository::open_bare(&self.path).map_err(|error| CacheError::Init {
            path: super::display_path(&self.path),
            error,
        })
    }

    /// Temporary clones and old caches a killed run left beside the cache.
    fn remove_leftovers(&self) {
        let prefix = leftover_prefix(&self.path);
        let Ok(entries) = std::fs::read_dir(parent(&self.path)) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                tracing::debug!(path = %super::display_path(&entry.path()), "removing what an interrupted run left");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether the objects `tip`'s tree needs can all be read: a cache with a
/// truncated pack or lost objects fails here, not later as "manifest
/// unreadable".
pub fn check_tip(repo: &Repository, tip: git2::Oid) -> Result<(), git2::Error> {
    let commit = repo.find_commit(tip)?;
    let tree = commit.tree()?;
    let odb = repo.odb()?;
    let mut failed = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        // Submodules (commits) live in another repository.
        if entry.kind() == Some(git2::ObjectType::Commit) {
            return git2::TreeWalkResult::Skip;
        }
        match odb.read_header(entry.id()) {
            Ok(_) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failed = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failed.is_some() { Ok(()) } else { Err(e) })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The pack files of `repo`.
pub fn packs(repo: &Repository) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo.path().join("objects/pack")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect()
}

/// Writes everything the refs reach into one pack, then deletes the old
/// packs (index first: a pack without its index is ignored). Readers are
/// kept out by the cache lock; a crash leaves both, which is harmless.
pub fn repack(repo: &Repository) -> Result<usize, git2::Error> {
    let old = packs(repo);
    let mut walk = repo.revwalk()?;
    walk.push_glob("refs/*")?;
    let mut builder = repo.packbuilder()?;
    builder.insert_walk(&mut walk)?;
    let dir = repo.path().join("objects/pack");
    builder.write(&dir, 0)?;
    let name = builder
        .name()?
        .map(|hash| format!("pack-{hash}.pack"))
        .ok_or_else(|| git2::Error::from_str("the new pack has no name"))?;
    let mut removed = 0;
    for pack in old {
        if pack
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == name)
        {
            continue;
        }
        let _ = std::fs::remove_file(pack.with_extension("idx"));
        let _ = std::fs::remove_file(pack.with_extension("rev"));
        if std::fs::remove_file(&pack).is_ok() {
            removed += 1;
        }
    }
    repo.odb()?.refresh()?;
    Ok(removed)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `<path><suffix>`, beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "git".into());
    name.push(suffix);
    parent(path).join(name)
}

/// Temporary directories beside the cache start with this.
fn leftover_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "git".into());
    format!(".{name}.nfcron-tmp-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_and_leftovers_live_beside_the_cache() {
        assert_eq!(
            sibling(Path::new(".nfcron/git"), ".lock"),
            Path::new(".nfcron/git.lock")
        );
        assert_eq!(
            sibling(Path::new("cache"), ".lock"),
            Path::new("./cache.lock")
        );
        assert_eq!(leftover_prefix(Path::new("a/git")), ".git.nfcron-tmp-");
    }
}
