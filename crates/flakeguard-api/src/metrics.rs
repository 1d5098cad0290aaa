//! Prometheus metrics, served on the worker port at `/metrics`.
//!
//! One recorder per process ([`install`]); the worker's job counters and durations and the
//! quarantine counters are recorded with the `metrics` macros where they happen, and the
//! queue depths are read from the queue when `/metrics` is scraped. Every metric is described
//! so that `promtool check metrics` accepts the output.

use std::sync::OnceLock;

use flakeguard_app::jobs::JobKind;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Webhook deliveries by event and outcome.
pub(crate) const GITHUB_WEBHOOKS: &str = "flakeguard_github_webhooks_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle). `None` when
/// another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            flakeguard_github::describe_metrics();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "flakeguard_jobs_total",
        "Jobs that ended, by queue and outcome (completed, retried, dead, handed_back, lease_lost)."
    );
    describe_histogram!(
        "flakeguard_job_duration_seconds",
        Unit::Seconds,
        "Time from a job's reservation to its end, by queue."
    );
    describe_gauge!(
        "flakeguard_queue_jobs",
        "Jobs in each queue by state (pending, running, failed = waiting for a retry, dead), read at scrape time."
    );
    describe_gauge!(
        "flakeguard_queue_up",
        "1 when the queue backend answered the scrape, else 0."
    );
    describe_counter!(
        "flakeguard_outbox_requeued_total",
        "Outbox entries (unscored runs, unprocessed webhook deliveries) whose job was missing and was queued again by the sweeper."
    );
    describe_counter!(
        GITHUB_WEBHOOKS,
        "GitHub webhook deliveries by event and outcome (queued, deferred, duplicate, ignored, unsigned, bad_signature)."
    );
    describe_counter!(
        "flakeguard_quarantine_changes_total",
        "Quarantine lifecycle changes, by change."
    );
}

/// The text exposition, with the queue depths read now.
pub(crate) async fn render(state: &AppState) -> Option<String> {
    let handle = HANDLE.get().cloned().flatten()?;
    match state.queue().stats(&JobKind::QUEUES).await {
        Ok(stats) => {
            metrics::gauge!("flakeguard_queue_up").set(1.0);
            for s in stats {
                for (label, n) in [
                    ("pending", s.pending),
                    ("running", s.running),
                    ("failed", s.failed),
                    ("dead", s.dead),
                ] {
                    metrics::gauge!("flakeguard_queue_jobs", "queue" => s.name.clone(), "state" => label)
                        .set(n as f64);
                }
            }
        }
        Err(_) => metrics::gauge!("flakeguard_queue_up").set(0.0),
    }
    Some(handle.render())
}
