//! What can go wrong talking to Northflank, and whether to try again.

use std::time::Duration;

use serde_json::Value as Json;

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
        message: String,
        id: Option<String>,
        details: Option<Box<Json>>,
        /// From `Retry-After`, when the API sent one.
        retry_after: Option<Duration>,
    },
    #[error("{call}: no response within {timeout:?}")]
    Timeout { call: Call, timeout: Duration },
    #[error("{call}: connection failed")]
    Transport {
        call: Call,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call}: the rate limit is used up and resets in {reset_in:?}, later than --retry-max-time allows; nothing was sent")]
    RateLimited { call: Call, reset_in: Duration },
    #[error("{call}: not sent: the API refused the token earlier in this run (HTTP 401)")]
    TokenRefused { call: Call },
    #[error("{call}: the response is not the JSON the API documents")]
    BadResponse {
        call: Call,
        #[source]
        source: serde_json::Error,
    },
}

fn details_suffix(details: &Option<Box<Json>>) -> String {
    match details.as_deref() {
        Some(Json::Object(m)) if !m.is_empty() => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| match v {
                    Json::String(s) => format!("{k}: {s}"),
                    other => format!("{k}: {other}"),
                })
                .collect();
            format!(" ({})", parts.join("; "))
        }
        Some(Json::Null) | None => String::new(),
        Some(other) => format!(" ({other})"),
    }
}

impl ApiError {
    /// 429, 5xx, timeouts and connection errors may succeed later; any
    /// other 4xx will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            ApiError::Timeout { .. } | ApiError::Transport { .. } => true,
            ApiError::RateLimited { .. }
            | ApiError::TokenRefused { .. }
            | ApiError::BadResponse { .. } => false,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
