//! `nfcron watch` as a child process for tests: its stderr line by line
//! (JSON log events on a channel), the listener's address from its banner,
//! plain HTTP requests to it, SIGTERM on request and SIGKILL on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for anything the sidecar owes it: an event, a
/// status, an exit.
pub const WAIT: Duration = Duration::from_secs(60);
/// The webhook secret every sidecar started here has, unless its builder
/// removes `NFCRON_WEBHOOK_SECRET`.
pub const HOOK_SECRET: &str = "hook-s3cret";
/// The global flags a sidecar gets unless its builder says otherwise.
pub const JSON_INFO: [&str; 4] = ["--log-format", "json", "--log-level", "info"];

/// One stderr line: parsed when it is JSON, kept raw always.
#[derive(Clone, Debug)]
pub struct Line {
    pub raw: String,
    pub json: Option<Value>,
}

impl Line {
    /// Whether this is a JSON event with this message.
    pub fn is(&self, message: &str) -> bool {
        self.json.as_ref().is_some_and(|v| v["message"] == message)
    }

    /// The event; a line that is not JSON is `{"message": line}`.
    pub fn value(&self) -> Value {
        self.json
            .clone()
            .unwrap_or_else(|| serde_json::json!({ "message": self.raw }))
    }
}

/// The listener's address from the banner, plain or JSON.
fn banner_addr(line: &Line) -> Option<String> {
    if let Some(addr) = line.raw.strip_prefix("nfcron watch: listening on http://") {
        return Some(addr.to_string());
    }
    line.json.as_ref()?["url"]
        .as_str()?
        .strip_prefix("http://")
        .map(str::to_string)
}

/// A change to the command made just before it is spawned.
type Tweak = Box<dyn FnOnce(&mut Command)>;

/// How a [`Sidecar`] is started: `nfcron GLOBAL watch --listen
/// 127.0.0.1:0 ARGS` (or `--listen off`) in `dir`, with the API's URL and token, the webhook
/// secret and `NO_COLOR` in its environment, then `env`.
pub struct Builder {
    dir: std::path::PathBuf,
    global: Vec<String>,
    args: Vec<String>,
    /// Set (`Some`) or removed (`None`), in order, after the defaults.
    env: Vec<(String, Option<String>)>,
    tweak: Option<Tweak>,
    /// `--listen 127.0.0.1:0` (and a wait for the banner), or `off`.
    listen: bool,
}

