//! Authenticating as the App and as an installation: the app JWT, installation tokens
//! (fetched once, shared, refreshed, replaced after a 401), keys, and the headers GitHub
//! expects.

mod support;

use std::time::Duration;

use base64::Engine as _;
use flakeguard_github::fake::FakeGitHub;
use flakeguard_github::{AppConfig, ClientOptions, GitHubApp, GitHubError};
use support::{INSTALLATION, OWNER, REPO, quick_options, setup};

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
