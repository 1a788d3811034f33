//! A small hostile HTTP/1.1 server on 127.0.0.1:0 for tests and benches:
//! each test says, per request, what bytes go back (redirects, absurd
//! headers, endless or huge bodies). Plain std threads and sockets: no
//! HTTP library decides what a "valid" answer is. It logs every request it
//! read, so a test can assert what reached it (and what did not).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync;

pub struct Hostile {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log: Arc<(Mutex<Vec<Request>>, Condvar)>,
    /// Connections accepted, whether or not a request was read from them.
    connections: Arc<Mutex<usize>>,
}

impl Hostile {
    /// Serves every connection on its own thread: reads one request, logs
    /// it, lets `handler` write the answer, closes.
    pub fn spawn(
        handler: impl Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let log: Arc<(Mutex<Vec<Request>>, Condvar)> = Arc::default();
        let connections: Arc<Mutex<usize>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (log2, connections2) = (log.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                *connections2.lock().expect("lock") += 1;
                let (log, handler) = (log2.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    {
                        let (requests, changed) = &*log;
                        requests.lock().expect("lock").push(request.clone());
                        changed.notify_all();
                    }
                    let _ = handler(&request, &mut stream);
                    let _ = stream.flush();
                });
            }
        });
        Hostile {
            url: format!("http://{addr}"),
            addr,
            log,
            connections,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.0.lock().expect("lock").clone()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().expect("lock")
    }

    /// Waits until `n` requests have been read; panics after `within`.
    pub fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        let (requests, changed) = &*self.log;
        let mut seen = requests.lock().expect("lock");
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} requests within {within:?}",
                seen.len()
            );
            seen = changed.wait_timeout(seen, left).expect("lock").0;
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// A whole answer with a `Content-Length`, then the connection closes.
pub fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    head(stream, status, headers, Some(body.len() as u64))?;
    stream.write_all(body)
}

/// The status line and headers; `Connection: close`, and a
/// `Content-Length` when given (else the body ends when the connection
/// does).
pub fn head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    length: Option<u64>,
) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(length) = length {
        text.push_str(&format!("Content-Length: {length}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes())
}

/// A 200 JSON body that never ends: `{"data":{"jobs":[` then filler until
/// the client hangs up.
pub fn endless(stream: &mut TcpStream) -> std::io::Result<()> {
    head(stream, 200, &[("Content-Type", "application/json")], None)?;
    stream.write_all(br#"{"data":{"jobs":["#)?;
    let filler = "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",".repeat(2048);
    loop {
        stream.write_all(filler.as_bytes())?;
    }
}

/// An empty job list, the answer to adoption's list call.
pub fn empty_list(stream: &mut TcpStream, headers: &[(&str, &str)]) -> std::io::Result<()> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    respond(
        stream,
        200,
        &all,
        br#"{"data":{"jobs":[]},"pagination":{"hasNextPage":false,"count":0}}"#,
    )
}

/// What a PUT answers on success: the request's body under `data`.
pub fn put_ok(request: &Request, stream: &mut TcpStream) -> std::io::Result<()> {
    let mut body = br#"{"data":"#.to_vec();
    body.extend_from_slice(&request.body);
    body.push(b'}');
    respond(stream, 200, &[("Content-Type", "application/json")], &body)
}

/// A TCP server that accepts and reads, and never answers; reports each
/// request's first bytes.
pub fn black_hole() -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = vec![0u8; 4096];
            let n = std::io::Read::read(&mut stream, &mut buf).unwrap_or(0);
            let _ = tx.send(buf[..n].to_vec());
            held.push(stream);
        }
    });
    (addr, rx)
}

/// A 400 whose JSON `message` is `text` then `size` bytes of `x`, streamed
/// (a server flooding its error text).
pub fn huge_error(stream: &mut TcpStream, text: &str, size: usize) -> std::io::Result<()> {
    let start = format!(r#"{{"error":{{"status":400,"message":"{text}"#);
    let end = br#""}}"#;
    let chunk = vec![b'x'; 64 * 1024];
    let size = size / chunk.len() * chunk.len();
    head(
        stream,
        400,
        &[("Content-Type", "application/json")],
        Some((start.len() + size + end.len()) as u64),
    )?;
    stream.write_all(start.as_bytes())?;
    for _ in 0..size / chunk.len() {
        stream.write_all(&chunk)?;
    }
    stream.write_all(end)
}
