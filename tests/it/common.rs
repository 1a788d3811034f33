//! Runs the real `nfcron` binary in a temporary directory (ripgrep's
//! `tests/util.rs` habit): every integration test goes through the same
//! process boundary, flags and exit codes a user sees.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `reconcile --dry-run --base HEAD~1 --output json`: the plan of a Git
/// work tree's last commit, offline.
pub const PLAN_AGAINST_PARENT: [&str; 6] = [
    "reconcile",
    "--dry-run",
    "--base",
    "HEAD~1",
    "--output",
    "json",
];

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Copies the bundled `jobs.d` into the workspace.
    pub fn with_bundled_jobs(self) -> Workspace {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.d");
        for entry in std::fs::read_dir(bundled).expect("jobs.d") {
            let entry = entry.expect("entry");
            let name = entry.file_name().into_string().expect("utf-8 name");
            self.write(
                &format!("jobs.d/{name}"),
                std::fs::read(entry.path()).expect("read"),
            );
        }
        self
    }

    pub fn nfcron(&self, args: &[&str]) -> Run {
        self.nfcron_env(args, &[])
    }

    pub fn nfcron_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().expect("run nfcron");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// [`Workspace::nfcron_env`], killed (and the test failed) when it
    /// outlives `within`, so that a hang fails the test instead of holding
    /// the run; with how long it took.
    pub fn nfcron_within(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        within: Duration,
    ) -> (Run, Duration) {
        let mut cmd = self.command(args, env);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("start nfcron");
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("stderr")));
        let status = wait_with_deadline(child, within)
            .unwrap_or_else(|| panic!("nfcron {args:?} still running after {within:?}"));
        let took = started.elapsed();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        };
        (run, took)
    }

    /// `nfcron ARGS` in the workspace with `env` over an environment
    /// cleared of everything that would configure it.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
        cmd.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("NFCRON_")
                || k.starts_with("NORTHFLANK_")
                || k.starts_with("REPORT_")
                || k.starts_with("GITHUB_")
                || k == "RUST_LOG"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A valid cron job manifest in project `acme`: the name (also the id's
/// source) and the schedule are the test's.
pub fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")
}

