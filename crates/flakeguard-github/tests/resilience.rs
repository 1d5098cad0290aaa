//! Retries, the circuit breaker and rate limits, against a fake GitHub failing on demand.

mod support;

use std::time::Duration;

use flakeguard_github::{ClientOptions, GitHubError};
use support::{OWNER, REPO, quick_options, requests_to, setup, setup_with};

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
