//! The sidecar's HTTP listener: `GET /healthz`, `GET /readyz`,
//! `GET /metrics`, `POST /hooks/git` and the status page, `GET /`.
//!
//! The status page is drawn from what the daemon gathered at the end of
//! its last run (`status::Board`): drawing it sends no API request and
//! reads no file. It is served like any other route (connection cap,
//! header timeout; not on the probe lane) with `Cache-Control: no-store`
//! and a `Content-Security-Policy` that lets no script run and nothing
//! load: only the page's inline style applies.
//!
//! The probes tell different truths: `/healthz` (liveness) fails only when
//! the reconcile loop is stuck ([`Liveness`]), which a restart can cure;
//! `/readyz` (readiness) fails while the last run did not complete, the
//! source could not be read or the API refuses the token ([`Readiness`]),
//! which a restart cannot.
//!
//! The webhook only ever *triggers* a fetch: its payload is never trusted
//! for content and never kept. It is verified with `NFCRON_WEBHOOK_SECRET`
//! against GitHub's `X-Hub-Signature-256`, a generic `X-Signature:
//! sha256=<hex>` (both HMAC SHA-256 of the body) or GitLab's
//! `X-Gitlab-Token`, always in constant time.
//!
//! The listener faces unauthenticated clients, so everything it spends on
//! one is bounded ([`Limits`]):
//! - the signature header is checked for presence and form before any of
//!   the body is read (401 / 400 at once); the body then streams into the
//!   HMAC, never buffered, and is refused past 1 MiB (413) or past the body
//!   timeout (408);
//! - a request head must arrive within the header timeout; hyper starts
//!   that timer whenever a connection waits for a head, so it also closes
//!   idle keep-alive connections;
//! - a response must be taken within the header timeout too: a client
//!   that sends requests but never reads the answers (its socket buffer
//!   full) loses the connection ([`WriteDeadline`]), so it cannot hold a
//!   slot under the cap for ever;
//! - at most `max_connections` connections are served at once. Beyond it,
//!   connections go to a small *probe lane* that answers only `/healthz`,
//!   `/readyz` and `/metrics`, one request per connection, with a short
//!   header timeout; when the lane is full its oldest connection is closed
//!   for the newest. A liveness probe sends its request within
//!   milliseconds of connecting, so an attacker would have to open
//!   [`PROBE_LANE`] connections in those milliseconds to crowd it out, and
//!   since accepting never waits, the kernel's backlog never fills;
//! - accept errors (EMFILE, ENFILE, ENOBUFS...) back off from 10 ms to
//!   250 ms instead of spinning.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

use crate::metrics::{Format, Metrics};
use crate::secret::Token;
use crate::status::Board;

/// Webhook bodies larger than this are refused.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// Connections served beyond `max_connections`, for probes only.
pub const PROBE_LANE: usize = 16;

/// The probe lane's header timeout (or the header timeout, if shorter).
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// hyper's read buffer per connection: request heads larger than this are
/// refused, and a fast upload cannot grow a connection's buffer past it.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// What one client may cost the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (probes have a small lane beyond it).
    pub max_connections: usize,
    /// For a request head, from when the connection starts waiting for
    /// one (so also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// For a whole webhook body, from the end of its head.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// This replica applies, and its last run completed.
    Ready,
    /// Another replica leads and applies; this one follows the source.
    Standby,
    NotReady(NotReady),
}

/// Why `/readyz` says no: everything a restart cannot cure. Shown as
/// `not ready: <reason>`, the reason written by [`NotReady`]'s `Display`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the first reconcile has not completed")]
    Starting,
    /// A Git fetch failed (the error's chain).
    #[error("source unreachable: {0}")]
    SourceUnreachable(String),
    /// Part of the source could not be read.
    #[error("source unreadable: {path}: {message}")]
    SourceUnreadable { path: String, message: String },
    /// `--verify-signatures` refused the Git tip.
    #[error(transparent)]
    Unverified(crate::source::verify::Refusal),
    #[error("token refused: the API answered 401")]
    TokenRefused,
    /// A run failed as a whole (the error's chain).
    #[error("the last run failed: {0}")]
    RunFailed(String),
    /// A leadership check is slow to answer.
    #[error("waiting for the state database {location}")]
    WaitingForDatabase { location: String },
    /// A leadership check failed (the error's chain).
    #[error("state database unreachable: {0}")]
    DatabaseUnreachable(String),
    /// The leader's session was lost since the last check.
    #[error("stepped down: the state database session was lost; checking the leadership again")]
    SteppedDown,
}

