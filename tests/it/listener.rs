//! The sidecar's listener against hostile clients, as a real process on
//! loopback with the fake API: stalled uploads, slowloris and idle
//! connections, a full connection cap, clients that never read, and the
//! fd limit. Limits are shrunk with the hidden `--listen-*` flags so that
//! each test takes a second or two; waiting is on events or
//! deadline-bounded, never on fixed sleeps.

use crate::common;
use crate::fake;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Workspace;
use fake::{Fake, TOKEN};

use crate::support::sidecar::{read_response, signature, Sidecar, HOOK_SECRET};

/// How long a connection may stay open, or the connection cap stay full,
/// before a test calls it a failure: shorter than the shared sidecar
/// `WAIT`, as these tests assert that the listener frees what a hostile
/// client holds within a bound, and their shrunk limits are a second or two.
const WAIT: Duration = Duration::from_secs(20);

const MIB: usize = 1024 * 1024;

fn manifest(name: &str) -> String {
    common::manifest(name, "0 1 * * *")
}

/// `nfcron watch ARGS` against the API at `api_url`.
fn start_watch(dir: &Path, api_url: &str, args: &[&str]) -> Sidecar {
    Sidecar::start(dir, api_url, TOKEN, args)
}

/// CPU time the process has used, in clock ticks (user + system).
fn cpu_ticks(watch: &Sidecar) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", watch.pid())).expect("stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields[i].parse::<u64>().expect("ticks");
    field(11) + field(12)
}

fn open_fds(watch: &Sidecar) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", watch.pid()))
        .expect("fds")
        .count()
}

/// The status and body of a whole response on `stream`.
fn response(stream: &mut TcpStream) -> (u16, String) {
    let (status, _, body) = read_response(stream);
    (status, body)
}

/// Whether the server has closed `stream` (EOF or reset) within `WAIT`,
/// writing `trickle` one byte at a time meanwhile, one per `pace` of
/// silence from the server.
fn closed_by_server(stream: &mut TcpStream, trickle: &[u8], pace: Duration) -> bool {
    stream.set_read_timeout(Some(pace)).expect("timeout");
    let deadline = Instant::now() + WAIT;
    let mut bytes = trickle.iter().cycle();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if let Some(b) = bytes.next().filter(|_| !trickle.is_empty()) {
                    if stream.write_all(&[*b]).is_err() {
                        return true;
                    }
                }
            }
            Err(_) => return true,
        }
    }
    false
}

