//! The client's metrics, through the `metrics` facade.

pub(crate) const REQUESTS_TOTAL: &str = "flakeguard_github_requests_total";
pub(crate) const RATE_LIMIT_REMAINING: &str = "flakeguard_github_rate_limit_remaining";
pub(crate) const CIRCUIT_OPEN: &str = "flakeguard_github_circuit_open";

/// Describes the client's metrics to the installed recorder; call once at startup.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests sent to GitHub, by endpoint (a route name such as list_artifacts) and status (`error` when no answer came)"
    );
    describe_gauge!(
        RATE_LIMIT_REMAINING,
        "Requests left in GitHub's current rate-limit window, from the last x-ratelimit-remaining seen"
    );
    describe_gauge!(
        CIRCUIT_OPEN,
        "1 while the GitHub circuit breaker is open (calls fail fast), 0 otherwise"
    );
}

pub(crate) fn count_request(endpoint: &'static str, status: &str) {
    metrics::counter!(REQUESTS_TOTAL, "endpoint" => endpoint, "status" => status.to_owned())
        .increment(1);
}
