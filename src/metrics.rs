//! The sidecar's Prometheus metrics (prometheus-client's registry and text
//! exposition). Counters only ever go up; gauges are set after each
//! reconcile from its report.
//!
//! Two exposition formats, chosen by the scrape's `Accept` header
//! ([`Format::negotiate`]): OpenMetrics 1.0 when asked for, Prometheus text
//! 0.0.4 otherwise. prometheus-client writes only OpenMetrics; the 0.0.4
//! text is derived from it ([`to_text_004`]): a counter family is named
//! with its `_total` suffix there (the 0.0.4 parser looks for HELP and
//! TYPE under the sample's name), and `# UNIT` and `# EOF` do not exist.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::apply::Outcome;
use crate::plan::{Action, Drift};
use crate::reconcile::RunReport;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    runs: Family<Labels, Counter>,
    duration: Histogram,
    jobs: Family<Labels, Gauge>,
    drift: Counter,
    api_requests: Family<Labels, Counter>,
    ratelimit_remaining: Gauge,
    ratelimit_limit: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    revision: Family<Labels, Gauge>,
    current_revision: Mutex<Option<String>>,
    http_refused: Family<Labels, Counter>,
    token_refused: Gauge,
    leader: Gauge,
    notifications: Family<Labels, Counter>,
    github_statuses: Family<Labels, Counter>,
    source_verified: Gauge,
}

/// An exposition format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, the Prometheus text format.
    Text004,
}

