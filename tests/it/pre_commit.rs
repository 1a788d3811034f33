//! The pre-commit hook (`.pre-commit-hooks.yaml`, `nfcron-validate`)
//! through the real `pre-commit`: `pre-commit try-repo <this repository>
//! nfcron-validate --files ...` from a repository of manifests passes on
//! the bundled `jobs.d`, fails printing nfcron's diagnostic on a broken
//! copy, and says so when no `nfcron` is installed.
//!
//! The hook is `language: system`: it runs the `nfcron` on PATH (here the
//! binary under test) and builds nothing. A `cargo` and a `rustup` placed
//! first on PATH record any call, and there must be none.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{git_commit, git_init, have_tool, Workspace};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// pre-commit still running after this is taken for hung.
const BUDGET: Duration = Duration::from_secs(300);

struct TryRepo {
    code: i32,
    output: String,
    /// Every `cargo` or `rustup` the hook ran.
    toolchain_calls: String,
}

/// A directory for PATH holding `cargo` and `rustup` stand-ins that record
/// their calls in `calls`, and `nfcron` (the binary under test) when asked.
fn bin_dir(dir: &Path, calls: &Path, with_nfcron: bool) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for tool in ["cargo", "rustup"] {
        let path = dir.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n",
                calls.display()
            ),
        )
        .expect("write stand-in");
        make_executable(&path);
    }
    if with_nfcron {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nfcron"), dir.join("nfcron"))
            .expect("link nfcron");
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// PATH with `first` in front and no other directory holding an `nfcron`.
fn path_with(first: &Path) -> String {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = vec![first.to_path_buf()];
    dirs.extend(std::env::split_paths(&rest).filter(|d| !d.join("nfcron").exists()));
    std::env::join_paths(dirs)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

/// `pre-commit try-repo <root> nfcron-validate --files <manifests>` in
/// `ws`, with a PRE_COMMIT_HOME of its own.
fn try_repo(ws: &Workspace, manifests: &[String], with_nfcron: bool) -> TryRepo {
    let tmp = tempfile::tempdir().expect("temp dir");
    let calls = tmp.path().join("toolchain-calls");
    let bin = tmp.path().join("bin");
    bin_dir(&bin, &calls, with_nfcron);
    let log = tmp.path().join("output");
    let mut cmd = Command::new("pre-commit");
    cmd.args(["try-repo", ROOT, "nfcron-validate", "--files"])
        .args(manifests)
        .current_dir(ws.path())
        .env("PATH", path_with(&bin))
        .env("PRE_COMMIT_HOME", tmp.path().join("pre-commit-home"))
        .env("PRE_COMMIT_COLOR", "never")
        .env("NO_COLOR", "1")
        // A source tree with uncommitted changes is committed to a shadow
        // copy first.
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .expect("log"),
        ));
    for (k, _) in std::env::vars() {
        if k.starts_with("NFCRON_") {
            cmd.env_remove(&k);
        }
    }
    let status = common::wait_with_deadline(cmd.spawn().expect("start pre-commit"), BUDGET)
        .unwrap_or_else(|| {
            panic!(
                "pre-commit try-repo still running after {BUDGET:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    TryRepo {
        code: status.code().unwrap_or(-1),
        output: std::fs::read_to_string(&log).expect("log"),
        toolchain_calls: std::fs::read_to_string(&calls).unwrap_or_default(),
    }
}

/// A repository of manifests: the bundled `jobs.d`, committed.
fn manifests_repo() -> (Workspace, git2::Repository, Vec<String>) {
    let ws = Workspace::new().with_bundled_jobs();
    let repo = git_init(ws.path());
    git_commit(&repo, &[], "manifests");
    let mut files: Vec<String> = std::fs::read_dir(ws.path().join("jobs.d"))
        .expect("jobs.d")
        .map(|e| format!("jobs.d/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    files.sort();
    (ws, repo, files)
}

fn hook_line_ends_with(output: &str, verdict: &str) -> bool {
    output
        .lines()
        .any(|l| l.starts_with("nfcron validate...") && l.ends_with(verdict))
}

#[test]
fn the_hook_passes_on_the_bundled_manifests_and_fails_on_a_broken_copy_with_nfcrons_diagnostic() {
    if !have_tool("pre-commit", "python3 -m pip install pre-commit") {
        return;
    }
    let (ws, _repo, files) = manifests_repo();
    let run = try_repo(&ws, &files, true);
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(hook_line_ends_with(&run.output, "Passed"), "{}", run.output);
    assert_eq!(run.toolchain_calls, "", "the hook built something");

    let (ws, repo, files) = manifests_repo();
    let broken = std::fs::read_to_string(ws.path().join("jobs.d/db-backup.yaml"))
        .expect("db-backup")
        .replace("15 0,6,12,18 * * *", "15 0,6,12,25 * * *");
    git_commit(
        &repo,
        &[("jobs.d/db-backup.yaml", Some(&broken))],
        "a bad hour",
    );
    let run = try_repo(&ws, &files, true);
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(hook_line_ends_with(&run.output, "Failed"), "{}", run.output);
    for line in [
        "error[cron]: hour 25 is outside 0-23",
        "--> jobs.d/db-backup.yaml:16:13",
        "4 files, 5 jobs: 4 valid, 1 invalid",
    ] {
        assert!(run.output.contains(line), "no `{line}` in:\n{}", run.output);
    }
    assert_eq!(run.toolchain_calls, "", "the hook built something");
}

#[test]
fn without_an_installed_nfcron_the_hook_fails_naming_it_and_builds_nothing() {
    if !have_tool("pre-commit", "python3 -m pip install pre-commit") {
        return;
    }
    let (ws, _repo, files) = manifests_repo();
    let run = try_repo(&ws, &files, false);
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(hook_line_ends_with(&run.output, "Failed"), "{}", run.output);
    assert!(
        run.output.contains("Executable `nfcron` not found"),
        "{}",
        run.output
    );
    assert_eq!(run.toolchain_calls, "", "the hook built something");
}
