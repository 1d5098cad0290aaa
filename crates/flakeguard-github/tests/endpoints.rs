//! The endpoints against the fake GitHub: artifacts (pages, redirect, size cap), check
//! runs, issues, comments, re-runs, files and pull requests.

mod support;

use flakeguard_github::fake::BOT_LOGIN;
use flakeguard_github::{CheckRunAction, CheckRunOutput, CheckRunRequest, GitHubError, NewIssue};
use support::{INSTALLATION, OWNER, REPO, requests_to, setup, zip_of};

fn check_run(head_sha: Option<&str>) -> CheckRunRequest {
    CheckRunRequest {
        name: "FlakeGuard".to_owned(),
        head_sha: head_sha.map(str::to_owned),
        status: Some("in_progress".to_owned()),
        output: Some(CheckRunOutput {
            title: "Analysing".to_owned(),
            summary: "Reading test reports".to_owned(),
            text: None,
        }),
        ..CheckRunRequest::default()
    }
}

#[tokio::test]
async fn lists_artifacts_across_three_pages() {
    let (fake, _app, installation) = setup().await;
    fake.set_page_size(Some(2));
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            fake.add_artifact(
                OWNER,
                REPO,
                9,
                &format!("junit-{i}"),
                zip_of(&[("a.xml", b"<a/>")]),
            )
        })
        .collect();
    fake.add_artifact(OWNER, REPO, 10, "other-run", Vec::new());
    let artifacts = installation
        .list_run_artifacts(OWNER, REPO, 9)
        .await
        .unwrap();
    assert_eq!(artifacts.iter().map(|a| a.id).collect::<Vec<_>>(), ids);
    assert_eq!(artifacts[0].name, "junit-0");
    assert!(!artifacts[0].expired);
    assert!(
        artifacts[0]
            .archive_download_url
            .ends_with(&format!("/actions/artifacts/{}/zip", ids[0]))
    );
    assert_eq!(requests_to(&fake, "/runs/9/artifacts"), 3);
}

#[tokio::test]
async fn downloads_an_artifact_through_the_redirect_without_sending_the_token_to_the_blob_host() {
    let (fake, _app, installation) = setup().await;
    let zip = zip_of(&[("report.xml", b"<testsuites/>")]);
    let id = fake.add_artifact(OWNER, REPO, 9, "junit", zip.clone());
    let bytes = installation
        .download_artifact(OWNER, REPO, id, 1 << 20)
        .await
        .unwrap();
    assert_eq!(bytes, zip);

    let requests = fake.requests();
    let api = requests.iter().find(|r| r.path.ends_with("/zip")).unwrap();
    assert!(api.authorization.is_some());
    assert!(api.host.as_deref().unwrap().starts_with("127.0.0.1:"));
    let blob = requests
        .iter()
        .find(|r| r.path.starts_with("/blob/"))
        .unwrap();
    assert_eq!(blob.authorization, None);
    assert!(
        blob.host.as_deref().unwrap().starts_with("localhost:"),
        "{blob:?}"
    );
}

#[tokio::test]
async fn refuses_an_artifact_over_the_size_cap() {
    let (fake, _app, installation) = setup().await;
    let zip = zip_of(&[("report.xml", &[b'x'; 4096])]);
    let id = fake.add_artifact(OWNER, REPO, 9, "junit", zip.clone());
    let limit = zip.len() as u64 - 1;
    let err = installation
        .download_artifact(OWNER, REPO, id, limit)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::TooLarge { limit: l } if l == limit),
        "{err}"
    );
    let exact = installation
        .download_artifact(OWNER, REPO, id, zip.len() as u64)
        .await
        .unwrap();
    assert_eq!(exact.len(), zip.len());
}

#[tokio::test]
async fn stops_reading_a_streamed_artifact_once_it_passes_the_cap() {
    let (fake, _app, installation) = setup().await;
    fake.set_blob_chunked(true);
    // The blob store serves whatever bytes it holds; 64 KiB in 1 KiB chunks.
    let blob: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let id = fake.add_artifact(OWNER, REPO, 9, "junit", blob.clone());
    let result = installation
        .download_artifact(OWNER, REPO, id, 10_000)
        .await;
    assert!(
        matches!(result, Err(GitHubError::TooLarge { limit: 10_000 })),
        "{:?}",
        result.map(|bytes| bytes.len())
    );
    let whole = installation
        .download_artifact(OWNER, REPO, id, blob.len() as u64)
        .await
        .unwrap();
    assert_eq!(whole, blob);
}

