//! `nfcron watch` as a child process for tests: JSON log events on a
//! channel, the listener's address from its banner, plain HTTP requests
//! to it, SIGKILL on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);
/// The webhook secret every sidecar started here has.
pub const HOOK_SECRET: &str = "hook-s3cret";

pub struct Sidecar {
    child: Option<Child>,
    events: mpsc::Receiver<Value>,
    addr: String,
    /// Every event received so far.
    pub seen: Vec<Value>,
}

impl Sidecar {
    /// `nfcron --log-format json watch --listen 127.0.0.1:0 ARGS` in `dir`
    /// against the API at `api_url` with `token`; returns once the
    /// listener's banner is out.
    pub fn start(dir: &Path, api_url: &str, token: &str, args: &[&str]) -> Sidecar {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfcron"));
        for (k, _) in std::env::vars() {
            if k.starts_with("NFCRON_")
                || k.starts_with("NORTHFLANK_")
                || k.starts_with("GITHUB_")
                || k == "RUST_LOG"
            {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .current_dir(dir)
            .args([
                "--log-format",
                "json",
                "--log-level",
                "info",
                "watch",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env("NORTHFLANK_API_URL", api_url)
            .env("NORTHFLANK_API_TOKEN", token)
            .env("NFCRON_WEBHOOK_SECRET", HOOK_SECRET)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nfcron watch");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, events) = mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "message": line }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut sidecar = Sidecar {
            child: Some(child),
            events,
            addr: String::new(),
            seen: Vec::new(),
        };
        let banner = sidecar.next_where("the listener's banner", |v| v["url"].is_string());
        sidecar.addr = banner["url"]
            .as_str()
            .and_then(|u| u.strip_prefix("http://"))
            .expect("http:// url")
            .to_string();
        sidecar
    }

    /// The next event `matches` accepts, within [`WAIT`].
    pub fn next_where(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.events.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {what} within {WAIT:?}; events so far: {:#?}", self.seen)
            });
            self.seen.push(v.clone());
            if matches(&v) {
                return v;
            }
        }
    }

    /// The next event with this message.
    pub fn next(&mut self, message: &str) -> Value {
        self.next_where(&format!("`{message}` event"), |v| v["message"] == message)
    }

    /// The next event, if one comes within `wait`.
    pub fn poll(&mut self, wait: Duration) -> Option<Value> {
        let v = self.events.recv_timeout(wait).ok()?;
        self.seen.push(v.clone());
        Some(v)
    }

    /// Events already received, without waiting.
    pub fn drain(&mut self) -> &[Value] {
        while let Ok(v) = self.events.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }

    /// `METHOD path` with `headers` (each ending in CRLF) and a `{}` body:
    /// the status and the whole response.
    pub fn http(&self, method: &str, path: &str, headers: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n{headers}\r\n{{}}"
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, response)
    }

    /// The body of `GET path`.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, response) = self.http("GET", path, "");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// The process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL, as a node dying would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill9();
    }
}
