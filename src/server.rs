//! The sidecar's HTTP listener: `GET /healthz`, `GET /readyz`,
//! `GET /metrics` and `POST /hooks/git`.
//!
//! The webhook only ever *triggers* a fetch: its payload is never trusted
//! for content. It is verified with `NFCRON_WEBHOOK_SECRET` against GitHub's
//! `X-Hub-Signature-256`, a generic `X-Signature: sha256=<hex>` (both HMAC
//! SHA-256 of the body) or GitLab's `X-Gitlab-Token`, always in constant
//! time; bodies over 1 MiB are refused.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::secret::Token;

/// Webhook bodies larger than this are refused.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// What `/readyz` reports.
#[derive(Debug, Default)]
pub struct Readiness {
    pub ready: bool,
    /// Why not, when not.
    pub reason: String,
}

/// State the listener shares with the daemon.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub readiness: Mutex<Readiness>,
    /// `NFCRON_WEBHOOK_SECRET`; without it the webhook is off.
    pub webhook_secret: Option<Token>,
    /// Asks the daemon for a fetch and reconcile (coalesced there).
    pub webhook: mpsc::Sender<()>,
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    let text = "text/plain; charset=utf-8";
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, text, "ok\n"),
        (&Method::GET, "/readyz") => {
            let r = shared.readiness.lock().expect("readiness lock");
            if r.ready {
                reply(StatusCode::OK, text, "ready\n")
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    text,
                    format!("not ready: {}\n", r.reason),
                )
            }
        }
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        ),
        (&Method::POST, "/hooks/git") => webhook(&shared, req).await,
        _ => reply(StatusCode::NOT_FOUND, text, "not found\n"),
    })
}

async fn webhook(shared: &Shared, req: Request<Incoming>) -> Reply {
    let text = "text/plain; charset=utf-8";
    let Some(secret) = &shared.webhook_secret else {
        return reply(
            StatusCode::NOT_FOUND,
            text,
            "webhook disabled: set NFCRON_WEBHOOK_SECRET\n",
        );
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_WEBHOOK_BYTES) {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, text, "body over 1 MiB\n");
    }
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_WEBHOOK_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, text, "body over 1 MiB\n"),
    };
    if !verify(&headers, &body, secret.expose().as_bytes()) {
        tracing::warn!("webhook with a missing or bad signature refused");
        return reply(StatusCode::UNAUTHORIZED, text, "bad signature\n");
    }
    // A full queue means a fetch is already pending: bursts coalesce.
    let _ = shared.webhook.try_send(());
    reply(StatusCode::ACCEPTED, text, "fetch scheduled\n")
}

/// Whether the request carries a valid signature of `body` under `secret`.
pub fn verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(sig) = header("x-hub-signature-256").or_else(|| header("x-signature")) {
        let Some(hex) = sig.strip_prefix("sha256=") else {
            return false;
        };
        let Some(expected) = decode_hex(hex.trim()) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(body);
        return mac.verify_slice(&expected).is_ok();
    }
    if let Some(token) = header("x-gitlab-token") {
        return token.as_bytes().ct_eq(secret).into();
    }
    false
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
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
}
