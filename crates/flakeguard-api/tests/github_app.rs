//! The GitHub App end to end against a fake GitHub that speaks GitHub's REST API
//! (`flakeguard_github::fake`): signed deliveries built from shared/fixtures/github-webhooks
//! reach the webhook endpoint, the worker downloads the run's artifacts (real third-party
//! reports from shared/fixtures/junit, zipped as Actions zips them), stores and scores them
//! and answers with the "FlakeGuard" check run and a pull-request comment; the check run's
//! buttons quarantine, open issues and re-run; hostile zips and a failing GitHub are
//! survived — on SQLite with the embedded queue and on PostgreSQL with Redis.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flakeguard_app::github::GitHub;
use flakeguard_app::{GitHubSettings, Secret, Settings};
use flakeguard_github::fake::{FakeGitHub, zip_archive};
use flakeguard_github::{ClientOptions, GitHubApp};
use flakeguard_store::{
    AccountType, DeliveryStatus, NewInstallation, NewInstalledRepository, RepoSlug, Repository,
};
use serde_json::Value;
use support::{Backend, TestApp, fixture, junit, test_settings};
use time::OffsetDateTime;

const SECRET: &str = "webhook-secret-for-the-app-tests";
const INSTALLATION: i64 = 4242;
const OWNER: &str = "octo-org";
const REPO: &str = "octo-repo";
/// The fixture workflow run's id, head commit and pull request.
const RUN_ID: i64 = 289_782_451;
const HEAD: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
const PR: i64 = 2;

struct Env {
    app: TestApp,
    fake: FakeGitHub,
    deliveries: std::sync::atomic::AtomicU32,
}

async fn env(backend: Backend, quarantine_actions: bool) -> Env {
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, OWNER);
    let options = ClientOptions {
        retry_base: Duration::from_millis(20),
        max_rate_limit_wait: Duration::from_secs(5),
        breaker_cool_off: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let github = GitHub {
        app: GitHubApp::new(fake.app_config(), options).expect("the fake's App key"),
        quarantine_actions,
        public_url: Some("https://flakeguard.example.test".to_owned()),
        limits: Default::default(),
    };
    let settings = Settings {
        github: GitHubSettings {
            webhook_secret: Some(Secret::new(SECRET)),
            quarantine_actions,
            ..GitHubSettings::default()
        },
        ..test_settings()
    };
    let app = TestApp::start_full(backend, settings, None, Some(Arc::new(github))).await;
    Env {
        app,
        fake,
        deliveries: Default::default(),
    }
}

fn sign(body: &[u8]) -> String {
    flakeguard_github::sign_webhook(SECRET.as_bytes(), body)
}

/// A fixture payload as GitHub delivers it to an App: with the installation.
fn payload(path: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture(path)).unwrap();
    value["installation"] =
        serde_json::json!({ "id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uNDI0Mg==" });
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

