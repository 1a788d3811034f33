//! The Northflank client: typed calls over reqwest (rustls), a retry policy
//! and the hourly rate-limit budget.
//!
//! Every request carries the token in an `Authorization` header marked
//! sensitive; the token is a [`Token`], which never formats. Every request
//! is counted ([`Client::requests_sent`]): API calls are the scarcest
//! resource nfcron spends.

mod error;
mod retry;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::value::RawValue;
use serde_json::Value as Json;

pub use error::{human, shown, ApiError, Call, MAX_SHOWN};
pub use retry::RetryPolicy;

use crate::manifest::JobKey;
use crate::secret::Token;

pub const DEFAULT_URL: &str = "https://api.northflank.com";
/// Pages a list may take before nfcron stops following the cursor.
const MAX_PAGES: usize = 100;
/// The most bytes of one response body nfcron reads; past it the call
/// fails. The API's largest answer (a 100-job list page) is far smaller.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// The most bytes of response bodies held at once by all of a client's
/// calls together: concurrency cannot multiply [`MAX_BODY`] past it.
pub const MAX_IN_FLIGHT: usize = 2 * MAX_BODY;
/// The most bytes of all a list's pages together.
pub const MAX_LIST_BYTES: usize = 4 * MAX_BODY;
/// The most bytes of an error response read: enough for any message,
/// which is shown cut to [`MAX_SHOWN`] anyway.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most a server-supplied wait (`Retry-After`, `x-ratelimit-reset`)
/// counts for: any longer answer means the same (too long to wait), and
/// nothing added to it can overflow.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(100 * 365 * 86_400);
/// The most a rate-limit count (`x-ratelimit-limit`, `-remaining`) counts for.
pub const MAX_RATE_COUNT: u64 = u32::MAX as u64;

/// What a path segment must escape: the WHATWG path-segment set plus `%`.
/// A job id may hold a tab (the API's name pattern allows `\s`, and only
/// spaces become hyphens); a URL parser strips a raw tab, so
/// `nightly<TAB>report` would address `nightlyreport`, another job.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// One path segment, percent-encoded.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("API URL `{0}` is not a valid URL")]
    BadUrl(String),
    #[error("API URL `{0}` holds a user name or password; nfcron authenticates with the token only (Bearer). Remove the `user:password@` part")]
    UserInfo(String),
    #[error("API URL `{url}` uses the unsupported scheme `{scheme}`; use https (or http to a loopback address)")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("API URL `{0}` uses plain http to a host that is not loopback; the token would travel in clear text. Use https")]
    Insecure(String),
    #[error(transparent)]
    Token(#[from] TokenProblem),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Why a token cannot be sent. Never holds the token's characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("the API token from {from} holds a line break (at character {at}); a token is one line. Check the secret for a pasted newline")]
    LineBreak { from: String, at: usize },
    #[error("the API token from {from} holds a control character (at character {at}); a token is visible ASCII only")]
    Control { from: String, at: usize },
    #[error("the API token from {from} holds a space or a non-ASCII character (at character {at}); a token is visible ASCII only")]
    NotAscii { from: String, at: usize },
    #[error("the API token from {from} is not valid UTF-8")]
    NotUtf8 { from: String },
}

/// Checks that a (trimmed) token can travel in an `Authorization` header:
/// visible ASCII only. `from` names where it came from, for the message.
pub fn check_token(token: &str, from: &str) -> Result<(), TokenProblem> {
    for (i, c) in token.chars().enumerate() {
        let at = i + 1;
        let from = from.to_string();
        match c {
            '\n' | '\r' => return Err(TokenProblem::LineBreak { from, at }),
            c if c.is_control() => return Err(TokenProblem::Control { from, at }),
            c if !c.is_ascii_graphic() => return Err(TokenProblem::NotAscii { from, at }),
            _ => {}
        }
    }
    Ok(())
}

