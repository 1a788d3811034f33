//! Git over SSH against a real OpenSSH server on loopback (issue 12, items
//! 6 and 11): `--known-hosts` with OpenSSH's semantics (`[host]:port` and
//! hashed lines, several key types, `@revoked`, `@cert-authority`), every
//! refusal in nfcron's words; the default user `git`, a key's passphrase
//! from a file, and a refused key offered once.
//!
//! Each test starts its own `/usr/sbin/sshd -D -e` as root on a free port of
//! 127.0.0.1 with host keys, `AuthorizedKeysFile` and config in a temporary
//! directory; it is killed when the test ends. Readiness is its
//! `Server listening` line on stderr. Under `CI=true` a missing sshd is a
//! failure (.ci/run installs openssh-server); elsewhere the test is skipped,
//! saying why.

use crate::common;
use crate::fake;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{manifest, Workspace};
use fake::{Fake, TOKEN};

const SSHD: &str = "/usr/sbin/sshd";
const PASSPHRASE: &str = "correct horse battery staple";

fn tool(name: &str, path: &str) -> bool {
    let found = Path::new(path).exists()
        || Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing under CI=true; .ci/run installs openssh-server"
        );
        eprintln!("skipped: {name} is not installed (apt-get install openssh-server)");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", "", "-f"])
        .arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd);
}

/// A running sshd and what the test needs from it.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    log: Receiver<String>,
    /// Lines read from the log so far.
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `None` (skipped, outside CI) when sshd is not installed or this is
    /// not root.
    fn start() -> Option<Server> {
        if !tool("sshd", SSHD) || !tool("ssh-keygen", "/usr/bin/ssh-keygen") {
            return None;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the sshd tests run as root under CI"
            );
            eprintln!("skipped: sshd needs root");
            return None;
        }
        std::fs::create_dir_all("/run/sshd").expect("privilege separation dir");
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        for kind in ["ed25519", "ecdsa", "rsa"] {
            keygen(&d.join(format!("host_{kind}")), kind, "");
        }
        keygen(&d.join("client"), "ed25519", "");
        keygen(&d.join("client_encrypted"), "ed25519", PASSPHRASE);
        keygen(&d.join("stranger"), "ed25519", "");
        let mut authorized = std::fs::read_to_string(d.join("client.pub")).expect("pub");
        authorized.push_str(&std::fs::read_to_string(d.join("client_encrypted.pub")).expect("pub"));
        std::fs::write(d.join("authorized_keys"), authorized).expect("authorized_keys");
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\nHostKey {d}/host_ecdsa\nHostKey {d}/host_rsa\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PidFile none\nLogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("config");
        // A free port: bound, then released for sshd.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sshd");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            dir,
            port,
            log,
            seen: Vec::new(),
        };
        server.wait_for("Server listening on 127.0.0.1 port");
        Some(server)
    }

    /// Waits (10 s at most) for a log line containing `words`.
    fn wait_for(&mut self, words: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(line) = self.seen.iter().find(|l| l.contains(words)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(words) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "sshd never logged {words:?}; its log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every log line so far (those already written are drained).
    fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A bare repository with one manifest, served by this sshd.
    fn repo(&self) -> PathBuf {
        let path = self.path("repo.git");
        let repo = git2::Repository::init_bare(&path).expect("init");
        repo.set_head("refs/heads/main").expect("HEAD");
        let blob = repo
            .blob(manifest("Job A", "0 1 * * *").as_bytes())
            .expect("blob");
        let mut jobs = repo.treebuilder(None).expect("tb");
        jobs.insert("a.yaml", blob, 0o100644).expect("insert");
        let jobs = jobs.write().expect("tree");
        let mut root = repo.treebuilder(None).expect("tb");
        root.insert("jobs.d", jobs, 0o040000).expect("insert");
        let tree = repo.find_tree(root.write().expect("tree")).expect("tree");
        let sig = git2::Signature::now("T", "t@example.com").expect("sig");
        repo.commit(Some("refs/heads/main"), &sig, &sig, "one job", &tree, &[])
            .expect("commit");
        path
    }

    /// `[127.0.0.1]:PORT <type> <key>` for the host key `kind`.
    fn known_line(&self, kind: &str) -> String {
        let public = std::fs::read_to_string(self.path(&format!("host_{kind}.pub"))).expect("pub");
        let mut fields = public.split_whitespace();
        let (t, k) = (fields.next().expect("type"), fields.next().expect("key"));
        format!("[127.0.0.1]:{} {t} {k}", self.port)
    }

    fn fingerprint(&self, kind: &str) -> String {
        run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.path(&format!("host_{kind}.pub"))))
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
    }
}

