//! The tree read from Git follows the directory source's rules (issue 12,
//! item 7): symlinks inside the repository are followed, a link out of it,
//! absolute, dangling or looping, and every submodule, is an `io`
//! diagnostic naming the path, and such a source never prunes. Trees are
//! built entry by entry with git2 (modes included), served over file://.

use crate::common;
use crate::fake;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::{manifest, Workspace};
use fake::{Fake, TOKEN};
use serde_json::Value;

const FILE: i32 = 0o100644;
const LINK: i32 = 0o120000;
const GITLINK: i32 = 0o160000;

/// An entry of a commit: a file, a symlink (content = target) or a
/// gitlink (content = a commit id).
struct Entry<'a>(&'a str, i32, &'a str);

/// A bare-enough repository whose `main` gets each commit built here.
struct Origin {
    dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl Origin {
    fn new() -> Origin {
        let dir = tempfile::tempdir().expect("origin");
        let repo = git2::Repository::init_bare(dir.path()).expect("init");
        repo.set_head("refs/heads/main").expect("HEAD");
        Origin { dir, repo }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Commits exactly `entries` (nothing else) on `main`.
    fn commit(&self, entries: &[Entry]) -> String {
        let tree = self.tree("", entries);
        let tree = self.repo.find_tree(tree).expect("tree");
        let sig = git2::Signature::now("Test", "test@example.com").expect("sig");
        let parent = self
            .repo
            .find_reference("refs/heads/main")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("refs/heads/main"), &sig, &sig, "c", &tree, &parents)
            .expect("commit")
            .to_string()
    }

    fn tree(&self, prefix: &str, entries: &[Entry]) -> git2::Oid {
        let mut builder = self.repo.treebuilder(None).expect("builder");
        let mut subdirs: BTreeMap<&str, ()> = BTreeMap::new();
        for Entry(path, mode, content) in entries {
            let Some(rest) = path.strip_prefix(prefix) else {
                continue;
            };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    subdirs.insert(dir, ());
                }
                None => {
                    let oid = if *mode == GITLINK {
                        git2::Oid::from_str(content).expect("commit id")
                    } else {
                        self.repo.blob(content.as_bytes()).expect("blob")
                    };
                    builder.insert(rest, oid, *mode).expect("insert");
                }
            }
        }
        for dir in subdirs.keys() {
            let oid = self.tree(&format!("{prefix}{dir}/"), entries);
            builder.insert(dir, oid, 0o040000).expect("insert dir");
        }
        builder.write().expect("write tree")
    }
}

fn run_json(ws: &Workspace, fake: &Fake, args: &[&str]) -> (i32, Value, String) {
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let mut all = vec!["reconcile", "--output", "json"];
    all.extend_from_slice(args);
    let run = ws.nfcron_env(&all, &env);
    let json = if run.stdout.is_empty() {
        Value::Null
    } else {
        run.json()
    };
    (run.code, json, run.stderr)
}

/// (file, reason) of every file that blocks pruning (with `--prune`): the
/// reconcile report's view of file problems (`reconcile::file_problems`).
fn diagnostics(report: &Value) -> Vec<(String, String, String)> {
    report["prune_blocked"]
        .as_array()
        .expect("prune_blocked")
        .iter()
        .map(|d| {
            let reason = d["reason"].as_str().unwrap_or_default().to_string();
            (
                d["file"].as_str().unwrap_or_default().to_string(),
                if reason.contains("cannot read") {
                    "io".to_string()
                } else {
                    reason.clone()
                },
                reason,
            )
        })
        .collect()
}

