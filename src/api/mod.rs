//! The Northflank client: typed calls over reqwest (rustls), a retry policy
//! and the hourly rate-limit budget.
//!
//! Every request carries the token in an `Authorization` header marked
//! sensitive; the token is a [`Token`], which never formats. Every request
//! is counted ([`Client::requests_sent`]): API calls are the scarcest
//! resource nfcron spends.

mod error;
mod retry;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value as Json;

pub use error::{ApiError, Call};
pub use retry::RetryPolicy;

use crate::manifest::JobKey;
use crate::secret::Token;

pub const DEFAULT_URL: &str = "https://api.northflank.com";
/// Pages a list may take before nfcron stops following the cursor.
const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("API URL `{0}` is not a valid URL")]
    BadUrl(String),
    #[error("API URL `{0}` uses plain http to a host that is not loopback; the token would travel in clear text. Use https")]
    Insecure(String),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
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
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    retry: RetryPolicy,
    budget: Arc<Mutex<RateLimit>>,
    sent: Arc<AtomicU64>,
    /// Set by a 401: the token is bad for every call, so the rest of the
    /// run sends nothing more.
    token_refused: Arc<AtomicBool>,
    observer: Observer,
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
        let base = Url::parse(&config.base_url)
            .map_err(|_| ConfigError::BadUrl(config.base_url.clone()))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            _ => return Err(ConfigError::Insecure(config.base_url.clone())),
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| {
                ConfigError::BadUrl("the token holds characters a header cannot".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("nfcron/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .build()
            .map_err(ConfigError::Client)?;
        Ok(Client {
            http,
            base,
            timeout: config.timeout,
            retry: config.retry,
            budget: Arc::new(Mutex::new(RateLimit::default())),
            sent: Arc::new(AtomicU64::new(0)),
            token_refused: Arc::new(AtomicBool::new(false)),
            observer: Observer::default(),
        })
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
    pub async fn put_cron_job(&self, key: &JobKey, spec: &Json) -> Result<Json, ApiError> {
        let call = self.call("PUT", key, &["jobs", "cron"], Some(key));
        self.send(Method::PUT, call, &[], Some(spec)).await
    }

    /// `GET .../jobs/{id}`; `None` when the job does not exist.
    pub async fn get_job(&self, key: &JobKey) -> Result<Option<Json>, ApiError> {
        let call = self.call("GET", key, &["jobs", &key.id], Some(key));
        not_found_is_none(self.send(Method::GET, call, &[], None).await)
    }

    /// `GET .../jobs/{id}/{what}` (`deployment`, `runtime-environment`, ...).
    pub async fn get_job_part(&self, key: &JobKey, what: &str) -> Result<Option<Json>, ApiError> {
        let call = self.call("GET", key, &["jobs", &key.id, what], Some(key));
        not_found_is_none(self.send(Method::GET, call, &[], None).await)
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
        for _ in 0..MAX_PAGES {
            let call = self.call("GET", &scope, &["jobs"], None);
            let mut query = vec![("per_page", "100".to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page = self
                .send_raw(Method::GET, call.clone(), &query, None)
                .await?;
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
            path.push_str(&format!("/teams/{team}"));
        }
        path.push_str(&format!("/projects/{}", key.project));
        for part in tail {
            path.push('/');
            path.push_str(part);
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
        body: Option<&Json>,
    ) -> Result<Json, ApiError> {
        let mut whole = self.send_raw(method, call, query, body).await?;
        Ok(whole.get_mut("data").map(Json::take).unwrap_or(Json::Null))
    }

    /// Sends with retries; returns the whole success body.
    async fn send_raw(
        &self,
        method: Method,
        call: Call,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Json, ApiError> {
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
            let retry_after = match &error {
                ApiError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            let delay = retry_after.unwrap_or(backoff);
            if started.elapsed() + delay > self.retry.max_time {
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
        body: Option<&Json>,
    ) -> Result<Json, ApiError> {
        if self.token_refused.load(Ordering::Relaxed) {
            return Err(ApiError::TokenRefused { call: call.clone() });
        }
        let mut request = self.http.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request.body(serde_json::to_vec(body).expect("JSON values serialise"));
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        let sent_at = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                self.observed(method, 0);
                return Err(self.transport(call, e));
            }
        };
        let status = response.status();
        self.observed(method, status.as_u16());
        self.observe(response.headers());
        let retry_after = retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(call, e))?;
        tracing::debug!(call = %call, status = status.as_u16(), ms = sent_at.elapsed().as_millis() as u64, "api");
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Json::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|source| ApiError::BadResponse {
                call: call.clone(),
                source,
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            self.token_refused.store(true, Ordering::Relaxed);
        }
        Err(status_error(call, status, &bytes, retry_after))
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

    fn observe(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut budget = self.budget.lock().expect("rate limit lock");
        if let Some(limit) = number("x-ratelimit-limit") {
            budget.limit = Some(limit);
        }
        if let Some(remaining) = number("x-ratelimit-remaining") {
            budget.remaining = Some(remaining);
        }
        if let Some(reset) = number("x-ratelimit-reset") {
            budget.reset_at = Some(Instant::now() + Duration::from_secs(reset));
        }
    }

    /// When the last response said the budget is used up, sends nothing
    /// until it resets, or gives up at once if that is too far away.
    async fn wait_for_budget(&self, call: &Call, started: Instant) -> Result<(), ApiError> {
        let wait = {
            let budget = self.budget.lock().expect("rate limit lock");
            match (budget.remaining, budget.reset_at) {
                (Some(0), Some(at)) => at.saturating_duration_since(Instant::now()),
                _ => return Ok(()),
            }
        };
        if started.elapsed() + wait > self.retry.max_time {
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

fn status_error(
    call: &Call,
    status: StatusCode,
    bytes: &[u8],
    retry_after: Option<Duration>,
) -> ApiError {
    let body: Json = serde_json::from_slice(bytes).unwrap_or(Json::Null);
    let error = body.get("error");
    let field = |k: &str| error.and_then(|e| e.get(k));
    ApiError::Status {
        call: Box::new(call.clone()),
        status: status.as_u16(),
        message: field("message")
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
        id: field("id").and_then(Json::as_str).map(str::to_string),
        details: field("details").cloned().map(Box::new),
        retry_after,
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

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
    fn error_messages_name_the_call_status_message_and_details() {
        let call = Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: Some("p/x".into()),
        };
        let body = br#"{"error":{"status":400,"message":"Validation failed","id":"e1","details":{"schedule":"is invalid"}}}"#;
        let e = status_error(&call, StatusCode::BAD_REQUEST, body, None);
        assert_eq!(
            e.to_string(),
            "PUT /v1/projects/p/jobs/cron (job p/x): HTTP 400: Validation failed (schedule: is invalid)"
        );
        assert!(!e.is_retryable());
        assert!(status_error(&call, StatusCode::TOO_MANY_REQUESTS, b"", None).is_retryable());
        assert!(status_error(&call, StatusCode::BAD_GATEWAY, b"<html>", None).is_retryable());
    }
}
