//! Signed sources (`--verify-signatures`): commits signed by the real
//! `git commit -S` with keys made by ssh-keygen and gpg, served as a
//! file:// remote, the real binary against the fake API; the watch
//! sidecar through its real listener.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, Workspace};
use crate::fake::{Fake, TOKEN};
use crate::support::hostile_server::{respond, Hostile};
use crate::support::sidecar::{metric, Sidecar};

fn manifest(schedule: &str) -> String {
    common::manifest("Job A", schedule)
}

fn ssh_tools() -> bool {
    common::have_tool("git", "apt-get install git")
        && common::have_command("ssh-keygen", "apt-get install openssh-client")
}

fn gpg_tools() -> bool {
    common::have_tool("git", "apt-get install git")
        && common::have_tool("gpg", "apt-get install gnupg")
}

/// Runs `program args` with `env`, and fails the test with its stderr if
/// it fails; returns its stdout.
fn run(program: &str, args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a commit is signed.
enum Sign<'a> {
    Not,
    /// With this private key file (gpg.format=ssh).
    Ssh(&'a Path),
    /// With the key of this user id, from the keyring in this GNUPGHOME.
    Gpg {
        home: &'a Path,
        user: &'a str,
    },
}

/// A repository with a work tree, committed to by the git CLI under a
/// HOME of its own (no user or system configuration).
struct Origin {
    dir: tempfile::TempDir,
}

impl Origin {
    fn new() -> Origin {
        let origin = Origin {
            dir: tempfile::tempdir().expect("origin"),
        };
        origin.git(&["init", "-q", "-b", "main"], &[]);
        origin
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    fn git(&self, args: &[&str], env: &[(&str, &Path)]) -> String {
        let mut all: Vec<(&str, &Path)> = vec![
            ("HOME", self.dir.path()),
            ("GIT_CONFIG_NOSYSTEM", Path::new("1")),
            ("GIT_CONFIG_GLOBAL", Path::new("/dev/null")),
        ];
        all.extend_from_slice(env);
        run("git", args, self.dir.path(), &all)
    }

    /// Commits `jobs.d/a.yaml` with `schedule` as `committer`; returns the
    /// commit id.
    fn commit(&self, schedule: &str, committer: &str, sign: Sign<'_>) -> String {
        let file = self.dir.path().join("jobs.d/a.yaml");
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, manifest(schedule)).expect("write");
        self.git(&["add", "-A"], &[]);
        let mut args: Vec<String> = vec![
            "-c".into(),
            format!("user.email={committer}"),
            "-c".into(),
            "user.name=Committer".into(),
        ];
        let mut env: Vec<(&str, &Path)> = Vec::new();
        match sign {
            Sign::Not => {}
            Sign::Ssh(key) => args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", key.display()),
            ]),
            Sign::Gpg { home, user } => {
                args.extend([
                    "-c".into(),
                    "gpg.program=gpg".into(),
                    "-c".into(),
                    format!("user.signingkey={user}"),
                ]);
                env.push(("GNUPGHOME", home));
            }
        }
        args.extend(["commit", "-q", "-m", schedule].map(String::from));
        if !matches!(sign, Sign::Not) {
            args.push("-S".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args, &env);
        self.git(&["rev-parse", "HEAD"], &[]).trim().to_string()
    }
}

/// A GNUPGHOME of the test's own. gpg starts a gpg-agent in it on demand;
/// the agent is stopped before the directory goes, so that no test leaves
/// a process behind.
struct GnupgHome {
    dir: tempfile::TempDir,
}

impl GnupgHome {
    /// A GNUPGHOME holding a new ed25519 signing key for each of `users`.
    fn with_keys(users: &[&str]) -> GnupgHome {
        let gnupg = GnupgHome {
            dir: tempfile::tempdir().expect("GNUPGHOME"),
        };
        for user in users {
            gnupg.gpg(&[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                user,
                "ed25519",
                "sign",
                "never",
            ]);
        }
        gnupg
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `gpg ARGS` in this GNUPGHOME; returns its stdout.
    fn gpg(&self, args: &[&str]) -> String {
        let home = self.dir.path();
        run("gpg", args, home, &[("GNUPGHOME", home)])
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.dir.path())
            .output();
    }
}

/// An ed25519 key pair made by ssh-keygen: (private key file, public key
/// line, SHA256 fingerprint).
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String, String) {
    let key = dir.join(name);
    let path = key.to_str().expect("utf-8 path");
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path],
        dir,
        &[],
    );
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("public key");
    let listed = run("ssh-keygen", &["-l", "-f", path], dir, &[]);
    let fingerprint = listed
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string();
    (key, public.trim().to_string(), fingerprint)
}