fn jobs(report: &Value) -> Vec<(String, String, String)> {
    report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap_or_default().to_string(),
                j["action"].as_str().unwrap_or_default().to_string(),
                j["file"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Manifests of jobs "Job A", "Job B", ..., run at 01:00, 02:00, ...
fn lettered<const N: usize>() -> [String; N] {
    std::array::from_fn(|i| {
        let letter = char::from(b'A' + i as u8);
        manifest(&format!("Job {letter}"), &format!("0 {} * * *", i + 1))
    })
}

#[test]
fn symlinks_to_files_and_directories_inside_the_repository_are_read() {
    let origin = Origin::new();
    let [a, b, c] = lettered();
    origin.commit(&[
        Entry("jobs.d/a.yaml", FILE, &a),
        // A file elsewhere in the repository, through a relative link.
        Entry("jobs.d/b.yaml", LINK, "../shared/b.yaml"),
        Entry("shared/b.yaml", FILE, &b),
        // A directory through a chain of links: more -> ../x -> y.
        Entry("jobs.d/more", LINK, "../x"),
        Entry("x", LINK, "y"),
        Entry("y/c.yaml", FILE, &c),
        // The link's name decides, as in a directory: not read.
        Entry("jobs.d/notes.txt", LINK, "a.yaml"),
    ]);
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = origin.url();
    let (code, report, stderr) = run_json(&ws, &fake, &["--dry-run", "--prune", "--git", &url]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(diagnostics(&report), vec![], "{report:#}");
    let mut planned = jobs(&report);
    planned.sort();
    assert_eq!(
        planned,
        [
            ("job-a".into(), "create".into(), "jobs.d/a.yaml".into()),
            ("job-b".into(), "create".into(), "jobs.d/b.yaml".into()),
            ("job-c".into(), "create".into(), "jobs.d/more/c.yaml".into()),
        ]
    );

    // The same layout on disk, read by the directory source, plans the same.
    let dir = Workspace::new();
    dir.write("jobs.d/a.yaml", &a);
    dir.write("shared/b.yaml", &b);
    dir.write("y/c.yaml", &c);
    std::os::unix::fs::symlink("../shared/b.yaml", dir.path().join("jobs.d/b.yaml")).expect("ln");
    std::os::unix::fs::symlink("../x", dir.path().join("jobs.d/more")).expect("ln");
    std::os::unix::fs::symlink("y", dir.path().join("x")).expect("ln");
    std::os::unix::fs::symlink("a.yaml", dir.path().join("jobs.d/notes.txt")).expect("ln");
    let (code, from_dir, stderr) = run_json(&dir, &fake, &["--dry-run", "jobs.d"]);
    assert_eq!(code, 0, "{stderr}");
    let mut from_dir = jobs(&from_dir);
    from_dir.sort();
    assert_eq!(from_dir, planned);
}

#[test]
fn links_out_of_the_tree_loops_and_submodules_are_io_diagnostics_that_block_pruning() {
    let origin = Origin::new();
    let [a, b, c, d] = lettered();
    let first = origin.commit(&[
        Entry("jobs.d/a.yaml", FILE, &a),
        Entry("jobs.d/team/b.yaml", FILE, &b),
        Entry("jobs.d/vendored/c.yaml", FILE, &c),
        Entry("jobs.d/d.yaml", FILE, &d),
    ]);
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = origin.url();
    let (code, report, stderr) = run_json(&ws, &fake, &["--git", &url]);
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(fake.count("PUT"), 4);

    // Every manifest is now behind something nfcron cannot read.
    origin.commit(&[
        Entry("jobs.d/a.yaml", LINK, "../../outside/a.yaml"),
        Entry("jobs.d/team", LINK, "/srv/team"),
        Entry("jobs.d/vendored", GITLINK, &first),
        Entry("jobs.d/d.yaml", LINK, "e.yaml"),
        Entry("jobs.d/e.yaml", LINK, "d.yaml"),
        Entry("jobs.d/self", LINK, "."),
        Entry("jobs.d/gone.yaml", LINK, "nowhere.yaml"),
    ]);
    fake.clear_log();
    let (code, report, stderr) = run_json(
        &ws,
        &fake,
        &[
            "--dry-run",
            "--prune",
            "--max-deletions",
            "100",
            "--git",
            &url,
        ],
    );
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    let found = diagnostics(&report);
    let expect = [
        ("jobs.d/a.yaml", "leads out of the repository"),
        ("jobs.d/d.yaml", "symlink loop"),
        ("jobs.d/e.yaml", "symlink loop"),
        ("jobs.d/gone.yaml", "its target is not in the tree"),
        (
            "jobs.d/self",
            "symlink loop: this directory contains itself",
        ),
        ("jobs.d/team", "the absolute path `/srv/team`"),
        ("jobs.d/vendored", "a submodule (commit"),
    ];
    for (file, words) in expect {
        assert!(
            found
                .iter()
                .any(|(f, code, m)| f == file && code == "io" && m.contains(words)),
            "no io diagnostic for {file} saying {words:?}: {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    // No job is planned for deletion: the prune guard sees file problems.
    let deletes: Vec<_> = jobs(&report)
        .into_iter()
        .filter(|(_, action, _)| action == "delete")
        .collect();
    assert_eq!(deletes, vec![], "{report:#}");
    let blocked = report["prune_blocked"].as_array().expect("prune_blocked");
    assert_eq!(blocked.len(), expect.len(), "{report:#}");
    assert_eq!(fake.count("DELETE"), 0);

    // Applied for real, the same: nothing deleted.
    let (code, _, stderr) = run_json(&ws, &fake, &["--prune", "--git", &url]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(fake.count("DELETE"), 0);
}

#[test]
fn a_git_path_that_is_a_symlink_to_a_directory_is_followed() {
    let origin = Origin::new();
    origin.commit(&[
        Entry("jobs.d", LINK, "deploy/jobs"),
        Entry("deploy/jobs/a.yaml", FILE, &manifest("Job A", "0 1 * * *")),
        Entry("out", LINK, "../elsewhere"),
    ]);
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = origin.url();
    let (code, report, stderr) = run_json(&ws, &fake, &["--dry-run", "--git", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        jobs(&report),
        [("job-a".into(), "create".into(), "jobs.d/a.yaml".into())]
    );
    let (code, _, stderr) = run_json(
        &ws,
        &fake,
        &["--dry-run", "--git", &url, "--git-path", "out"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--git-path `out` at revision")
            && stderr.contains("leads out of the repository"),
        "{stderr}"
    );
}

/// `git` for the tests that need the CLI (a partial clone): under CI it
/// must be there (.ci/run installs it); elsewhere the test is skipped,
/// saying why.
fn git_cli() -> bool {
    let found = std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "git is missing under CI=true; .ci/run installs it"
        );
        eprintln!("skipped: the `git` command is not installed");
    }
    found
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn base_in_a_blobless_partial_clone_refuses_to_plan_and_names_the_fix() {
    if !git_cli() {
        return;
    }
    let origin = tempfile::tempdir().expect("origin");
    let repo = common::git_init(origin.path());
    common::git_commit(
        &repo,
        &[
            ("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *"))),
            ("jobs.d/b.yaml", Some(&manifest("Job B", "0 2 * * *"))),
            ("jobs.d/c.yaml", Some(&manifest("Job C", "0 3 * * *"))),
        ],
        "three jobs",
    );
    common::git_commit(
        &repo,
        &[
            ("jobs.d/b.yaml", Some(&manifest("Job B", "30 2 * * *"))),
            ("jobs.d/c.yaml", None),
        ],
        "change b, drop c",
    );
    repo.config()
        .expect("config")
        .set_bool("uploadpack.allowFilter", true)
        .expect("allowFilter");
    let ws = Workspace::new();
    let url = format!("file://{}", origin.path().display());
    git(
        ws.path(),
        &["clone", "--quiet", "--filter=blob:none", &url, "clone"],
    );
    let clone = ws.path().join("clone");
    // The clone really lacks the base's blobs of b and c.
    let missing = git(
        &clone,
        &["rev-list", "--objects", "--missing=print", "HEAD~1"],
    );
    assert_eq!(
        missing.lines().filter(|l| l.starts_with('?')).count(),
        2,
        "{missing}"
    );
    let plan = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nfcron"))
            .args(common::PLAN_AGAINST_PARENT)
            .arg("--detailed-exitcode")
            .current_dir(&clone)
            .env("NO_COLOR", "1")
            .env_remove("NORTHFLANK_API_TOKEN")
            .output()
            .expect("nfcron");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = plan();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "no plan: {stdout}");
    for words in [
        "--base: `jobs.d/",
        "is not in the local repository",
        "--filter=blob:none",
        "git fetch --refetch --no-filter origin",
    ] {
        assert!(stderr.contains(words), "{words:?} in {stderr}");
    }
    // The fix it names works: then the plan is right.
    git(
        &clone,
        &["fetch", "--quiet", "--refetch", "--no-filter", "origin"],
    );
    let (code, stdout, stderr) = plan();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let mut changed: Vec<(String, String)> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["action"] != "unchanged")
        .map(|j| {
            (
                j["id"].as_str().unwrap_or_default().to_string(),
                j["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            ("job-b".to_string(), "update".to_string()),
            ("job-c".to_string(), "delete".to_string())
        ]
    );
}

#[test]
fn a_git_tree_entry_whose_name_is_not_utf8_is_an_io_diagnostic() {
    let ws = Workspace::new();
    let repo = common::git_init(ws.path());
    common::git_commit(
        &repo,
        &[
            ("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *"))),
            ("jobs.d/team/b.yaml", Some(&manifest("Job B", "0 2 * * *"))),
        ],
        "two jobs",
    );
    let jobs = ws.path().join("jobs.d");
    std::fs::rename(jobs.join("team"), jobs.join(OsStr::from_bytes(b"caf\xe9"))).expect("rename");
    std::fs::rename(
        jobs.join("a.yaml"),
        jobs.join(OsStr::from_bytes(b"\xe9t\xe9.yaml")),
    )
    .expect("rename");
    common::git_commit(&repo, &[], "Latin-1 names");

    let run = ws.nfcron(&common::PLAN_AGAINST_PARENT);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for name in ["jobs.d/caf\\xe9", "jobs.d/\\xe9t\\xe9.yaml"] {
        assert!(
            run.stderr
                .contains(&format!("error[io] {name}:1:1: cannot read: the")),
            "{name}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
}