impl Format {
    /// OpenMetrics when the `Accept` header asks for it at least as much as
    /// for `text/plain`; 0.0.4 otherwise (also without a header, or with
    /// one that cannot be read).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text004
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::default(),
            runs: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            jobs: Family::default(),
            drift: Counter::default(),
            api_requests: Family::default(),
            ratelimit_remaining: Gauge::default(),
            ratelimit_limit: Gauge::default(),
            last_success: Gauge::default(),
            revision: Family::default(),
            current_revision: Mutex::new(None),
            http_refused: Family::default(),
            token_refused: Gauge::default(),
            leader: Gauge::default(),
            notifications: Family::default(),
            github_statuses: Family::default(),
            source_verified: Gauge::default(),
        };
        // Every result from the start: an alert on `failed` needs the
        // series before the first failure.
        for result in ["sent", "failed", "dropped"] {
            for family in [&metrics.notifications, &metrics.github_statuses] {
                let _ = family.get_or_create(&vec![("result".into(), result.to_string())]);
            }
        }
        // Nothing refused yet.
        metrics.source_verified.set(1);
        // The exposition lists families in the order they are registered.
        metrics.register_reconcile();
        metrics.register_api();
        metrics.register_last_success();
        metrics.register_sidecar();
        metrics
    }

    /// Runs, their duration, the jobs they leave and the drift they find.
    fn register_reconcile(&mut self) {
        self.registry.register(
            "nfcron_reconcile_runs",
            "Reconcile runs by result",
            self.runs.clone(),
        );
        self.registry.register(
            "nfcron_reconcile_duration_seconds",
            "Wall time of reconcile runs",
            self.duration.clone(),
        );
        self.registry.register(
            "nfcron_jobs",
            "Managed jobs by state after the last run",
            self.jobs.clone(),
        );
        self.registry.register(
            "nfcron_drift_detected",
            "Jobs found drifted by live reads",
            self.drift.clone(),
        );
    }

    /// The Northflank API: requests and the rate-limit budget.
    fn register_api(&mut self) {
        self.registry.register(
            "nfcron_api_requests",
            "Northflank API requests sent, by method and status",
            self.api_requests.clone(),
        );
        self.registry.register(
            "nfcron_api_ratelimit_remaining",
            "x-ratelimit-remaining of the last API response",
            self.ratelimit_remaining.clone(),
        );
        self.registry.register(
            "nfcron_api_ratelimit_limit",
            "x-ratelimit-limit of the last API response (the budget of a window; alert on remaining below a share of it)",
            self.ratelimit_limit.clone(),
        );
    }

    /// The last successful reconcile: when, and from which revision.
    fn register_last_success(&mut self) {
        self.registry.register(
            "nfcron_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile",
            self.last_success.clone(),
        );
        self.registry.register(
            "nfcron_source_revision_info",
            "The source revision last reconciled",
            self.revision.clone(),
        );
    }

    /// The sidecar's own health: its listener, the token, leadership,
    /// deliveries and the source's signature.
    fn register_sidecar(&mut self) {
        self.registry.register(
            "nfcron_http_refused",
            "Listener requests refused, by reason",
            self.http_refused.clone(),
        );
        self.registry.register(
            "nfcron_token_refused",
            "1 while the API refuses the token (its last answer to us was a 401), else 0",
            self.token_refused.clone(),
        );
        self.registry.register(
            "nfcron_leader",
            "1 while this replica leads (applies), 0 while it stands by; 1 without a shared (PostgreSQL) state",
            self.leader.clone(),
        );
        self.registry.register(
            "nfcron_notifications",
            "Notifications (--notify) by result: sent, failed (after retries), dropped (queue full)",
            self.notifications.clone(),
        );
        self.registry.register(
            "nfcron_github_statuses",
            "GitHub commit statuses (--github-status) by result: sent, failed, dropped",
            self.github_statuses.clone(),
        );
        self.registry.register(
            "nfcron_source_verified",
            "0 while the Git source's tip is refused by --verify-signatures (the last verified revision stays applied), else 1; 1 without --verify-signatures",
            self.source_verified.clone(),
        );
    }

    /// A notification or commit status (`what`) sent, failed or dropped.
    pub fn delivered(&self, what: &str, result: &str) {
        let family = if what == "github_status" {
            &self.github_statuses
        } else {
            &self.notifications
        };
        family
            .get_or_create(&vec![("result".into(), result.to_string())])
            .inc();
    }

    /// Whether the Git source's tip was accepted by --verify-signatures
    /// (always, without it).
    pub fn source_verified(&self, verified: bool) {
        self.source_verified.set(i64::from(verified));
    }

    /// Whether this replica leads (applies).
    pub fn leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A listener request refused (`unsigned`, `malformed`, `bad_signature`,
    /// `too_large`, `body_timeout`, `busy`).
    pub fn http_refused(&self, reason: &str) {
        self.http_refused
            .get_or_create(&vec![("reason".into(), reason.to_string())])
            .inc();
    }

    /// Whether the API's last answer about the token was a 401.
    pub fn token_refused(&self) -> bool {
        self.token_refused.get() == 1
    }

    /// One API response (`status` 0: no response). A 401 sets
    /// `nfcron_token_refused`; a 2xx, the token accepted, clears it.
    pub fn api_request(&self, method: &str, status: u16) {
        match status {
            401 => {
                self.token_refused.set(1);
            }
            200..=299 => {
                self.token_refused.set(0);
            }
            _ => {}
        }
        let status = if status == 0 {
            "error".to_string()
        } else {
            status.to_string()
        };
        self.api_requests
            .get_or_create(&vec![
                ("method".into(), method.to_string()),
                ("status".into(), status),
            ])
            .inc();
    }

    pub fn ratelimit_remaining(&self, remaining: u64) {
        self.ratelimit_remaining.set(remaining as i64);
    }

    pub fn ratelimit_limit(&self, limit: u64) {
        self.ratelimit_limit.set(limit as i64);
    }

    /// A run that could not reconcile (the source failed).
    pub fn failed_run(&self, seconds: f64) {
        self.runs
            .get_or_create(&vec![("result".into(), "failure".into())])
            .inc();
        self.duration.observe(seconds);
    }

    /// What a finished reconcile found and did.
    pub fn record(&self, run: &RunReport, seconds: f64) {
        let failed = run
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed(_)))
            .count();
        let rejected = run.plan.count(Action::Rejected)
            + run
                .outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Rejected(_)))
                .count();
        let invalid = run.plan.count(Action::Invalid);
        let drifted = run.plan.drifted();
        let in_sync = run
            .plan
            .steps
            .iter()
            .zip(&run.outcomes)
            .filter(|(s, o)| {
                matches!(o, Outcome::Applied)
                    || (s.action() == Action::Unchanged && !s.drift().is_some_and(Drift::found))
            })
            .count();
        for (state, n) in [
            ("in_sync", in_sync),
            ("drifted", drifted),
            ("failed", failed),
            ("invalid", invalid),
            ("rejected", rejected),
        ] {
            self.jobs
                .get_or_create(&vec![("state".into(), state.into())])
                .set(n as i64);
        }
        self.drift.inc_by(drifted as u64);
        let result = if failed > 0 || invalid > 0 || rejected > 0 {
            "failure"
        } else {
            "success"
        };
        self.runs
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
        self.duration.observe(seconds);
        if result == "success" {
            self.last_success
                .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        }
        if let Some(rev) = &run.revision {
            let mut current = self.current_revision.lock().expect("revision lock");
            if current.as_deref() != Some(rev) {
                self.revision.clear();
                self.revision
                    .get_or_create(&vec![("revision".into(), rev.clone())])
                    .set(1);
                *current = Some(rev.clone());
            }
        }
    }

    /// The exposition in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        match format {
            Format::OpenMetrics => out,
            Format::Text004 => to_text_004(&out),
        }
    }
}