/// Parses and checks the API base URL: https, or plain http to loopback
/// only; no userinfo (it would replace Bearer auth and be echoed in
/// messages). Messages never show a password.
pub fn check_base_url(raw: &str) -> Result<Url, ConfigError> {
    let Ok(base) = Url::parse(raw) else {
        return Err(ConfigError::BadUrl(shown(&redact_userinfo(raw), 256)));
    };
    if !base.username().is_empty() || base.password().is_some() {
        return Err(ConfigError::UserInfo(without_userinfo(&base)));
    }
    match base.scheme() {
        "https" => Ok(base),
        "http" if is_loopback(&base) => Ok(base),
        "http" => Err(ConfigError::Insecure(base.to_string())),
        scheme => Err(ConfigError::UnsupportedScheme {
            url: shown(base.as_str(), 256),
            scheme: shown(scheme, 32),
        }),
    }
}

/// `url` with any `user:password@` replaced by `***@`.
fn without_userinfo(url: &Url) -> String {
    let mut clean = url.clone();
    if clean.set_username("").is_ok() && clean.set_password(None).is_ok() {
        let text = clean.to_string();
        // Mark where the userinfo was, so the message points at it.
        if let Some(i) = text.find("://") {
            return format!("{}***@{}", &text[..i + 3], &text[i + 3..]);
        }
        return text;
    }
    redact_userinfo(url.as_str())
}

/// Text that may be a URL with anything between `//` and the last `@`
/// of its authority replaced by `***`; for URLs that do not parse.
fn redact_userinfo(raw: &str) -> String {
    let start = raw.find("//").map_or(0, |i| i + 2);
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub token: Token,
    /// Per request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// What the last response said about the hourly budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<Instant>,
    /// The server's reset was past [`MAX_SERVER_WAIT`] (and so was capped).
    pub reset_capped: bool,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    retry: RetryPolicy,
    budget: Arc<Mutex<RateLimit>>,
    sent: Arc<AtomicU64>,
    /// Body bytes held right now by every call in flight.
    in_flight: Arc<AtomicUsize>,
    /// Set by a 401: the token is bad for every call, so the rest of the
    /// run sends nothing more.
    token_refused: Arc<AtomicBool>,
    /// The token as a server may quote it back in an error: hidden there
    /// like the body's secrets.
    token_forms: crate::secret::QuotedForms,
    observer: Observer,
}