/// `reconcile --dry-run` of `url` with these SSH flags, in a fresh
/// workspace (fresh cache) each time.
fn plan(url: &str, ssh: &[&str]) -> common::Run {
    plan_env(url, ssh, &[])
}

fn plan_env(url: &str, ssh: &[&str], extra: &[(&str, &str)]) -> common::Run {
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    let mut env = vec![
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    env.extend_from_slice(extra);
    let mut args = vec!["reconcile", "--dry-run", "--output", "json", "--git", url];
    args.extend_from_slice(ssh);
    let run = ws.nfcron_env(&args, &env);
    // Whatever happened, no secret reached the cache's git config.
    if let Ok(config) = std::fs::read_to_string(ws.path().join(".nfcron/git/config")) {
        assert!(!config.contains(PASSPHRASE), "{config}");
    }
    run
}

/// [`plan`] with `--ssh-key KEY --known-hosts KNOWN`.
fn plan_known(url: &str, key: &Path, known: &Path) -> common::Run {
    plan(
        url,
        &[
            "--ssh-key",
            key.to_str().expect("utf-8"),
            "--known-hosts",
            known.to_str().expect("utf-8"),
        ],
    )
}

fn planned_job_a(run: &common::Run) {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["jobs"][0]["id"], "job-a", "{report:#}");
    assert_eq!(report["jobs"][0]["file"], "jobs.d/a.yaml");
}

#[test]
fn hashed_bracketed_known_hosts_from_ssh_keyscan_are_accepted() {
    let Some(server) = Server::start() else {
        return;
    };
    let repo = server.repo();
    let scan =
        run(Command::new("ssh-keyscan").args(["-H", "-p", &server.port.to_string(), "127.0.0.1"]));
    assert!(scan.lines().all(|l| l.starts_with("|1|")), "{scan}");
    let known = server.path("known_hosts");
    std::fs::write(&known, &scan).expect("known_hosts");
    let url = format!("ssh://root@127.0.0.1:{}{}", server.port, repo.display());
    let key = server.path("client");
    let run = plan_known(&url, &key, &known);
    planned_job_a(&run);
}

#[test]
fn a_file_with_only_the_ecdsa_or_only_the_rsa_key_works() {
    let Some(server) = Server::start() else {
        return;
    };
    let repo = server.repo();
    let url = format!("ssh://root@127.0.0.1:{}{}", server.port, repo.display());
    let key = server.path("client");
    for kind in ["ecdsa", "rsa", "ed25519"] {
        let known = server.path(&format!("known_{kind}"));
        std::fs::write(&known, format!("{}\n", server.known_line(kind))).expect("write");
        let run = plan_known(&url, &key, &known);
        assert_eq!(run.code, 0, "{kind}: {}", run.stderr);
        planned_job_a(&run);
    }
}

