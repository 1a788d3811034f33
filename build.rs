//! Records the Git commit nfcron is built from, for `nfcron --version`.
//!
//! `NFCRON_GIT_COMMIT` wins (a build from a source tarball or in a container
//! without `.git` can pass it); otherwise `git rev-parse HEAD` in the source
//! tree; `unknown` when neither answers. Cargo runs this again when HEAD
//! moves (a commit, a checkout): it watches the HEAD file, the branch's ref
//! file and `packed-refs`, wherever the Git directory is (a linked work tree
//! keeps HEAD apart from the refs).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=NFCRON_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = match std::env::var("NFCRON_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            watch_git(&dir);
            git(&dir, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    println!("cargo:rustc-env=NFCRON_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=NFCRON_VERSION={version} (commit {commit})");
}

/// `git ARGS` in `dir`, its first line of output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// Asks cargo to rerun this script when HEAD or what it points at changes.
/// Only files that exist are named: cargo reruns on every build for a
/// missing one.
fn watch_git(dir: &Path) {
    let Some(git_dir) = git(dir, &["rev-parse", "--git-dir"]) else {
        return;
    };
    let git_dir = dir.join(git_dir);
    let common = git(dir, &["rev-parse", "--git-common-dir"])
        .map(|c| dir.join(c))
        .unwrap_or_else(|| git_dir.clone());
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(head_ref) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(&head_ref));
        watched.push(git_dir.join(&head_ref));
    }
    for path in watched.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
