//! Git sources: real repositories made with git2 in the test.

use crate::common;
use crate::fake;

use common::{git_commit, git_init, git_origin, manifest, Workspace};
use fake::{Fake, TOKEN};

#[test]
fn base_plan_lists_exactly_what_the_change_does() {
    let ws = Workspace::new();
    let repo = git_init(ws.path());
    git_commit(
        &repo,
        &[
            ("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *"))),
            ("jobs.d/b.yaml", Some(&manifest("Job B", "0 2 * * *"))),
            ("jobs.d/c.yaml", Some(&manifest("Job C", "0 3 * * *"))),
        ],
        "three jobs",
    );
    let head = git_commit(
        &repo,
        &[
            ("jobs.d/b.yaml", Some(&manifest("Job B", "30 2 * * *"))),
            ("jobs.d/c.yaml", None),
        ],
        "change b, drop c",
    );
    // Uncommitted edits are not part of the change.
    ws.write("jobs.d/a.yaml", manifest("Job A", "9 9 * * *"));
    let run = ws.nfcron(&[&common::PLAN_AGAINST_PARENT[..], &["--detailed-exitcode"]].concat());
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
    let (_origin, repo, rev, url) =
        git_origin("deploy/jobs/a.yaml", &manifest("Job A", "0 1 * * *"));
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let reconcile = || {
        let args = [
            "reconcile",
            "--git",
            &url,
            "--git-path",
            "deploy/jobs",
            "--output",
            "json",
        ];
        ws.nfcron_env(&args, &env)
    };
    let run = reconcile();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["source"]["revision"], rev);
    assert_eq!(report["jobs"][0]["file"], "deploy/jobs/a.yaml");
    assert_eq!(fake.count("PUT"), 1);
    let state = std::fs::read_to_string(ws.path().join(".nfcron/state.json")).expect("state");
    assert!(state.contains(&rev), "{state}");
    // A new commit is fetched on the next run; an unchanged one costs nothing.
    let rev2 = git_commit(
        &repo,
        &[("deploy/jobs/a.yaml", Some(&manifest("Job A", "0 2 * * *")))],
        "move a",
    );
    fake.clear_log();
    let run = reconcile();
    assert_eq!(run.json()["source"]["revision"], rev2);
    assert_eq!(fake.requests().len(), 1);
    fake.clear_log();
    let run = reconcile();
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
    assert!(
        run.stderr
            .contains("cannot list the branches of `file:///nonexistent/repo`"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests(), vec![]);
}

#[test]
fn an_empty_fetch_prunes_nothing_even_with_allow_empty() {
    let (_origin, repo, _, url) = git_origin("jobs.d/a.yaml", &manifest("Job A", "0 1 * * *"));
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    assert_eq!(ws.nfcron_env(&["reconcile", "--git", &url], &env).code, 0);
    git_commit(
        &repo,
        &[("jobs.d/a.yaml", None)],
        "the manifests directory is gone",
    );
    let run = ws.nfcron_env(
        &[
            "reconcile",
            "--git",
            &url,
            "--prune",
            "--allow-empty",
            "--output",
            "json",
        ],
        &env,
    );
    // A manifests directory that is gone is an error naming it (issue 12),
    // never an empty source: nothing is planned, nothing deleted.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--git-path `jobs.d` does not exist at revision"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(fake.count("DELETE"), 0);
}