#[tokio::test]
async fn a_missing_artifact_is_a_404() {
    let (_fake, _app, installation) = setup().await;
    let err = installation
        .download_artifact(OWNER, REPO, 1, 100)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitHubError::Http {
                status: 404,
                endpoint: "download_artifact",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn creates_and_updates_a_check_run() {
    let (fake, _app, installation) = setup().await;
    let created = installation
        .create_check_run(
            OWNER,
            REPO,
            &check_run(Some("0283d46537193f1fed7d46859f15c5304b9836f9")),
        )
        .await
        .unwrap();
    assert!(
        created
            .html_url
            .as_deref()
            .unwrap()
            .ends_with(&format!("/runs/{}", created.id))
    );

    let update = CheckRunRequest {
        name: "FlakeGuard".to_owned(),
        conclusion: Some("success".to_owned()),
        output: Some(CheckRunOutput {
            title: "2 known flaky".to_owned(),
            summary: "x".repeat(65_535),
            text: Some("details".to_owned()),
        }),
        actions: vec![CheckRunAction {
            label: "Quarantine flaky".to_owned(),
            description: "Quarantine the flaky tests listed".to_owned(),
            identifier: "quarantine".to_owned(),
        }],
        ..CheckRunRequest::default()
    };
    let updated = installation
        .update_check_run(OWNER, REPO, created.id, &update)
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);

    let runs = fake.check_runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.head_sha, "0283d46537193f1fed7d46859f15c5304b9836f9");
    assert_eq!(run.bodies.len(), 2);
    assert_eq!(run.bodies[0]["status"], "in_progress");
    assert!(run.bodies[1].get("head_sha").is_none());
    assert_eq!(run.bodies[1]["actions"][0]["identifier"], "quarantine");
    assert_eq!(run.current["status"], "completed");
    assert_eq!(run.current["conclusion"], "success");
}

#[tokio::test]
async fn check_run_limits_are_enforced_before_sending() {
    let (fake, _app, installation) = setup().await;
    let action = |label: &str| CheckRunAction {
        label: label.to_owned(),
        description: "d".to_owned(),
        identifier: "i".to_owned(),
    };
    let mut body = check_run(Some("abc"));
    body.actions = vec![action("a"), action("b"), action("c"), action("d")];
    let err = installation
        .create_check_run(OWNER, REPO, &body)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitHubError::InvalidRequest {
                endpoint: "create_check_run",
                ..
            }
        ),
        "{err}"
    );

    body.actions = vec![action("a label over twenty chars")];
    let err = installation
        .update_check_run(OWNER, REPO, 1, &body)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("actions[0].label"), "{err}");

    let err = installation
        .create_check_run(OWNER, REPO, &check_run(None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("head_sha"), "{err}");
    assert_eq!(
        requests_to(&fake, "check-runs") + requests_to(&fake, "check-runs/1"),
        0
    );
}

