//! Git sources against hostile or surprising remotes (issue 12): real
//! git2 repositories and small servers on 127.0.0.1 made in the test, the
//! real binary.

use crate::common;
use crate::fake;

use std::io::{Read, Write};
use std::time::Duration;

use common::{git_commit, git_init, manifest, Workspace};

use crate::support::sidecar::Sidecar;

const WAIT: Duration = Duration::from_secs(20);

/// `reconcile --dry-run --output json` from `url`, offline (no API token:
/// nothing here may reach the API).
fn dry_run(ws: &Workspace, url: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["reconcile", "--dry-run", "--output", "json", "--git", url];
    args.extend_from_slice(extra);
    ws.nfcron_env(&args, &[("NFCRON_GIT_TOKEN", "s3cret-git-token")])
}

#[test]
fn plain_http_git_remote_to_a_non_loopback_host_is_refused_before_any_network() {
    let ws = Workspace::new();
    // A token in the URL is not echoed back.
    let run = dry_run(&ws, "http://tok3n@git.example.com/acme/jobs.git", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("plain http to a host that is not loopback"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("tok3n"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret-git-token"), "{}", run.stderr);
    assert!(!ws.path().join(".nfcron").exists(), "no cache was made");
}

#[test]
fn unsupported_git_schemes_are_refused_by_name() {
    let ws = Workspace::new();
    for (url, scheme) in [
        ("ftp://127.0.0.1/repo.git", "ftp"),
        ("git://127.0.0.1/repo.git", "git"),
        ("gopher://example.com/repo", "gopher"),
    ] {
        let run = dry_run(&ws, url, &[]);
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("uses the unsupported scheme `{scheme}`")),
            "{url}: {}",
            run.stderr
        );
    }
    assert!(!ws.path().join(".nfcron").exists(), "no cache was made");
}

#[test]
fn plain_http_git_remote_on_loopback_is_allowed() {
    // A listener that answers every request with 404: reaching it proves
    // the URL was accepted and contacted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).expect("read");
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        request
    });
    let ws = Workspace::new();
    let run = dry_run(&ws, &format!("http://127.0.0.1:{port}/repo.git"), &[]);
    let request = server.join().expect("server");
    assert!(request.starts_with("GET /repo.git/info/refs"), "{request}");
    assert_eq!(run.code, 1, "the 404 fails the run: {}", run.stderr);
    assert!(!run.stderr.contains("not loopback"), "{}", run.stderr);
}

