//! The response types decode GitHub's real answers, as recorded by octocrab, PyGithub and
//! octokit.

mod support;

use flakeguard_github::{Artifact, CheckRunRef, InstallationToken, IssueRef};
use support::fixture_json;

/// The response bodies of a PyGithub replay for `method path`.
fn exchanges(rel: &str, method: &str, path: &str) -> Vec<serde_json::Value> {
    let recorded = fixture_json(&format!("github-api/pygithub-replay/{rel}"));
    recorded
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == method && e["path"] == path)
        .map(|e| e["response_body"].clone())
        .collect()
}

#[test]
fn artifacts_decode_from_octocrabs_recording() {
    let body = fixture_json("github-api/octocrab/repository_artifacts.json");
    let artifacts: Vec<Artifact> = serde_json::from_value(body["artifacts"].clone()).unwrap();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0].id, 11);
    assert_eq!(artifacts[0].name, "Rails");
    assert_eq!(artifacts[0].size_in_bytes, 556);
    assert!(!artifacts[0].expired);
    assert_eq!(
        artifacts[0].archive_download_url,
        "https://api.github.com/repos/octo-org/octo-docs/actions/artifacts/11/zip"
    );
}

#[test]
fn run_artifacts_decode_from_pygithubs_recording() {
    let bodies = exchanges(
        "Artifact.testGetArtifactsFromWorkflow.exchanges.json",
        "GET",
        "/repos/transmission-web-control/transmission-web-control/actions/runs/5138169628/artifacts",
    );
    let artifacts: Vec<Artifact> = serde_json::from_value(bodies[0]["artifacts"].clone()).unwrap();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0].id, 724958104);
    assert_eq!(artifacts[0].name, "build-tar");
}

#[test]
fn installation_tokens_decode_from_pygithubs_recording() {
    let bodies = exchanges(
        "GithubIntegration.testGetAccessToken.exchanges.json",
        "POST",
        "/app/installations/30614431/access_tokens",
    );
    let token: InstallationToken = serde_json::from_value(bodies[0].clone()).unwrap();
    assert!(token.token.starts_with("ghs_"));
    assert_eq!(token.expires_at.unix_timestamp(), 1_732_496_402); // 2024-11-25T01:00:02Z
    assert!(
        !format!("{token:?}").contains(&token.token),
        "Debug hides the token"
    );
}

#[test]
fn check_runs_decode_from_pygithubs_recording() {
    let bodies = exchanges(
        "CheckRun.testCreateCheckRunCompleted.exchanges.json",
        "POST",
        "/repos/dhruvmanila/pygithub-testing/check-runs",
    );
    let created: CheckRunRef = serde_json::from_value(bodies[0].clone()).unwrap();
    assert_eq!(created.id, 1296027873);
    assert!(
        created
            .html_url
            .unwrap()
            .starts_with("https://github.com/dhruvmanila/pygithub-testing/runs/")
    );
}

#[test]
fn issues_decode_from_pygithub_and_octokit_recordings() {
    let bodies = exchanges(
        "Repository.testCreateIssue.exchanges.json",
        "POST",
        "/repos/PyGithub/PyGithub/issues",
    );
    let issue: IssueRef = serde_json::from_value(bodies[0].clone()).unwrap();
    assert_eq!(issue.number, 28);
    assert_eq!(issue.state, "open");
    assert_eq!(issue.title, "Issue created by PyGithub");

    let search = fixture_json("github-api/octokit-fixtures/search-issues.normalized-fixture.json");
    let items: Vec<IssueRef> =
        serde_json::from_value(search[0]["response"]["items"].clone()).unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.html_url.starts_with("https://github.com/"))
    );
}