/// The HTTP client that sends `token` to `base` and nowhere else.
fn http_client(
    base: &Url,
    token: &Token,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    check_token(token.expose(), "the settings")?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        TokenProblem::Control {
            from: "the settings".into(),
            at: 0,
        }
    })?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut builder = reqwest::Client::builder();
    if base.scheme() == "http" {
        // Plain http is for loopback only: an HTTP_PROXY from the
        // environment would carry the token in clear off the machine.
        builder = builder.no_proxy();
    }
    builder
        .default_headers(headers)
        .user_agent(concat!("nfcron/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        // A redirect would carry the token and the PUT body to
        // wherever the server says, past the loopback rule: never.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(ConfigError::Client)
}

/// Told of every response (method, status; 0 when none came), for metrics.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<ObserveFn>>);

type ObserveFn = dyn Fn(&str, u16) + Send + Sync;

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        let base = check_base_url(&config.base_url)?;
        let http = http_client(&base, &config.token, config.timeout)?;
        Ok(Client {
            http,
            base,
            timeout: config.timeout,
            retry: config.retry,
            budget: Arc::new(Mutex::new(RateLimit::default())),
            sent: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            token_refused: Arc::new(AtomicBool::new(false)),
            token_forms: config.token.quoted_forms(),
            observer: Observer::default(),
        })
    }

    /// The same client (rate-limit budget, request count, observer)
    /// sending `token` from now on, with the refused-token latch clear: a
    /// rotated secret, picked up without a restart.
    pub fn with_token(&self, token: &Token) -> Result<Client, ConfigError> {
        let mut next = self.clone();
        next.http = http_client(&self.base, token, self.timeout)?;
        next.token_refused = Arc::new(AtomicBool::new(false));
        next.token_forms = token.quoted_forms();
        Ok(next)
    }

    /// The latch a 401 sets lasts one run: the next one tries the token
    /// again (it may have been granted meanwhile).
    pub fn clear_token_refused(&self) {
        self.token_refused.store(false, Ordering::Relaxed);
    }

    /// Whether a 401 has stopped this run's calls.
    pub fn token_refused(&self) -> bool {
        self.token_refused.load(Ordering::Relaxed)
    }

    /// Calls `f` with the method and status of every response.
    pub fn with_observer(mut self, f: impl Fn(&str, u16) + Send + Sync + 'static) -> Client {
        self.observer = Observer(Some(Arc::new(f)));
        self
    }

    fn observed(&self, method: &Method, status: u16) {
        if let Some(f) = &self.observer.0 {
            f(method.as_str(), status);
        }
    }

    /// HTTP requests actually sent, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn rate_limit(&self) -> RateLimit {
        *self.budget.lock().expect("rate limit lock")
    }

    /// `PUT .../jobs/cron`: creates or replaces the job named in `spec`.
    /// `shown` is `spec` redacted: the values it hides are the secrets,
    /// and what the API says back (an error that quotes the value it
    /// refused) shows each as `(sensitive)`, in every message, log line
    /// and state record. Worked out only when an error comes back.
    pub async fn put_cron_job(
        &self,
        key: &JobKey,
        spec: &RawValue,
        shown: &RawValue,
    ) -> Result<Json, ApiError> {
        let call = self.call("PUT", key, &["jobs", "cron"], Some(key));
        self.send(Method::PUT, call, &[], Some(Payload { spec, shown }))
            .await
    }

    /// `GET .../jobs/{id}`; `None` when the job does not exist.
    pub async fn get_job(&self, key: &JobKey) -> Result<Option<Json>, ApiError> {
        let call = self.call("GET", key, &["jobs", &key.id], Some(key));
        not_found_is_none(self.send(Method::GET, call, &[], None).await)
    }

    /// `GET .../jobs/{id}/{what}` (`deployment`, `runtime-environment`, ...).
    /// Environment and build arguments are read with `show=this`: without
    /// it the API merges in values inherited from linked secret groups and
    /// addons, which the job does not own and nfcron must never compare,
    /// import or write.
    pub async fn get_job_part(&self, key: &JobKey, what: &str) -> Result<Option<Json>, ApiError> {
        let call = self.call("GET", key, &["jobs", &key.id, what], Some(key));
        let query = match what {
            "runtime-environment" | "build-arguments" => vec![("show", "this".to_string())],
            _ => Vec::new(),
        };
        not_found_is_none(self.send(Method::GET, call, &query, None).await)
    }

    /// `DELETE .../jobs/{id}`. A job that is already gone counts as deleted.
    pub async fn delete_job(&self, key: &JobKey) -> Result<(), ApiError> {
        let call = self.call("DELETE", key, &["jobs", &key.id], Some(key));
        not_found_is_none(self.send(Method::DELETE, call, &[], None).await).map(|_| ())
    }

    /// `GET .../jobs`, following the cursor through every page.
    pub async fn list_jobs(
        &self,
        team: Option<&str>,
        project: &str,
    ) -> Result<Vec<Json>, ApiError> {
        let scope = JobKey {
            team: team.map(str::to_string),
            project: project.to_string(),
            id: String::new(),
        };
        let mut jobs = Vec::new();
        let mut cursor: Option<String> = None;
        let mut read = 0usize;
        for _ in 0..MAX_PAGES {
            let call = self.call("GET", &scope, &["jobs"], None);
            let mut query = vec![("per_page", "100".to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let (page, size) = self
                .send_raw(Method::GET, call.clone(), &query, None)
                .await?;
            read = read.saturating_add(size);
            if read > MAX_LIST_BYTES {
                return Err(ApiError::TooLarge {
                    call,
                    limit: MAX_LIST_BYTES,
                });
            }
            let list = page
                .get("data")
                .and_then(|d| d.get("jobs"))
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            jobs.extend(list);
            let pagination = page.get("pagination");
            let next = pagination
                .and_then(|p| p.get("hasNextPage"))
                .and_then(Json::as_bool)
                == Some(true);
            cursor = pagination
                .and_then(|p| p.get("cursor"))
                .and_then(Json::as_str)
                .map(str::to_string);
            if !next || cursor.is_none() {
                break;
            }
        }
        Ok(jobs)
    }

    fn call(
        &self,
        method: &'static str,
        key: &JobKey,
        tail: &[&str],
        job: Option<&JobKey>,
    ) -> Call {
        let mut path = String::from("/v1");
        if let Some(team) = &key.team {
            path.push_str(&format!("/teams/{}", segment(team)));
        }
        path.push_str(&format!("/projects/{}", segment(&key.project)));
        for part in tail {
            path.push('/');
            path.push_str(&segment(part));
        }
        Call {
            method,
            path,
            job: job.map(|k| k.to_string()),
        }
    }

    /// Sends and returns the body's `data`.
    async fn send(
        &self,
        method: Method,
        call: Call,
        query: &[(&str, String)],
        body: Option<Payload<'_>>,
    ) -> Result<Json, ApiError> {
        let (mut whole, _) = self.send_raw(method, call, query, body).await?;
        Ok(whole.get_mut("data").map(Json::take).unwrap_or(Json::Null))
    }

    /// Sends with retries; returns the whole success body and its size in
    /// bytes.
    async fn send_raw(
        &self,
        method: Method,
        call: Call,
        query: &[(&str, String)],
        body: Option<Payload<'_>>,
    ) -> Result<(Json, usize), ApiError> {
        let started = Instant::now();
        let mut delays = self.retry.delays();
        let mut url = self.base.clone();
        url.set_path(&call.path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        loop {
            self.wait_for_budget(&call, started).await?;
            let error = match self.attempt(&method, &url, &call, body).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            let (retry_after, status) = match &error {
                ApiError::Status {
                    retry_after,
                    status,
                    ..
                } => (*retry_after, *status),
                _ => (None, 0),
            };
            if let Some(wait) = retry_after {
                if started.elapsed().saturating_add(wait) > self.retry.max_time {
                    return Err(ApiError::WaitTooLong {
                        call,
                        status,
                        wait,
                        max_time: self.retry.max_time,
                    });
                }
            }
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            let delay = retry_after.unwrap_or(backoff);
            if started.elapsed().saturating_add(delay) > self.retry.max_time {
                return Err(error);
            }
            tracing::warn!(call = %call, error = %error, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        call: &Call,
        body: Option<Payload<'_>>,
    ) -> Result<(Json, usize), ApiError> {
        if self.token_refused.load(Ordering::Relaxed) {
            return Err(ApiError::TokenRefused { call: call.clone() });
        }
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request.body(body.spec.get().to_owned());
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        let sent_at = Instant::now();
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                self.observed(method, 0);
                return Err(self.transport(call, e));
            }
        };
        let status = response.status();
        self.observed(method, status.as_u16());
        self.observe(response.headers());
        if status.is_redirection() {
            // The body is not read: the connection is dropped with it.
            return Err(ApiError::Redirect {
                call: call.clone(),
                status: status.as_u16(),
                location: response
                    .headers()
                    .get(LOCATION)
                    .map(|v| shown_location(url, v.as_bytes())),
            });
        }
        let retry_after = retry_after(response.headers());
        let cap = if status.is_success() {
            MAX_BODY
        } else {
            MAX_ERROR_BODY
        };
        let mut held = Held {
            total: &self.in_flight,
            bytes: 0,
        };
        let (bytes, end) = read_capped(&mut response, cap, &mut held)
            .await
            .map_err(|e| self.transport(call, e))?;
        tracing::debug!(call = %call, status = status.as_u16(), ms = sent_at.elapsed().as_millis() as u64, "api");
        if status.is_success() {
            match end {
                BodyEnd::Whole => {}
                BodyEnd::Cut => {
                    return Err(ApiError::TooLarge {
                        call: call.clone(),
                        limit: MAX_BODY,
                    })
                }
                BodyEnd::Crowded => {
                    return Err(ApiError::Crowded {
                        call: call.clone(),
                        limit: MAX_IN_FLIGHT,
                    })
                }
            }
            if bytes.is_empty() {
                return Ok((Json::Null, 0));
            }
            return serde_json::from_slice(&bytes)
                .map(|json| (json, bytes.len()))
                .map_err(|source| ApiError::BadResponse {
                    call: call.clone(),
                    source,
                });
        }
        if status == StatusCode::UNAUTHORIZED {
            self.token_refused.store(true, Ordering::Relaxed);
        }
        let mut secrets = body.map_or_else(Vec::new, Payload::secrets);
        secrets.extend_from_slice(self.token_forms.as_slice());
        // Longest first: a secret holding another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Err(status_error(call, status, &bytes, retry_after, &secrets))
    }

    fn transport(&self, call: &Call, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout {
                call: call.clone(),
                timeout: self.timeout,
            }
        } else {
            ApiError::Transport {
                call: call.clone(),
                source: e.without_url(),
            }
        }
    }

    /// Every number is saturated: a server cannot overflow the budget.
    fn observe(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| saturating_number(v.as_bytes()))
        };
        let mut budget = self.budget.lock().expect("rate limit lock");
        if let Some(limit) = number("x-ratelimit-limit") {
            budget.limit = Some(limit.min(MAX_RATE_COUNT));
        }
        if let Some(remaining) = number("x-ratelimit-remaining") {
            budget.remaining = Some(remaining.min(MAX_RATE_COUNT));
        }
        if let Some(reset) = number("x-ratelimit-reset") {
            let wait = server_wait(reset);
            budget.reset_at = Some(after(wait));
            budget.reset_capped = wait >= MAX_SERVER_WAIT;
        }
    }

    /// When the last response said the budget is used up, sends nothing
    /// until it resets, or gives up at once if that is too far away.
    async fn wait_for_budget(&self, call: &Call, started: Instant) -> Result<(), ApiError> {
        let wait = {
            let budget = self.budget.lock().expect("rate limit lock");
            match (budget.remaining, budget.reset_at) {
                (Some(0), Some(_)) if budget.reset_capped => MAX_SERVER_WAIT,
                (Some(0), Some(at)) => at.saturating_duration_since(Instant::now()),
                _ => return Ok(()),
            }
        };
        if started.elapsed().saturating_add(wait) > self.retry.max_time {
            return Err(ApiError::RateLimited {
                call: call.clone(),
                reset_in: wait,
            });
        }
        tracing::warn!(call = %call, wait_ms = wait.as_millis() as u64, "rate limit used up; waiting for the reset");
        tokio::time::sleep(wait).await;
        let mut budget = self.budget.lock().expect("rate limit lock");
        if budget.remaining == Some(0) {
            budget.remaining = None;
        }
        Ok(())
    }
}