#[test]
fn every_host_key_refusal_names_host_port_key_type_fingerprint_and_file() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let repo = server.repo();
    let port = server.port;
    let url = format!("ssh://root@127.0.0.1:{port}{}", repo.display());
    let key = server.path("client");
    let ed = server.known_line("ed25519");
    let ed_plain = ed.replacen(&format!("[127.0.0.1]:{port}"), "127.0.0.1", 1);
    let (_, ed_key) = ed.split_once(' ').expect("line");
    let stranger = std::fs::read_to_string(server.path("stranger.pub")).expect("pub");
    let stranger = stranger.split_whitespace().nth(1).expect("key").to_string();
    let cases = [
        // A plain line is for port 22 only.
        (
            "plain",
            format!("{ed_plain}\n"),
            "is not in the known-hosts file",
        ),
        (
            "changed",
            format!("[127.0.0.1]:{port} ssh-ed25519 {stranger}\n"),
            "matches none of the keys the known-hosts file",
        ),
        (
            "revoked",
            format!("{ed}\n@revoked * {ed_key}\n"),
            "is marked @revoked in the known-hosts file",
        ),
        (
            "ca",
            format!("@cert-authority [127.0.0.1]:* ssh-ed25519 {stranger}\n"),
            "host certificates are not supported",
        ),
    ];
    for (name, text, words) in cases {
        let known = server.path(&format!("known_{name}"));
        std::fs::write(&known, text).expect("write");
        let run = plan_known(&url, &key, &known);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
        // The server offers its preferred key here (ed25519 first).
        let expected = format!(
            "refusing the SSH host key of 127.0.0.1 port {port} (ssh-ed25519 {})",
            server.fingerprint("ed25519")
        );
        for part in [expected.as_str(), words, known.to_str().expect("utf-8")] {
            assert!(
                run.stderr.contains(part),
                "{name}: {part:?} in {}",
                run.stderr
            );
        }
        assert!(
            !run.stderr.contains("invalid or unknown remote ssh hostkey"),
            "{name}: {}",
            run.stderr
        );
    }
    // Nobody logged in: every refusal came before authentication.
    assert!(
        !server
            .drain()
            .iter()
            .any(|l| l.contains("Accepted publickey")),
        "{:#?}",
        server.seen
    );
}

#[test]
fn without_a_user_in_the_url_the_user_is_git_and_a_refused_key_is_offered_once() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let repo = server.repo();
    let known = server.path("known_hosts");
    std::fs::write(&known, format!("{}\n", server.known_line("ed25519"))).expect("write");
    let url = format!("ssh://127.0.0.1:{}{}", server.port, repo.display());
    let key = server.path("client");
    let run = plan_known(&url, &key, &known);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // No `git` user here (tests run as root): the server saw one try.
    server.wait_for("Invalid user git from 127.0.0.1");
    assert!(
        run.stderr.contains(&format!(
            "was refused by 127.0.0.1 port {} for user `git`",
            server.port
        )),
        "{}",
        run.stderr
    );
    // One connection, closed by the client after one refusal: no re-offer
    // loop (sshd at VERBOSE logs no per-key line for an unknown user).
    server.wait_for("Connection closed by invalid user git");
    let log = server.drain();
    let connections = log
        .iter()
        .filter(|l| l.contains("Connection from 127.0.0.1"))
        .count();
    assert_eq!(connections, 1, "{log:#?}");
    assert!(
        !log.iter()
            .any(|l| l.contains("Too many authentication failures")),
        "{log:#?}"
    );

    // With root@ and the same key, the fetch works.
    let url = format!("ssh://root@127.0.0.1:{}{}", server.port, repo.display());
    planned_job_a(&plan_known(&url, &key, &known));
}

#[test]
fn an_encrypted_key_needs_its_passphrase_file_which_is_never_shown() {
    let Some(server) = Server::start() else {
        return;
    };
    let repo = server.repo();
    let known = server.path("known_hosts");
    std::fs::write(&known, format!("{}\n", server.known_line("ed25519"))).expect("write");
    let url = format!("ssh://root@127.0.0.1:{}{}", server.port, repo.display());
    let key = server.path("client_encrypted");
    let base = [
        "--ssh-key",
        key.to_str().expect("utf-8"),
        "--known-hosts",
        known.to_str().expect("utf-8"),
    ];
    let trace = [("RUST_LOG", "trace")];

    let run = plan_env(&url, &base, &trace);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is encrypted; give its passphrase with --ssh-key-passphrase-file"),
        "{}",
        run.stderr
    );

    let good = server.path("passphrase");
    std::fs::write(&good, format!("{PASSPHRASE}\n")).expect("write");
    let mut args = base.to_vec();
    args.extend_from_slice(&["--ssh-key-passphrase-file", good.to_str().expect("utf-8")]);
    let run = plan_env(&url, &args, &trace);
    planned_job_a(&run);
    assert!(!run.stderr.contains(PASSPHRASE) && !run.stdout.contains(PASSPHRASE));

    let wrong = server.path("wrong");
    std::fs::write(&wrong, "not the passphrase\n").expect("write");
    let mut args = base.to_vec();
    args.extend_from_slice(&["--ssh-key-passphrase-file", wrong.to_str().expect("utf-8")]);
    let run = plan_env(&url, &args, &trace);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("not the passphrase"), "{}", run.stderr);
}
