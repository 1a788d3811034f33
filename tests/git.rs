//! Git sources: real repositories made with git2 in the test.

mod common;
#[path = "../examples/fake-northflank/server.rs"]
mod fake;

use std::path::Path;

use common::Workspace;
use fake::{Fake, TOKEN};
use git2::{Repository, Signature};

fn manifest(name: &str, schedule: &str) -> String {
    format!("kind: CronJob\nproject: acme\nspec:\n  name: {name}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{schedule}\"\n  concurrencyPolicy: forbid\n")
}

/// Writes `files` (None deletes) into the work tree and commits them all.
fn commit(repo: &Repository, files: &[(&str, Option<String>)], message: &str) -> String {
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
    let sig = Signature::now("Test", "test@example.com").expect("sig");
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("commit")
        .to_string()
}

fn init(dir: &Path) -> Repository {
    let repo = Repository::init(dir).expect("init");
    repo.set_head("refs/heads/main").expect("head");
    repo
}

#[test]
fn base_plan_lists_exactly_what_the_change_does() {
    let ws = Workspace::new();
    let repo = init(ws.path());
    commit(
        &repo,
        &[
            ("jobs.d/a.yaml", Some(manifest("Job A", "0 1 * * *"))),
            ("jobs.d/b.yaml", Some(manifest("Job B", "0 2 * * *"))),
            ("jobs.d/c.yaml", Some(manifest("Job C", "0 3 * * *"))),
        ],
        "three jobs",
    );
    let head = commit(
        &repo,
        &[
            ("jobs.d/b.yaml", Some(manifest("Job B", "30 2 * * *"))),
            ("jobs.d/c.yaml", None),
        ],
        "change b, drop c",
    );
    // Uncommitted edits are not part of the change.
    ws.write("jobs.d/a.yaml", manifest("Job A", "9 9 * * *"));
    let run = ws.nfcron(&[
        "reconcile",
        "--dry-run",
        "--base",
        "HEAD~1",
        "--output",
        "json",
        "--detailed-exitcode",
    ]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["baseline"], "base");
    assert_eq!(report["source"]["revision"], head);
    assert_eq!(report["summary"]["api_requests"], 0);
    let changed: Vec<(String, String)> = report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["action"] != "unchanged")
        .map(|j| {
            (
                j["id"].as_str().expect("id").to_string(),
                j["action"].as_str().expect("action").to_string(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("job-b".to_string(), "update".to_string()),
            ("job-c".to_string(), "delete".to_string())
        ]
    );
    assert_eq!(
        report["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["id"] == "job-b")
            .expect("b")["changes"],
        serde_json::json!([{"path": "schedule", "before": "0 2 * * *", "after": "30 2 * * *"}])
    );
    assert!(
        !ws.path().join(".nfcron").exists(),
        "offline: no state, no key"
    );
    // --base only plans.
    assert_eq!(ws.nfcron(&["reconcile", "--base", "HEAD~1"]).code, 1);
}

#[test]
fn reconcile_from_a_git_url_records_the_revision() {
    let origin = tempfile::tempdir().expect("origin");
    let repo = init(origin.path());
    let rev = commit(
        &repo,
        &[("deploy/jobs/a.yaml", Some(manifest("Job A", "0 1 * * *")))],
        "one job",
    );
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let url = format!("file://{}", origin.path().display());
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--git",
            &url,
            "--git-path",
            "deploy/jobs",
            "--output",
            "json",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["source"]["revision"], rev);
    assert_eq!(report["jobs"][0]["file"], "deploy/jobs/a.yaml");
    assert_eq!(fake.count("PUT"), 1);
    let state = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    assert!(state.contains(&rev), "{state}");
    // A new commit is fetched on the next run; an unchanged one costs nothing.
    let rev2 = commit(
        &repo,
        &[("deploy/jobs/a.yaml", Some(manifest("Job A", "0 2 * * *")))],
        "move a",
    );
    fake.clear_log();
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--git",
            &url,
            "--git-path",
            "deploy/jobs",
            "--output",
            "json",
        ],
        &env,
    );
    assert_eq!(run.json()["source"]["revision"], rev2);
    assert_eq!(fake.requests().len(), 1);
    fake.clear_log();
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--git",
            &url,
            "--git-path",
            "deploy/jobs",
            "--output",
            "json",
        ],
        &env,
    );
    assert_eq!(run.json()["summary"]["api_requests"], 0);
}

#[test]
fn an_unreachable_repository_is_an_error_not_an_empty_source() {
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--git",
            "file:///nonexistent/repo",
            "--prune",
            "--allow-empty",
        ],
        &env,
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("git"), "{}", run.stderr);
    assert_eq!(fake.requests(), vec![]);
}
