//! Git sources against real servers on 127.0.0.1 (issue 12): lighttpd
//! running `git http-backend` behind basic auth, a server that accepts and
//! never answers, and caches damaged or shared the ways a long-lived
//! sidecar meets them. The real binary throughout; waits are on child
//! exits, log events and sockets, each with a deadline.

use crate::common;
use crate::fake;
use crate::support::git_servers as servers;
use crate::support::sidecar;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{git_commit, git_init, manifest, Workspace};
use serde_json::Value;
use servers::{bare_copy, Lighttpd, Switch};
use sidecar::{Sidecar, WAIT};

const TOKEN: &str = "s3cret-git-token";

/// A work repository with `jobs.d/a.yaml` on `main`; its first commit.
fn origin() -> (tempfile::TempDir, git2::Repository, String) {
    let dir = tempfile::tempdir().expect("origin");
    let repo = git_init(dir.path());
    let rev = git_commit(
        &repo,
        &[("jobs.d/a.yaml", Some(&manifest("Job A", "0 1 * * *")))],
        "one job",
    );
    (dir, repo, rev)
}

/// `reconcile --dry-run --output json --git URL` offline, with `env`.
fn dry_run(ws: &Workspace, url: &str, extra: &[&str], env: &[(&str, &str)]) -> common::Run {
    let mut args = vec!["reconcile", "--dry-run", "--output", "json", "--git", url];
    args.extend_from_slice(extra);
    ws.nfcron_env(&args, env)
}

