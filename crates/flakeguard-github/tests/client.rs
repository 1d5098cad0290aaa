//! The client against the fake GitHub: authentication, pagination, downloads, the write
//! endpoints, retries, the circuit breaker and rate limits.

mod support;

use std::time::Duration;

use base64::Engine as _;
use flakeguard_github::fake::{BOT_LOGIN, FakeGitHub};
use flakeguard_github::{
    AppConfig, CheckRunAction, CheckRunOutput, CheckRunRequest, ClientOptions, GitHubApp,
    GitHubError, NewIssue,
};
use support::{INSTALLATION, OWNER, REPO, quick_options, requests_to, setup, setup_with, zip_of};

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
async fn app_jwt_claims_name_the_app_and_expire_within_ten_minutes() {
    let (fake, app, _) = setup().await;
    let jwt = app.app_jwt().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(claims["iss"], fake.app_config().app_id.to_string());
    assert_eq!(exp - iat, 600);
    assert!(
        iat < now && exp > now && exp <= now + 600,
        "iat {iat} exp {exp} now {now}"
    );
}

#[tokio::test]
async fn fetches_one_token_for_many_calls_and_shares_it_across_handles() {
    let (fake, app, installation) = setup().await;
    for _ in 0..3 {
        assert_eq!(
            installation
                .get_file(OWNER, REPO, "missing", "main")
                .await
                .unwrap(),
            None
        );
    }
    let other_handle = app.installation(INSTALLATION);
    other_handle
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);

    // Every API request carried the installation token, never the JWT.
    let token_calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/app/"))
        .collect();
    assert_eq!(token_calls.len(), 4);
    for request in token_calls {
        let auth = request.authorization.unwrap();
        assert!(
            auth.starts_with("Bearer ghs_") && auth.len() > "Bearer ".len() + 40,
            "{auth}"
        );
    }
}

#[tokio::test]
async fn concurrent_first_calls_share_one_token_request() {
    let (fake, app, _) = setup().await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let installation = app.installation(INSTALLATION);
            tokio::spawn(async move { installation.pulls_for_commit(OWNER, REPO, "abc").await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.token_requests(), 1);
    assert!(!format!("{app:?}").contains("PRIVATE KEY"));
}

#[tokio::test]
async fn tokens_are_per_installation() {
    let (fake, app, installation) = setup().await;
    fake.add_installation(78, "other-org");
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    app.installation(78)
        .pulls_for_commit("other-org", "r", "abc")
        .await
        .unwrap();
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn refreshes_a_token_within_five_minutes_of_its_expiry() {
    let (fake, _app, installation) = setup().await;
    // Tokens that expire in four minutes are already due for replacement.
    fake.set_token_ttl(Duration::from_secs(240));
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 2);
    fake.set_token_ttl(Duration::from_secs(3600));
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn a_revoked_cached_token_is_replaced_once_after_a_401() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.revoke_tokens();
    fake.set_pulls_for_commit(OWNER, REPO, "abc", &[5]);
    assert_eq!(
        installation
            .pulls_for_commit(OWNER, REPO, "abc")
            .await
            .unwrap(),
        vec![5]
    );
    assert_eq!(fake.token_requests(), 2);
    let paths: Vec<_> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");
    assert!(
        paths[2].ends_with("/pulls")
            && paths[3].ends_with("/access_tokens")
            && paths[4].ends_with("/pulls"),
        "{paths:?}"
    );
}

#[tokio::test]
async fn an_unknown_installation_is_a_404_on_the_token_endpoint() {
    let (_fake, app, _) = setup().await;
    let err = app
        .installation(999)
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitHubError::Http {
                status: 404,
                endpoint: "create_installation_token",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("create_installation_token"),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_pkcs1_key_as_github_hands_it_out_signs_accepted_jwts() {
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, OWNER);
    let config = AppConfig {
        private_key_pem: fake.pkcs1_private_key_pem(),
        ..fake.app_config()
    };
    assert!(
        config
            .private_key_pem
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let app = GitHubApp::new(config, quick_options()).unwrap();
    app.installation(INSTALLATION)
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn a_jwt_signed_by_another_key_is_refused() {
    let fake = FakeGitHub::start().await;
    let impostor = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, OWNER);
    let config = AppConfig {
        private_key_pem: impostor.app_config().private_key_pem,
        ..fake.app_config()
    };
    let app = GitHubApp::new(config, quick_options()).unwrap();
    let err = app
        .installation(INSTALLATION)
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::Http { status: 401, .. }),
        "{err}"
    );
}

#[test]
fn a_bad_key_is_a_clear_error_and_debug_shows_no_secret() {
    let mut config = AppConfig::new(
        1,
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    );
    let err = GitHubApp::new(config.clone(), ClientOptions::default()).unwrap_err();
    assert!(matches!(err, GitHubError::Key(_)), "{err}");
    config.private_key_pem = "secret".to_owned();
    assert!(!format!("{config:?}").contains("secret"));
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
    assert!(unauthenticated_has_no_check_run(&fake));
}

fn unauthenticated_has_no_check_run(fake: &FakeGitHub) -> bool {
    fake.check_runs().is_empty()
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

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.fail_next(3, 502);
    fake.set_pulls_for_commit(OWNER, REPO, "abc", &[1]);
    assert_eq!(
        installation
            .pulls_for_commit(OWNER, REPO, "abc")
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(requests_to(&fake, "/pulls"), 5);
}

#[tokio::test]
async fn gives_up_after_the_retries_with_a_transient_error() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.fail_next(4, 500);
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitHubError::Http {
                status: 500,
                endpoint: "pulls_for_commit",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
    assert_eq!(requests_to(&fake, "/pulls"), 5);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.fail_next(1, 422);
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::Http { status: 422, .. }),
        "{err}"
    );
    assert_eq!(requests_to(&fake, "/pulls"), 2);
}