impl Env {
    /// Delivers and waits until the worker has handled it; the delivery's final state.
    async fn deliver(&self, event: &str, body: Vec<u8>) -> flakeguard_store::WebhookDelivery {
        let n = self
            .deliveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{event}-{n}-{}", std::process::id());
        let response = self
            .app
            .http
            .post(self.app.url("/api/github/webhook"))
            .header("x-github-event", event)
            .header("x-github-delivery", &id)
            .header("x-hub-signature-256", sign(&body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        self.wait_for(&id).await
    }

    async fn wait_for(&self, delivery_id: &str) -> flakeguard_store::WebhookDelivery {
        for _ in 0..1200 {
            for id in 1..=200 {
                if let Some(d) = self
                    .app
                    .store
                    .find_delivery(flakeguard_store::DeliveryId(id))
                    .await
                    .unwrap()
                    && d.delivery_id == delivery_id
                    && d.status != DeliveryStatus::Received
                {
                    return d;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("delivery {delivery_id} was never handled");
    }

    fn workflow_run(&self) -> Vec<u8> {
        payload(
            "github-webhooks/workflow_run/completed.with-pull-requests.payload.json",
            |_| {},
        )
    }

    async fn repo(&self) -> Repository {
        self.app
            .store
            .find_repository(&RepoSlug::parse(&format!("{OWNER}/{REPO}")).unwrap())
            .await
            .unwrap()
            .expect("the repository is registered")
    }

    fn check_run(&self) -> flakeguard_github::fake::RecordedCheckRun {
        let runs = self.fake.check_runs();
        assert_eq!(runs.len(), 1, "one check run per commit: {runs:#?}");
        runs.into_iter().next().unwrap()
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_completed_workflow_run_gets_a_check_run_and_a_pr_comment,
    the_policy_file_of_the_default_branch_is_read_and_used,
    the_check_run_buttons_quarantine_open_issues_and_rerun,
    hostile_artifacts_and_a_failing_github_are_survived,
    installations_register_and_unregister_repositories,
);

async fn a_completed_workflow_run_gets_a_check_run_and_a_pr_comment(backend: Backend) {
    let env = env(backend, true).await;
    let nextest = fixture("junit/nextest/nextest__fixture-project-junit.xml");
    let pytest = fixture("junit/pytest/mikepenz-ajr__flaky_success_first.xml");
    let not_junit = b"<?xml version=\"1.0\"?><coverage line-rate=\"0.8\"></coverage>".to_vec();
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "test-results",
        zip_archive(&[
            ("target/nextest/ci/junit.xml", &nextest),
            ("reports/pytest.xml", &pytest),
            ("reports/coverage.xml", &not_junit),
            ("README.txt", b"not a report"),
        ]),
    );
    // Not a test-report name: left alone while named ones exist.
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "build-output",
        zip_archive(&[("app.xml", b"<x/>")]),
    );

    let done = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let check = env.check_run();
    assert_eq!((check.owner.as_str(), check.repo.as_str()), (OWNER, REPO));
    assert_eq!(check.head_sha, HEAD);
    let body = &check.bodies[0];
    assert_eq!(body["name"], "FlakeGuard");
    assert_eq!(body["status"], "completed");
    // The nextest fixture has a test that failed every attempt: new, so the check fails.
    assert_eq!(body["conclusion"], "failure", "{body:#}");
    let summary = body["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("new"), "{summary}");
    let text = body["output"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("coverage.xml: not a JUnit report"), "{text}");
    let actions: Vec<&str> = body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["identifier"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"rerun_failed"), "{actions:?}");

    // Stored once, as a GitHub artifact run of the workflow run, and linked to its PR.
    let repo = env.repo().await;
    let runs = env.app.store.runs_for_commit(repo.id, HEAD).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].workflow_run_id, RUN_ID.to_string());
    assert_eq!(runs[0].job, "test-results");
    assert_eq!(runs[0].source, flakeguard_store::Source::GithubArtifact);
    let fixture_run: Value = serde_json::from_slice(&env.workflow_run()).unwrap();
    let recorded = env
        .app
        .store
        .workflow_run(repo.id, RUN_ID, 1)
        .await
        .unwrap()
        .expect("the workflow run is recorded");
    assert_eq!(
        recorded.event,
        fixture_run["workflow_run"]["event"].as_str().unwrap(),
        "what triggered it"
    );
    assert_eq!(recorded.pull_requests, vec![PR]);
    assert_eq!(recorded.head_sha, HEAD);
    assert!(runs[0].scored_at.is_some(), "scored before answering");
    assert_eq!(
        env.app.store.prs_for_commit(repo.id, HEAD).await.unwrap(),
        vec![PR]
    );
    let comments = env.fake.comments();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0].issue_number, PR);
    assert!(comments[0].body.contains("<!-- flakeguard:pr-comment -->"));

