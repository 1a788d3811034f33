//! Where notifications go and how they get there: receivers' URLs checked
//! once, bodies made (generic JSON signed with HMAC-SHA256, Slack), and
//! POSTs with a timeout per attempt, a few retries with backoff, and no
//! redirect. A receiver that hangs costs a bounded wait, never a run.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use sha2::Sha256;
use url::Url;

use super::Event;
use crate::secret::Token;

/// A receiver of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `https://...` (or `http://` to loopback): the generic JSON body.
    Json(Url),
    /// `slack+https://...`: a Slack incoming webhook.
    Slack(Url),
}

/// A `--notify` URL that cannot be used. The URL itself is never shown
/// whole: a Slack webhook URL is a secret.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--notify {shown}: not a URL")]
    Unparsable { shown: String },
    #[error("--notify {shown}: use https://, slack+https://, or http:// to a loopback address")]
    Scheme { shown: String },
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let (slack, rest) = match raw.trim().strip_prefix("slack+") {
            Some(rest) => (true, rest),
            None => (false, raw.trim()),
        };
        let url = Url::parse(rest).map_err(|_| TargetError::Unparsable {
            shown: shown_raw(raw),
        })?;
        let plain_loopback = url.scheme() == "http" && crate::api::is_loopback(&url);
        if url.scheme() != "https" && !plain_loopback {
            return Err(TargetError::Scheme { shown: shown(&url) });
        }
        Ok(if slack {
            Target::Slack(url)
        } else {
            Target::Json(url)
        })
    }

    fn url(&self) -> &Url {
        match self {
            Target::Json(url) | Target::Slack(url) => url,
        }
    }
}

/// `scheme://host:port`, what logs and errors say of a receiver: its path
/// and query may hold a secret (Slack's do).
pub fn shown(url: &Url) -> String {
    let host = url
        .host_str()
        .map(|h| crate::source::display_bytes(h.as_bytes()))
        .unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

fn shown_raw(raw: &str) -> String {
    let scheme: String = raw
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .take(20)
        .collect();
    format!("`{scheme}:...`")
}

/// One POST to make: where, what, and with which headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    /// For metrics and logs: `notification` or `github_status`.
    pub what: &'static str,
}

/// The POSTs that tell `targets` of `event`, signed when `secret` is set.
pub fn outgoing(
    targets: &[Target],
    secret: Option<&Token>,
    event: &Event,
    now: jiff::Timestamp,
) -> Vec<Outgoing> {
    targets
        .iter()
        .map(|target| {
            let body = match target {
                Target::Json(_) => json_body(event, now),
                Target::Slack(_) => slack_body(event),
            };
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let (Target::Json(_), Some(secret)) = (target, secret) {
                let value = HeaderValue::from_str(&signature(secret, &body))
                    .expect("hex is a valid header value");
                headers.insert(HeaderName::from_static("x-signature"), value);
            }
            Outgoing {
                url: target.url().clone(),
                body,
                headers,
                what: "notification",
            }
        })
        .collect()
}

/// The generic body: one event, every job it concerns.
pub fn json_body(event: &Event, now: jiff::Timestamp) -> Vec<u8> {
    let jobs: Vec<serde_json::Value> = event
        .jobs
        .iter()
        .map(|j| {
            serde_json::json!({
                "id": j.id,
                "action": j.action,
                "result": j.result,
                "message": j.message,
            })
        })
        .collect();
    let body = serde_json::json!({
        "event": event.kind.as_str(),
        "severity": event.kind.severity(),
        "project": event.project,
        "revision": event.revision,
        "jobs": jobs,
        "summary": event.summary(),
        "timestamp": now.to_string(),
    });
    serde_json::to_vec(&body).expect("JSON values serialise")
}

/// Jobs listed in a Slack message; the rest are counted.
const SLACK_JOBS: usize = 20;