#[tokio::test]
async fn persistent_5xx_open_the_breaker_which_recovers_half_open() {
    let options = ClientOptions {
        retries: 0,
        breaker_threshold: 2,
        breaker_cool_off: Duration::from_secs(2),
        ..quick_options()
    };
    let (fake, _app, installation) = setup_with(options).await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.fail_next(1000, 503);
    for _ in 0..2 {
        let err = installation
            .pulls_for_commit(OWNER, REPO, "abc")
            .await
            .unwrap_err();
        assert!(
            matches!(err, GitHubError::Http { status: 503, .. }),
            "{err}"
        );
    }
    let before = fake.requests().len();
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::CircuitOpen), "{err}");
    assert!(err.is_transient());
    assert_eq!(
        fake.requests().len(),
        before,
        "an open breaker sends nothing"
    );

    // After the cool-off one trial goes through; it fails, so the breaker opens again.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::Http { status: 503, .. }),
        "{err}"
    );
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::CircuitOpen), "{err}");
    assert_eq!(fake.requests().len(), before + 1);

    // GitHub recovers: the next trial succeeds and closes the breaker.
    fake.fail_next(0, 503);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), before + 3);
}

#[tokio::test]
async fn waits_out_a_primary_rate_limit() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.set_rate_limit_wait(Duration::from_secs(1));
    fake.rate_limit_next(1, false);
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(requests_to(&fake, "/pulls"), 3);
}

#[tokio::test]
async fn waits_out_a_secondary_rate_limit() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.set_rate_limit_wait(Duration::from_secs(1));
    fake.rate_limit_next(2, true);
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    assert_eq!(requests_to(&fake, "/pulls"), 4);
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_accepted_wait_is_returned() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    fake.set_rate_limit_wait(Duration::from_secs(3600));

    fake.rate_limit_next(1, true);
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::RateLimited { retry_after } if retry_after == Duration::from_secs(3600)),
        "{err}"
    );
    assert!(err.is_transient());

    fake.rate_limit_next(1, false);
    let err = installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::RateLimited { retry_after } if retry_after > Duration::from_secs(3000)),
        "{err}"
    );
    assert_eq!(requests_to(&fake, "/pulls"), 3);
}

#[tokio::test]
async fn every_request_carries_githubs_accept_version_and_user_agent() {
    let (fake, _app, installation) = setup().await;
    installation
        .pulls_for_commit(OWNER, REPO, "abc")
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert_eq!(
            request.accept.as_deref(),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.api_version.as_deref(), Some("2022-11-28"));
        assert_eq!(request.user_agent.as_deref(), Some("flakeguard-tests"));
    }
}

#[tokio::test]
async fn the_fake_answers_rate_limit_headers_and_refuses_missing_credentials_or_user_agent() {
    let (fake, _app, _installation) = setup().await;
    let url = format!("{}/repos/{OWNER}/{REPO}/commits/abc/pulls", fake.base_url());
    let response = reqwest::Client::builder()
        .user_agent("test")
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(response.headers().contains_key(header), "{header}");
    }
    let without_agent = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(without_agent.status(), 403);
}