    // Every API call used an installation token; the blob host never saw one.
    for request in env.fake.requests() {
        let auth = request.authorization.clone().unwrap_or_default();
        if request.path.starts_with("/app/") {
            assert!(auth.starts_with("Bearer ey"), "{request:?}");
        } else if request
            .host
            .as_deref()
            .is_some_and(|h| h.starts_with("localhost"))
        {
            assert!(request.authorization.is_none(), "{request:?}");
        } else {
            assert!(auth.starts_with("Bearer ghs_"), "{request:?}");
        }
    }

    // The same run delivered again (GitHub redelivers, or a re-requested check suite):
    // nothing stored twice, the same check run and the same comment updated in place.
    let again = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(again.status, DeliveryStatus::Processed, "{again:?}");
    let check = env.check_run();
    assert_eq!(check.bodies.len(), 2, "updated, not created again");
    assert_eq!(
        env.app
            .store
            .runs_for_commit(repo.id, HEAD)
            .await
            .unwrap()
            .len(),
        1
    );
    let comments = env.fake.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].edits, 1);

    env.app.finish().await;
}

async fn the_policy_file_of_the_default_branch_is_read_and_used(backend: Backend) {
    let env = env(backend, true).await;
    // The fixture run is on `master`, the repository's default branch.
    let policy = "artifact_patterns: [\"custom-reports*\"]\nquarantine_duration_days: 12\n";
    env.fake
        .put_file(OWNER, REPO, ".flakeguard.yml", HEAD, policy);
    env.fake.put_file(
        OWNER,
        REPO,
        ".github/CODEOWNERS",
        HEAD,
        "*.py @octo-org/python\n",
    );
    let report = fixture("junit/pytest/mikepenz-ajr__flaky_success_first.xml");
    // Matches the default patterns but not the repository's: left alone.
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "junit",
        zip_archive(&[("a.xml", &report)]),
    );
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "custom-reports-linux",
        zip_archive(&[("b.xml", &report)]),
    );
    let done = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let repo = env.repo().await;
    assert_eq!(repo.default_branch, "master", "followed from the payload");
    let runs = env.app.store.runs_for_commit(repo.id, HEAD).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.job.as_str()).collect::<Vec<_>>(),
        vec!["custom-reports-linux"],
        "the repository's artifact patterns chose"
    );
    let stored = env.app.store.repo_policy(repo.id).await.unwrap().unwrap();
    assert_eq!(stored.source.as_deref(), Some(policy));
    assert_eq!(stored.origin, Some(flakeguard_store::PolicyOrigin::File));
    assert_eq!(stored.commit.as_deref(), Some(HEAD));
    assert_eq!(
        stored.codeowners.as_deref(),
        Some("*.py @octo-org/python\n")
    );
    assert_eq!(
        stored.codeowners_source.as_deref(),
        Some(format!("file:.github/CODEOWNERS@{HEAD}").as_str())
    );
    // Delivered again for the same commit: the files are not read again.
    let reads = |env: &Env| {
        env.fake
            .requests()
            .iter()
            .filter(|r| r.path.contains("/contents/"))
            .count()
    };
    let before = reads(&env);
    env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(reads(&env), before, "cached for the commit");
    // A run of another branch does not read them: a pull request cannot loosen its policy.
    let branch = payload(
        "github-webhooks/workflow_run/completed.with-pull-requests.payload.json",
        |v| {
            v["workflow_run"]["head_branch"] = "feature".into();
            v["workflow_run"]["head_sha"] = "f".repeat(40).into();
        },
    );
    env.deliver("workflow_run", branch).await;
    assert_eq!(reads(&env), before);
    env.app.finish().await;
}

