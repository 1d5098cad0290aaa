//! The client's metrics as Prometheus renders them: described, labelled by endpoint name and
//! status (never by URL), the rate-limit gauge and the breaker gauge.
//!
//! One test in its own binary: the recorder is process-global.

mod support;

use std::time::Duration;

use flakeguard_github::{ClientOptions, GitHubError, describe_metrics};
use support::{OWNER, REPO, quick_options, setup_with, zip_of};

#[tokio::test]
async fn calls_are_counted_by_endpoint_and_status_with_rate_limit_and_breaker_gauges() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    describe_metrics();

    let options = ClientOptions {
        retries: 0,
        breaker_threshold: 1,
        breaker_cool_off: Duration::from_secs(3600),
        ..quick_options()
    };
    let (fake, _app, installation) = setup_with(options).await;
    fake.add_artifact(OWNER, REPO, 9, "junit", zip_of(&[("a.xml", b"<a/>")]));
    installation
        .list_run_artifacts(OWNER, REPO, 9)
        .await
        .unwrap();
    installation
        .get_file(OWNER, REPO, "missing.yml", "main")
        .await
        .unwrap();
    fake.fail_next(1, 503);
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::CircuitOpen), "{err}");

    let rendered = handle.render();
    for expected in [
        "# HELP flakeguard_github_requests_total",
        "flakeguard_github_requests_total{endpoint=\"create_installation_token\",status=\"201\"} 1",
        "flakeguard_github_requests_total{endpoint=\"list_artifacts\",status=\"200\"} 1",
        "flakeguard_github_requests_total{endpoint=\"get_file\",status=\"404\"} 1",
        "flakeguard_github_requests_total{endpoint=\"pulls_for_commit\",status=\"503\"} 1",
        "# HELP flakeguard_github_rate_limit_remaining",
        "# HELP flakeguard_github_circuit_open",
        "flakeguard_github_circuit_open 1",
    ] {
        assert!(
            rendered.contains(expected),
            "{expected} missing from\n{rendered}"
        );
    }
    let remaining = rendered
        .lines()
        .find_map(|line| line.strip_prefix("flakeguard_github_rate_limit_remaining "))
        .expect("the rate-limit gauge is set");
    assert!(remaining.parse::<f64>().unwrap() < 5000.0, "{remaining}");
    for line in rendered
        .lines()
        .filter(|l| l.starts_with("flakeguard_github_requests_total{"))
    {
        assert!(!line.contains('/'), "a URL leaked into a label: {line}");
    }
}