fn nfcron(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.args(args).current_dir(ws.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("NFCRON_") || k.starts_with("NORTHFLANK_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn a_git_server_that_never_answers_fails_reconcile_within_git_timeout() {
    let stall = Switch::spawn();
    let url = format!("http://127.0.0.1:{}/acme/jobs.git", stall.port);
    let ws = Workspace::new();
    let started = Instant::now();
    let run = dry_run(
        &ws,
        &url,
        &["--branch", "main", "--git-timeout", "2s"],
        &[("NFCRON_GIT_TOKEN", TOKEN)],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(stall.accepted() >= 1, "the server was reached");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(2 + 8),
        "exit after {took:?} with --git-timeout 2s"
    );
    assert!(
        run.stderr
            .contains(&format!("cannot clone branch `main` of `{url}`")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "127.0.0.1:{} did not answer within 2s (--git-timeout)",
            stall.port
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing planned: {}", run.stdout);
    // Without --branch the first operation (listing branches) is bounded too.
    let run = dry_run(&ws, &url, &["--git-timeout", "1s"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot list the branches of `{url}`"))
            && run.stderr.contains("did not answer within 1s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_stalled_git_server_makes_the_sidecar_unready_then_it_recovers() {
    let (origin_dir, _repo, rev) = origin();
    let root = tempfile::tempdir().expect("repos");
    bare_copy(origin_dir.path(), root.path(), "jobs.git");
    let Some(server) = Lighttpd::start(root.path(), &[]) else {
        return;
    };
    let switch = Switch::spawn();
    let url = format!("http://127.0.0.1:{}/git/jobs.git", switch.port);
    let ws = Workspace::new();
    let api = fake::Fake::spawn(0);
    let mut sidecar = Sidecar::start(
        ws.path(),
        &api.url,
        fake::TOKEN,
        &["--git", &url, "--git-path", "jobs.d", "--git-timeout", "1s"],
    );
    let failed = sidecar.next("fetch failed; keeping the last good revision");
    assert_eq!(failed["level"], "ERROR");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("cannot list the branches of `{url}`"))
            && error.contains("did not answer within 1s (--git-timeout)"),
        "{failed}"
    );
    let (status, response) = sidecar.get("/readyz");
    assert_eq!(status, 503, "{response}");
    assert!(response.contains("did not answer"), "{response}");
    let (_, metrics) = sidecar.get("/metrics");
    assert!(
        metrics.contains("nfcron_reconcile_runs_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    assert_eq!(api.count("POST") + api.count("PUT"), 0);

    // The server answers again: the next poll (here a webhook) applies.
    switch.forward(server.addr());
    let (status, _, _) = sidecar.http(
        "POST",
        "/hooks/git",
        &[("X-Gitlab-Token", "hook-s3cret".into())],
        b"{}",
    );
    assert_eq!(status, 202);
    let reconciled = sidecar.next("reconciled");
    assert_eq!(reconciled["revision"], rev.as_str(), "{reconciled}");
    assert_eq!(reconciled["create"], 1, "{reconciled}");
    let (status, response) = sidecar.get("/readyz");
    assert_eq!(status, 200, "{response}");
}

#[test]
fn sigterm_ends_a_sidecar_stuck_on_a_silent_git_server_within_shutdown_timeout() {
    let stall = Switch::spawn();
    let url = format!("http://127.0.0.1:{}/acme/jobs.git", stall.port);
    let ws = Workspace::new();
    let api = fake::Fake::spawn(0);
    let child = nfcron(
        &ws,
        &[
            "watch",
            "--listen",
            "off",
            "--git",
            &url,
            "--git-timeout",
            "1h",
            "--shutdown-timeout",
            "1s",
        ],
        &[
            ("NORTHFLANK_API_URL", api.url.as_str()),
            ("NORTHFLANK_API_TOKEN", fake::TOKEN),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start nfcron watch");
    stall.wait_accepted(1, WAIT);
    let signalled = Instant::now();
    // SAFETY: signalling our own child by its id.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = common::wait_with_deadline(child, Duration::from_secs(10));
    let took = signalled.elapsed();
    assert!(status.is_some(), "still running {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(1) + Duration::from_secs(3),
        "{took:?} after SIGTERM with --shutdown-timeout 1s"
    );
}

/// The cache's config file.
fn cache_config(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.path().join(".nfcron/git/config")).expect("cache config")
}

#[test]
fn a_refused_token_is_sent_once_and_named_with_the_host() {
    let (origin_dir, _repo, _rev) = origin();
    let root = tempfile::tempdir().expect("repos");
    bare_copy(origin_dir.path(), root.path(), "jobs.git");
    let Some(mut server) = Lighttpd::start(root.path(), &[("alice", "the-right-token")]) else {
        return;
    };
    let url = format!("http://alice@127.0.0.1:{}/git/jobs.git", server.port);
    let ws = Workspace::new();
    let started = Instant::now();
    let run = dry_run(&ws, &url, &[], &[("NFCRON_GIT_TOKEN", TOKEN)]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "127.0.0.1:{} refused the token (HTTP 401 Unauthorized, user `alice`)",
            server.port
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(TOKEN), "{}", run.stderr);
    // lighttpd delays each failed basic auth: this bounds the replays.
    assert!(took < Duration::from_secs(20), "{took:?}");
    let log = server.stop();
    // libgit2 first tries the URL's user with an empty password; the
    // token goes out once.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{TOKEN}"));
    let with_token = log.iter().filter(|l| l.contains(&basic)).count();
    assert_eq!(with_token, 1, "one attempt with the token: {log:#?}");
    assert!(log.len() <= 3, "{log:#?}");
}

#[test]
fn the_user_in_the_url_gets_the_token_and_neither_is_written_into_the_cache() {
    let (origin_dir, _repo, rev) = origin();
    let root = tempfile::tempdir().expect("repos");
    bare_copy(origin_dir.path(), root.path(), "jobs.git");
    let Some(server) = Lighttpd::start(root.path(), &[("alice", TOKEN)]) else {
        return;
    };
    let ws = Workspace::new();
    // The token for the user in the URL.
    let url = format!("http://alice@127.0.0.1:{}/git/jobs.git", server.port);
    let run = dry_run(&ws, &url, &[], &[("NFCRON_GIT_TOKEN", TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev.as_str());
    let config = cache_config(&ws);
    assert!(!config.contains(TOKEN), "{config}");
    assert!(config.contains(&url), "the remote is recorded: {config}");
    // Without the user, `x-access-token` is not one lighttpd knows.
    let plain = server.url("jobs.git");
    let run = dry_run(
        &Workspace::new(),
        &plain,
        &[],
        &[("NFCRON_GIT_TOKEN", TOKEN)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("user `x-access-token`"),
        "{}",
        run.stderr
    );
    // A password written in the URL works and stays out of the config.
    let ws = Workspace::new();
    let with_password = format!(
        "http://alice:{TOKEN}@127.0.0.1:{}/git/jobs.git",
        server.port
    );
    let run = dry_run(&ws, &with_password, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(TOKEN), "{}", run.stderr);
    let config = cache_config(&ws);
    assert!(!config.contains(TOKEN), "{config}");
}

#[test]
fn an_empty_remote_without_branch_says_so_over_http_and_file() {
    let root = tempfile::tempdir().expect("repos");
    git2::Repository::init_bare(root.path().join("empty.git")).expect("empty bare");
    let file_url = format!("file://{}", root.path().join("empty.git").display());
    let server = Lighttpd::start(root.path(), &[]);
    let mut urls = vec![file_url];
    urls.extend(server.as_ref().map(|s| s.url("empty.git")));
    for url in urls {
        let run = dry_run(&Workspace::new(), &url, &[], &[]);
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "the remote `{url}` has no branches (an empty repository?)"
            )),
            "{url}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("followRedirects"), "{}", run.stderr);
    }
}

// The cache.

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn cache(ws: &Workspace) -> PathBuf {
    ws.path().join(".nfcron/git")
}

fn assert_healed(run: &common::Run, rev: &str) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev);
    assert_eq!(
        run.stderr
            .matches("the Git cache is unusable; cloning it afresh")
            .count(),
        1,
        "one warning: {}",
        run.stderr
    );
}

#[test]
fn a_cache_without_its_objects_is_cloned_afresh() {
    let (origin_dir, _repo, rev) = origin();
    let url = file_url(origin_dir.path());
    let ws = Workspace::new();
    assert_eq!(dry_run(&ws, &url, &[], &[]).code, 0);
    std::fs::remove_dir_all(cache(&ws).join("objects")).expect("rm objects");
    let run = dry_run(&ws, &url, &[], &[]);
    assert_healed(&run, &rev);
    assert!(
        run.stderr.contains("objects directory is missing"),
        "{}",
        run.stderr
    );
    let again = dry_run(&ws, &url, &[], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        !again.stderr.contains("unusable"),
        "healed for good: {}",
        again.stderr
    );
}

#[test]
fn a_truncated_pack_is_healed() {
    let (origin_dir, _repo, rev) = origin();
    let url = file_url(origin_dir.path());
    let ws = Workspace::new();
    assert_eq!(dry_run(&ws, &url, &["--branch", "main"], &[]).code, 0);
    let pack_dir = cache(&ws).join("objects/pack");
    let pack = std::fs::read_dir(&pack_dir)
        .expect("pack dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("a pack");
    let len = std::fs::metadata(&pack).expect("pack").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .expect("open");
    file.set_len(len / 2).expect("truncate");
    drop(file);
    let run = dry_run(&ws, &url, &["--branch", "main"], &[]);
    assert_healed(&run, &rev);
    assert_eq!(
        run.json()["jobs"][0]["file"],
        "jobs.d/a.yaml",
        "{}",
        run.stdout
    );
}

#[test]
fn a_cache_cloned_from_another_remote_is_replaced() {
    let (first_dir, _first, _) = origin();
    let (second_dir, second, _) = origin();
    let rev = git_commit(
        &second,
        &[("jobs.d/b.yaml", Some(&manifest("Job B", "0 2 * * *")))],
        "two jobs",
    );
    let ws = Workspace::new();
    assert_eq!(dry_run(&ws, &file_url(first_dir.path()), &[], &[]).code, 0);
    let url = file_url(second_dir.path());
    let run = dry_run(&ws, &url, &[], &[]);
    assert_healed(&run, &rev);
    assert!(
        run.stderr.contains(&format!(
            "it was cloned from `{}`",
            file_url(first_dir.path())
        )),
        "{}",
        run.stderr
    );
    assert!(cache_config(&ws).contains(&url));
}

/// Temporary directories beside the cache.
fn leftovers(ws: &Workspace) -> Vec<String> {
    std::fs::read_dir(ws.path().join(".nfcron"))
        .expect(".nfcron")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".git.nfcron-tmp-"))
        .collect()
}

#[test]
fn a_clone_killed_half_way_leaves_no_cache_and_the_next_run_clones() {
    let stall = Switch::spawn();
    let ws = Workspace::new();
    let mut child = nfcron(
        &ws,
        &[
            "reconcile",
            "--dry-run",
            "--git",
            &format!("http://127.0.0.1:{}/jobs.git", stall.port),
        ],
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("start nfcron");
    stall.wait_accepted(1, WAIT);
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(!cache(&ws).exists(), "no half-made cache");
    assert_eq!(leftovers(&ws).len(), 1, "the clone in progress");

    let (origin_dir, _repo, rev) = origin();
    let run = dry_run(&ws, &file_url(origin_dir.path()), &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev.as_str());
    assert!(leftovers(&ws).is_empty(), "{:?}", leftovers(&ws));
}

#[test]
fn six_concurrent_first_runs_on_one_cache_all_succeed() {
    let (origin_dir, _repo, rev) = origin();
    let url = file_url(origin_dir.path());
    let ws = Workspace::new();
    let children: Vec<Child> = (0..6)
        .map(|_| {
            nfcron(
                &ws,
                &["reconcile", "--dry-run", "--output", "json", "--git", &url],
                &[],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nfcron")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(report["source"]["revision"], rev.as_str());
        assert!(
            !stderr.contains("error") && !stderr.contains("unusable"),
            "{stderr}"
        );
    }
}

#[test]
fn packs_piling_up_are_folded_into_one() {
    let (origin_dir, repo, _) = origin();
    let url = file_url(origin_dir.path());
    let ws = Workspace::new();
    let packs = || {
        std::fs::read_dir(cache(&ws).join("objects/pack"))
            .expect("pack dir")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|e| e == "pack"))
            .count()
    };
    let mut most = 0;
    let mut rev = String::new();
    for i in 0..10 {
        rev = git_commit(
            &repo,
            &[(
                &format!("jobs.d/j{i}.yaml"),
                Some(&manifest(&format!("Job {i}"), "0 3 * * *")),
            )],
            "one more job",
        );
        let run = dry_run(&ws, &url, &["--branch", "main"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json()["source"]["revision"], rev.as_str());
        most = most.max(packs());
    }
    assert_eq!(most, 8, "packs pile up to the limit");
    assert!(packs() < 8, "then are folded: {}", packs());
    let run = dry_run(&ws, &url, &["--branch", "main"], &[]);
    assert_eq!(run.json()["source"]["revision"], rev.as_str());
    assert_eq!(run.json()["jobs"].as_array().map(Vec::len), Some(11));
}

/// HTTPS to a server whose certificate a private CA signed: refused against
/// the system's trust store, accepted once `SSL_CERT_FILE` names the CA;
/// a certificate for another name is refused naming the mismatch.
#[test]
fn https_with_a_private_ca_is_trusted_through_ssl_cert_file() {
    let (origin_dir, _repo, rev) = origin();
    let root = tempfile::tempdir().expect("repos");
    bare_copy(origin_dir.path(), root.path(), "jobs.git");
    let pki = tempfile::tempdir().expect("pki");
    let ca = servers::PrivateCa::new(pki.path());
    let cert = ca.issue("localhost", "DNS:localhost, IP:127.0.0.1");
    let Some(server) = Lighttpd::start_tls(root.path(), &[], &cert) else {
        return;
    };
    let url = server.url("jobs.git");
    let ca_file = ca.cert.to_str().expect("utf-8");

    let untrusted = dry_run(
        &Workspace::new(),
        &url,
        &["--git-path", "jobs.d"],
        &[("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")],
    );
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    let port = server.port;
    assert!(
        untrusted.stderr.contains(&format!(
            "caused by: the TLS certificate of localhost:{port} is not trusted"
        )) && untrusted.stderr.contains("set SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );

    let trusted = dry_run(
        &Workspace::new(),
        &url,
        &["--git-path", "jobs.d"],
        &[("SSL_CERT_FILE", ca_file)],
    );
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    let plan = trusted.json();
    assert_eq!(plan["source"]["revision"], rev.as_str(), "{plan}");

    let other = ca.issue("other", "DNS:git.example.test");
    let Some(server) = Lighttpd::start_tls(root.path(), &[], &other) else {
        return;
    };
    let mismatched = dry_run(
        &Workspace::new(),
        &server.url("jobs.git"),
        &["--git-path", "jobs.d"],
        &[("SSL_CERT_FILE", ca_file)],
    );
    assert_eq!(mismatched.code, 1, "{}", mismatched.stderr);
    assert!(
        mismatched.stderr.contains(&format!(
            "caused by: the TLS certificate of localhost:{} is not valid for the host name `localhost`",
            server.port
        )),
        "{}",
        mismatched.stderr
    );
    // Said once, in nfcron's words.
    assert!(
        !mismatched
            .stderr
            .contains("hostname does not match certificate"),
        "{}",
        mismatched.stderr
    );
}
