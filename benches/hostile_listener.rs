//! The sidecar's listener under abuse, measured on the release binary with
//! its default limits (256 connections, 10 s header and body timeouts):
//!
//! - 1,000 stalled 1 MiB webhook uploads with a well-formed but wrong
//!   signature (the costly kind: only the whole body could tell): each
//!   declares 1 MiB, sends all of it but the last byte, and stalls;
//! - then 1,000 such uploads without a signature (refused from the head);
//! - peak RSS of the watch process (goal < 100 MiB), its RSS after the
//!   attack, and `/healthz` latency while the attack holds the connection
//!   cap (goal < 1 s).
//!
//! Run with `cargo bench --bench hostile_listener`.

mod common;
#[path = "../examples/fake-northflank/server.rs"]
mod fake;
#[path = "../tests/it/support/sidecar.rs"]
mod sidecar;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sidecar::Sidecar;

const UPLOADS: usize = 1000;
const MIB: usize = 1024 * 1024;

/// Raises the soft fd limit to the hard one (the watch inherits it).
fn raise_fd_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
    }
    rl.rlim_cur
}

/// `/healthz` on a fresh connection; its latency, or `None` if not 200
/// within 5 s.
fn healthz(addr: &str) -> Option<Duration> {
    let asked = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then(|| asked.elapsed())
}

/// `nfcron_http_refused_total{reason="busy"}`: webhooks turned away by
/// the probe lane, i.e. proof that the connection cap was reached.
fn busy_refusals(addr: &str) -> f64 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("nfcron_http_refused_total{reason=\"busy\"} "))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

/// Probes `/healthz` every 50 ms until `stop`; every latency (`None`: failed).
fn prober(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Option<Duration>>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            seen.push(healthz(&addr));
            std::thread::sleep(Duration::from_millis(50));
        }
        seen
    })
}

/// Opens `n` uploads, sends each its head and all but the last byte of a
/// 1 MiB body (as far as the server takes it), and returns them open.
fn stalled_uploads(addr: &str, n: usize, signature: Option<&str>) -> Vec<TcpStream> {
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n{}\r\n",
        signature
            .map(|s| format!("X-Hub-Signature-256: {s}\r\n"))
            .unwrap_or_default()
    );
    let body = vec![b'x'; MIB - 1];
    let mut streams = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        if s.write_all(head.as_bytes()).is_err() {
            continue;
        }
        s.set_nonblocking(true).expect("nonblocking");
        streams.push(s);
        sent.push(0usize);
    }
    // Round-robin the bodies for up to 5 s; the server reads only what its
    // limits let it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut live: Vec<usize> = (0..streams.len()).collect();
    while !live.is_empty() && Instant::now() < deadline {
        live.retain(|&i| {
            if sent[i] == body.len() {
                return false;
            }
            match streams[i].write(&body[sent[i]..(sent[i] + 64 * 1024).min(body.len())]) {
                Ok(n) => {
                    sent[i] += n;
                    true
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                Err(_) => false,
            }
        });
    }
    let total: usize = sent.iter().sum();
    println!(
        "  {} connections opened, {:.1} MiB of bodies sent",
        streams.len(),
        total as f64 / MIB as f64
    );
    streams
}

fn summarise(label: &str, seen: &[Option<Duration>]) {
    let mut ok: Vec<Duration> = seen.iter().flatten().copied().collect();
    ok.sort();
    let failed = seen.len() - ok.len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if ok.is_empty() {
        println!("  /healthz {label}: {} probes, all failed", seen.len());
        return;
    }
    let max = *ok.last().expect("one");
    println!(
        "  /healthz {label}: {} probes, {failed} failed, p50 {:.1} ms, max {:.1} ms (goal < 1000 ms: {})",
        seen.len(),
        ms(ok[ok.len() / 2]),
        ms(max),
        if failed == 0 && max < Duration::from_secs(1) { "met" } else { "MISSED" }
    );
}

fn main() {
    let fds = raise_fd_limit();
    println!("fd limit: {fds}");
    let fake = fake::Fake::spawn(0);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("jobs.d")).expect("mkdir");
    std::fs::write(
        dir.path().join("jobs.d/a.yaml"),
        "kind: CronJob\nproject: bench\nspec:\n  name: Job A\n  billing:\n    deploymentPlan: nf-compute-20\n  backoffLimit: 1\n  schedule: \"0 1 * * *\"\n  concurrencyPolicy: forbid\n",
    )
    .expect("write");
    let mut watch = Sidecar::builder(dir.path(), &fake.url, fake::TOKEN)
        .env("NFCRON_WEBHOOK_SECRET", "bench")
        .args(&["--resync", "1h"])
        .start();
    watch.next("reconciled");
    println!(
        "idle: RSS {:.1} MiB",
        common::status_kib(watch.pid(), "VmRSS:") as f64 / 1024.0
    );

    for (label, signature) in [
        (
            "with a well-formed wrong signature",
            Some(format!("sha256={}", "ab".repeat(32))),
        ),
        ("without a signature", None),
    ] {
        println!("{UPLOADS} stalled 1 MiB uploads {label}:");
        let stop = Arc::new(AtomicBool::new(false));
        let probes = prober(watch.addr().to_string(), stop.clone());
        let started = Instant::now();
        let busy_before = busy_refusals(watch.addr());
        let uploads = stalled_uploads(watch.addr(), UPLOADS, signature.as_deref());
        // Hold them until the body timeout has cut what it will.
        let mut during = Vec::new();
        while started.elapsed() < Duration::from_secs(8) {
            during.push(healthz(watch.addr()));
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        let mut seen = probes.join().expect("prober");
        seen.extend(during);
        summarise("during the attack", &seen);
        println!(
            "  connection cap reached: {} uploads answered 503 by the probe lane (the rest of the excess evicted unread)",
            busy_refusals(watch.addr()) - busy_before
        );
        let peak = common::status_kib(watch.pid(), "VmHWM:");
        println!(
            "  peak RSS of the process so far: {:.1} MiB (goal < 100 MiB: {})",
            peak as f64 / 1024.0,
            if peak < 100 * 1024 { "met" } else { "MISSED" }
        );
        drop(uploads);
        // Past the body timeout every upload is gone; let the watch settle.
        std::thread::sleep(Duration::from_secs(3));
        println!(
            "  RSS after: {:.1} MiB",
            common::status_kib(watch.pid(), "VmRSS:") as f64 / 1024.0
        );
    }
}