/// `reconcile --git ORIGIN --verify-signatures FILE --output json ARGS`.
fn reconcile(
    ws: &Workspace,
    fake: &Fake,
    origin: &Origin,
    signers: &Path,
    args: &[&str],
) -> common::Run {
    let url = origin.url();
    let file = signers.to_str().expect("utf-8 path");
    let mut all = vec![
        "reconcile",
        "--git",
        &url,
        "--verify-signatures",
        file,
        "--output",
        "json",
    ];
    all.extend_from_slice(args);
    ws.nfcron_env(
        &all,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

/// `allowed_signers` in `dir` listing `alice@example.com` with `public`.
fn alice_allowed(dir: &Path, public: &str) -> PathBuf {
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("alice@example.com {public}\n")).expect("write");
    signers
}

/// Alice's and Mallory's SSH keys, and an allowed-signers file listing
/// Alice's only; `None` (the test skips) without the SSH tools.
struct SshKeys {
    _dir: tempfile::TempDir,
    alice: PathBuf,
    alice_public: String,
    alice_fingerprint: String,
    mallory: PathBuf,
    mallory_fingerprint: String,
    signers: PathBuf,
}

fn ssh_keys() -> Option<SshKeys> {
    if !ssh_tools() {
        return None;
    }
    let dir = tempfile::tempdir().expect("keys");
    let (alice, alice_public, alice_fingerprint) = ssh_key(dir.path(), "alice");
    let (mallory, _, mallory_fingerprint) = ssh_key(dir.path(), "mallory");
    let signers = alice_allowed(dir.path(), &alice_public);
    Some(SshKeys {
        _dir: dir,
        alice,
        alice_public,
        alice_fingerprint,
        mallory,
        mallory_fingerprint,
        signers,
    })
}

/// `watch --git ORIGIN --verify-signatures FILE ARGS`, started.
fn watch_verifying(
    ws: &Workspace,
    fake: &Fake,
    origin: &Origin,
    signers: &Path,
    args: &[&str],
) -> Sidecar {
    let url = origin.url();
    let file = signers.to_str().expect("utf-8 path");
    let all = [&["--git", &url, "--verify-signatures", file][..], args].concat();
    Sidecar::start(ws.path(), &fake.url, TOKEN, &all)
}

/// `nfcron_source_verified` from the sidecar's metrics.
fn verified(watch: &Sidecar) -> f64 {
    metric(&watch.get("/metrics").1, "nfcron_source_verified")
}

#[test]
fn a_tip_signed_by_an_allowed_ssh_key_is_applied() {
    let Some(keys) = ssh_keys() else {
        return;
    };
    let SshKeys {
        alice,
        alice_public,
        signers,
        ..
    } = &keys;
    std::fs::write(
        signers,
        format!("# the team\nalice@example.com {alice_public}\n"),
    )
    .expect("write");
    let origin = Origin::new();
    let rev = origin.commit("0 1 * * *", "alice@example.com", Sign::Ssh(alice));
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let run = reconcile(&ws, &fake, &origin, signers, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev);
    assert_eq!(fake.count("PUT"), 1);
    // The environment variable does the same.
    let rev = origin.commit("0 2 * * *", "alice@example.com", Sign::Ssh(alice));
    let url = origin.url();
    let run = ws.nfcron_env(
        &["reconcile", "--git", &url, "--output", "json"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            ("NFCRON_VERIFY_SIGNATURES", signers.to_str().expect("utf-8")),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev);
    assert_eq!(fake.count("PUT"), 2);
}

#[test]
fn unsigned_and_unlisted_tips_are_refused_with_no_api_request() {
    let Some(keys) = ssh_keys() else {
        return;
    };
    let SshKeys {
        alice,
        alice_fingerprint,
        mallory,
        mallory_fingerprint,
        signers,
        ..
    } = &keys;
    let origin = Origin::new();
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let refused = |rev: &str, reason: &str| {
        for dry_run in [&[][..], &["--dry-run"][..]] {
            let run = reconcile(&ws, &fake, &origin, signers, dry_run);
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(
                run.stderr.contains(&format!(
                    "error: commit {rev} is not applied (--verify-signatures): {reason}"
                )),
                "{}",
                run.stderr
            );
            assert!(run.stdout.is_empty(), "{}", run.stdout);
            assert_eq!(fake.requests().len(), 0, "no API request at all");
        }
    };
    let rev = origin.commit("0 1 * * *", "alice@example.com", Sign::Not);
    refused(&rev, "it is not signed");
    // A notification says so, naming the commit and why.
    let receiver = Hostile::spawn(|_, stream| respond(stream, 200, &[], b"ok"));
    let hook = format!("{}/hook", receiver.url);
    let run = reconcile(&ws, &fake, &origin, signers, &["--notify", &hook]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let told = receiver.requests();
    assert_eq!(told.len(), 1, "{told:#?}");
    let body: serde_json::Value = serde_json::from_slice(&told[0].body).expect("json");
    assert_eq!(
        (&body["event"], &body["severity"], &body["revision"]),
        (&"unverified".into(), &"error".into(), &rev.as_str().into())
    );
    assert_eq!(body["jobs"][0]["message"], "it is not signed");
    assert_eq!(fake.requests().len(), 0);
    let rev = origin.commit("0 2 * * *", "alice@example.com", Sign::Ssh(mallory));
    refused(
        &rev,
        &format!("it is signed by the SSH key {mallory_fingerprint}, which the allowed-signers file does not list"),
    );
    // Alice's key, but the committer is not the principal it is listed for.
    let rev = origin.commit("0 3 * * *", "bob@example.com", Sign::Ssh(alice));
    refused(
        &rev,
        &format!("it is signed by the SSH key {alice_fingerprint}, which the allowed-signers file does not list for the committer `bob@example.com`"),
    );
    assert!(
        !ws.path().join(".nfcron/state.json").exists(),
        "nothing recorded"
    );
}

#[test]
fn openpgp_signed_tips_verify_against_an_armored_keyring() {
    if !gpg_tools() {
        return;
    }
    let gnupg = GnupgHome::with_keys(&["Test <test@example.com>", "Other <other@example.com>"]);
    let home = gnupg.home();
    let gpg = |args: &[&str]| gnupg.gpg(args);
    let keyring = home.join("keyring.asc");
    std::fs::write(&keyring, gpg(&["--armor", "--export", "test@example.com"])).expect("write");
    let origin = Origin::new();
    let signed = |email: &str, schedule: &str| {
        origin.commit(schedule, email, Sign::Gpg { home, user: email })
    };
    let rev = signed("test@example.com", "0 1 * * *");
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let run = reconcile(&ws, &fake, &origin, &keyring, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["source"]["revision"], rev);
    assert_eq!(fake.count("PUT"), 1);
    let rev = signed("other@example.com", "0 2 * * *");
    fake.clear_log();
    let run = reconcile(&ws, &fake, &origin, &keyring, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("commit {rev} is not applied"))
            && run.stderr.contains("which the keyring does not hold"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests().len(), 0);
}

#[test]
fn a_tip_signed_by_a_since_revoked_openpgp_key_is_refused() {
    if !gpg_tools() {
        return;
    }
    let gnupg = GnupgHome::with_keys(&["Test <test@example.com>"]);
    let home = gnupg.home();
    let gpg = |args: &[&str]| gnupg.gpg(args);
    let user = "test@example.com";
    let origin = Origin::new();
    let rev = origin.commit("0 1 * * *", user, Sign::Gpg { home, user });
    let keyring = home.join("keyring.asc");
    std::fs::write(&keyring, gpg(&["--armor", "--export", user])).expect("write");
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let run = reconcile(&ws, &fake, &origin, &keyring, &["--dry-run"]);
    assert_eq!(
        run.code, 0,
        "accepted before the revocation: {}",
        run.stderr
    );
    // The revocation certificate gpg made with the key, imported (without
    // the ':' that guards it against that), then the key exported again.
    let colons = gpg(&["--with-colons", "--list-keys", user]);
    let fingerprint = colons
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .and_then(|l| l.strip_suffix(':'))
        .expect("a fingerprint")
        .to_string();
    let certificate = std::fs::read_to_string(
        home.join("openpgp-revocs.d")
            .join(format!("{fingerprint}.rev")),
    )
    .expect("revocation certificate")
    .replace(":-----BEGIN", "-----BEGIN");
    let revocation = home.join("revocation.asc");
    std::fs::write(&revocation, certificate).expect("write");
    gpg(&["--batch", "--import", revocation.to_str().expect("utf-8")]);
    std::fs::write(&keyring, gpg(&["--armor", "--export", user])).expect("write");
    fake.clear_log();
    let run = reconcile(&ws, &fake, &origin, &keyring, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: commit {rev} is not applied (--verify-signatures): it is signed by the OpenPGP key {fingerprint}, which is revoked"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests().len(), 0);
}

#[test]
fn verify_signatures_needs_a_git_source_and_a_usable_file() {
    let ws = Workspace::new().with_bundled_jobs();
    let file = ws.write("allowed_signers", "alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXE2XSPUGdWz85Ec9JDh+JOqRHFQSC3Ghh/AlUKH7Gw\n");
    let file = file.to_str().expect("utf-8");
    let run = ws.nfcron(&["reconcile", "--dry-run", "--verify-signatures", file]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error: --verify-signatures (or NFCRON_VERIFY_SIGNATURES) checks the signatures of Git commits: it needs --git URL"), "{}", run.stderr);
    let url = "file:///nonexistent/repo";
    for (content, says) in [
        (None, "cannot read the --verify-signatures file"),
        (Some(""), "lists no key"),
        (Some("# only comments\n"), "lists no key"),
        (
            Some("alice@example.com\n"),
            "line 1: no key after the principals",
        ),
        (
            Some("# team\n\nalice@example.com ssh-ed25519 garbage\n"),
            "line 3: the key cannot be read",
        ),
    ] {
        let path = ws.path().join("signers");
        let _ = std::fs::remove_file(&path);
        if let Some(content) = content {
            std::fs::write(&path, content).expect("write");
        }
        let shown = path.to_str().expect("utf-8");
        let run = ws.nfcron(&[
            "reconcile",
            "--dry-run",
            "--git",
            url,
            "--verify-signatures",
            shown,
        ]);
        assert_eq!(run.code, 1, "{content:?}");
        assert!(run.stderr.contains(says), "{content:?}: {}", run.stderr);
        assert!(run.stderr.contains(shown), "names the file: {}", run.stderr);
        // Refused before the remote is looked at.
        assert!(!run.stderr.contains("nonexistent"), "{}", run.stderr);
    }
}

#[test]
fn watch_keeps_the_last_verified_revision_while_the_tip_is_refused() {
    let Some(keys) = ssh_keys() else {
        return;
    };
    let SshKeys { alice, signers, .. } = &keys;
    let origin = Origin::new();
    let first = origin.commit("0 1 * * *", "alice@example.com", Sign::Ssh(alice));
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let mut watch = watch_verifying(
        &ws,
        &fake,
        &origin,
        signers,
        &["--interval", "1h", "--resync", "1h"],
    );
    let run = watch.next("reconciled");
    assert_eq!(
        (run["create"].as_u64(), run["revision"].as_str()),
        (Some(1), Some(first.as_str()))
    );
    assert_eq!(watch.get("/readyz").0, 200);
    assert_eq!(verified(&watch), 1.0);

    let unsigned = origin.commit("0 2 * * *", "alice@example.com", Sign::Not);
    let refused_message = "refused the Git source's tip: its signature is not accepted; the last verified revision stays applied";
    for _ in 0..2 {
        assert_eq!(watch.gitlab_hook().0, 202);
        // The last verified revision is reconciled again: nothing to do.
        let run = watch.next("reconciled");
        assert_eq!(run["revision"], first.as_str(), "{run}");
        assert_eq!(run["api_requests"], 0, "{run}");
    }
    let refusals: Vec<_> = watch
        .seen
        .iter()
        .filter(|e| e["message"] == refused_message)
        .collect();
    assert_eq!(
        refusals.len(),
        1,
        "said once per refused tip: {:#?}",
        watch.seen
    );
    assert_eq!(refusals[0]["level"], "ERROR");
    assert_eq!(refusals[0]["commit"], unsigned.as_str());
    assert_eq!(fake.count("PUT"), 1, "nothing of the unsigned tip applied");
    let (status, body) = watch.get("/readyz");
    assert_eq!(status, 503);
    assert!(
        body.contains(&format!("commit {unsigned} is not applied"))
            && body.contains("it is not signed"),
        "{body}"
    );
    assert_eq!(verified(&watch), 0.0);

    let signed = origin.commit("0 3 * * *", "alice@example.com", Sign::Ssh(alice));
    assert_eq!(watch.gitlab_hook().0, 202);
    let run = watch.next("reconciled");
    assert_eq!(
        (run["update"].as_u64(), run["revision"].as_str()),
        (Some(1), Some(signed.as_str())),
        "{run}"
    );
    assert_eq!(common::acme_schedule(&fake, "job-a"), "0 3 * * *");
    assert_eq!(watch.get("/readyz").0, 200);
    assert_eq!(verified(&watch), 1.0);
}

#[test]
fn watch_starting_on_a_refused_tip_applies_nothing_and_is_unready() {
    let Some(keys) = ssh_keys() else {
        return;
    };
    let SshKeys {
        mallory,
        mallory_fingerprint,
        signers,
        ..
    } = &keys;
    let origin = Origin::new();
    let tip = origin.commit("0 1 * * *", "alice@example.com", Sign::Ssh(mallory));
    let (ws, fake) = (Workspace::new(), Fake::spawn(0));
    let mut watch = watch_verifying(&ws, &fake, &origin, signers, &["--interval", "1h"]);
    let refused = watch.next("refused the Git source's tip: its signature is not accepted; the last verified revision stays applied");
    assert_eq!(refused["commit"], tip.as_str());
    assert_eq!(refused["kept_revision"], "", "nothing verified yet");
    let (status, body) = watch.get("/readyz");
    assert_eq!(status, 503);
    assert!(
        body.contains(&format!("commit {tip} is not applied"))
            && body.contains(mallory_fingerprint.as_str()),
        "{body}"
    );
    assert_eq!(verified(&watch), 0.0);
    assert_eq!(fake.requests().len(), 0, "nothing read or written");
}
