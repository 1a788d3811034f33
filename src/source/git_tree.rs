//! The manifests in one commit's tree, read by the directory source's rules
//! ([`super::dir`]): `*.yaml`/`*.yml`, hidden entries and editor leftovers
//! skipped, symlinks followed.
//!
//! A symlink is resolved inside the commit's tree (Git stores its target as
//! text): a link to a file or a directory in the repository is read like the
//! real thing, under the link's own path. A link that is absolute, climbs out
//! of the repository, dangles or loops, and every submodule (a gitlink: its
//! files are in another repository), is yielded as unreadable: an `io`
//! diagnostic naming the path, which blocks pruning. Nothing that could hold
//! a manifest is skipped silently, so a broken tree never reads as deleted
//! jobs.
//!
//! A blob that the local object store lacks (a partial clone) is an error,
//! never an unreadable file: the caller cannot plan from half a tree.

use std::collections::HashSet;
use std::path::Path;

use git2::{ObjectType, Repository, Tree, TreeEntry};

use super::dir::is_manifest_name;
use super::git::GitError;
use super::{ReadProblem, SourceFile, MAX_FILE_BYTES};

/// Git's file modes (`git ls-tree` shows them in octal).
const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// Symlinks followed while resolving one path: Linux's `ELOOP` limit.
const MAX_LINK_HOPS: u32 = 40;

/// Directories entered in one read, symlinks included: links can make a
/// small tree look huge (`a/x -> .. `, `a/y -> ..`), and the read is
/// bounded like every input.
const MAX_DIRECTORIES: usize = 100_000;

/// The manifests under `subdir` (normalised, see
/// [`super::git::normalize_git_path`]; `""` for the root) of a commit's
/// tree, shown as `display_prefix/relative/path`. A `subdir` that is
/// missing or not a directory at this commit (after following symlinks) is
/// an error naming it and the commit.
pub fn read_tree(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    subdir: &str,
    display_prefix: &str,
) -> Result<Vec<SourceFile>, GitError> {
    let mut walker = Walker {
        repo,
        root: commit.tree()?,
        revision: commit.id().to_string(),
        files: Vec::new(),
        ancestors: HashSet::new(),
        directories: 0,
    };
    let (tree, canonical) = if subdir.is_empty() {
        (walker.root.clone(), Vec::new())
    } else {
        let not_found = || GitError::PathNotFound {
            path: subdir.to_string(),
            revision: walker.revision.clone(),
        };
        match walker.resolve(&[], subdir) {
            Ok(Node::Tree(tree, canonical)) => (tree, canonical),
            Ok(Node::Blob(..)) | Ok(Node::Submodule(_)) | Err(LinkProblem::NotADirectory) => {
                return Err(GitError::PathNotADirectory {
                    path: subdir.to_string(),
                    revision: walker.revision.clone(),
                })
            }
            Err(LinkProblem::Missing) => return Err(not_found()),
            Err(LinkProblem::Git(e)) => return Err(GitError::Git(e)),
            Err(problem) => {
                return Err(GitError::PathLink {
                    path: subdir.to_string(),
                    revision: walker.revision.clone(),
                    why: problem.to_string(),
                })
            }
        }
    };
    // Paths are shown escaped, like a directory source's.
    let prefix = display_prefix.trim_end_matches('/');
    let shown = if prefix.is_empty() {
        Vec::new()
    } else {
        let mut p = prefix.as_bytes().to_vec();
        p.push(b'/');
        p
    };
    walker.walk(&tree, canonical, &shown)?;
    let mut files = walker.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// What a path in the tree leads to, symlinks followed; with the canonical
/// path (no links, no `..`) of a directory.
enum Node<'r> {
    Tree(Tree<'r>, Vec<String>),
    Blob(git2::Oid),
    Submodule(String),
}

/// Why a symlink (or `--git-path`) leads nowhere nfcron can read.
#[derive(Debug)]
enum LinkProblem {
    Absolute(String),
    OutOfTree(String),
    Loop,
    Missing,
    NotADirectory,
    Git(git2::Error),
}

impl std::fmt::Display for LinkProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkProblem::Absolute(target) => write!(
                f,
                "a symlink to the absolute path `{}`, outside the repository",
                super::display_bytes(target.as_bytes())
            ),
            LinkProblem::OutOfTree(target) => write!(
                f,
                "a symlink to `{}`, which leads out of the repository",
                super::display_bytes(target.as_bytes())
            ),
            LinkProblem::Loop => write!(f, "symlink loop"),
            LinkProblem::Missing => {
                write!(f, "a symlink to nothing (its target is not in the tree)")
            }
            LinkProblem::NotADirectory => {
                write!(f, "a symlink through a file, as if it were a directory")
            }
            LinkProblem::Git(e) => write!(f, "git: {}", e.message()),
        }
    }
}