/// History in which `shop.cart::total` passes on retry now and then: judged flaky.
async fn flaky_history(env: &Env) -> Repository {
    let now = OffsetDateTime::now_utc();
    env.app
        .store
        .register_installation(&NewInstallation {
            installation_id: INSTALLATION,
            account_login: OWNER.to_owned(),
            account_type: AccountType::Organization,
            repositories: vec![NewInstalledRepository {
                github_id: 186_853_002,
                slug: RepoSlug::parse(&format!("{OWNER}/{REPO}")).unwrap(),
            }],
            at: now,
        })
        .await
        .unwrap();
    let repo = env.repo().await;
    for run in 0..12 {
        let outcome = if run % 3 == 0 { "flaky" } else { "pass" };
        let xml = junit(&[
            ("shop.cart", "total", outcome),
            ("shop.cart", "add", "pass"),
            ("shop.login", "remembers", "pass"),
        ]);
        let meta = flakeguard_app::RunMeta {
            repo: repo.slug.clone(),
            commit: Some(format!("{run:040x}")),
            branch: Some("master".to_owned()),
            run_id: Some(format!("history-{run}")),
            attempt: 1,
            job: "test".to_owned(),
            pr: None,
            started_at: Some(now - time::Duration::hours(24 - run)),
            source: flakeguard_store::Source::Upload,
        };
        flakeguard_app::ingest_reports(
            &*env.app.store,
            &repo,
            &meta,
            &[flakeguard_app::ReportFile {
                name: "junit.xml".into(),
                bytes: xml.into_bytes(),
            }],
            now,
        )
        .await
        .unwrap();
    }
    flakeguard_app::rescore(&*env.app.store, repo.id, now)
        .await
        .unwrap();
    let flaky = env
        .app
        .store
        .list_tests(
            repo.id,
            &flakeguard_store::TestQuery {
                filter: Some(flakeguard_store::TestFilter::Flaky),
                text: None,
                sort: flakeguard_store::TestSort::Name,
                page: flakeguard_store::PageRequest {
                    offset: 0,
                    limit: 100,
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(
        flaky
            .items
            .iter()
            .map(|t| t.key.name.as_str())
            .collect::<Vec<_>>(),
        vec!["total"],
        "the history makes exactly one test flaky"
    );
    repo
}

fn button(identifier: &str) -> Vec<u8> {
    payload(
        "github-webhooks/check_run/requested_action.payload.json",
        |v| {
            v["check_run"]["name"] = "FlakeGuard".into();
            v["check_run"]["head_sha"] = HEAD.into();
            v["requested_action"]["identifier"] = identifier.into();
            v["repository"]["full_name"] = format!("{OWNER}/{REPO}").into();
            v["repository"]["name"] = REPO.into();
            v["repository"]["id"] = 186_853_002.into();
            v["sender"]["login"] = "octocat".into();
        },
    )
}

async fn the_check_run_buttons_quarantine_open_issues_and_rerun(backend: Backend) {
    let env = env(backend, true).await;
    let repo = flaky_history(&env).await;
    // The workflow run on the PR's head: the known flaky test fails, the rest pass.
    let xml = junit(&[
        ("shop.cart", "total", "fail"),
        ("shop.cart", "add", "pass"),
        ("shop.login", "remembers", "pass"),
    ]);
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "junit",
        zip_archive(&[("junit.xml", xml.as_bytes())]),
    );
    let done = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let body = env.check_run().bodies[0].clone();
    assert_eq!(
        body["conclusion"], "success",
        "only a known flaky test failed: {body:#}"
    );
    let identifiers: Vec<&str> = body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["identifier"].as_str().unwrap())
        .collect();
    assert!(identifiers.contains(&"quarantine_flaky"), "{identifiers:?}");
    assert!(identifiers.contains(&"open_issues"), "{identifiers:?}");

    // "Quarantine flaky": the flaky test is quarantined, audited, and the check run says so.
    let done = env.deliver("check_run", button("quarantine_flaky")).await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let live = env.app.store.live_quarantines(repo.id).await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].1.name, "total");
    assert_eq!(live[0].0.created_by, "github:octocat");
    assert!(live[0].0.expires_at.is_some());
    let audit = env.app.store.list_audit(repo.org, 20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "quarantine.created" && a.actor == "github:octocat"),
        "{audit:#?}"
    );
    let check = env.check_run();
    let last = check.bodies.last().unwrap();
    let text = last["output"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("Quarantined 1 flaky test"), "{text}");
    assert!(
        last["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("uarantined")
    );
    // Pressed again: nothing more to quarantine, nothing duplicated.
    env.deliver("check_run", button("quarantine_flaky")).await;
    assert_eq!(
        env.app.store.live_quarantines(repo.id).await.unwrap().len(),
        1
    );

    // "Open issues": one issue per flaky failing test, labelled, never twice. (The test is
    // quarantined now; issues are for the known flaky ones on the commit, so release it
    // first to have one.)
    env.app
        .store
        .release_quarantine(
            repo.id,
            live[0].0.test,
            OffsetDateTime::now_utc(),
            "user:test",
        )
        .await
        .unwrap();
    env.deliver("check_run", button("open_issues")).await;
    env.deliver("check_run", button("open_issues")).await;
    let issues = env.fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert!(issues[0].title.contains("total"), "{issues:#?}");
    assert_eq!(issues[0].labels, vec!["flaky-test".to_owned()]);

    // "Re-run failed": the workflow run's failed jobs are re-run.
    env.deliver("check_run", button("rerun_failed")).await;
    let reruns = env.fake.reruns();
    assert_eq!(reruns.len(), 1, "{reruns:#?}");
    assert_eq!(reruns[0].run_id, RUN_ID);

    // Someone else's check run: not ours to act on.
    let foreign = payload(
        "github-webhooks/check_run/requested_action.payload.json",
        |_| {},
    );
    let done = env.deliver("check_run", foreign).await;
    assert_eq!(done.status, DeliveryStatus::Ignored, "{done:?}");
    env.app.finish().await;
}