#[test]
fn file_urls_and_local_paths_still_work() {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    let rev = git_commit(
        &repo,
        &[("jobs/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "one job",
    );
    let ws = Workspace::new();
    let file_url = format!("file://{}", origin.path().display());
    let local = origin.path().display().to_string();
    for url in [file_url.as_str(), local.as_str()] {
        let run = dry_run(&ws, url, &["--git-path", "jobs"]);
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert_eq!(run.json()["source"]["revision"], rev, "{url}");
    }
}

/// A repository with `deploy/jobs/a.yaml` and a file `README`.
fn origin_with_jobs() -> (tempfile::TempDir, String) {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    let rev = git_commit(
        &repo,
        &[
            ("deploy/jobs/a.yaml", Some(&manifest("Job A", "0 1 * * *"))),
            ("README", Some("read me\n")),
        ],
        "one job",
    );
    (origin, rev)
}

#[test]
fn git_path_spellings_of_one_directory_give_the_same_clean_file_paths() {
    let (origin, rev) = origin_with_jobs();
    let url = origin.path().display().to_string();
    let ws = Workspace::new();
    for path in [
        "deploy/jobs",
        "./deploy/jobs",
        "deploy/jobs/",
        "/deploy/jobs",
        "deploy//jobs",
        "deploy/x/../jobs",
    ] {
        let run = dry_run(&ws, &url, &["--git-path", path]);
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        let report = run.json();
        assert_eq!(report["source"]["revision"], rev, "{path}");
        assert_eq!(report["jobs"][0]["file"], "deploy/jobs/a.yaml", "{path}");
    }
    // The root, spelled `.` or `/`: paths without `./` or a leading `/`.
    for path in [".", "/", "./"] {
        let run = dry_run(&ws, &url, &["--git-path", path]);
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert_eq!(
            run.json()["jobs"][0]["file"],
            "deploy/jobs/a.yaml",
            "{path}"
        );
    }
}

#[test]
fn missing_git_path_is_an_error_naming_path_and_revision_not_zero_manifests() {
    let (origin, rev) = origin_with_jobs();
    let url = origin.path().display().to_string();
    let ws = Workspace::new();
    let run = dry_run(&ws, &url, &["--git-path", "./deploy/jbos"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--git-path `deploy/jbos` does not exist at revision {rev}"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no plan: {}", run.stdout);
}

#[test]
fn git_path_naming_a_file_is_an_error_not_a_libgit2_peel_message() {
    let (origin, rev) = origin_with_jobs();
    let url = origin.path().display().to_string();
    let ws = Workspace::new();
    let run = dry_run(&ws, &url, &["--git-path", "README"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--git-path `README` is not a directory at revision {rev}"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("peeled"), "{}", run.stderr);
}

#[test]
fn git_path_climbing_out_of_the_repository_is_refused() {
    let (origin, _) = origin_with_jobs();
    let url = origin.path().display().to_string();
    let ws = Workspace::new();
    let run = dry_run(&ws, &url, &["--git-path", "deploy/../../etc"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--git-path `deploy/../../etc` leads out of the repository"),
        "{}",
        run.stderr
    );
}

/// A bare repository served as a remote, with branch `release` at the
/// one commit (returned) of a work repository holding `jobs.d/a.yaml`.
fn bare_remote_with_release() -> (tempfile::TempDir, tempfile::TempDir, String) {
    let origin = tempfile::tempdir().expect("origin");
    let repo = git_init(origin.path());
    let rev = git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "one job",
    );
    let bare = tempfile::tempdir().expect("bare");
    let bare_repo = git2::build::RepoBuilder::new()
        .bare(true)
        .clone(&format!("file://{}", origin.path().display()), bare.path())
        .expect("bare clone");
    bare_repo
        .reference(
            "refs/heads/release",
            rev.parse().expect("oid"),
            true,
            "release",
        )
        .expect("release in the bare repo");
    (origin, bare, rev)
}

fn delete_release(bare: &std::path::Path) {
    git2::Repository::open_bare(bare)
        .expect("open bare")
        .find_reference("refs/heads/release")
        .expect("ref")
        .delete()
        .expect("delete the branch on the remote");
}

#[test]
fn a_branch_deleted_on_the_remote_is_an_error_not_the_stale_cached_tip() {
    let (_origin, bare, rev) = bare_remote_with_release();
    let url = format!("file://{}", bare.path().display());
    let ws = Workspace::new();
    let first = dry_run(&ws, &url, &["--branch", "release"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["source"]["revision"], rev);

    delete_release(bare.path());
    let second = dry_run(&ws, &url, &["--branch", "release"]);
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stdout.is_empty(),
        "nothing planned: {}",
        second.stdout
    );

    // The same words as a fresh cache asking for a missing branch.
    let fresh = Workspace::new();
    let missing = dry_run(&fresh, &url, &["--branch", "release"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    let message = "branch `release` not found in the remote";
    assert!(second.stderr.contains(message), "{}", second.stderr);
    assert!(missing.stderr.contains(message), "{}", missing.stderr);
}

#[test]
fn a_branch_deleted_on_the_remote_makes_the_sidecar_unready_and_plans_nothing() {
    let (_origin, bare, _rev) = bare_remote_with_release();
    let url = format!("file://{}", bare.path().display());
    let ws = Workspace::new();
    let api = fake::Fake::spawn(0);
    let mut watch = Sidecar::start(
        ws.path(),
        &api.url,
        fake::TOKEN,
        &[
            "--git",
            &url,
            "--branch",
            "release",
            "--interval",
            "1h",
            "--resync",
            "1h",
            "--prune",
            "--allow-empty",
        ],
    );
    assert_eq!(watch.next("reconciled")["create"], 1);
    assert_eq!(watch.get("/readyz").0, 200);

    delete_release(bare.path());
    assert_eq!(watch.gitlab_hook().0, 202);
    let failed = watch.next("fetch failed; keeping the last good revision");
    assert_eq!(failed["level"], "ERROR");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("branch `release` not found in the remote")),
        "{failed}"
    );
    let (status, response) = watch.get("/readyz");
    assert_eq!(status, 503, "{response}");
    assert_eq!(api.count("DELETE"), 0, "nothing planned from the stale tip");
    assert_eq!(api.job_ids("acme"), ["job-a"]);
}

/// A plain HTTP server on 127.0.0.1 that records each request's head and
/// answers with `respond(port, request head)`; it serves until the test
/// process ends.
fn http_server(
    respond: impl Fn(u16, &str) -> String + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(WAIT));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let response = respond(port, &head);
            log.lock().expect("log").push(head);
            let _ = conn.write_all(response.as_bytes());
        }
    });
    (port, seen)
}

const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn has_authorization(head: &str) -> bool {
    head.lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
}

#[test]
fn a_redirect_to_another_origin_gets_no_token() {
    // The other origin: asks for credentials and records what it gets.
    let (other, other_seen) = http_server(|_, _| UNAUTHORIZED.to_string());
    // The configured origin redirects everything there.
    let (configured, configured_seen) = http_server(move |_, head| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        format!("HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:{other}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    });
    let ws = Workspace::new();
    let run = dry_run(
        &ws,
        &format!("http://127.0.0.1:{configured}/acme/jobs.git"),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!configured_seen.lock().expect("log").is_empty());
    let seen = other_seen.lock().expect("log").clone();
    assert!(!seen.is_empty(), "the redirect was followed");
    assert!(
        !seen.iter().any(|h| has_authorization(h)),
        "the other origin got credentials: {seen:#?}"
    );
    assert!(
        run.stderr.contains("credentials withheld")
            && run.stderr.contains(&format!("127.0.0.1:{other}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret-git-token"), "{}", run.stderr);
}

#[test]
fn the_configured_origin_still_gets_the_token() {
    let (port, seen) = http_server(|_, _| UNAUTHORIZED.to_string());
    let ws = Workspace::new();
    let run = dry_run(&ws, &format!("http://127.0.0.1:{port}/acme/jobs.git"), &[]);
    assert_eq!(run.code, 1, "the server refuses the token: {}", run.stderr);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:s3cret-git-token");
    let seen = seen.lock().expect("log").clone();
    assert!(
        seen.iter().any(|h| h.contains(&format!("Basic {basic}"))),
        "{seen:#?}"
    );
    assert!(
        !run.stderr.contains("credentials withheld"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_libgit2_error_is_wrapped_in_what_nfcron_was_doing_and_not_repeated() {
    let ws = Workspace::new();
    let missing = ws.path().join("no-such-repo");
    let url = format!("file://{}", missing.display());
    let run = dry_run(&ws, &url, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert_eq!(
        lines[0],
        format!("error: cannot list the branches of `{url}`"),
        "{}",
        run.stderr
    );
    let cause = lines[1]
        .strip_prefix("  caused by: ")
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(cause.contains("no-such-repo"), "libgit2's words: {cause}");
    assert!(!lines[0].contains(cause), "{}", run.stderr);
    // And with --branch: the fetch is named.
    let run = dry_run(&ws, &url, &["--branch", "main"]);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot clone branch `main` of `{url}`\n  caused by: "
        )),
        "{}",
        run.stderr
    );
}
