//! `--base REF`: the manifests of the current Git work tree's HEAD and of
//! REF, read from their commits (not from the files on disk).

use std::path::Path;

use git2::Repository;

use super::git::GitError;
use super::git_tree::read_tree;
use super::SourceFile;

/// (files at HEAD, files at REF, HEAD's commit id) for the manifests under
/// `path` (relative to the current directory).
pub fn files(
    path: &Path,
    base: &str,
) -> Result<(Vec<SourceFile>, Vec<SourceFile>, String), GitError> {
    let repo = Repository::discover(".")?;
    let workdir = repo.workdir().ok_or(GitError::BareRepository)?;
    let here = std::env::current_dir().map_err(GitError::CurrentDir)?;
    let absolute = here.join(path);
    let absolute = absolute.canonicalize().unwrap_or(absolute);
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let subdir = absolute
        .strip_prefix(&workdir)
        .map_err(|_| GitError::OutsideWorkTree)?
        .to_string_lossy()
        .into_owned();
    let subdir = super::git::normalize_git_path(&subdir)?;
    let display = path.to_string_lossy();
    let head = repo.head()?.peel_to_commit()?;
    let base = repo
        .revparse_single(base)
        .map_err(|source| GitError::BadBase {
            base: base.to_string(),
            source,
        })?
        .peel_to_commit()?;
    Ok((
        read_or_none(&repo, &head, &subdir, &display)?,
        read_or_none(&repo, &base, &subdir, &display)?,
        head.id().to_string(),
    ))
}

/// Under `--base` a manifests directory that a commit lacks (added by the
/// change, say) holds no manifests at that commit. A blob missing from a
/// partial clone stops the plan, naming the fix.
fn read_or_none(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    subdir: &str,
    display: &str,
) -> Result<Vec<SourceFile>, GitError> {
    match read_tree(repo, commit, subdir, display) {
        Err(GitError::PathNotFound { .. }) => Ok(Vec::new()),
        Err(GitError::MissingBlob { path, revision }) => {
            Err(GitError::BaseBlobMissing { path, revision })
        }
        other => other,
    }
}