fn not_found_is_none(result: Result<Json, ApiError>) -> Result<Option<Json>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How a capped read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEnd {
    Whole,
    /// The body went on past this call's cap.
    Cut,
    /// The calls in flight together reached [`MAX_IN_FLIGHT`].
    Crowded,
}

/// Body bytes one call holds against the client's in-flight total;
/// handed back when dropped.
struct Held<'a> {
    total: &'a AtomicUsize,
    bytes: usize,
}

impl Held<'_> {
    /// Takes `n` more bytes unless that would pass [`MAX_IN_FLIGHT`].
    fn take(&mut self, n: usize) -> bool {
        let before = self.total.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > MAX_IN_FLIGHT {
            self.total.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Reads at most `cap` bytes of the body, a chunk at a time, holding them
/// against the client's in-flight total; says how it ended. Memory stays
/// bounded whatever the server sends, however many calls run at once.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
    held: &mut Held<'_>,
) -> Result<(Vec<u8>, BodyEnd), reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let take = chunk.len().min(cap - buf.len());
        if buf.capacity() - buf.len() < take {
            // Doubling, but never past the cap; what is held is capacity.
            let want = (buf.capacity() * 2).max(buf.len() + take).min(cap);
            if !held.take(want - buf.capacity()) {
                return Ok((buf, BodyEnd::Crowded));
            }
            buf.reserve_exact(want - buf.len());
        }
        buf.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            return Ok((buf, BodyEnd::Cut));
        }
    }
    Ok((buf, BodyEnd::Whole))
}