/// Slack's incoming-webhook body. `&`, `<` and `>` are escaped as Slack
/// asks, so that no name or message can mention `@channel` or forge a link.
pub fn slack_body(event: &Event) -> Vec<u8> {
    let mut text = slack_escape(&event.summary());
    for job in event.jobs.iter().take(SLACK_JOBS) {
        text.push_str(&format!("\n• `{}` {}", slack_escape(&job.id), job.result));
        if let Some(message) = &job.message {
            text.push_str(&format!(": {}", slack_escape(message)));
        }
    }
    if event.jobs.len() > SLACK_JOBS {
        text.push_str(&format!("\n… and {} more", event.jobs.len() - SLACK_JOBS));
    }
    serde_json::to_vec(&serde_json::json!({ "text": text })).expect("JSON values serialise")
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `sha256=<hex>`: the HMAC-SHA256 of the exact body under `secret`, the
/// scheme the sidecar's webhook listener verifies.
pub fn signature(secret: &Token, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Each attempt's time limit (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits before the second and third attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

/// Sends [`Outgoing`] POSTs. Plain http goes to loopback only, so it never
/// takes a proxy from the environment; nothing follows a redirect.
#[derive(Debug, Clone)]
pub struct Sender {
    direct: reqwest::Client,
    proxied: reqwest::Client,
}

impl Sender {
    pub fn new() -> Result<Sender, reqwest::Error> {
        let build = |proxy: bool| {
            let mut builder = reqwest::Client::builder();
            if !proxy {
                builder = builder.no_proxy();
            }
            builder
                .user_agent(concat!("nfcron/", env!("CARGO_PKG_VERSION")))
                .timeout(ATTEMPT_TIMEOUT)
                .connect_timeout(ATTEMPT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
        };
        Ok(Sender {
            direct: build(false)?,
            proxied: build(true)?,
        })
    }

    /// POSTs `out`, retrying what may succeed later (no answer, 429, 5xx)
    /// up to three attempts. Returns whether the receiver took it.
    pub async fn send(&self, out: &Outgoing) -> bool {
        let client = if out.url.scheme() == "http" {
            &self.direct
        } else {
            &self.proxied
        };
        for attempt in 0..=BACKOFF.len() {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF[attempt - 1]).await;
            }
            let sent = client
                .post(out.url.clone())
                .headers(out.headers.clone())
                .body(out.body.clone())
                .send()
                .await;
            let retry = match sent {
                Ok(response) if response.status().is_success() => return true,
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::warn!(to = %shown(&out.url), status, what = out.what, "not delivered");
                    status == 429 || status >= 500
                }
                Err(e) => {
                    let why = if e.is_timeout() {
                        "no answer in time"
                    } else {
                        "connection failed"
                    };
                    tracing::warn!(to = %shown(&out.url), what = out.what, "not delivered: {why}");
                    true
                }
            };
            if !retry {
                break;
            }
        }
        false
    }

    /// Sends every POST at once and waits at most `deadline` for them all:
    /// what is still pending then is given up (and counted failed).
    pub async fn send_all(&self, outs: Vec<Outgoing>, deadline: Duration) -> Tally {
        let total = outs.len();
        let mut tasks = tokio::task::JoinSet::new();
        for out in outs {
            let sender = Arc::new(self.clone());
            tasks.spawn(async move { sender.send(&out).await });
        }
        let mut tally = Tally::default();
        let collect = async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(ok) = done {
                    tally.record(ok);
                }
            }
        };
        if tokio::time::timeout(deadline, collect).await.is_err() {
            tracing::warn!(
                pending = total - tally.sent - tally.failed,
                "notifications still pending after {deadline:?}: given up"
            );
        }
        tally.failed = total - tally.sent;
        tally
    }
}

/// POSTs the sidecar has yet to make, at most this many.
const QUEUE: usize = 64;

/// The sidecar's delivery queue: runs push, one task sends, in order. A
/// full queue drops what does not fit (counted), so a receiver that is
/// slow or down never holds a run back.
#[derive(Clone)]
pub struct Queue {
    tx: tokio::sync::mpsc::Sender<Outgoing>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Queue {
    /// The queue, and the task that empties it until `stop` turns true
    /// (a POST in flight then is given up: shutdown waits for no receiver).
    pub fn start(
        sender: Sender,
        metrics: Arc<crate::metrics::Metrics>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> (Queue, impl std::future::Future<Output = ()>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Outgoing>(QUEUE);
        let counted = metrics.clone();
        let task = async move {
            loop {
                let out = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    out = rx.recv() => match out {
                        Some(out) => out,
                        None => return,
                    },
                };
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    ok = sender.send(&out) => {
                        counted.delivered(out.what, if ok { "sent" } else { "failed" });
                    }
                }
            }
        };
        (Queue { tx, metrics }, task)
    }

    pub fn push(&self, outs: Vec<Outgoing>) {
        for out in outs {
            let what = out.what;
            if self.tx.try_send(out).is_err() {
                tracing::warn!(what, "notification queue full: dropped");
                self.metrics.delivered(what, "dropped");
            }
        }
    }
}

/// How a batch of POSTs went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub sent: usize,
    pub failed: usize,
}

impl Tally {
    fn record(&mut self, ok: bool) {
        if ok {
            self.sent += 1;
        } else {
            self.failed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_are_https_slack_or_loopback_http_and_never_shown_whole() {
        assert!(matches!(
            Target::parse("https://hooks.example.com/x?token=s3cret"),
            Ok(Target::Json(_))
        ));
        assert!(matches!(
            Target::parse("slack+https://hooks.slack.com/services/T/B/s3cret"),
            Ok(Target::Slack(_))
        ));
        assert!(matches!(
            Target::parse("http://127.0.0.1:9/hook"),
            Ok(Target::Json(_))
        ));
        for bad in [
            "http://hooks.example.com/s3cret",
            "ftp://127.0.0.1/s3cret",
            "slack+http://hooks.slack.com/s3cret",
            "not a url s3cret",
        ] {
            let e = Target::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
        let url = Url::parse("https://hooks.slack.com/services/T/B/s3cret").expect("url");
        assert_eq!(shown(&url), "https://hooks.slack.com");
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_exact_body() {
        // RFC 4231 test case 2.
        let key = Token::new("Jefe").expect("token");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let event = Event {
            kind: super::super::EventKind::Rejected,
            project: Some("p".into()),
            revision: None,
            jobs: vec![super::super::JobEntry {
                id: "<!channel>".into(),
                action: "create".into(),
                result: "rejected".into(),
                message: Some("see <https://evil.example|here> & more".into()),
            }],
        };
        let body: serde_json::Value = serde_json::from_slice(&slack_body(&event)).expect("json");
        let text = body["text"].as_str().expect("text");
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(text.contains("&amp; more"), "{text}");
    }
}