/// What `/healthz` reports: whether the reconcile loop is making progress.
/// The loop waiting for a trigger is healthy; a run is healthy while
/// something moves in it (it starts, an API request is answered, it
/// ends) at least every `stall_timeout`. Every API request has its own
/// timeout and retries are bounded, so a run that talks to the API keeps
/// moving; one stuck in a read or a Git fetch that never returns does not.
#[derive(Debug)]
pub struct Liveness {
    epoch: std::time::Instant,
    stall_timeout: Duration,
    /// Milliseconds after `epoch` of the last progress.
    last: AtomicU64,
    /// A run is in progress.
    busy: AtomicBool,
}

impl Liveness {
    pub fn new(stall_timeout: Duration) -> Liveness {
        Liveness {
            epoch: std::time::Instant::now(),
            stall_timeout,
            last: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Something moved (an API answer, a step of the loop).
    pub fn progress(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn run_started(&self) {
        self.progress();
        self.busy.store(true, Ordering::Relaxed);
    }

    pub fn run_ended(&self) {
        self.busy.store(false, Ordering::Relaxed);
        self.progress();
    }

    /// How long the run in progress has been still, when longer than the
    /// stall timeout.
    pub fn stalled(&self) -> Option<Duration> {
        if !self.busy.load(Ordering::Relaxed) {
            return None;
        }
        let still = Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.last.load(Ordering::Relaxed)),
        );
        (still > self.stall_timeout).then_some(still)
    }
}

/// State the listener shares with the daemon.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub readiness: Mutex<Readiness>,
    pub liveness: Arc<Liveness>,
    /// `NFCRON_WEBHOOK_SECRET`; without it the webhook is off.
    pub webhook_secret: Option<Token>,
    /// Asks the daemon for a fetch and reconcile (coalesced there).
    pub webhook: mpsc::Sender<()>,
    /// What the status page shows, updated after each run.
    pub status: Mutex<Board>,
}

impl Shared {
    /// The one way readiness changes; returns what it was.
    pub fn set_readiness(&self, readiness: Readiness) -> Readiness {
        let mut now = self.readiness.lock().expect("readiness lock");
        std::mem::replace(&mut *now, readiness)
    }
}

/// Which budget a connection is served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Main,
    /// Beyond the connection cap: probes only, one request.
    Probe,
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let main_lane = Arc::new(Semaphore::new(limits.max_connections));
    // Oldest first, for eviction.
    let mut probe_lane: VecDeque<AbortHandle> = VecDeque::new();
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let mut pause = None;
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    let shared = shared.clone();
                    if let Ok(permit) = main_lane.clone().try_acquire_owned() {
                        connections.spawn(async move {
                            connection(stream, shared, limits, Lane::Main).await;
                            drop(permit);
                        });
                    } else {
                        probe_lane.retain(|task| !task.is_finished());
                        if probe_lane.len() >= PROBE_LANE {
                            if let Some(oldest) = probe_lane.pop_front() {
                                oldest.abort();
                            }
                        }
                        probe_lane.push_back(
                            connections.spawn(connection(stream, shared, limits, Lane::Probe)),
                        );
                    }
                }
                Err(e) => pause = backoff.after(&e),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
        if let Some(delay) = pause {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
    connections.abort_all();
}

/// How long to pause accepting after an error.
#[derive(Debug, Default)]
struct AcceptBackoff {
    delay: Option<Duration>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_millis(250);