/// An error response: the API's `{"error": {...}}` when it parses, else
/// what can be read of its `message` (a body cut at the cap), else the
/// status's reason. Every text is passed through [`shown`].
fn status_error(
    call: &Call,
    status: StatusCode,
    bytes: &[u8],
    retry_after: Option<Duration>,
    secrets: &[String],
) -> ApiError {
    let body: Json = serde_json::from_slice(bytes).unwrap_or(Json::Null);
    let error = body.get("error");
    let field = |k: &str| error.and_then(|e| e.get(k));
    // Secrets go before anything is cut or escaped: a cut must not leave
    // half of one behind.
    let said = |text: &str, max| shown(&scrub(text, secrets), max);
    let message = match field("message").and_then(Json::as_str) {
        Some(m) => said(m, MAX_SHOWN),
        None => match body.is_null().then(|| partial_message(bytes)).flatten() {
            // Cut at the cap: it may end inside a secret.
            Some(m) => said(&cut_secret_tail(m, secrets), MAX_SHOWN),
            None => status.canonical_reason().unwrap_or("error").to_string(),
        },
    };
    let mut details = field("details").cloned();
    if let Some(details) = details.as_mut() {
        scrub_json(details, secrets);
    }
    ApiError::Status {
        call: Box::new(call.clone()),
        status: status.as_u16(),
        message,
        id: field("id").and_then(Json::as_str).map(|id| said(id, 128)),
        details: details.map(Box::new),
        retry_after,
    }
}

