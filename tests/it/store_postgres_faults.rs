//! The PostgreSQL store when its server misbehaves: one that never answers,
//! stops answering mid-run or quotes the password back, libpq options and
//! notices, and namespaces refused before connecting. Every failure comes
//! by its deadline, names the host and step, and never shows the password.

use crate::common;
use crate::fake;
use crate::support::pg;
use crate::support::sidecar;

use std::time::{Duration, Instant};

use common::{Run, Workspace};
use fake::{Fake, TOKEN};

const JOB: &str = "kind: CronJob\nproject: acme\nspec:\n  name: Nightly\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: forbid\n  deployment:\n    external:\n      imagePath: nginx:1.27\n";

const PG_PASSWORD: &str = "pg-pa55word-s3cret";

/// A PostgreSQL "server" on 127.0.0.1 that accepts and then `answer`s each
/// connection (after reading its startup message); keeps them open.
fn pg_server(answer: fn(&mut std::net::TcpStream)) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for mut stream in listener.incoming().map_while(Result::ok) {
            answer(&mut stream);
            open.push(stream);
        }
    });
    port
}

fn silent(_: &mut std::net::TcpStream) {}

/// An `ErrorResponse` to the startup message that quotes the password.
fn echo_password(stream: &mut std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return;
    }
    let mut startup = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
    let _ = stream.read_exact(&mut startup);
    let mut fields = Vec::new();
    for (code, text) in [
        (b'S', "FATAL".to_string()),
        (b'V', "FATAL".to_string()),
        (b'C', "28P01".to_string()),
        (b'M', format!("password \"{PG_PASSWORD}\" is wrong")),
    ] {
        fields.push(code);
        fields.extend_from_slice(text.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    let _ = stream.write_all(&message);
}

/// Runs nfcron with `args`; asserts it fails within `within`, sent no API
/// request, named the host, and did not show the password.
fn fails_fast(ws: &Workspace, fake: &Fake, args: &[&str], within: Duration, port: u16) -> Run {
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let (run, took) = ws.nfcron_within(args, &env, within);
    assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
    assert!(took < within, "{args:?} took {took:?}: {}", run.stderr);
    assert_eq!(fake.requests().len(), 0, "{args:?}: no API request");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains(PG_PASSWORD),
        "{args:?} shows the password: {all}"
    );
    assert!(
        all.contains(&format!("127.0.0.1:{port}")),
        "{args:?} names the host: {all}"
    );
    run
}

#[test]
fn a_silent_postgres_server_fails_reconcile_dry_run_and_state_list_within_30_s() {
    let port = pg_server(silent);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    let url = format!("postgres://nfcron:{PG_PASSWORD}@127.0.0.1:{port}/test");
    // The default deadline, once; a short one (libpq's connect_timeout) for
    // the others.
    let run = fails_fast(
        &ws,
        &fake,
        &["reconcile", "--state", &url],
        Duration::from_secs(30),
        port,
    );
    assert!(
        run.stderr.contains("connect"),
        "names the step: {}",
        run.stderr
    );
    let short = format!("{url}?connect_timeout=2");
    for args in [
        &["reconcile", "--dry-run", "--state", &short][..],
        &["state", "list", "--state", &short][..],
    ] {
        fails_fast(&ws, &fake, args, Duration::from_secs(10), port);
    }
}

#[test]
fn a_postgres_error_that_quotes_the_password_is_shown_without_it() {
    let port = pg_server(echo_password);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    for url in [
        format!("postgres://nfcron:{PG_PASSWORD}@127.0.0.1:{port}/test"),
        format!("postgres://nfcron@127.0.0.1:{port}/test?password={PG_PASSWORD}"),
    ] {
        for args in [
            &["reconcile", "--state", &url][..],
            &["--log-format", "json", "state", "list", "--state", &url][..],
        ] {
            let run = fails_fast(&ws, &fake, args, Duration::from_secs(30), port);
            assert!(
                run.stderr.contains("is wrong"),
                "the server's message is shown: {}",
                run.stderr
            );
        }
    }
    // A parameter the driver does not know: refused, its value hidden.
    let url = format!("postgres://nfcron@127.0.0.1:{port}/test?PassWord={PG_PASSWORD}");
    let run = fails_fast(
        &ws,
        &fake,
        &["state", "list", "--state", &url],
        Duration::from_secs(30),
        port,
    );
    assert!(run.stderr.contains("PassWord=***"), "{}", run.stderr);
}

#[test]
fn libpq_options_with_percent_encoded_spaces_reach_the_server() {
    let Some(db) = pg::Db::new("libpq_options") else {
        return;
    };
    let ws = Workspace::new();
    let url = format!(
        "{}?options=-c%20search_path%3D{}%20-c%20statement_timeout%3D5000",
        pg::SERVER,
        db.schema
    );
    let run = ws.nfcron(&["state", "list", "--state", &url]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(db.count("SELECT count(*) FROM nfcron_namespaces"), 0);
    let tables = db.count(&format!(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}'",
        db.schema
    ));
    assert!(
        tables > 0,
        "the tables are made in the schema the options name"
    );
}