    fn reset(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!("accepting connections again");
        }
    }

    /// `None` for errors of one connection (retry at once); a growing pause
    /// for the rest, which repeat until something changes (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM).
    fn after(&mut self, e: &std::io::Error) -> Option<Duration> {
        use std::io::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
        ) {
            return None;
        }
        let delay = match self.delay {
            None => {
                tracing::warn!(error = %e, "cannot accept connections; backing off");
                Self::FIRST
            }
            Some(d) => (d * 2).min(Self::MAX),
        };
        self.delay = Some(delay);
        Some(delay)
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>, limits: Limits, lane: Lane) {
    let header_timeout = match lane {
        Lane::Main => limits.header_timeout,
        Lane::Probe => limits.header_timeout.min(PROBE_HEADER_TIMEOUT),
    };
    let service = service_fn(move |req| handle(shared.clone(), limits, lane, req));
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_READ_BUFFER)
        .keep_alive(lane == Lane::Main)
        .serve_connection(
            TokioIo::new(WriteDeadline::new(stream, header_timeout)),
            service,
        )
        .await;
}

/// A stream whose writes may wait for the client at most `limit` at a time:
/// past it the write fails (`TimedOut`) and the connection ends.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    /// Since when a write has been waiting, as a timer.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write that could not proceed: whether the client has kept
    /// it waiting past the limit (otherwise the timer wakes this task).
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        use std::future::Future;
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).is_ready()
    }

    fn outcome<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Ready(done) => {
                self.stalled = None;
                Poll::Ready(done)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.outcome(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.outcome(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.outcome(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        self.outcome(cx, polled)
    }
}

type Reply = Response<Full<Bytes>>;

const TEXT: &str = "text/plain; charset=utf-8";

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

async fn handle(
    shared: Arc<Shared>,
    limits: Limits,
    lane: Lane,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => match shared.liveness.stalled() {
            None => reply(StatusCode::OK, TEXT, "ok\n"),
            Some(still) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!(
                    "stalled: the run in progress has made no progress for {}s (--stall-timeout)\n",
                    still.as_secs()
                ),
            ),
        },
        (&Method::GET, "/readyz") => {
            let readiness = shared.readiness.lock().expect("readiness lock").clone();
            match readiness {
                Readiness::Standby => reply(StatusCode::OK, TEXT, "standby\n"),
                Readiness::Ready => reply(StatusCode::OK, TEXT, "ready\n"),
                Readiness::NotReady(why) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    format!("not ready: {why}\n"),
                ),
            }
        }
        (&Method::GET, "/metrics") => {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            reply(
                StatusCode::OK,
                format.content_type(),
                shared.metrics.render(format),
            )
        }
        _ if lane == Lane::Probe => {
            shared.metrics.http_refused("busy");
            let mut busy = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "too many connections; only probes are served\n",
            );
            busy.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            busy
        }
        (&Method::POST, "/hooks/git") => webhook(&shared, &limits, req).await,
        // hyper sends a HEAD's headers (Content-Length included) without
        // the body.
        (&Method::GET | &Method::HEAD, "/") => status_page(&shared),
        (_, "/") => {
            let mut refused = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                TEXT,
                "method not allowed: the status page takes GET and HEAD\n",
            );
            refused.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            refused
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    })
}