/// An upload head declaring 1 MiB, then `sent` bytes of it; the stream is
/// left open with the rest never sent.
fn stalled_upload(watch: &Sidecar, headers: &[(&str, String)], sent: usize) -> TcpStream {
    let mut stream = watch.connect();
    let mut head = format!("POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write: what the server may refuse from the head alone is then
    // likely read with it, and its close not a reset.
    let mut bytes = head.into_bytes();
    bytes.resize(bytes.len() + sent, b'x');
    stream
        .write_all(&bytes)
        .expect("send the head and part of the body");
    stream
}

/// A series of the Prometheus text format (0 when absent: counters of a
/// label set appear with their first increment).
fn metric(watch: &Sidecar, series: &str) -> f64 {
    let (status, _, text) = watch.http("GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

fn refused(watch: &Sidecar, reason: &str) -> f64 {
    metric(
        watch,
        &format!("nfcron_http_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// Posts a signed webhook until it is served (202) rather than refused at
/// the connection cap (503), within `WAIT`.
fn signed_webhook_served(watch: &Sidecar) {
    let payload = b"{}";
    let signed = [("X-Hub-Signature-256", signature(payload, HOOK_SECRET))];
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, body) = watch.http("POST", "/hooks/git", &signed, payload);
        if status == 202 {
            return;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "the cap was not freed within {WAIT:?}"
        );
    }
}

/// A watch over one valid manifest, with `--resync 1h` (no run of its own
/// while a test waits) and `args`, that has completed its first run.
fn started(args: &[&str]) -> (Workspace, Fake, Sidecar) {
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    ws.write("jobs.d/a.yaml", manifest("Job A"));
    let all = [&["--resync", "1h"][..], args].concat();
    let mut watch = start_watch(ws.path(), &fake.url, &all);
    watch.next("reconciled");
    (ws, fake, watch)
}

#[test]
fn a_stalled_upload_without_a_valid_signature_header_is_refused_before_its_body_is_read() {
    // A body timeout no test waits for: an answer must come from the head.
    let (_ws, _fake, watch) = started(&["--listen-body-timeout", "1h"]);
    let cases: [(&[(&str, String)], u16); 5] = [
        (&[], 401),
        (&[("X-Hub-Signature-256", "sha1=00".into())], 400),
        (
            &[("X-Signature", format!("sha256={}", "ab".repeat(31)))],
            400,
        ),
        (&[("X-Hub-Signature-256", "sha256=not-hex".into())], 400),
        (&[("X-Gitlab-Token", "wrong".into())], 401),
    ];
    for (headers, expected) in cases {
        let mut upload = stalled_upload(&watch, headers, 4096);
        let (status, body) = response(&mut upload);
        assert_eq!(status, expected, "{headers:?}: {body}");
    }
    // Declared too large: refused from the head too.
    let signed = [("X-Hub-Signature-256", signature(b"", HOOK_SECRET))];
    let mut stream = watch.connect();
    stream
        .write_all(
            format!(
                "POST /hooks/git HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
                signed[0].1,
                MIB + 1
            )
            .as_bytes(),
        )
        .expect("send head");
    assert_eq!(response(&mut stream).0, 413);
    for (reason, n) in [
        ("unsigned", 1.0),
        ("malformed", 3.0),
        ("bad_signature", 1.0),
        ("too_large", 1.0),
    ] {
        assert_eq!(refused(&watch, reason), n, "{reason}");
    }
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn a_signed_upload_that_stalls_is_cut_after_the_body_timeout_and_its_body_is_not_kept() {
    let (_ws, _fake, mut watch) = started(&["--listen-body-timeout", "300ms"]);
    // Well-formed but wrong: only the whole body could tell.
    let forged = [("X-Hub-Signature-256", format!("sha256={}", "ab".repeat(32)))];
    let mut upload = stalled_upload(&watch, &forged, 64 * 1024);
    let (status, body) = response(&mut upload);
    assert_eq!(status, 408, "{body}");

    // A chunked body past 1 MiB is refused while it streams.
    let mut stream = watch.connect();
    stream
        .write_all(
            format!(
                "POST /hooks/git HTTP/1.1\r\nHost: x\r\n{}: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                forged[0].0, forged[0].1
            )
            .as_bytes(),
        )
        .expect("head");
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "y".repeat(64 * 1024));
    for _ in 0..17 {
        if stream.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    assert_eq!(response(&mut stream).0, 413);

    // The full body with the wrong signature: 401; with the right one: 202.
    let payload = vec![b'z'; 200 * 1024];
    assert_eq!(watch.http("POST", "/hooks/git", &forged, &payload).0, 401);
    let good = [("X-Hub-Signature-256", signature(&payload, HOOK_SECRET))];
    assert_eq!(watch.http("POST", "/hooks/git", &good, &payload).0, 202);
    watch.next("reconciled");
    for reason in ["body_timeout", "too_large", "bad_signature"] {
        assert_eq!(refused(&watch, reason), 1.0, "{reason}");
    }
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn slowloris_and_idle_connections_are_closed_after_the_header_timeout() {
    let (_ws, _fake, watch) = started(&["--listen-header-timeout", "300ms"]);
    // A head trickled one byte every 50 ms never ends.
    let mut slow = watch.connect();
    slow.write_all(b"POST /hooks/git HTTP/1.1\r\nHost: x\r\n")
        .expect("start the head");
    assert!(
        closed_by_server(
            &mut slow,
            b"X-Padding: aaaaaaaa\r\n",
            Duration::from_millis(50)
        ),
        "a trickled head was still open after {WAIT:?}"
    );
    // A connection that sends nothing.
    let mut silent = watch.connect();
    assert!(
        closed_by_server(&mut silent, b"", Duration::from_millis(50)),
        "a silent connection was still open after {WAIT:?}"
    );
    // An idle keep-alive connection after one answered request.
    let mut idle = watch.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("probe");
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&answer).ends_with("ok\n") {
        let n = idle.read(&mut buf).expect("the probe's answer");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        closed_by_server(&mut idle, b"", Duration::from_millis(50)),
        "an idle keep-alive connection was still open after {WAIT:?}"
    );
    assert_eq!(watch.http("GET", "/healthz", &[], b"").0, 200);
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn with_the_connection_cap_reached_healthz_answers_within_a_second_and_signed_webhooks_work_after()
{
    let (_ws, _fake, mut watch) = started(&[
        "--listen-max-connections",
        "4",
        "--listen-header-timeout",
        "1h",
        "--listen-body-timeout",
        "1h",
    ]);
    let forged = [("X-Signature", format!("sha256={}", "cd".repeat(32)))];
    // The cap, with stalled signed uploads, then many more stalled heads
    // than the probe lane holds.
    let mut attackers: Vec<TcpStream> = (0..4)
        .map(|_| stalled_upload(&watch, &forged, 1024))
        .collect();
    for _ in 0..40 {
        let mut s = watch.connect();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").expect("stall");
        attackers.push(s);
    }
    // Only probes are served now.
    let payload = b"{}";
    let signed = [("X-Hub-Signature-256", signature(payload, HOOK_SECRET))];
    let (status, _, body) = watch.http("POST", "/hooks/git", &signed, payload);
    assert_eq!(status, 503, "the cap is reached: {body}");
    assert_eq!(refused(&watch, "busy"), 1.0);
    for path in ["/healthz", "/healthz", "/readyz", "/metrics", "/healthz"] {
        let asked = Instant::now();
        let (status, _, body) = watch.http("GET", path, &[], b"");
        let took = asked.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            took < Duration::from_secs(1),
            "{path} took {took:?} with the cap reached"
        );
    }
    // The attackers leave; a signed webhook is served again.
    drop(attackers);
    signed_webhook_served(&watch);
    watch.next("reconciled");
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn clients_that_never_read_their_responses_lose_their_connections_and_free_the_cap() {
    let (_ws, _fake, mut watch) = started(&[
        "--listen-max-connections",
        "4",
        "--listen-header-timeout",
        "1s",
    ]);
    // Each fills the cap with status-page requests, pipelined, and never
    // reads an answer: the responses back up until the socket is full.
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2_000);
    let mut attackers: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = watch.connect();
            s.set_write_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let _ = s.write_all(&request);
            s
        })
        .collect();
    // A response not taken within the header timeout ends the connection:
    // the cap frees itself while the attackers are still there.
    signed_webhook_served(&watch);
    // Their connections were closed by the server.
    for s in &mut attackers {
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut sink = Vec::new();
        let ended = match s.read_to_end(&mut sink) {
            Ok(_) => true,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        };
        assert!(ended, "an attacker's connection is still open");
    }
    watch.next("reconciled");
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn at_the_fd_limit_the_accept_loop_backs_off_instead_of_spinning_and_recovers() {
    let ws = Workspace::new();
    let fake = Fake::spawn(0);
    ws.write("jobs.d/a.yaml", manifest("Job A"));
    let args = [
        "--resync",
        "1h",
        "--listen-max-connections",
        "1000",
        "--listen-header-timeout",
        "1s",
    ];
    // How many descriptors an idle watch holds, then a limit a few above.
    let mut probe = start_watch(ws.path(), &fake.url, &args);
    probe.next("reconciled");
    let idle_fds = open_fds(&probe) as u64;
    drop(probe);
    let limit = idle_fds + 6;
    let mut watch = Sidecar::builder(ws.path(), &fake.url, TOKEN)
        .args(&args)
        .command(move |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
        .start();
    watch.next("reconciled");
    let before = cpu_ticks(&watch);
    let started = Instant::now();
    // Far more connections than descriptors left; each holds one until
    // the header timeout.
    let attackers: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = watch.connect();
            let _ = s.write_all(b"GET /");
            s
        })
        .collect();
    watch.next("cannot accept connections; backing off");
    // Served again once the header timeout frees descriptors.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = watch.connect();
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_ok()
        {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "/healthz not served within {WAIT:?} after the fd limit"
        );
    }
    let busy = cpu_ticks(&watch) - before;
    let wall = started.elapsed();
    drop(attackers);
    // A spinning accept loop burns a whole core: ~100 ticks a second.
    let ticks_per_second = 100.0;
    assert!(
        (busy as f64) < wall.as_secs_f64() * ticks_per_second * 0.3,
        "{busy} ticks of CPU in {wall:?} at the fd limit"
    );
    assert_eq!(watch.terminate().code, 0);
}

#[test]
fn zero_intervals_are_refused_with_exit_1() {
    let ws = Workspace::new();
    for (flag, value) in [
        ("--resync", "0s"),
        ("--resync", "0"),
        ("--interval", "0ms"),
        ("--listen-header-timeout", "0s"),
        ("--listen-body-timeout", "0s"),
    ] {
        let run = ws.nfcron(&["watch", flag, value, "--listen", "off"]);
        assert_eq!(run.code, 1, "{flag} {value}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("zero"),
            "{flag} {value}: {}",
            run.stderr
        );
    }
}