/// A request's body and its redacted form.
#[derive(Clone, Copy)]
struct Payload<'a> {
    spec: &'a RawValue,
    shown: &'a RawValue,
}

impl Payload<'_> {
    /// The secret values in the body: what the redacted form hides.
    fn secrets(self) -> Vec<String> {
        let tree = |raw: &RawValue| serde_json::from_str::<Json>(raw.get()).unwrap_or(Json::Null);
        crate::secret::hidden_values(&tree(self.spec), &tree(self.shown))
    }
}

/// `text` with every secret value in it shown as `(sensitive)`.
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "(sensitive)")
        })
}

/// `text` without a tail that is the start of a secret (4 characters or
/// more): what a body cut short inside one leaves.
fn cut_secret_tail(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        let starts = secret.char_indices().map(|(i, _)| i).skip(4);
        if let Some(i) = starts.filter(|&i| text.ends_with(&secret[..i])).last() {
            text.truncate(text.len() - i);
            text.push_str("(sensitive)");
        }
    }
    text
}

fn scrub_json(value: &mut Json, secrets: &[String]) {
    match value {
        Json::String(s) => *s = scrub(s, secrets),
        Json::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, secrets)),
        Json::Object(m) => {
            let entries = std::mem::take(m);
            for (k, mut v) in entries {
                scrub_json(&mut v, secrets);
                m.insert(scrub(&k, secrets), v);
            }
        }
        _ => {}
    }
}