async fn webhook(shared: &Shared, limits: &Limits, req: Request<Incoming>) -> Reply {
    let Some(secret) = &shared.webhook_secret else {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "webhook disabled: set NFCRON_WEBHOOK_SECRET\n",
        );
    };
    // Everything that needs no body is decided before reading any of it:
    // an unsigned upload costs one head.
    let expected = match proof(req.headers()) {
        Err(Refusal::Missing) => {
            tracing::debug!("webhook without a signature refused");
            shared.metrics.http_refused("unsigned");
            return reply(StatusCode::UNAUTHORIZED, TEXT, "missing signature\n");
        }
        Err(Refusal::Malformed) => {
            tracing::debug!("webhook with a malformed signature header refused");
            shared.metrics.http_refused("malformed");
            return reply(
                StatusCode::BAD_REQUEST,
                TEXT,
                "malformed signature header: expected sha256=<64 hex digits>\n",
            );
        }
        Ok(Proof::Token(token)) => {
            if !bool::from(token.as_bytes().ct_eq(secret.expose().as_bytes())) {
                tracing::warn!("webhook with a bad token refused");
                shared.metrics.http_refused("bad_signature");
                return reply(StatusCode::UNAUTHORIZED, TEXT, "bad signature\n");
            }
            None
        }
        Ok(Proof::Hmac(expected)) => Some(expected),
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_WEBHOOK_BYTES as u64) {
        shared.metrics.http_refused("too_large");
        return reply(StatusCode::PAYLOAD_TOO_LARGE, TEXT, "body over 1 MiB\n");
    }
    // An authenticated GitLab delivery is still read to its end (and
    // dropped), so that its sender sees the 202, not a reset.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    let read = stream_into(req.into_body(), MAX_WEBHOOK_BYTES, |chunk| {
        if expected.is_some() {
            mac.update(chunk);
        }
    });
    let outcome = tokio::time::timeout(limits.body_timeout, read).await;
    match outcome {
        Err(_) => {
            tracing::debug!("webhook body not received within the body timeout");
            shared.metrics.http_refused("body_timeout");
            reply(StatusCode::REQUEST_TIMEOUT, TEXT, "body too slow\n")
        }
        Ok(Err(BodyError::TooLarge)) => {
            shared.metrics.http_refused("too_large");
            reply(StatusCode::PAYLOAD_TOO_LARGE, TEXT, "body over 1 MiB\n")
        }
        Ok(Err(BodyError::Read)) => reply(StatusCode::BAD_REQUEST, TEXT, "unreadable body\n"),
        Ok(Ok(())) => {
            if expected.is_none_or(|expected| mac.verify_slice(&expected).is_ok()) {
                accepted(shared)
            } else {
                tracing::warn!("webhook with a bad signature refused");
                shared.metrics.http_refused("bad_signature");
                reply(StatusCode::UNAUTHORIZED, TEXT, "bad signature\n")
            }
        }
    }
}

/// What the status page may do in a browser: show itself with its inline
/// style; no script, frame, image, font or connection.
pub const STATUS_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// `GET /`: drawn from the board's latest view; no API call, no file read.
fn status_page(shared: &Shared) -> Reply {
    use hyper::header::{self, HeaderValue};
    let view = shared.status.lock().expect("status lock").view();
    let html = crate::render::status::page(&view, jiff::Timestamp::now());
    let mut page = reply(StatusCode::OK, "text/html; charset=utf-8", html);
    let headers = page.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(STATUS_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    page
}

fn accepted(shared: &Shared) -> Reply {
    // A full queue means a fetch is already pending: bursts coalesce.
    let _ = shared.webhook.try_send(());
    reply(StatusCode::ACCEPTED, TEXT, "fetch scheduled\n")
}

/// What a request offers as proof, judged from its head alone.
#[derive(Debug, PartialEq, Eq)]
enum Proof<'a> {
    /// An HMAC SHA-256 of the body, decoded.
    Hmac([u8; 32]),
    /// GitLab's shared token.
    Token(&'a str),
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No signature header at all: 401.
    Missing,
    /// A signature header that cannot be a SHA-256 HMAC: 400.
    Malformed,
}

fn proof(headers: &HeaderMap) -> Result<Proof<'_>, Refusal> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| Refusal::Malformed))
    };
    if let Some(sig) = header("x-hub-signature-256").or_else(|| header("x-signature")) {
        let hex = sig?
            .trim()
            .strip_prefix("sha256=")
            .ok_or(Refusal::Malformed)?;
        let bytes = decode_hex(hex).ok_or(Refusal::Malformed)?;
        return bytes
            .try_into()
            .map(Proof::Hmac)
            .map_err(|_| Refusal::Malformed);
    }
    if let Some(token) = header("x-gitlab-token") {
        return token.map(Proof::Token);
    }
    Err(Refusal::Missing)
}

#[derive(Debug)]
enum BodyError {
    TooLarge,
    Read,
}

/// Hands the body to `sink` frame by frame, up to `cap` bytes; nothing is
/// kept.
async fn stream_into(
    mut body: Incoming,
    cap: usize,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), BodyError> {
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > cap {
                return Err(BodyError::TooLarge);
            }
            sink(&data);
        }
    }
    Ok(())
}

