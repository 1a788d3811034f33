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

/// A `--notify` URL that cannot be used, named by its place in the list.
/// The URL itself is never shown whole: a Slack webhook URL is a secret.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--notify URL number {n}: not a URL")]
    Unparsable { n: usize },
    #[error("--notify URL number {n} ({shown}): use https://, slack+https://, or http:// to a loopback address")]
    Scheme { n: usize, shown: String },
}

impl Target {
    /// The `n`th (from 1) receiver.
    pub fn parse(n: usize, raw: &str) -> Result<Target, TargetError> {
        let (slack, rest) = match raw.trim().strip_prefix("slack+") {
            Some(rest) => (true, rest),
            None => (false, raw.trim()),
        };
        let url = Url::parse(rest).map_err(|_| TargetError::Unparsable { n })?;
        let plain_loopback = url.scheme() == "http" && crate::api::is_loopback(&url);
        if url.scheme() != "https" && !plain_loopback {
            let shown = shown(&url);
            return Err(TargetError::Scheme { n, shown });
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

/// `NFCRON_NOTIFY`'s receivers: split at commas that start a new URL
/// (`,https://`, `,http://`, `,slack+`), so that a comma inside a URL's
/// query stays part of it.
pub fn split_list(list: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for piece in list.split(',') {
        let starts = ["https://", "http://", "slack+"]
            .iter()
            .any(|s| piece.trim_start().starts_with(s));
        match urls.last_mut() {
            Some(last) if !starts => {
                last.push(',');
                last.push_str(piece);
            }
            _ => urls.push(piece.to_string()),
        }
    }
    urls.retain(|u| !u.trim().is_empty());
    urls
}

/// One POST to make: where, what, and with which headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: Url,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    /// For metrics and logs: `notification` or `github_status`.
    pub what: &'static str,
    /// Which of the sidecar's queues carries it: the receiver's place in
    /// the list, or one past the last for GitHub.
    pub lane: usize,
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
        .enumerate()
        .map(|(lane, target)| {
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
                lane,
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
        "team": event.team,
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
    format!(
        "sha256={}",
        crate::secret::hex(&mac.finalize().into_bytes())
    )
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
            // Cheap: the clients share their connection pools.
            let sender = self.clone();
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

/// POSTs the sidecar has yet to make, per receiver, at most this many.
const QUEUE: usize = 64;
/// After SIGTERM, what is queued or in flight still has this long.
const GRACE: Duration = Duration::from_secs(2);

/// The sidecar's delivery queues, one per receiver (and one for GitHub):
/// runs push, one task per receiver sends, in order. A full queue drops
/// what does not fit (counted), so a receiver that is slow or down never
/// holds a run back, nor delays the others.
#[derive(Clone)]
pub struct Queue {
    lanes: Vec<tokio::sync::mpsc::Sender<Outgoing>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Queue {
    /// The queues, and a task for each that sends until every `Queue`
    /// clone is dropped. Once `stop` turns true, what is queued or in
    /// flight has [`GRACE`] in all: shutdown waits for no receiver.
    pub fn start(
        sender: Sender,
        lanes: usize,
        metrics: Arc<crate::metrics::Metrics>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> (Queue, Vec<impl std::future::Future<Output = ()>>) {
        let (mut txs, mut tasks) = (Vec::new(), Vec::new());
        for _ in 0..lanes {
            let (tx, rx) = tokio::sync::mpsc::channel::<Outgoing>(QUEUE);
            txs.push(tx);
            tasks.push(lane(sender.clone(), rx, metrics.clone(), stop.clone()));
        }
        let queue = Queue {
            lanes: txs,
            metrics,
        };
        (queue, tasks)
    }

    pub fn push(&self, outs: Vec<Outgoing>) {
        use tokio::sync::mpsc::error::TrySendError;
        for out in outs {
            let what = out.what;
            let Some(lane) = self.lanes.get(out.lane) else {
                continue;
            };
            match lane.try_send(out) {
                Ok(()) => {}
                Err(TrySendError::Full(out)) => {
                    tracing::warn!(what, to = %shown(&out.url), "notification queue full: dropped");
                    self.metrics.delivered(what, "dropped");
                }
                Err(TrySendError::Closed(_)) => {
                    tracing::warn!(what, "notifications have stopped: dropped");
                    self.metrics.delivered(what, "dropped");
                }
            }
        }
    }
}

/// One receiver's sender: in order, until its queue closes.
async fn lane(
    sender: Sender,
    mut rx: tokio::sync::mpsc::Receiver<Outgoing>,
    metrics: Arc<crate::metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut until: Option<tokio::time::Instant> = None;
    while let Some(out) = rx.recv().await {
        let stopped = *stop.borrow();
        if until.is_none() && stopped {
            until = Some(tokio::time::Instant::now() + GRACE);
        }
        let send = sender.send(&out);
        tokio::pin!(send);
        let ok = match until {
            Some(at) => tokio::time::timeout_at(at, &mut send)
                .await
                .unwrap_or(false),
            None => {
                let done = tokio::select! {
                    ok = &mut send => Some(ok),
                    _ = stop.wait_for(|s| *s) => None,
                };
                match done {
                    Some(ok) => ok,
                    None => {
                        let at = tokio::time::Instant::now() + GRACE;
                        until = Some(at);
                        tokio::time::timeout_at(at, &mut send)
                            .await
                            .unwrap_or(false)
                    }
                }
            }
        };
        metrics.delivered(out.what, if ok { "sent" } else { "failed" });
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
            Target::parse(1, "https://hooks.example.com/x?token=s3cret"),
            Ok(Target::Json(_))
        ));
        assert!(matches!(
            Target::parse(1, "slack+https://hooks.slack.com/services/T/B/s3cret"),
            Ok(Target::Slack(_))
        ));
        assert!(matches!(
            Target::parse(1, "http://127.0.0.1:9/hook"),
            Ok(Target::Json(_))
        ));
        for bad in [
            "http://hooks.example.com/s3cret",
            "ftp://127.0.0.1/s3cret",
            "slack+http://hooks.slack.com/s3cret",
            "not a url s3cret",
        ] {
            let e = Target::parse(2, bad).expect_err(bad).to_string();
            assert!(e.contains("number 2"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        let url = Url::parse("https://hooks.slack.com/services/T/B/s3cret").expect("url");
        assert_eq!(shown(&url), "https://hooks.slack.com");
    }

    #[test]
    fn a_list_splits_only_where_a_new_url_starts() {
        assert_eq!(
            split_list(
                "https://a.example/h?sig=abc,def, slack+https://b.example/x,http://127.0.0.1:1/"
            ),
            [
                "https://a.example/h?sig=abc,def",
                " slack+https://b.example/x",
                "http://127.0.0.1:1/"
            ]
        );
        assert_eq!(split_list(""), Vec::<String>::new());
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
            team: None,
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