/// OpenMetrics text -> Prometheus text 0.0.4: counter families take their
/// samples' `_total` name in HELP and TYPE; types 0.0.4 lacks become
/// `untyped`; `# UNIT` and `# EOF` lines go. Samples are the same in both.
pub fn to_text_004(openmetrics: &str) -> String {
    use std::collections::HashSet;
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| kind.trim() == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) && !name.ends_with("_total") {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                let tail = match (prefix, tail) {
                    ("# TYPE ", "counter" | "gauge" | "histogram" | "summary") => tail,
                    ("# TYPE ", _) => "untyped",
                    _ => tail,
                };
                out.push_str(prefix);
                out.push_str(&name);
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_lists_every_family_in_registration_order() {
        // Dashboards diff scrapes: the families, their types and their
        // order are part of the interface.
        let m = Metrics::new();
        // A family is listed once it has a series.
        for family in [&m.runs, &m.api_requests, &m.http_refused] {
            family.get_or_create(&vec![("k".into(), "v".into())]).inc();
        }
        for family in [&m.jobs, &m.revision] {
            family.get_or_create(&vec![("k".into(), "v".into())]).set(1);
        }
        let text = m.render(Format::OpenMetrics);
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            families,
            [
                "nfcron_reconcile_runs counter",
                "nfcron_reconcile_duration_seconds histogram",
                "nfcron_jobs gauge",
                "nfcron_drift_detected counter",
                "nfcron_api_requests counter",
                "nfcron_api_ratelimit_remaining gauge",
                "nfcron_api_ratelimit_limit gauge",
                "nfcron_last_success_timestamp_seconds gauge",
                "nfcron_source_revision_info gauge",
                "nfcron_http_refused counter",
                "nfcron_token_refused gauge",
                "nfcron_leader gauge",
                "nfcron_notifications counter",
                "nfcron_github_statuses counter",
                "nfcron_source_verified gauge",
            ]
        );
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        use Format::*;
        for (accept, want) in [
            (None, Text004),
            (Some(""), Text004),
            (Some("text/plain;version=0.0.4"), Text004),
            (Some("*/*"), Text004),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("Application/OpenMetrics-Text; version=1.0.0"), OpenMetrics),
            // What Prometheus itself sends.
            (
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.9"),
                Text004,
            ),
            (Some("application/openmetrics-text;q=0"), Text004),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn text_004_names_counter_families_with_total() {
        let m = Metrics::new();
        m.api_request("PUT", 200);
        m.http_refused("busy");
        let text = m.render(Format::Text004);
        for line in [
            "# HELP nfcron_api_requests_total Northflank API requests sent, by method and status.",
            "# TYPE nfcron_api_requests_total counter",
            "nfcron_api_requests_total{method=\"PUT\",status=\"200\"} 1",
            "# TYPE nfcron_http_refused_total counter",
            "# TYPE nfcron_drift_detected_total counter",
            "# TYPE nfcron_reconcile_duration_seconds histogram",
            "# TYPE nfcron_token_refused gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let open = m.render(Format::OpenMetrics);
        assert!(
            open.contains("# TYPE nfcron_api_requests counter"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn token_refused_is_set_by_a_401_and_cleared_by_a_2xx() {
        let m = Metrics::new();
        let value = |m: &Metrics| {
            m.render(Format::Text004)
                .lines()
                .find_map(|l| l.strip_prefix("nfcron_token_refused "))
                .map(str::to_string)
        };
        assert_eq!(value(&m).as_deref(), Some("0"));
        m.api_request("PUT", 401);
        assert_eq!(value(&m).as_deref(), Some("1"));
        m.api_request("GET", 503);
        assert_eq!(value(&m).as_deref(), Some("1"));
        m.api_request("GET", 200);
        assert_eq!(value(&m).as_deref(), Some("0"));
    }
}