#[test]
fn postgres_notices_are_not_logged_at_info_or_error_level() {
    let Some(db) = pg::Db::new("pg_notices") else {
        return;
    };
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    let env = [
        ("NORTHFLANK_API_URL", fake.url.as_str()),
        ("NORTHFLANK_API_TOKEN", TOKEN),
    ];
    let first = ws.nfcron_env(&["reconcile", "--dry-run", "--state", &db.url], &env);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("a new, empty namespace") && !first.stderr.contains("no state file"),
        "a new namespace is named as one: {}",
        first.stderr
    );
    // The tables exist now: migrating again draws the server's notices.
    for level in ["info", "error", "warn"] {
        let run = ws.nfcron_env(
            &["--log-level", level, "state", "list", "--state", &db.url],
            &env,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            !run.stderr.contains("NOTICE"),
            "--log-level {level}: {}",
            run.stderr
        );
    }
    let run = ws.nfcron_env(
        &["--log-level", "debug", "state", "list", "--state", &db.url],
        &env,
    );
    assert!(
        run.stderr.contains("database notice"),
        "shown at debug: {}",
        run.stderr
    );
}

#[test]
fn an_empty_huge_or_multi_line_namespace_is_refused_before_connecting() {
    let port = pg_server(silent);
    let url = format!("postgres://nfcron@127.0.0.1:{port}/test");
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let huge = "n".repeat(10_000);
    for (namespace, says) in [
        ("", "cannot be empty"),
        (huge.as_str(), "at most 200 characters; this one has 10000"),
        (
            "prod\nINFO forged line",
            "no control characters: \"prod\\nINFO forged line\"",
        ),
    ] {
        for args in [
            &[
                "reconcile",
                "--dry-run",
                "--state",
                &url,
                "--state-namespace",
                namespace,
            ][..],
            &[
                "state",
                "list",
                "--state",
                &url,
                "--state-namespace",
                namespace,
            ][..],
        ] {
            let (run, _) = ws.nfcron_within(args, &[], Duration::from_secs(5));
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stderr.contains(says), "{}", run.stderr);
            assert!(!run.stderr.contains("\nINFO forged"), "{}", run.stderr);
            assert!(
                run.stderr.len() < 1000,
                "the refusal is short: {}",
                run.stderr.len()
            );
        }
    }
}

#[test]
fn watch_reports_a_silent_state_database_in_readyz_naming_host_and_step() {
    let port = pg_server(silent);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    let url = format!("postgres://nfcron:{PG_PASSWORD}@127.0.0.1:{port}/test?connect_timeout=2");
    let mut sidecar =
        sidecar::Sidecar::start(ws.path(), &fake.url, TOKEN, &["jobs.d", "--state", &url]);
    sidecar.next("leadership check failed; this replica applies nothing until it leads again");
    let (status, body) = sidecar.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("127.0.0.1:{port}")) && body.contains("connect"),
        "{body}"
    );
    assert!(!body.contains(PG_PASSWORD), "{body}");
    assert_eq!(fake.requests().len(), 0, "no API request without the state");
    let log = serde_json::to_string(sidecar.drain()).expect("json");
    assert!(!log.contains(PG_PASSWORD), "{log}");
}

#[test]
fn a_postgres_server_that_stops_answering_mid_run_fails_the_step_by_its_deadline() {
    let Some(db) = pg::Db::new("pg_stall") else {
        return;
    };
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    for (trigger, args, step) in [
        ("pg_try_advisory_lock", &["reconcile"][..], "take the lock"),
        (
            "FROM nfcron_jobs",
            &["reconcile", "--dry-run"][..],
            "read the state",
        ),
    ] {
        let port = pg::freezing_relay(trigger);
        // The server's statement_timeout (1 s) plus connect_timeout (2 s).
        let url = format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{port}/test?connect_timeout=2&options=-c%20search_path%3D{}%20-c%20statement_timeout%3D1000",
            db.schema
        );
        let args = [args, &["--state", &url]].concat();
        let run = fails_fast(&ws, &fake, &args, Duration::from_secs(20), port);
        assert!(
            run.stderr.contains(&format!(
                "no answer from 127.0.0.1:{port} to {step} within 3s"
            )),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn watch_says_it_waits_for_the_state_database_in_readyz_while_it_waits() {
    let port = pg_server(silent);
    let ws = Workspace::new();
    ws.write("jobs.d/nightly.yaml", JOB);
    let fake = Fake::spawn(0);
    let url = format!("postgres://nfcron:{PG_PASSWORD}@127.0.0.1:{port}/test?connect_timeout=20");
    let mut sidecar =
        sidecar::Sidecar::start(ws.path(), &fake.url, TOKEN, &["jobs.d", "--state", &url]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let (status, body) = sidecar.get("/readyz");
        assert_eq!(status, 503, "{body}");
        if body.contains("waiting for the state database") || Instant::now() > deadline {
            break body;
        }
        // Wakes on the sidecar's next log line, or after 100 ms.
        let _ = sidecar.poll(Duration::from_millis(100));
    };
    assert!(
        body.contains("waiting for the state database")
            && body.contains(&format!("127.0.0.1:{port}")),
        "{body}"
    );
    assert!(!body.contains(PG_PASSWORD), "{body}");
}
