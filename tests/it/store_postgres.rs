//! The PostgreSQL store through the binary, against the fake API and the
//! machine's PostgreSQL (each test in a schema of its own: tests/it/support/pg.rs).

use crate::common;
use crate::fake;
use crate::support::{kills, pg};

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Run, Workspace};
use fake::{Fake, TOKEN};

fn manifests(ws: &Workspace, jobs: usize) {
    let docs: Vec<String> = (0..jobs)
        .map(|n| format!("kind: CronJob\nproject: acme\nspec:\n  name: Job {n:03}\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"{} 3 * * *\"\n  concurrencyPolicy: forbid\n", n % 60))
        .collect();
    ws.write("jobs.d/a.yaml", docs.join("---\n"));
}

fn reconcile(ws: &Workspace, fake: &Fake, state: &str, extra: &[&str]) -> Run {
    let mut args = vec!["reconcile", "--state", state];
    args.extend_from_slice(extra);
    ws.nfcron_env(
        &args,
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ],
    )
}

#[test]
fn a_fresh_work_dir_with_the_same_url_sends_no_request() {
    let Some(db) = pg::Db::new("fresh_dir") else {
        return;
    };
    let fake = Fake::spawn(0);
    let (a, b) = (Workspace::new(), Workspace::new());
    manifests(&a, 5);
    manifests(&b, 5);
    let first = reconcile(&a, &fake, &db.url, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(fake.count("PUT"), 5);
    assert_eq!(db.count("SELECT count(*) FROM nfcron_jobs"), 5);
    assert!(!a.path().join(".nfcron").exists(), "no state file beside");

    fake.clear_log();
    let second = reconcile(&b, &fake, &db.url, &["--output", "json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(fake.requests(), vec![], "B trusts the state A wrote");
    assert_eq!(
        second.json()["summary"]["unchanged"],
        5,
        "{}",
        second.stdout
    );

    // Another namespace of the same database is another state.
    // (Offline: no token, so no adoption reads.)
    let other = b.nfcron(&[
        "reconcile",
        "--dry-run",
        "--state",
        &db.url,
        "--state-namespace",
        "staging",
    ]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert!(other.stdout.contains("5 to create"), "{}", other.stdout);
}

#[test]
fn two_concurrent_applies_one_fails_fast_naming_the_other() {
    let Some(db) = pg::Db::new("concurrent") else {
        return;
    };
    let fake = Fake::spawn(0);
    fake.set_latency(Duration::from_millis(400));
    let (a, b) = (Workspace::new(), Workspace::new());
    manifests(&a, 8);
    manifests(&b, 8);
    let mut first = Command::new(env!("CARGO_BIN_EXE_nfcron"))
        .current_dir(a.path())
        .args(["reconcile", "--concurrency", "1", "--state", &db.url])
        .env("NORTHFLANK_API_URL", &fake.url)
        .env("NORTHFLANK_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start A");
    // A holds the lock from before its first request until after its
    // last commit: once a PUT is seen, A is applying.
    assert!(
        fake.wait_until(Duration::from_secs(20), |log| log
            .iter()
            .any(|r| r.method == "PUT")),
        "A never applied"
    );
    let started = std::time::Instant::now();
    let second = reconcile(&b, &fake, &db.url, &[]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(started.elapsed() < Duration::from_secs(2), "fails fast");
    let pid = first.id().to_string();
    assert!(
        second.stderr.contains("another nfcron run is applying")
            && second.stderr.contains(&format!("pid {pid}"))
            && second.stderr.contains("host ")
            && second.stderr.contains("since "),
        "{}",
        second.stderr
    );
    // A dry-run takes no lock: it plans while A applies.
    let dry = b.nfcron(&["reconcile", "--dry-run", "--state", &db.url]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(first.wait().expect("A").code(), Some(0));
    assert_eq!(fake.count("PUT"), 8, "only A wrote");
    // The lock went with A, and so did its holder row.
    assert_eq!(db.count("SELECT count(*) FROM nfcron_locks"), 0);
    fake.clear_log();
    let after = reconcile(&b, &fake, &db.url, &[]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert_eq!(fake.requests(), vec![]);
}

#[test]
fn migrations_run_once_when_processes_start_together() {
    let Some(db) = pg::Db::new("migrate") else {
        return;
    };
    let ws = Workspace::new();
    manifests(&ws, 1);
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_nfcron"))
                .current_dir(ws.path())
                .args(["reconcile", "--dry-run", "--state", &db.url])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(db.count("SELECT count(*) FROM nfcron_schema_version"), 1);
    // A dry-run creates no key and no record.
    assert_eq!(db.count("SELECT count(*) FROM nfcron_namespaces"), 0);
}

#[test]
fn the_password_in_the_url_is_never_printed() {
    let Some(db) = pg::Db::new("password") else {
        return;
    };
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    manifests(&ws, 2);
    const PASSWORD: &str = "Pa55-w0rd-never-shown";
    // Trust auth ignores the password: the run works, at trace level.
    let url = db
        .url
        .replace("postgres@", &format!("postgres:{PASSWORD}@"));
    let run = ws.nfcron_env(
        &["reconcile", "--state", &url, "--output", "json"],
        &[
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
            // Every crate at trace, the database client named outright.
            ("RUST_LOG", "trace,tokio_postgres=trace,postgres=trace"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    // Nor the namespace's key, made in this run (the client logs each
    // statement's parameters at debug level).
    let key = db.query("SELECT key FROM nfcron_namespaces")[0][0]
        .clone()
        .expect("a key");
    assert_eq!(key.len(), 64);
    assert!(
        !run.stdout.contains(&key) && !run.stderr.contains(&key),
        "the key was logged"
    );
    assert!(run.stderr.contains("TRACE"), "trace level was on");
    // Nothing listens on port 1: the error names the URL without it.
    let down = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test");
    let run = reconcile(&ws, &fake, &down, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("postgres://postgres:***@127.0.0.1:1/test"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "{}",
        run.stderr
    );
    // A URL that does not parse either.
    let bad = format!("postgres://postgres:{PASSWORD}@127.0.0.1:99999/test");
    let run = reconcile(&ws, &fake, &bad, &[]);
    assert_eq!(run.code, 1);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(run.stderr.contains("state database URL"), "{}", run.stderr);
}

/// tests/crash.rs with the PostgreSQL store: a 200-job apply killed with
/// SIGKILL at 10 points converges; every recorded job is live, and no job
/// is PUT more than once plus the kills that caught it in flight.
#[test]
fn sigkill_at_ten_points_of_a_200_job_apply_converges() {
    use std::collections::BTreeSet;
    const JOBS: usize = 200;
    let Some(db) = pg::Db::new("sigkill") else {
        return;
    };
    let ws = Workspace::new();
    manifests(&ws, JOBS);
    let fake = Fake::spawn(0);
    fake.set_latency(Duration::from_millis(15));
    let recorded = || -> BTreeSet<String> {
        db.query("SELECT id FROM nfcron_jobs")
            .into_iter()
            .map(|row| row[0].clone().expect("id"))
            .collect()
    };
    let kills_in_flight = kills::apply_killed(
        ws.path(),
        &fake,
        &["reconcile", "--concurrency", "4", "--state", &db.url],
        10,
        recorded,
    );
    // The session of a killed run is gone, and its lock with it.
    let run = reconcile(&ws, &fake, &db.url, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let live: BTreeSet<String> = fake.job_ids("acme").into_iter().collect();
    assert_eq!(recorded().len(), JOBS);
    assert_eq!(recorded(), live, "state matches the API's jobs exactly");
    kills::assert_puts_within(&fake, &kills_in_flight);
    fake.clear_log();
    let run = reconcile(&ws, &fake, &db.url, &[]);
    assert_eq!(run.code, 0);
    assert_eq!(fake.requests(), vec![]);
}

/// TLS through rustls: the machine's server has `ssl = on` with Debian's
/// self-signed "snakeoil" certificate for `localhost`, which serves as its
/// own root here.
#[test]
fn tls_verifies_the_chain_and_for_verify_full_the_name() {
    const ROOT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let Some(db) = pg::Db::new("tls") else {
        return;
    };
    if !std::path::Path::new(ROOT).exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{ROOT} missing");
        eprintln!("skipped: no {ROOT}");
        return;
    }
    let ws = Workspace::new();
    manifests(&ws, 1);
    let with = |host: &str, query: &str| {
        let url = db.url.replace("127.0.0.1", host);
        ws.nfcron(&[
            "reconcile",
            "--dry-run",
            "--state",
            &format!("{url}&{query}"),
        ])
    };
    let full = with(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ROOT}"),
    );
    assert_eq!(full.code, 0, "{}", full.stderr);
    let ca = with(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ROOT}"),
    );
    assert_eq!(ca.code, 0, "{}", ca.stderr);
    // The certificate is for localhost, not 127.0.0.1.
    let wrong = with(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ROOT}"),
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains(": cannot connect"),
        "{}",
        wrong.stderr
    );
    // The same variables libpq reads.
    let env = ws.nfcron_env(
        &[
            "reconcile",
            "--dry-run",
            "--state",
            &db.url.replace("127.0.0.1", "localhost"),
        ],
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ROOT)],
    );
    assert_eq!(env.code, 0, "{}", env.stderr);
    let bogus = with("127.0.0.1", "sslmode=sometimes");
    assert_eq!(bogus.code, 1);
    assert!(
        bogus.stderr.contains("sslmode \"sometimes\" is not one of"),
        "{}",
        bogus.stderr
    );
}

/// A server that admits only clients with a certificate
/// (`pg::CertServer`): nfcron connects with `sslcert`/`sslkey` (a SEC1 or a
/// PKCS#8 key), with `PGSSLCERT`/`PGSSLKEY`, and with libpq's default files
/// in `~/.postgresql`; without a certificate the server's refusal is
/// shown, and no error quotes a key.
#[test]
fn a_client_certificate_admits_nfcron_where_the_server_requires_one() {
    let Some(server) = pg::CertServer::start() else {
        return;
    };
    let ws = Workspace::new();
    let home = ws.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let home = home.display().to_string();
    let base = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        server.port,
        server.ca.display()
    );
    let list = |url: &str, env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("HOME", &home));
        ws.nfcron_env(&["state", "list", "--state", url], &env)
    };
    let key_text = std::fs::read_to_string(&server.key_sec1).expect("key");
    let key_line = key_text.lines().nth(1).expect("a base64 line");
    let cert = server.cert.display().to_string();
    for key in [&server.key_sec1, &server.key_pkcs8] {
        let url = format!("{base}&sslcert={cert}&sslkey={}", key.display());
        let run = list(&url, &[]);
        assert_eq!(run.code, 0, "{}: {}", key.display(), run.stderr);
    }
    let key = server.key_pkcs8.display().to_string();
    let run = list(&base, &[("PGSSLCERT", &cert), ("PGSSLKEY", &key)]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Without a certificate: the server's refusal, named.
    let refused = list(&base, &[]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("cannot connect") && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );
    // A key that is not one: the file named, its content never shown.
    let not_a_key = ws.path().join("not-a-key.pem");
    std::fs::copy(&server.cert, &not_a_key).expect("copy");
    std::fs::set_permissions(&not_a_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let url = format!("{base}&sslcert={cert}&sslkey={}", not_a_key.display());
    let bad = list(&url, &[]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("holds no PEM private key"),
        "{}",
        bad.stderr
    );
    let missing = list(
        &format!("{base}&sslcert={cert}&sslkey=/nonexistent/k.pem"),
        &[],
    );
    assert!(
        missing
            .stderr
            .contains("cannot read sslkey /nonexistent/k.pem"),
        "{}",
        missing.stderr
    );
    for run in [&refused, &bad, &missing] {
        assert!(!run.stderr.contains(key_line) && !run.stdout.contains(key_line));
    }

    // Revocation: a list that revokes nothing admits the server, one that
    // revokes its certificate does not (as a file and in a directory).
    let with_key = format!("{base}&sslcert={cert}&sslkey={key}");
    let run = list(
        &format!("{with_key}&sslcrl={}", server.crl_empty.display()),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let revoked = list(
        &format!("{with_key}&sslcrl={}", server.crl_revoking_server.display()),
        &[],
    );
    assert_eq!(revoked.code, 1);
    assert!(
        revoked.stderr.contains("cannot connect") && revoked.stderr.contains("Revoked"),
        "{}",
        revoked.stderr
    );
    let crl_dir = ws.path().join("crls");
    std::fs::create_dir(&crl_dir).expect("mkdir");
    std::fs::copy(&server.crl_revoking_server, crl_dir.join("a.r0")).expect("copy");
    let in_dir = list(&format!("{with_key}&sslcrldir={}", crl_dir.display()), &[]);
    assert_eq!(in_dir.code, 1, "{}", in_dir.stderr);
    assert!(in_dir.stderr.contains("Revoked"), "{}", in_dir.stderr);

    // libpq's default files, found in ~/.postgresql.
    let dot = std::path::Path::new(&home).join(".postgresql");
    std::fs::create_dir(&dot).expect("mkdir");
    std::fs::copy(&server.cert, dot.join("postgresql.crt")).expect("copy");
    std::fs::copy(&server.key_sec1, dot.join("postgresql.key")).expect("copy");
    std::fs::copy(&server.ca, dot.join("root.crt")).expect("copy");
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        server.port
    );
    let run = list(&url, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // sslcertmode=disable sends none.
    let run = list(&format!("{url}&sslcertmode=disable"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

/// `service=NAME` (and `PGSERVICE`) read the connection from the file
/// `PGSERVICEFILE` names; the URL's own values win over the service's.
#[test]
fn a_service_names_the_database() {
    let Some(db) = pg::Db::new("service") else {
        return;
    };
    let fake = Fake::spawn(0);
    let ws = Workspace::new();
    manifests(&ws, 3);
    let services = ws.path().join("pg_service.conf");
    std::fs::write(
        &services,
        format!(
            "# the machine's server\n[nfstate]\nhost=127.0.0.1\nport=5432\ndbname=test\n\
             user=postgres\noptions=-csearch_path={}\n\n[elsewhere]\nport=1\n",
            db.schema
        ),
    )
    .expect("write");
    let services = services.display().to_string();
    let run = |state: &str, env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.extend([
            ("PGSERVICEFILE", services.as_str()),
            ("NORTHFLANK_API_URL", fake.url.as_str()),
            ("NORTHFLANK_API_TOKEN", TOKEN),
        ]);
        ws.nfcron_env(&["reconcile", "--state", state], &env)
    };
    let first = run("postgres://?service=nfstate", &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(db.count("SELECT count(*) FROM nfcron_jobs"), 3);
    fake.clear_log();
    let again = run("postgres://", &[("PGSERVICE", "nfstate")]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        fake.requests(),
        vec![],
        "the same state, read through PGSERVICE"
    );
    // The URL's port wins over the service's.
    let url = format!(
        "postgres://127.0.0.1:5432/test?service=elsewhere&options=-csearch_path%3D{}",
        db.schema
    );
    let elsewhere = run(&url, &[("PGUSER", "postgres")]);
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);
    assert!(
        elsewhere.stdout.contains("3 unchanged"),
        "{}",
        elsewhere.stdout
    );
    let unknown = run("postgres://?service=nope", &[]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("service \"nope\" is not defined"),
        "{}",
        unknown.stderr
    );
}

/// A root certificate for the tests that need one to get past the roots
/// (nothing is ever verified against it).
const TEST_ROOT: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIURhns2KnCmobeb/YWrlqSUjJJjaEwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQbmZjcm9uLXRlc3Qtcm9vdDAgFw0yNjEyMDcwNDUzNDBaGA8y
MTI2MTExMzA0NTM0MFowGzEZMBcGA1UEAwwQbmZjcm9uLXRlc3Qtcm9vdDBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABPX6cPzRT4nEXVwBD36tj2K9stW/wR6IxTt5
wUnaIdpoYLUH/LPR0SXQ7cEIvUowQqBvIJubr/ZMAmJ2szk0xEWjUzBRMB0GA1Ud
DgQWBBQOJ/txqyOTuVBYTojxbLagj7QopTAfBgNVHSMEGDAWgBQOJ/txqyOTuVBY
TojxbLagj7QopTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC8
BG+youwdUmvN6WQKbPLauK/TO5jJWHyBru9ensxFvgIgUfIZAke475KgTOT80o2U
jq2uQ31s9pvHGRMr3GSTbD4=
-----END CERTIFICATE-----
";

/// Nothing listens there: a run that gets as far as connecting fails with
/// `cannot connect`, so an earlier refusal is told apart.
const NOWHERE: &str = "postgres://postgres@127.0.0.1:1/test";

/// `state list --state url` with `env` and `HOME` in the work dir, killed
/// after 10 s and held to 2 GB of address space: an input that never ends
/// fails the test (code -1) rather than hanging it or exhausting the
/// machine.
fn list_bounded(ws: &Workspace, url: &str, env: &[(&str, &str)]) -> Run {
    use std::os::unix::process::CommandExt;
    let (out, err) = (ws.path().join("list.out"), ws.path().join("list.err"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
    cmd.args(["state", "list", "--state", url])
        .current_dir(ws.path())
        .env("HOME", ws.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"));
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let status = common::wait_with_deadline(cmd.spawn().expect("spawn"), Duration::from_secs(10));
    Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: std::fs::read_to_string(out).expect("out"),
        stderr: std::fs::read_to_string(err).expect("err"),
    }
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf8")).expect("path");
    // SAFETY: mkfifo reads the NUL-terminated path only.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A service file, password file, root (`SSL_CERT_FILE` for the system's
/// too), revocation list, certificate or key that is a FIFO (which would block its reader forever) or a device
/// (`/dev/zero` reads without end) is refused at once, named; a password
/// file so is passed over with a warning, as libpq does.
#[test]
fn a_fifo_or_a_device_as_any_connection_file_fails_at_once_naming_it() {
    let ws = Workspace::new();
    let fifo = ws.path().join("fifo");
    mkfifo(&fifo);
    let root = ws.write("root.pem", TEST_ROOT).display().to_string();
    let tls = format!("{NOWHERE}?sslmode=verify-ca&sslrootcert=");
    for file in [fifo.to_str().expect("utf8"), "/dev/zero"] {
        let service = list_bounded(&ws, "postgres://?service=s", &[("PGSERVICEFILE", file)]);
        for (run, says) in [
            (service, "service file"),
            (
                list_bounded(&ws, &format!("{tls}{file}"), &[]),
                "sslrootcert",
            ),
            (
                list_bounded(&ws, &format!("{tls}{root}&sslcrl={file}"), &[]),
                "sslcrl",
            ),
            (
                list_bounded(&ws, &format!("{tls}{root}&sslcert={file}"), &[]),
                "sslcert",
            ),
            (
                list_bounded(
                    &ws,
                    &format!("{tls}{root}&sslcert={root}&sslkey={file}"),
                    &[],
                ),
                "sslkey",
            ),
            (
                list_bounded(
                    &ws,
                    &format!("{NOWHERE}?sslmode=verify-full&connect_timeout=2"),
                    &[("SSL_CERT_FILE", file)],
                ),
                "SSL_CERT_FILE",
            ),
        ] {
            assert_eq!(run.code, 1, "{says} {file}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("cannot read {says} {file}: not a regular file")),
                "{}",
                run.stderr
            );
        }
    }
    let Some(db) = pg::Db::new("passfile_fifo") else {
        return;
    };
    let run = list_bounded(&ws, &format!("{}&passfile={}", db.url, fifo.display()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("password file not read"),
        "{}",
        run.stderr
    );
}

/// `requiressl=1` in the URL or in a service is that place's
/// `sslmode=require`, as in libpq: `PGSSLMODE=disable` in the environment
/// does not turn TLS off under it (TLS on, the missing root is read and
/// refused before any connection).
#[test]
fn requiressl_in_the_url_or_a_service_is_not_undone_by_pgsslmode() {
    let ws = Workspace::new();
    let services = ws.write(
        "pg_service.conf",
        "[s]\nhost=127.0.0.1\nport=1\nrequiressl=1\nsslrootcert=/nonexistent/ca.pem\n",
    );
    let services = services.display().to_string();
    let env = [
        ("PGSSLMODE", "disable"),
        ("PGSERVICEFILE", services.as_str()),
    ];
    for url in [
        format!("{NOWHERE}?requiressl=1&sslrootcert=/nonexistent/ca.pem"),
        "postgres://?service=s".to_string(),
    ] {
        let run = list_bounded(&ws, &url, &env);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{url}: TLS was off: {}",
            run.stderr
        );
    }
}

/// A parameter given twice with different values (an appended
/// `&sslmode=disable`) is refused, naming it, never quoting either value;
/// and `verify-ca` without a root file is refused as by libpq, since the
/// system's roots would admit any public certificate for any name.
#[test]
fn a_repeated_parameter_or_verify_ca_without_a_root_is_refused_before_connecting() {
    let ws = Workspace::new();
    let run = list_bounded(
        &ws,
        &format!("{NOWHERE}?sslmode=verify-full&password=s3cret&sslmode=disable&password=other"),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is given twice, with different values: give it once"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret") && !run.stderr.contains("other"));
    let services = ws.write(
        "pg_service.conf",
        "[s]\nport=1\nsslmode=verify-full\nsslmode=disable\n",
    );
    let run = list_bounded(
        &ws,
        "postgres://?service=s",
        &[("PGSERVICEFILE", services.to_str().expect("utf8"))],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("line 4: sslmode is given again, with another value"),
        "{}",
        run.stderr
    );
    // verify-full with only an address has no name to check (the
    // defaulted `localhost` is none the user gave): refused, as by libpq.
    let root = ws.write("root.pem", TEST_ROOT).display().to_string();
    let run = list_bounded(
        &ws,
        &format!(
            "postgres:///test?hostaddr=127.0.0.1&port=1&sslmode=verify-full&sslrootcert={root}"
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("verify-full needs a host name"),
        "{}",
        run.stderr
    );
    let run = list_bounded(&ws, &format!("{NOWHERE}?sslmode=verify-ca"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("sslmode=verify-ca needs sslrootcert"),
        "{}",
        run.stderr
    );
}

/// A server that accepts TCP and never answers the TLS handshake fails a
/// run with a client certificate within `connect_timeout`, naming host,
/// port and step.
#[test]
fn a_silent_server_fails_a_tls_client_certificate_connection_by_its_deadline() {
    if !common::have_command("openssl", "Debian package openssl") {
        return;
    }
    let ws = Workspace::new();
    let (cert, key) = (ws.path().join("c.pem"), ws.path().join("k.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=postgres"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(made.success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    for negotiation in ["postgres", "direct"] {
        let url = format!(
            "postgres://postgres@127.0.0.1:{port}/test?sslmode=require&sslrootcert={cert}\
             &sslcert={cert}&sslkey={key}&connect_timeout=2&sslnegotiation={negotiation}",
            cert = cert.display(),
            key = key.display()
        );
        let started = std::time::Instant::now();
        let run = list_bounded(&ws, &url, &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        assert!(
            run.stderr.contains(&format!(
                "no answer from 127.0.0.1:{port} to connect (TCP, TLS, startup and authentication) within 2s"
            )),
            "{}",
            run.stderr
        );
    }
}

/// A libpq variable that is not UTF-8 is refused naming it, never passed
/// over as unset: `PGSSLMODE=verify-full` with a stray byte turned TLS off.
#[test]
fn a_libpq_variable_that_is_not_utf8_is_refused_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::new();
    for (name, value) in [
        ("PGSSLMODE", &b"verify-full\xff"[..]),
        ("PGSSLROOTCERT", b"/etc/ca\xff.pem"),
        ("PGPASSWORD", b"s3cret\xff"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nfcron"))
            .args(["state", "list", "--state", NOWHERE])
            .current_dir(ws.path())
            .env("PGSSLMODE", "verify-full")
            .env(name, std::ffi::OsStr::from_bytes(value))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{name} is not UTF-8")) && !stderr.contains("s3cret"),
            "{name}: {stderr}"
        );
    }
}

/// With a list of hosts on different ports, the step deadline holds on
/// whichever host the driver connected to (not only the first's port): a
/// server that stops answering mid-statement fails the step by it, naming
/// that host and port.
#[test]
fn the_step_deadline_holds_on_the_second_host_of_a_list() {
    let Some(db) = pg::Db::new("multi_host_deadline") else {
        return;
    };
    let ws = Workspace::new();
    let port = pg::freezing_relay("FROM nfcron_jobs");
    let url = format!(
        "postgres:///test?user=postgres&host=127.0.0.1,127.0.0.1&port=1,{port}&connect_timeout=2\
         &options=-c%20search_path%3D{}%20-c%20statement_timeout%3D1000",
        db.schema
    );
    let run = list_bounded(&ws, &url, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "no answer from 127.0.0.1:{port} to read the state within 3s"
        )),
        "{}",
        run.stderr
    );
}
