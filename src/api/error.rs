//! What can go wrong talking to Northflank, and whether to try again.
//!
//! Everything a server sends that ends up in a message (the error
//! message, its id and details, a redirect's `Location`) passes through
//! [`shown`]: control characters escaped, at most [`MAX_SHOWN`] bytes. A
//! hostile or broken server can neither flood the output nor forge lines.

use std::time::Duration;

use serde_json::Value as Json;

/// The most bytes of server-supplied text shown in any one message.
pub const MAX_SHOWN: usize = 1024;

/// Which call failed, for messages: `PUT /v1/projects/p/jobs/cron (job p/x)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    /// The job the call was for, when it was for one.
    pub job: Option<String>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(job) = &self.job {
            write!(f, " (job {job})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error body.
    #[error("{call}: HTTP {status}: {message}{}", details_suffix(.details))]
    Status {
        call: Box<Call>,
        status: u16,
        /// Already passed through [`shown`].
        message: String,
        id: Option<String>,
        details: Option<Box<Json>>,
        /// From `Retry-After`, when the API sent one.
        retry_after: Option<Duration>,
    },
    /// A 3xx. Redirects are never followed: the request (token and body)
    /// goes to the API URL and nowhere else.
    #[error("{call}: HTTP {status} redirect to {}; nfcron does not follow redirects, nothing was sent there", .location.as_deref().unwrap_or("(no Location header)"))]
    Redirect {
        call: Call,
        status: u16,
        /// The `Location` header, without userinfo, escaped and truncated.
        location: Option<String>,
    },
    /// The server asked (`Retry-After`) for a wait past `--retry-max-time`.
    #[error("{call}: {}: the API asks to wait {}; beyond --retry-max-time ({}), not retried", wait_reason(*.status), asked(*.wait), human(*.max_time))]
    WaitTooLong {
        call: Call,
        status: u16,
        wait: Duration,
        max_time: Duration,
    },
    #[error("{call}: no response within {timeout:?}")]
    Timeout { call: Call, timeout: Duration },
    #[error("{call}: connection failed")]
    Transport {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: the rate limit is used up and resets in {}, later than --retry-max-time allows; nothing was sent", asked(*.reset_in))]
    RateLimited { call: Call, reset_in: Duration },
    #[error("{call}: not sent: the API refused the token earlier in this run (HTTP 401)")]
    TokenRefused { call: Call },
    #[error("{call}: the response is not the JSON the API documents")]
    BadResponse {
        call: Call,
        #[source]
        source: serde_json::Error,
    },
    /// A response body (or a list's pages together) past the cap; reading
    /// stopped there, so an endless body costs bounded memory.
    #[error("{call}: the response is larger than {} MiB; stopped reading it", .limit / (1024 * 1024))]
    TooLarge { call: Call, limit: usize },
    /// The responses being read at once together passed their cap (only a
    /// hostile server sends that much).
    #[error("{call}: the responses being read at once passed {} MiB together; stopped reading this one", .limit / (1024 * 1024))]
    Crowded { call: Call, limit: usize },
}

fn wait_reason(status: u16) -> String {
    if status == 429 {
        "rate limited".to_string()
    } else {
        format!("HTTP {status}")
    }
}

fn details_suffix(details: &Option<Box<Json>>) -> String {
    let text = match details.as_deref() {
        Some(Json::Object(m)) if !m.is_empty() => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| match v {
                    Json::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect();
            parts.join("; ")
        }
        Some(Json::Null) | Some(Json::Object(_)) | None => return String::new(),
        Some(other) => other.to_string(),
    };
    format!(" ({})", shown(&text, MAX_SHOWN))
}

impl ApiError {
    /// 408, 409, 429, 5xx, timeouts and connection errors may succeed
    /// later; any other 4xx, a redirect, or a body past the cap will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => matches!(*status, 408 | 409 | 429) || *status >= 500,
            ApiError::Timeout { .. } | ApiError::Transport { .. } => true,
            ApiError::RateLimited { .. }
            | ApiError::Redirect { .. }
            | ApiError::WaitTooLong { .. }
            | ApiError::TokenRefused { .. }
            | ApiError::BadResponse { .. }
            | ApiError::TooLarge { .. }
            | ApiError::Crowded { .. } => false,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. }
            | ApiError::Redirect { status, .. }
            | ApiError::WaitTooLong { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Server-supplied text as it may be shown: control characters escaped
/// (`\n`, `\u{1b}`), cut at a character boundary to at most `max` bytes,
/// with a marker when cut.
pub fn shown(text: &str, max: usize) -> String {
    const MARK: &str = "… [truncated]";
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let before = out.len();
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            out.push_str(MARK);
            return out;
        }
    }
    out
}

/// Bidirectional overrides reorder what a terminal shows.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A wait a server asked for; waits are capped at
/// [`MAX_SERVER_WAIT`](super::MAX_SERVER_WAIT), so one there may have been
/// longer.
fn asked(wait: Duration) -> String {
    if wait >= super::MAX_SERVER_WAIT {
        format!("{} or more", human(wait))
    } else {
        human(wait)
    }
}

/// A duration the way people say it: `3650d`, `2h30m`, `45s`, `200ms`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (mins, "m"), (s, "s")]
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        format!("{}ms", d.as_millis())
    } else {
        parts.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_control_characters_and_truncates_at_a_char_boundary() {
        assert_eq!(shown("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
        let long = "é".repeat(2000);
        let cut = shown(&long, MAX_SHOWN);
        assert!(
            cut.len() <= MAX_SHOWN + "… [truncated]".len(),
            "{}",
            cut.len()
        );
        assert!(cut.ends_with("… [truncated]"));
        assert!(cut.starts_with("éé"));
        assert_eq!(shown("short", 5), "short");
    }

    #[test]
    fn redirects_and_long_waits_read_as_what_they_are() {
        let call = Call {
            method: "PUT",
            path: "/v1/projects/p/jobs/cron".into(),
            job: None,
        };
        let e = ApiError::Redirect {
            call: call.clone(),
            status: 308,
            location: None,
        };
        assert!(e
            .to_string()
            .contains("HTTP 308 redirect to (no Location header)"));
        assert!(!e.is_retryable());
        let e = ApiError::WaitTooLong {
            call,
            status: 503,
            wait: Duration::from_secs(7200),
            max_time: Duration::from_secs(120),
        };
        assert_eq!(
            e.to_string(),
            "PUT /v1/projects/p/jobs/cron: HTTP 503: the API asks to wait 2h; beyond --retry-max-time (2m), not retried"
        );
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(3650 * 86_400)), "3650d");
        assert_eq!(human(Duration::from_secs(86_400 + 3 * 3600 + 5)), "1d3h");
        assert_eq!(human(Duration::from_secs(150)), "2m30s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_millis(200)), "200ms");
        assert!(!human(Duration::from_secs(u64::MAX)).is_empty());
    }
}