/// The start of the `"message"` string of a JSON body that does not parse
/// (because it was cut at the cap): what the server meant to say.
fn partial_message(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let key = text.find("\"message\"")?;
    let rest = text[key + "\"message\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    // Up to the closing quote, or the end of what was read.
    let mut end = rest.len();
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let mut raw = &rest[..end];
    // A cut may leave half an escape; drop it and let the JSON decoder
    // unescape the rest.
    for _ in 0..6 {
        match serde_json::from_str::<String>(&format!("\"{raw}\"")) {
            Ok(message) => return Some(message),
            Err(_) if !raw.is_empty() => {
                let last = raw.char_indices().last().map_or(0, |(i, _)| i);
                raw = &raw[..last];
            }
            Err(_) => return None,
        }
    }
    None
}

/// A header number: digits only; past `u64` it saturates, never fails.
fn saturating_number(value: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(value).ok()?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

/// Seconds a server asks for, capped at [`MAX_SERVER_WAIT`].
fn server_wait(secs: u64) -> Duration {
    Duration::from_secs(secs).min(MAX_SERVER_WAIT)
}

/// `now + wait`, never overflowing: a wait past what `Instant` can hold
/// is a wait of [`MAX_SERVER_WAIT`].
fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait.min(MAX_SERVER_WAIT))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_SERVER_WAIT`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?;
    if let Some(secs) = saturating_number(value.as_bytes()) {
        return Some(server_wait(secs));
    }
    let at = httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_SERVER_WAIT),
    )
}

/// A redirect's `Location` as it may be shown: resolved against the
/// request URL, without userinfo, escaped and cut.
fn shown_location(request: &Url, raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let location = match request.join(text.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => redact_userinfo(&text),
    };
    shown(&location, 256)
}

pub(crate) use crate::net::is_loopback;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> ClientConfig {
        ClientConfig {
            base_url: url.into(),
            token: Token::new("t").expect("token"),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://api.northflank.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            assert!(Client::new(config(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.northflank.com",
            "http://10.0.0.1",
            "ftp://x",
            "not a url",
        ] {
            assert!(Client::new(config(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_non_http_scheme_is_unsupported_not_plain_http() {
        for url in ["ftp://127.0.0.1/", "file:///etc/passwd", "localhost:8080"] {
            let e = check_base_url(url).expect_err(url);
            assert!(
                matches!(e, ConfigError::UnsupportedScheme { .. }),
                "{url}: {e}"
            );
            assert!(!e.to_string().contains("plain http"), "{e}");
        }
    }

    #[test]
    fn userinfo_in_the_api_url_is_refused_without_echoing_it() {
        for url in [
            "https://admin:hunter2@api.example.com/",
            "http://hunter2@127.0.0.1:1",
            "https://admin:hunter2@exa mple.com/",
        ] {
            let e = check_base_url(url).expect_err(url).to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains("admin"), "{e}");
        }
        let e = check_base_url("https://u:p@api.example.com/v").expect_err("userinfo");
        assert_eq!(
            e.to_string(),
            "API URL `https://***@api.example.com/v` holds a user name or password; nfcron authenticates with the token only (Bearer). Remove the `user:password@` part"
        );
    }

    #[test]
    fn tokens_a_header_cannot_carry_are_named_not_echoed() {
        assert_eq!(check_token("nf-abc.DEF_123", "x"), Ok(()));
        for (token, kind) in [
            ("abc\ndef", "line break"),
            ("abc\rdef", "line break"),
            ("abc\0def", "control character"),
            ("abc\tdef", "control character"),
            ("abc def", "non-ASCII"),
            ("abcé", "non-ASCII"),
        ] {
            let e = check_token(token, "NORTHFLANK_API_TOKEN").expect_err(token);
            let text = e.to_string();
            assert!(text.contains(kind), "{text}");
            assert!(!text.contains("abc"), "{text}");
        }
    }

    #[test]
    fn body_bytes_held_at_once_are_capped_and_handed_back() {
        let total = AtomicUsize::new(0);
        let mut a = Held {
            total: &total,
            bytes: 0,
        };
        assert!(a.take(MAX_IN_FLIGHT - 10));
        {
            let mut b = Held {
                total: &total,
                bytes: 0,
            };
            assert!(!b.take(11), "past the cap together");
            assert!(b.take(10));
            assert_eq!(total.load(Ordering::Relaxed), MAX_IN_FLIGHT);
        }
        assert_eq!(total.load(Ordering::Relaxed), MAX_IN_FLIGHT - 10);
        drop(a);
        assert_eq!(total.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn header_numbers_saturate() {
        assert_eq!(saturating_number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(
            saturating_number(b"99999999999999999999999999"),
            Some(u64::MAX)
        );
        assert_eq!(saturating_number(b" 42 "), Some(42));
        assert_eq!(saturating_number(b"-1"), None);
        assert_eq!(saturating_number(b""), None);
        assert_eq!(server_wait(u64::MAX), MAX_SERVER_WAIT);
        // Far beyond anything, still an instant in the future.
        assert!(after(Duration::MAX) > Instant::now());
    }

    #[test]
    fn a_cut_error_body_still_yields_the_start_of_its_message() {
        let body = br#"{"error":{"status":400,"message":"disk \"full\" \u00e9tc and more"#;
        assert_eq!(
            partial_message(body).as_deref(),
            Some("disk \"full\" étc and more")
        );
        // Cut in the middle of an escape.
        assert_eq!(
            partial_message(br#"{"error":{"message":"abc\u00"#).as_deref(),
            Some("abc")
        );
        assert_eq!(partial_message(b"<html>"), None);
        let call = Call {
            method: "GET",
            path: "/v1/projects/p/jobs".into(),
            job: None,
        };
        let mut huge = br#"{"error":{"message":""#.to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_ERROR_BODY));
        let e = status_error(&call, StatusCode::BAD_REQUEST, &huge, None, &[]).to_string();
        assert!(e.len() < 2 * MAX_SHOWN, "{}", e.len());
        assert!(e.contains("xxxx") && e.ends_with("[truncated]"), "{e}");
    }

    #[test]
    fn a_location_is_shown_without_userinfo_or_control_characters() {
        let base = Url::parse("http://127.0.0.1:1/v1/projects/p/jobs/cron").expect("url");
        assert_eq!(
            shown_location(&base, b"http://user:pw@127.0.0.1:2/x"),
            "http://127.0.0.1:2/x"
        );
        assert_eq!(
            shown_location(&base, b"/elsewhere"),
            "http://127.0.0.1:1/elsewhere"
        );
        let long = format!("http://evil.example/{}", "a".repeat(10_000));
        assert!(shown_location(&base, long.as_bytes()).len() < 300);
        assert!(!shown_location(&base, b"http://h/\x1b[31m").contains('\x1b'));
    }

    #[test]
    fn error_messages_name_the_call_status_message_and_details() {
        let call = Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: Some("p/x".into()),
        };
        let body = br#"{"error":{"status":400,"message":"Validation failed","id":"e1","details":{"schedule":"is invalid"}}}"#;
        let e = status_error(&call, StatusCode::BAD_REQUEST, body, None, &[]);
        assert_eq!(
            e.to_string(),
            "PUT /v1/projects/p/jobs/cron (job p/x): HTTP 400: Validation failed (schedule: is invalid)"
        );
        assert!(!e.is_retryable());
        assert!(status_error(&call, StatusCode::TOO_MANY_REQUESTS, b"", None, &[]).is_retryable());
        assert!(status_error(&call, StatusCode::BAD_GATEWAY, b"<html>", None, &[]).is_retryable());
    }

    #[test]
    fn secret_values_the_api_quotes_back_are_shown_as_sensitive() {
        let call = Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: Some("p/x".into()),
        };
        let secret = "postgres://u:pw@db";
        // A message long enough to be cut: the secret sits across the cut.
        let message = format!(
            "{}\"runtimeEnvironment.DB\" with value \"{secret}\" fails",
            "x".repeat(MAX_SHOWN - 30)
        );
        let body = serde_json::json!({"error": {"status": 400, "message": message, "id": secret,
            "details": {"runtimeEnvironment.DB": format!("value {secret} refused"), secret: "key"}}});
        let bytes = body.to_string().into_bytes();
        let e = status_error(
            &call,
            StatusCode::BAD_REQUEST,
            &bytes,
            None,
            &[secret.to_string()],
        );
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("pw@db") && !text.contains("postgres://u"),
            "{text}"
        );
        assert!(text.contains("(sensitive)"), "{text}");
        // A body cut at the cap, inside the secret: the start of it goes.
        let text =
            format!(r#"{{"error":{{"status":400,"message":"value \"{secret}\" refused"}}}}"#);
        let inside = text.find(secret).expect("quoted") + "postgres://u:p".len();
        let cut = &text.as_bytes()[..inside];
        let e = status_error(
            &call,
            StatusCode::BAD_REQUEST,
            cut,
            None,
            &[secret.to_string()],
        );
        assert!(!e.to_string().contains("postgres://u"), "{e}");
        assert!(e.to_string().ends_with("(sensitive)"), "{e}");
    }
}