struct Walker<'r> {
    repo: &'r Repository,
    root: Tree<'r>,
    revision: String,
    files: Vec<SourceFile>,
    /// Canonical paths of the directories being walked: one met again
    /// through a symlink is a loop.
    ancestors: HashSet<Vec<String>>,
    directories: usize,
}

impl<'r> Walker<'r> {
    fn unreadable(&mut self, shown: &[u8], why: String) {
        self.files.push(SourceFile {
            path: super::display_bytes(shown),
            content: Err(ReadProblem::Io(why)),
        });
    }

    fn walk(
        &mut self,
        tree: &Tree<'r>,
        canonical: Vec<String>,
        shown: &[u8],
    ) -> Result<(), GitError> {
        let dir_shown = shown.strip_suffix(b"/").unwrap_or(shown);
        if self.ancestors.contains(&canonical) {
            self.unreadable(
                dir_shown,
                "symlink loop: this directory contains itself".into(),
            );
            return Ok(());
        }
        self.directories += 1;
        if self.directories > MAX_DIRECTORIES {
            self.unreadable(
                dir_shown,
                format!("more than {MAX_DIRECTORIES} directories (symlinks counted); not read"),
            );
            return Ok(());
        }
        self.ancestors.insert(canonical.clone());
        for entry in tree.iter() {
            self.entry(&entry, &canonical, shown)?;
        }
        self.ancestors.remove(&canonical);
        Ok(())
    }

