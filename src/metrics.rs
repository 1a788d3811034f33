//! The sidecar's Prometheus metrics (prometheus-client's registry and text
//! exposition). Counters only ever go up; gauges are set after each
//! reconcile from its report.

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
    last_success: Gauge<f64, AtomicU64>,
    revision: Family<Labels, Gauge>,
    current_revision: Mutex<Option<String>>,
    http_refused: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let runs = Family::<Labels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let jobs = Family::<Labels, Gauge>::default();
        let drift = Counter::default();
        let api_requests = Family::<Labels, Counter>::default();
        let ratelimit_remaining = Gauge::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let revision = Family::<Labels, Gauge>::default();
        let http_refused = Family::<Labels, Counter>::default();
        registry.register(
            "nfcron_reconcile_runs",
            "Reconcile runs by result",
            runs.clone(),
        );
        registry.register(
            "nfcron_reconcile_duration_seconds",
            "Wall time of reconcile runs",
            duration.clone(),
        );
        registry.register(
            "nfcron_jobs",
            "Managed jobs by state after the last run",
            jobs.clone(),
        );
        registry.register(
            "nfcron_drift_detected",
            "Jobs found drifted by live reads",
            drift.clone(),
        );
        registry.register(
            "nfcron_api_requests",
            "Northflank API requests sent, by method and status",
            api_requests.clone(),
        );
        registry.register(
            "nfcron_api_ratelimit_remaining",
            "x-ratelimit-remaining of the last API response",
            ratelimit_remaining.clone(),
        );
        registry.register(
            "nfcron_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile",
            last_success.clone(),
        );
        registry.register(
            "nfcron_source_revision_info",
            "The source revision last reconciled",
            revision.clone(),
        );
        registry.register(
            "nfcron_http_refused",
            "Listener requests refused, by reason",
            http_refused.clone(),
        );
        Metrics {
            registry,
            runs,
            duration,
            jobs,
            drift,
            api_requests,
            ratelimit_remaining,
            last_success,
            revision,
            current_revision: Mutex::new(None),
            http_refused,
        }
    }

    /// A listener request refused (`unsigned`, `malformed`, `bad_signature`,
    /// `too_large`, `body_timeout`, `busy`).
    pub fn http_refused(&self, reason: &str) {
        self.http_refused
            .get_or_create(&vec![("reason".into(), reason.to_string())])
            .inc();
    }

    /// One API response (`status` 0: no response).
    pub fn api_request(&self, method: &str, status: u16) {
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
            .filter(|o| matches!(o, Outcome::Failed { .. }))
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
                    || (s.action == Action::Unchanged
                        && !s.drift.as_ref().is_some_and(Drift::found))
            })
            .count();
        for (state, n) in [
            ("in_sync", in_sync),
            ("drifted", drifted),
            ("failed", failed),
            ("invalid", invalid),
        ] {
            self.jobs
                .get_or_create(&vec![("state".into(), state.into())])
                .set(n as i64);
        }
        self.drift.inc_by(drifted as u64);
        let result = if failed > 0 || invalid > 0 {
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

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
