//! The pre-commit hook (`.pre-commit-hooks.yaml`, `nfcron-validate`)
//! through the real `pre-commit`: `pre-commit try-repo <this repository>
//! nfcron-validate --files ...` from a repository of manifests passes on
//! the bundled `jobs.d` and fails, printing nfcron's diagnostic, on a
//! broken copy.
//!
//! pre-commit's `language: rust` builds the hook with `cargo install --path`
//! in a fresh clone. `CARGO_TARGET_DIR` points it at this project's target
//! dir, where `.ci/run` has already built the release binary (`cargo build
//! --release --locked --bin nfcron`): only the nfcron crate is compiled
//! again (its clone lives at another path), not its dependencies. With a
//! `cargo` on PATH pre-commit uses it as is (`language_version: system`);
//! a `rustup` placed first on PATH records any call, and there must be none
//! (no toolchain download).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{git_commit, git_init, have_tool, Workspace};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A hook install still running after this is taken for hung.
const BUDGET: Duration = Duration::from_secs(1200);

/// This project's target dir, whether or not `CARGO_TARGET_DIR` is set.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .to_path_buf()
}

/// The release build's dependency libraries and when each was written.
fn release_deps() -> Vec<(PathBuf, std::time::SystemTime)> {
    let Ok(dir) = std::fs::read_dir(target_dir().join("release/deps")) else {
        return Vec::new();
    };
    let mut libs: Vec<_> = dir
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".rlib") && !name.starts_with("libnfcron-")
        })
        .map(|p| {
            let written = p.metadata().and_then(|m| m.modified()).expect("mtime");
            (p, written)
        })
        .collect();
    libs.sort();
    libs
}

struct TryRepo {
    code: i32,
    output: String,
    took: Duration,
    rustup_calls: String,
}

/// `pre-commit try-repo <root> nfcron-validate --files <manifests>` in
/// `ws`, with a PRE_COMMIT_HOME of its own.
fn try_repo(ws: &Workspace, manifests: &[String]) -> TryRepo {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let calls = tmp.path().join("rustup-calls");
    let rustup = bin.join("rustup");
    std::fs::write(
        &rustup,
        format!(
            "#!/bin/sh\necho \"rustup $*\" >> '{}'\nexit 1\n",
            calls.display()
        ),
    )
    .expect("write rustup");
    Command::new("chmod")
        .arg("+x")
        .arg(&rustup)
        .status()
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = tmp.path().join("output");
    let mut cmd = Command::new("pre-commit");
    cmd.args(["try-repo", ROOT, "nfcron-validate", "--files"])
        .args(manifests)
        .current_dir(ws.path())
        .env("PATH", path)
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
    // What cargo test sets for this test binary is not the nested build's.
    for (k, _) in std::env::vars() {
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k.starts_with("NFCRON_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start pre-commit");
    // Bounded by a deadline: a hook build that hangs (say, on a lock)
    // fails the test instead of the CI run.
    let pid = child.id() as libc::pid_t;
    let (tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match exited.recv_timeout(BUDGET) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            // SAFETY: signalling our own child by its id.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "pre-commit try-repo still running after {BUDGET:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    TryRepo {
        code: status.code().unwrap_or(-1),
        output: std::fs::read_to_string(&log).expect("log"),
        took: started.elapsed(),
        rustup_calls: std::fs::read_to_string(&calls).unwrap_or_default(),
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

#[test]
fn the_hook_passes_on_the_bundled_manifests_and_fails_on_a_broken_copy_with_nfcrons_diagnostic() {
    if !have_tool("pre-commit", "python3 -m pip install pre-commit") {
        return;
    }
    let (ws, _repo, files) = manifests_repo();
    let before = release_deps();
    let run = try_repo(&ws, &files);
    eprintln!("pre-commit try-repo (passing) took {:?}", run.took);
    // The hook's `cargo install` reused the release build's dependencies.
    if before.is_empty() {
        eprintln!(
            "NOTE: no release build in {:?} before the hook's install: it built every dependency (.ci/run builds them first)",
            target_dir()
        );
    }
    // Rewritten in place (same versions, other flags) or written anew
    // (other versions: pre-commit's `cargo install` runs without
    // `--locked`, so a dependency with a newer release on crates.io is
    // resolved and built anew: seen for 2 of ~300). Building them all
    // again is what must not happen.
    let rebuilt: Vec<PathBuf> = release_deps()
        .into_iter()
        .filter(|lib| !before.contains(lib))
        .map(|(lib, _)| lib)
        .collect();
    eprintln!("dependencies the hook's install built anew: {rebuilt:#?}");
    assert!(
        before.is_empty() || rebuilt.len() * 10 < before.len(),
        "the hook's cargo install rebuilt dependencies of the release build: {rebuilt:#?}\n{}",
        run.output
    );
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        run.output
            .lines()
            .any(|l| l.starts_with("nfcron validate...") && l.ends_with("Passed")),
        "{}",
        run.output
    );
    assert_eq!(run.rustup_calls, "", "pre-commit went for rustup");

    let (ws, repo, files) = manifests_repo();
    let broken = std::fs::read_to_string(ws.path().join("jobs.d/db-backup.yaml"))
        .expect("db-backup")
        .replace("15 0,6,12,18 * * *", "15 0,6,12,25 * * *");
    git_commit(
        &repo,
        &[("jobs.d/db-backup.yaml", Some(&broken))],
        "a bad hour",
    );
    let run = try_repo(&ws, &files);
    eprintln!("pre-commit try-repo (failing) took {:?}", run.took);
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(
        run.output
            .lines()
            .any(|l| l.starts_with("nfcron validate...") && l.ends_with("Failed")),
        "{}",
        run.output
    );
    for line in [
        "error[cron]: hour 25 is outside 0-23",
        "--> jobs.d/db-backup.yaml:16:13",
        "4 files, 5 jobs: 4 valid, 1 invalid",
    ] {
        assert!(run.output.contains(line), "no `{line}` in:\n{}", run.output);
    }
    assert_eq!(run.rustup_calls, "", "pre-commit went for rustup");
}