impl Builder {
    /// Sets `key` for the sidecar.
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.to_string(), Some(value.to_string())));
        self
    }

    /// Removes `key` (one of the defaults) from the sidecar's environment.
    pub fn env_remove(mut self, key: &str) -> Builder {
        self.env.push((key.to_string(), None));
        self
    }

    /// The flags before `watch`, instead of [`JSON_INFO`].
    pub fn global(mut self, flags: &[&str]) -> Builder {
        self.global = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Flags after `watch --listen 127.0.0.1:0`.
    pub fn args(mut self, args: &[&str]) -> Builder {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// `--listen off`: no listener, so [`Builder::start`] returns once the
    /// process is spawned and [`Sidecar::addr`] is empty.
    pub fn no_listener(mut self) -> Builder {
        self.listen = false;
        self
    }

    /// Applies `tweak` to the command last, before it is spawned (for
    /// `pre_exec`, say).
    pub fn command(mut self, tweak: impl FnOnce(&mut Command) + 'static) -> Builder {
        self.tweak = Some(Box::new(tweak));
        self
    }

    /// Starts it; returns once the listener's banner is out.
    pub fn start(self) -> Sidecar {
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
        cmd.current_dir(&self.dir)
            .args(&self.global)
            .args(["watch", "--listen"])
            .arg(if self.listen { "127.0.0.1:0" } else { "off" })
            .args(&self.args)
            .env("NFCRON_WEBHOOK_SECRET", HOOK_SECRET)
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some(tweak) = self.tweak {
            tweak(&mut cmd);
        }
        let mut child = cmd.spawn().expect("start nfcron watch");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel::<Line>();
        std::thread::spawn(move || {
            for raw in BufReader::new(stderr).lines().map_while(Result::ok) {
                let json = serde_json::from_str::<Value>(&raw).ok();
                if tx.send(Line { raw, json }).is_err() {
                    break;
                }
            }
        });
        let mut sidecar = Sidecar {
            child: Some(child),
            lines,
            addr: String::new(),
            seen: Vec::new(),
            early: Vec::new(),
        };
        if !self.listen {
            return sidecar;
        }
        let deadline = Instant::now() + WAIT;
        sidecar.addr = loop {
            let line = sidecar.recv_until(deadline).unwrap_or_else(|| {
                let raw: Vec<&str> = sidecar.early.iter().map(|l| l.raw.as_str()).collect();
                panic!("no listening banner within {WAIT:?}; saw {raw:#?}")
            });
            let addr = banner_addr(&line);
            sidecar.early.push(line);
            if let Some(addr) = addr {
                break addr;
            }
        };
        sidecar
    }
}

/// How a sidecar ended after SIGTERM.
pub struct Exit {
    /// The exit code (-1 for a signal).
    pub code: i32,
    /// From SIGTERM to the exit (seen within 20 ms).
    pub took: Duration,
    /// Every line not read before.
    pub lines: Vec<Line>,
}

pub struct Sidecar {
    child: Option<Child>,
    lines: Receiver<Line>,
    addr: String,
    /// Every event received so far (a line that is not JSON as
    /// `{"message": line}`).
    pub seen: Vec<Value>,
    /// Every line up to and including the banner.
    pub early: Vec<Line>,
}

impl Sidecar {
    /// How to start `nfcron watch` in `dir` against the API at `api_url`
    /// with `token`.
    pub fn builder(dir: &Path, api_url: &str, token: &str) -> Builder {
        Builder {
            dir: dir.to_path_buf(),
            global: JSON_INFO.iter().map(|s| s.to_string()).collect(),
            args: Vec::new(),
            env: vec![
                ("NORTHFLANK_API_URL".into(), Some(api_url.into())),
                ("NORTHFLANK_API_TOKEN".into(), Some(token.into())),
            ],
            tweak: None,
            listen: true,
        }
    }

    /// `nfcron --log-format json --log-level info watch --listen
    /// 127.0.0.1:0 ARGS` in `dir` against the API at `api_url` with
    /// `token`; returns once the listener's banner is out.
    pub fn start(dir: &Path, api_url: &str, token: &str, args: &[&str]) -> Sidecar {
        Sidecar::builder(dir, api_url, token).args(args).start()
    }

    /// The listener's address (`host:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The next line before `deadline`, recorded in [`Sidecar::seen`].
    fn recv_until(&mut self, deadline: Instant) -> Option<Line> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(left).ok()?;
        self.seen.push(line.value());
        Some(line)
    }

    /// The next event `matches` accepts, within [`WAIT`].
    pub fn next_where(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let line = self.recv_until(deadline).unwrap_or_else(|| {
                panic!("no {what} within {WAIT:?}; events so far: {:#?}", self.seen)
            });
            let v = line.value();
            if matches(&v) {
                return v;
            }
        }
    }

    /// The next event with this message.
    pub fn next(&mut self, message: &str) -> Value {
        self.next_where(&format!("`{message}` event"), |v| v["message"] == message)
    }

    /// Every line up to and including the next JSON event with this
    /// message, within [`WAIT`].
    pub fn until(&mut self, message: &str) -> Vec<Line> {
        let deadline = Instant::now() + WAIT;
        let mut lines: Vec<Line> = Vec::new();
        loop {
            let line = self.recv_until(deadline).unwrap_or_else(|| {
                let raw: Vec<&str> = lines.iter().map(|l| l.raw.as_str()).collect();
                panic!("no `{message}` within {WAIT:?}; saw {raw:#?}")
            });
            let done = line.is(message);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Asserts that no run completes (no `reconciled` event) within
    /// `window`.
    pub fn no_run_within(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.value());
                    assert!(!line.is("reconciled"), "an extra run: {}", line.raw);
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(e) => panic!("watch's stderr closed: {e}"),
            }
        }
    }

    /// The next event, if one comes within `wait`.
    pub fn poll(&mut self, wait: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(wait).ok()?;
        let v = line.value();
        self.seen.push(v.clone());
        Some(v)
    }

    /// Events already received, without waiting.
    pub fn drain(&mut self) -> &[Value] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line.value());
        }
        &self.seen
    }

    /// A connection to the listener, reads bounded by [`WAIT`].
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream
    }

    /// Status, head (lower-cased) and body of `METHOD path` with `headers`
    /// and `body`, on a connection of its own.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String, String) {
        let mut stream = self.connect();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        stream.write_all(body).expect("send body");
        read_response(&mut stream)
    }

    /// Status and body of a webhook `POST /hooks/git` of `body` signed with
    /// `secret` as GitHub signs (`X-Hub-Signature-256`).
    pub fn github_hook(&self, body: &[u8], secret: &str) -> (u16, String) {
        let signed = [("X-Hub-Signature-256", signature(body, secret))];
        let (status, _, reply) = self.http("POST", "/hooks/git", &signed, body);
        (status, reply)
    }

    /// Status and body of a webhook `POST /hooks/git` of `{}` that carries
    /// [`HOOK_SECRET`] as GitLab sends it (a token header: no signature).
    pub fn gitlab_hook(&self) -> (u16, String) {
        let token = [("X-Gitlab-Token", HOOK_SECRET.to_string())];
        let (status, _, body) = self.http("POST", "/hooks/git", &token, b"{}");
        (status, body)
    }

    /// Status and body of `GET path`.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.http("GET", path, &[], b"");
        (status, body)
    }

    /// Polls `GET path` until it answers `want`, within [`WAIT`]; the last
    /// body. Between tries it wakes on the sidecar's next line (a run
    /// ending is logged) or after 50 ms.
    pub fn poll_until(&mut self, path: &str, want: u16) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = self.get(path);
            if status == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still {status} after {WAIT:?}: {body}"
            );
            let _ = self.poll(Duration::from_millis(50));
        }
    }

    /// Whether the process has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait").is_none())
    }

    /// The process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then waits (within [`WAIT`]) for the process to exit.
    pub fn terminate(mut self) -> Exit {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let sent = Instant::now();
        let mut lines = Vec::new();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let took = sent.elapsed();
                // The pipe closes with the process: drain what is left.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    lines.push(line);
                }
                return Exit {
                    code: status.code().unwrap_or(-1),
                    took,
                    lines,
                };
            }
            if sent.elapsed() >= WAIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("watch did not stop within {WAIT:?} of SIGTERM");
            }
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                lines.push(line);
            }
        }
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

/// The value of one series (`name{labels}`) in exposition text.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// Reads a whole response (the server must close the connection after
/// it): the status, the head (lower-cased) and the body.
pub fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A reset after a complete response: the server closed with part
        // of the request (an upload, say) unread.
        Err(e) if e.kind() == ErrorKind::ConnectionReset && !raw.is_empty() => {}
        Err(e) => panic!(
            "no complete response: {e}; got {:?}",
            String::from_utf8_lossy(&raw)
        ),
    }
    let response = String::from_utf8_lossy(&raw);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The `sha256=HEX` HMAC-SHA256 of `body` with `secret`, as GitHub signs a
/// webhook (`X-Hub-Signature-256`).
pub fn signature(body: &[u8], secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