    fn entry(
        &mut self,
        entry: &TreeEntry<'_>,
        canonical: &[String],
        dir_shown: &[u8],
    ) -> Result<(), GitError> {
        let bytes = entry.name_bytes();
        if bytes.starts_with(b".") {
            return Ok(());
        }
        let mut shown = dir_shown.to_vec();
        shown.extend_from_slice(bytes);
        let mode = entry.filemode();
        let manifest = is_manifest_name(&String::from_utf8_lossy(bytes));
        let Ok(name) = entry.name() else {
            // Not UTF-8: reported (an `io` problem blocks pruning), never
            // entered, so a manifest in it is never read as deleted.
            if mode == MODE_TREE || mode == MODE_LINK || mode == MODE_GITLINK {
                self.unreadable(
                    &shown,
                    "the directory name is not valid UTF-8, so the manifests in it are not read; rename it".into(),
                );
            } else if manifest {
                self.unreadable(&shown, "the file name is not valid UTF-8; rename it".into());
            }
            return Ok(());
        };
        match mode {
            MODE_TREE => {
                let tree = entry.to_object(self.repo)?.peel_to_tree()?;
                let mut child = canonical.to_vec();
                child.push(name.to_string());
                shown.push(b'/');
                self.walk(&tree, child, &shown)?;
            }
            MODE_GITLINK => self.unreadable(
                &shown,
                format!(
                    "a submodule (commit {}): nfcron does not read submodules, so the manifests in it are not read; copy them into this repository or point --git at the submodule's own repository",
                    entry.id()
                ),
            ),
            MODE_LINK => {
                let target = self.link_target(entry.id(), &shown)?;
                match self.resolve(canonical, &target) {
                    Ok(Node::Tree(tree, canonical)) => {
                        shown.push(b'/');
                        self.walk(&tree, canonical, &shown)?;
                    }
                    Ok(Node::Blob(oid)) if manifest => {
                        let content = self.blob(oid, &shown)?;
                        self.files.push(SourceFile {
                            path: super::display_bytes(&shown),
                            content,
                        });
                    }
                    Ok(Node::Blob(_)) => {}
                    Ok(Node::Submodule(path)) => self.unreadable(
                        &shown,
                        format!("a symlink into the submodule `{path}`: nfcron does not read submodules"),
                    ),
                    // A link on the way whose blob is not here (a partial
                    // clone): as for any missing blob.
                    Err(LinkProblem::Git(e)) if e.code() == git2::ErrorCode::NotFound => {
                        return Err(GitError::MissingBlob {
                            path: super::display_bytes(&shown),
                            revision: self.revision.clone(),
                        })
                    }
                    Err(LinkProblem::Git(e)) => return Err(GitError::Git(e)),
                    Err(problem) => self.unreadable(&shown, problem.to_string()),
                }
            }
            _ if entry.kind() == Some(ObjectType::Blob) && manifest => {
                let content = self.blob(entry.id(), &shown)?;
                self.files.push(SourceFile {
                    path: super::display_bytes(&shown),
                    content,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// A blob's text, bounded like a file's. A blob missing from the
    /// object store is an error for the whole read.
    fn blob(&self, oid: git2::Oid, shown: &[u8]) -> Result<Result<String, ReadProblem>, GitError> {
        let blob = self.find_blob(oid, shown)?;
        if blob.size() as u64 > MAX_FILE_BYTES {
            return Ok(Err(ReadProblem::TooLarge {
                bytes: blob.size() as u64,
            }));
        }
        Ok(String::from_utf8(blob.content().to_vec()).map_err(|e| {
            ReadProblem::Io(format!(
                "not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ))
        }))
    }

    fn find_blob(&self, oid: git2::Oid, shown: &[u8]) -> Result<git2::Blob<'r>, GitError> {
        self.repo.find_blob(oid).map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => GitError::MissingBlob {
                path: super::display_bytes(shown),
                revision: self.revision.clone(),
            },
            _ => GitError::Git(e),
        })
    }

    /// A symlink's target as Git stores it (the link's blob).
    fn link_target(&self, oid: git2::Oid, shown: &[u8]) -> Result<String, GitError> {
        let blob = self.find_blob(oid, shown)?;
        // A target is a path: Linux's PATH_MAX bounds it.
        let content = blob.content();
        Ok(String::from_utf8_lossy(&content[..content.len().min(4096)]).into_owned())
    }

    /// Where `target` leads from the directory `base` (canonical), every
    /// symlink on the way followed, as the kernel would in a checkout.
    fn resolve(&self, base: &[String], target: &str) -> Result<Node<'r>, LinkProblem> {
        let mut hops = 0;
        let mut done: Vec<String> = base.to_vec();
        let mut pending: std::collections::VecDeque<String> = parts(target)?;
        let mut dir = self.tree_at(&done)?;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                if done.pop().is_none() {
                    return Err(LinkProblem::OutOfTree(target.to_string()));
                }
                dir = self.tree_at(&done)?;
                continue;
            }
            let (mode, id) = {
                let entry = dir.get_name(&part).ok_or(LinkProblem::Missing)?;
                (entry.filemode(), entry.id())
            };
            match mode {
                MODE_TREE => {
                    dir = self.repo.find_tree(id).map_err(LinkProblem::Git)?;
                    done.push(part);
                }
                MODE_GITLINK => {
                    done.push(part);
                    return Ok(Node::Submodule(done.join("/")));
                }
                MODE_LINK => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(LinkProblem::Loop);
                    }
                    let blob = self.repo.find_blob(id).map_err(LinkProblem::Git)?;
                    let next = String::from_utf8_lossy(blob.content()).into_owned();
                    let mut rest = parts(&next)?;
                    rest.extend(pending);
                    pending = rest;
                    dir = self.tree_at(&done)?;
                }
                _ if pending.is_empty() => return Ok(Node::Blob(id)),
                _ => return Err(LinkProblem::NotADirectory),
            }
        }
        Ok(Node::Tree(dir, done))
    }

    /// The tree at a canonical path (every part a directory).
    fn tree_at(&self, parts: &[String]) -> Result<Tree<'r>, LinkProblem> {
        if parts.is_empty() {
            return Ok(self.root.clone());
        }
        self.root
            .get_path(Path::new(&parts.join("/")))
            .and_then(|e| e.to_object(self.repo))
            .and_then(|o| o.peel_to_tree())
            .map_err(LinkProblem::Git)
    }
}

/// The parts of a link target still to resolve; an absolute target is
/// refused. `.` and empty parts are dropped; `..` stays, to be applied in
/// order.
fn parts(target: &str) -> Result<std::collections::VecDeque<String>, LinkProblem> {
    if target.starts_with('/') {
        return Err(LinkProblem::Absolute(target.to_string()));
    }
    Ok(target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect())
}