/// `(file, code, message)` of every diagnostic of `validate --output json`.
pub fn diagnostics(run: &Run) -> Vec<(String, String, String)> {
    run.json()["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().expect("file").to_string(),
                d["code"].as_str().expect("code").to_string(),
                d["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

/// Makes a FIFO at `path`: a reader that opens it blocks until a writer
/// comes, which no test provides.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// The job ids recorded in the workspace's state file (none without one).
pub fn state_ids(ws: &Workspace) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(ws.path().join(".nfcron/state.json")) else {
        return Vec::new();
    };
    let state: serde_json::Value =
        serde_json::from_str(&text).expect("the state file always parses");
    state["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect()
}

/// The schedule the fake API holds for job `id` of project `acme` (no
/// team), which must exist.
pub fn acme_schedule(fake: &crate::fake::Fake, id: &str) -> serde_json::Value {
    fake.job(None, "acme", id).expect("job")["schedule"].clone()
}

/// A fault for the fake: the next `times` PUTs answer `status` (no
/// `Retry-After`).
pub fn put_status(status: u16, times: usize) -> crate::fake::FaultRule {
    crate::fake::FaultRule {
        method: Some(hyper::Method::PUT),
        fault: crate::fake::Fault::Status {
            status,
            retry_after: None,
        },
        times,
        after: 0,
    }
}

/// What an import promises, with the variables it named set in `env`: the
/// manifests validate with `--require-env`, a reconcile sends no PUT, and
/// a refresh with `--drift correct` finds no drift and sends no PUT.
pub fn imported_plans_nothing(ws: &Workspace, fake: &crate::fake::Fake, env: &[(&str, &str)]) {
    let valid = ws.nfcron_env(&["validate", "--require-env"], env);
    assert_eq!(valid.code, 0, "{}\n{}", valid.stdout, valid.stderr);
    fake.clear_log();
    let run = ws.nfcron_env(&["reconcile", "--output", "json"], env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(fake.count("PUT"), 0, "{}", run.stdout);
    fake.clear_log();
    let args = [
        "reconcile",
        "--output",
        "json",
        "--refresh",
        "--drift",
        "correct",
    ];
    let run = ws.nfcron_env(&args, env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["summary"]["drift"], 0, "{}", run.stdout);
    assert_eq!(fake.count("PUT"), 0, "{}", run.stdout);
}

/// The entry for job `id` in a JSON report's `jobs`.
pub fn job<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no job {id} in {report:#}"))
}

/// A Git repository with a work tree at `dir`, on branch `main`.
pub fn git_init(dir: &Path) -> git2::Repository {
    let repo = git2::Repository::init(dir).expect("git init");
    repo.set_head("refs/heads/main").expect("HEAD -> main");
    repo
}

/// A Git remote in a temp dir whose first commit holds `file` with
/// `content`: the dir (keep it), the repository, the commit id and its
/// `file://` URL.
pub fn git_origin(
    file: &str,
    content: &str,
) -> (tempfile::TempDir, git2::Repository, String, String) {
    git_origin_with(&[(file, content)], "first")
}

/// [`git_origin`] with a first commit of `files` (path, content) and
/// `message`.
pub fn git_origin_with(
    files: &[(&str, &str)],
    message: &str,
) -> (tempfile::TempDir, git2::Repository, String, String) {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    let files: Vec<_> = files.iter().map(|(f, c)| (*f, Some(*c))).collect();
    let rev = git_commit(&repo, &files, message);
    let url = format!("file://{}", origin.path().display());
    (origin, repo, rev, url)
}

/// Writes (`Some`) or deletes (`None`) files in the work tree and commits
/// everything; returns the commit id.
pub fn git_commit(
    repo: &git2::Repository,
    files: &[(&str, Option<&str>)],
    message: &str,
) -> String {
    let root = repo.workdir().expect("work tree").to_path_buf();
    for (path, content) in files {
        let full = root.join(path);
        match content {
            Some(text) => {
                std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                std::fs::write(&full, text).expect("write");
            }
            None => std::fs::remove_file(&full).expect("rm"),
        }
    }
    let mut index = repo.index().expect("index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("add");
    index.update_all(["*"], None).expect("update");
    index.write().expect("write index");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("find tree");
    let sig = git2::Signature::now("Test", "test@example.com").expect("signature");
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit")
        .to_string()
}

/// Runs an outside tool to its end: its exit code (-1 for a signal) and
/// its stdout then stderr as one text.
pub fn tool_output(cmd: &mut Command) -> (i32, String) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The differences `found` that `allowed` does not justify (as `key:
/// detail` lines), and the allowed keys no longer found: an allow-list
/// stays exact both ways.
pub fn unjustified<'a>(
    found: &std::collections::BTreeMap<String, String>,
    allowed: &[(&'a str, &str)],
) -> (Vec<String>, Vec<&'a str>) {
    let unexpected = found
        .iter()
        .filter(|(k, _)| !allowed.iter().any(|(a, _)| a == k))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let stale = allowed
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !found.contains_key(*k))
        .collect();
    (unexpected, stale)
}

/// Whether the external `tool` answers `tool --version`. Missing (or a
/// stub that fails, as a pyenv shim without the package does), it fails
/// the test under `CI=true` (`.ci/run` installs it; `install` says how)
/// and skips it elsewhere with a line on stderr.
pub fn have_tool(tool: &str, install: &str) -> bool {
    have(tool, Some("--version"), install)
}

/// [`have_tool`] for a tool that has no `--version` and exits non-zero
/// whatever it is asked without real work (ssh-keygen): usable when it
/// can be started.
pub fn have_command(tool: &str, install: &str) -> bool {
    have(tool, None, install)
}

fn have(tool: &str, version_flag: Option<&str>, install: &str) -> bool {
    let usable = match Command::new(tool).args(version_flag).output() {
        Ok(out) => version_flag.is_none() || out.status.success(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("cannot run {tool}: {e}"),
    };
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed but CI=true: .ci/run installs it ({install})"
        );
        eprintln!("SKIPPED: {tool} is not installed ({install})");
    }
    usable
}

/// Waits for `child` to exit, for at most `deadline`: a child still running
/// then is killed and `None` returned, so a hang fails the test instead of
/// holding the CI run.
pub fn wait_with_deadline(
    child: std::process::Child,
    deadline: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let pid = child.id() as libc::pid_t;
    let (tx, exited) = std::sync::mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match exited.recv_timeout(deadline) {
        Ok(status) => Some(status.expect("wait")),
        Err(_) => {
            // SAFETY: signalling our own child by its id; it has not been
            // reaped (the waiting thread has not returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            None
        }
    }
}