#[tokio::test]
async fn the_fake_refuses_check_runs_over_the_limits_like_github() {
    let (fake, app, _installation) = setup().await;
    let http = reqwest::Client::builder()
        .user_agent("test")
        .build()
        .unwrap();
    let token: serde_json::Value = http
        .post(format!(
            "{}/app/installations/{INSTALLATION}/access_tokens",
            fake.base_url()
        ))
        .bearer_auth(app.app_jwt().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let post = |body: serde_json::Value| {
        http.post(format!(
            "{}/repos/{OWNER}/{REPO}/check-runs",
            fake.base_url()
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
    };
    let action = serde_json::json!({"label": "l", "description": "d", "identifier": "i"});
    let too_many = post(serde_json::json!({
        "name": "FlakeGuard", "head_sha": "abc", "actions": [action, action, action, action]
    }))
    .await
    .unwrap();
    assert_eq!(too_many.status(), 422);
    let error: serde_json::Value = too_many.json().await.unwrap();
    // The shape of GitHub's validation errors, as recorded by octokit.
    let recorded =
        support::fixture_json("github-api/octokit-fixtures/errors.normalized-fixture.json");
    let recorded = &recorded[0]["response"];
    assert_eq!(error["message"], recorded["message"]);
    for key in ["resource", "code", "field"] {
        assert!(
            error["errors"][0].get(key).is_some(),
            "{key} missing from {error}"
        );
    }
    assert!(error["documentation_url"].is_string());

    let long_summary = post(serde_json::json!({
        "name": "FlakeGuard", "head_sha": "abc",
        "output": {"title": "t", "summary": "s".repeat(65_536)}
    }))
    .await
    .unwrap();
    assert_eq!(long_summary.status(), 422);
    let long_label = post(serde_json::json!({
        "name": "FlakeGuard", "head_sha": "abc",
        "actions": [{"label": "l".repeat(21), "description": "d", "identifier": "i"}]
    }))
    .await
    .unwrap();
    assert_eq!(long_label.status(), 422);
    let unauthenticated = http
        .post(format!(
            "{}/repos/{OWNER}/{REPO}/check-runs",
            fake.base_url()
        ))
        .json(&serde_json::json!({"name": "FlakeGuard", "head_sha": "abc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let error: serde_json::Value = unauthenticated.json().await.unwrap();
    assert_eq!(error["message"], "Bad credentials");
    assert!(
        fake.check_runs().is_empty(),
        "refused bodies leave no check run"
    );
}

#[tokio::test]
async fn creates_issues_and_finds_them_by_title_and_label() {
    let (fake, _app, installation) = setup().await;
    let flaky = NewIssue {
        title: "Flaky test: tests::api::retries_once".to_owned(),
        body: "Seen failing and passing on the same commit.".to_owned(),
        labels: vec!["flaky-test".to_owned()],
    };
    let created = installation
        .create_issue(OWNER, REPO, &flaky)
        .await
        .unwrap();
    assert_eq!(created.number, 1);
    assert_eq!(created.state, "open");
    installation
        .create_issue(
            OWNER,
            REPO,
            &NewIssue {
                title: "Flaky test: tests::api::retries_once".to_owned(),
                body: String::new(),
                labels: vec!["bug".to_owned()],
            },
        )
        .await
        .unwrap();
    installation
        .create_issue(
            OWNER,
            REPO,
            &NewIssue {
                title: "Flaky test: tests::other".to_owned(),
                body: String::new(),
                labels: vec!["flaky-test".to_owned()],
            },
        )
        .await
        .unwrap();

    let query = format!(
        "\"tests::api::retries_once\" in:title label:flaky-test repo:{OWNER}/{REPO} is:issue"
    );
    let found = installation.search_issues(&query).await.unwrap();
    assert_eq!(found, vec![created]);
    let none = installation
        .search_issues(&format!(
            "\"tests::nothing\" label:flaky-test repo:{OWNER}/{REPO}"
        ))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(fake.issues()[0].labels, vec!["flaky-test".to_owned()]);
}

#[tokio::test]
async fn lists_creates_and_updates_comments() {
    let (fake, _app, installation) = setup().await;
    fake.set_page_size(Some(1));
    fake.add_comment(OWNER, REPO, 12, "octocat", "LGTM");
    let created = installation
        .create_issue_comment(OWNER, REPO, 12, "FlakeGuard: 1 flaky")
        .await
        .unwrap();
    assert_eq!(created.user_login.as_deref(), Some(BOT_LOGIN));

    let comments = installation
        .list_issue_comments(OWNER, REPO, 12)
        .await
        .unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].user_login.as_deref(), Some("octocat"));
    assert_eq!(comments[1], created);
    assert_eq!(requests_to(&fake, "/issues/12/comments"), 3); // one POST, two pages

    let updated = installation
        .update_issue_comment(OWNER, REPO, created.id, "FlakeGuard: 0 flaky")
        .await
        .unwrap();
    assert_eq!(updated.body, "FlakeGuard: 0 flaky");
    let stored = fake.comments();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].edits, 1);
    assert_eq!(stored[1].body, "FlakeGuard: 0 flaky");

    let err = installation
        .update_issue_comment(OWNER, REPO, 424_242, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::Http { status: 404, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn reruns_failed_jobs() {
    let (fake, _app, installation) = setup().await;
    installation
        .rerun_failed_jobs(OWNER, REPO, 3881497935)
        .await
        .unwrap();
    let reruns = fake.reruns();
    assert_eq!(reruns.len(), 1);
    assert_eq!(reruns[0].run_id, 3881497935);
    assert_eq!(reruns[0].owner, OWNER);
}

#[tokio::test]
async fn reads_files_and_answers_none_for_missing_ones() {
    let (fake, _app, installation) = setup().await;
    let config = "# FlakeGuard\nartifacts:\n  - \"junit-*\"\n  - \"test-results-ü\"\nthreshold: 0.05 # long enough to wrap the base64 lines\n";
    fake.put_file(OWNER, REPO, ".flakeguard.yml", "main", config);
    fake.put_file(OWNER, REPO, "ci/nested config.yml", "feature", "x: 1\n");
    assert_eq!(
        installation
            .get_file(OWNER, REPO, ".flakeguard.yml", "main")
            .await
            .unwrap()
            .as_deref(),
        Some(config)
    );
    assert_eq!(
        installation
            .get_file(OWNER, REPO, "ci/nested config.yml", "feature")
            .await
            .unwrap()
            .as_deref(),
        Some("x: 1\n")
    );
    assert_eq!(
        installation
            .get_file(OWNER, REPO, ".flakeguard.yml", "other")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        installation
            .get_file(OWNER, REPO, "absent.yml", "main")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn lists_the_pull_requests_of_a_commit() {
    let (fake, _app, installation) = setup().await;
    fake.set_pulls_for_commit(OWNER, REPO, "abc123", &[12, 14]);
    assert_eq!(
        installation
            .pulls_for_commit(OWNER, REPO, "abc123")
            .await
            .unwrap(),
        vec![12, 14]
    );
    assert!(
        installation
            .pulls_for_commit(OWNER, REPO, "def")
            .await
            .unwrap()
            .is_empty()
    );
}