/// Whether a request with these headers and this body carries a valid
/// signature under `secret` (the listener does the same, streaming).
pub fn verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> bool {
    match proof(headers) {
        Ok(Proof::Hmac(expected)) => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        }
        Ok(Proof::Token(token)) => token.as_bytes().ct_eq(secret).into(),
        Err(_) => false,
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    // from_str_radix alone would take a sign ("+f").
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body: &[u8], secret: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = signed(body, b"s3cret");
        assert!(verify(
            &headers(&[("x-hub-signature-256", good.clone())]),
            body,
            b"s3cret"
        ));
        assert!(verify(
            &headers(&[("x-signature", good.clone())]),
            body,
            b"s3cret"
        ));
        assert!(!verify(
            &headers(&[("x-hub-signature-256", good.clone())]),
            b"tampered",
            b"s3cret"
        ));
        assert!(!verify(
            &headers(&[("x-hub-signature-256", signed(body, b"other"))]),
            body,
            b"s3cret"
        ));
        assert!(!verify(
            &headers(&[("x-hub-signature-256", "sha1=00".into())]),
            body,
            b"s3cret"
        ));
        assert!(verify(
            &headers(&[("x-gitlab-token", "s3cret".into())]),
            body,
            b"s3cret"
        ));
        assert!(!verify(
            &headers(&[("x-gitlab-token", "s3cre".into())]),
            body,
            b"s3cret"
        ));
        assert!(!verify(&HeaderMap::new(), body, b"s3cret"));
    }

    #[test]
    fn the_signature_header_is_judged_before_the_body() {
        assert_eq!(proof(&HeaderMap::new()), Err(Refusal::Missing));
        let hex = "ab".repeat(32);
        assert_eq!(
            proof(&headers(&[(
                "x-hub-signature-256",
                format!("sha256={hex}")
            )])),
            Ok(Proof::Hmac([0xab; 32]))
        );
        for bad in [
            "sha1=00".to_string(),
            format!("sha256={}", "ab".repeat(31)),
            format!("sha256={}", "ab".repeat(33)),
            format!("sha256=+b{}", "ab".repeat(31)),
            format!("sha256={}zz", "ab".repeat(31)),
            "ab".repeat(32),
        ] {
            assert_eq!(
                proof(&headers(&[("x-signature", bad.clone())])),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            proof(&headers(&[("x-gitlab-token", "t".into())])),
            Ok(Proof::Token("t"))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 300, rng_seed: proptest::test_runner::RngSeed::Fixed(6), failure_persistence: None, ..Default::default() })]
        #[test]
        fn the_verifier_never_panics(sig in "\\PC{0,80}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(v) = sig.parse() {
                let mut h = HeaderMap::new();
                h.insert("x-hub-signature-256", v);
                let _ = verify(&h, &body, b"k");
            }
        }
    }

    #[test]
    fn readiness_reasons_read_as_readyz_shows_them() {
        use crate::source::verify::{Reason, Refusal};
        let refusal = Refusal {
            commit: "abc123".into(),
            reason: Reason::Unsigned,
        };
        let cases = [
            (NotReady::Starting, "the first reconcile has not completed"),
            (
                NotReady::SourceUnreachable("timed out".into()),
                "source unreachable: timed out",
            ),
            (
                NotReady::SourceUnreadable {
                    path: "jobs/a.yaml".into(),
                    message: "permission denied".into(),
                },
                "source unreadable: jobs/a.yaml: permission denied",
            ),
            (
                NotReady::Unverified(refusal),
                "commit abc123 is not applied (--verify-signatures): it is not signed",
            ),
            (
                NotReady::TokenRefused,
                "token refused: the API answered 401",
            ),
            (
                NotReady::RunFailed("state locked".into()),
                "the last run failed: state locked",
            ),
            (
                NotReady::WaitingForDatabase {
                    location: "db:5432/x (namespace n)".into(),
                },
                "waiting for the state database db:5432/x (namespace n)",
            ),
            (
                NotReady::DatabaseUnreachable("refused".into()),
                "state database unreachable: refused",
            ),
            (
                NotReady::SteppedDown,
                "stepped down: the state database session was lost; checking the leadership again",
            ),
        ];
        for (why, text) in cases {
            assert_eq!(why.to_string(), text);
        }
    }
}