async fn hostile_artifacts_and_a_failing_github_are_survived(backend: Backend) {
    let env = env(backend, false).await;
    let report = fixture("junit/pytest/mikepenz-ajr__flaky_success_first.xml");
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "junit-evil",
        zip_archive(&[("../../etc/passwd.xml", &report)]),
    );
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "test-results-garbage",
        b"this is not a zip".to_vec(),
    );
    env.fake.add_artifact(
        OWNER,
        REPO,
        RUN_ID,
        "test-results",
        zip_archive(&[("report.xml", &report)]),
    );
    // GitHub answers 500 five times (more than the client's retries: the job itself is
    // retried) and then a rate limit, before behaving.
    env.fake.fail_next(5, 500);
    env.fake.rate_limit_next(1, true);
    let done = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let check = env.check_run();
    let body = check.bodies.last().unwrap();
    let text = body["output"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("junit-evil"), "{text}");
    assert!(text.contains("test-results-garbage"), "{text}");
    let identifiers: Vec<&str> = body["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["identifier"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !identifiers.contains(&"quarantine_flaky"),
        "ENABLE_QUARANTINE_ACTIONS=false: no quarantine button ({identifiers:?})"
    );
    let repo = env.repo().await;
    let runs = env.app.store.runs_for_commit(repo.id, HEAD).await.unwrap();
    assert_eq!(
        runs.len(),
        1,
        "only the sound artifact is stored: {runs:#?}"
    );
    env.app.finish().await;
}

async fn installations_register_and_unregister_repositories(backend: Backend) {
    let env = env(backend, true).await;
    let created: Value = serde_json::from_slice(&fixture(
        "github-webhooks/installation/created.payload.json",
    ))
    .unwrap();
    let id = created["installation"]["id"].as_i64().unwrap();
    let login = created["installation"]["account"]["login"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Vec<String> = created["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap().to_owned())
        .collect();
    let done = env
        .deliver(
            "installation",
            fixture("github-webhooks/installation/created.payload.json"),
        )
        .await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let org = env
        .app
        .store
        .find_organization(&login)
        .await
        .unwrap()
        .expect("the account's organization");
    let repos = env.app.store.list_repositories(org.id).await.unwrap();
    let mut names: Vec<String> = repos.iter().map(|r| r.slug.to_string()).collect();
    names.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(names, expected);
    for name in &listed {
        let slug = RepoSlug::parse(name).unwrap();
        assert_eq!(
            env.app
                .store
                .find_installation_for_repo(&slug)
                .await
                .unwrap(),
            Some(id)
        );
    }
    // Delivered twice: nothing changes.
    env.deliver(
        "installation",
        fixture("github-webhooks/installation/created.payload.json"),
    )
    .await;
    assert_eq!(
        env.app.store.list_repositories(org.id).await.unwrap().len(),
        listed.len()
    );

    let removed: Value = serde_json::from_slice(&fixture(
        "github-webhooks/installation_repositories/removed.payload.json",
    ))
    .unwrap();
    let done = env
        .deliver(
            "installation_repositories",
            fixture("github-webhooks/installation_repositories/removed.payload.json"),
        )
        .await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let removed_id = removed["installation"]["id"].as_i64().unwrap();
    for repo in removed["repositories_removed"].as_array().unwrap() {
        let slug = RepoSlug::parse(repo["full_name"].as_str().unwrap()).unwrap();
        assert_ne!(
            env.app
                .store
                .find_installation_for_repo(&slug)
                .await
                .unwrap(),
            Some(removed_id),
            "{slug} no longer covered"
        );
    }
    let done = env
        .deliver(
            "installation",
            fixture("github-webhooks/installation/deleted.payload.json"),
        )
        .await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let deleted: Value = serde_json::from_slice(&fixture(
        "github-webhooks/installation/deleted.payload.json",
    ))
    .unwrap();
    let stored = env
        .app
        .store
        .installation(deleted["installation"]["id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.deleted_at.is_some());

    // A pull request's labels are kept from its events (for `labels_required`).
    let labeled: Value = serde_json::from_slice(&fixture(
        "github-webhooks/pull_request/labeled.payload.json",
    ))
    .unwrap();
    let slug = RepoSlug::parse(labeled["repository"]["full_name"].as_str().unwrap()).unwrap();
    env.app
        .store
        .register_installation(&NewInstallation {
            installation_id: labeled["installation"]["id"].as_i64().unwrap(),
            account_login: slug.owner().to_owned(),
            account_type: AccountType::User,
            repositories: vec![NewInstalledRepository {
                github_id: labeled["repository"]["id"].as_i64().unwrap(),
                slug: slug.clone(),
            }],
            at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let done = env
        .deliver(
            "pull_request",
            fixture("github-webhooks/pull_request/labeled.payload.json"),
        )
        .await;
    assert_eq!(done.status, DeliveryStatus::Processed, "{done:?}");
    let repo = env.app.store.find_repository(&slug).await.unwrap().unwrap();
    let number = labeled["number"].as_i64().unwrap();
    let want: Vec<String> = labeled["pull_request"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        env.app.store.pr_labels(repo.id, number).await.unwrap(),
        Some(want)
    );
    env.app.finish().await;
}

/// Without an App configured, deliveries are kept but workflow runs cannot be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_app_workflow_runs_are_recorded_as_ignored() {
    let settings = Settings {
        github: GitHubSettings {
            webhook_secret: Some(Secret::new(SECRET)),
            ..GitHubSettings::default()
        },
        ..test_settings()
    };
    let app = TestApp::start_with(Backend::Sqlite, settings).await;
    let env = Env {
        app,
        fake: FakeGitHub::start().await,
        deliveries: Default::default(),
    };
    let done = env.deliver("workflow_run", env.workflow_run()).await;
    assert_eq!(done.status, DeliveryStatus::Ignored);
    assert!(
        done.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("GITHUB_APP_ID"),
        "{done:?}"
    );
    assert!(env.fake.requests().is_empty());
    env.app.finish().await;
}
