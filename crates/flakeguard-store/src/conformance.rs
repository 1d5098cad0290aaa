//! The behaviour every [`Store`] backend must have, as one suite.
//!
//! Each check takes a store on a fresh, *unmigrated* database. A backend's test file runs all
//! of them with [`conformance_tests!`](crate::conformance_tests), giving it a factory that
//! creates such a store (for PostgreSQL: a database of its own, dropped afterwards).

use flakeguard_core::{Outcome, TestKey};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{
    DerivedState, NewExecution, NewRun, NewTestCase, NewToken, RepoId, RepoSlug, Role, Scope,
    Source, Store, StoreError,
};

/// Generates one `#[tokio::test]` per conformance check. `$factory` is an async fn returning
/// a value that derefs to a `Store` (and cleans up when dropped or when `finish` is called).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@each $factory;
            migrations_apply_once_and_report_status,
            seeding_is_idempotent,
            a_repository_belongs_to_one_organization,
            tokens_are_found_by_hash_listed_and_revoked,
            ingest_records_a_run_and_its_executions_once,
            a_failed_ingest_writes_nothing,
            history_is_grouped_by_test_in_time_order,
            reruns_and_second_reports_are_separate_runs,
            derived_state_is_saved_and_read_back,
            tests_are_only_found_in_their_repository,
            large_runs_are_stored_whole,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $factory().await;
                $crate::conformance::$name(&*store).await;
                store.finish().await;
            }
        )*
    };
}

const T0: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);

async fn migrated(store: &dyn Store) {
    store.migrate().await.expect("migrations apply");
}

async fn repo(store: &dyn Store, slug: &str) -> RepoId {
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    store
        .ensure_repository(org.id, &RepoSlug::parse(slug).unwrap())
        .await
        .unwrap()
        .0
        .id
}

fn test_case(name: &str) -> NewTestCase {
    NewTestCase {
        key: TestKey::from_parts(Some("tests/a.rs"), "suite", Some("a"), name),
        file: Some("tests/a.rs".to_owned()),
    }
}

fn run(run_id: &str, attempt: u32, minutes: i64, digest: &str) -> NewRun {
    NewRun {
        commit: Some(format!("{:040x}", minutes)),
        branch: Some("main".to_owned()),
        pr_number: None,
        run_id: run_id.to_owned(),
        attempt,
        job: "test".to_owned(),
        source: Source::Upload,
        started_at: T0 + time::Duration::minutes(minutes),
        received_at: T0 + time::Duration::minutes(minutes + 5),
        report_digest: digest.to_owned(),
    }
}

fn exec(test: usize, attempt: u32, outcome: Outcome) -> NewExecution {
    NewExecution {
        test,
        attempt,
        outcome,
        duration_ms: Some(12),
        signature: outcome.is_failure().then_some(0xdead_beef_u64 << 32),
        message: outcome.is_failure().then(|| "boom".to_owned()),
    }
}

pub async fn migrations_apply_once_and_report_status(store: &dyn Store) {
    let before = store.migration_status().await.unwrap();
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|m| m.is_pending()),
        "a fresh database has everything pending"
    );
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), before.len());
    let after = store.migration_status().await.unwrap();
    assert!(after.iter().all(|m| !m.is_pending()));
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "a second migrate applies nothing"
    );
    store.ping().await.unwrap();
}

pub async fn seeding_is_idempotent(store: &dyn Store) {
    migrated(store).await;
    for round in 0..2 {
        let (org, created) = store.ensure_organization("acme", "Acme Inc").await.unwrap();
        assert_eq!(created, round == 0);
        let (user, created) = store.ensure_user("admin@acme.test", "Admin").await.unwrap();
        assert_eq!(created, round == 0);
        assert_eq!(
            store
                .ensure_membership(org.id, user.id, Role::Admin)
                .await
                .unwrap(),
            round == 0
        );
        let (repo, created) = store
            .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
            .await
            .unwrap();
        assert_eq!(created, round == 0);
        assert_eq!(repo.slug.to_string(), "acme/shop");
        assert_eq!(repo.default_branch, "main");
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.organizations, counts.users, counts.repositories),
        (1, 1, 1)
    );
    let found = store
        .find_repository(&RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (org, _) = store.ensure_organization("acme", "ignored").await.unwrap();
    assert_eq!(
        org.name, "Acme Inc",
        "an existing organization is not renamed"
    );
    assert_eq!(store.list_repositories(org.id).await.unwrap(), vec![found]);
    assert!(
        store
            .find_repository(&RepoSlug::parse("acme/none").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn a_repository_belongs_to_one_organization(store: &dyn Store) {
    migrated(store).await;
    let (a, _) = store.ensure_organization("a", "A").await.unwrap();
    let (b, _) = store.ensure_organization("b", "B").await.unwrap();
    let slug = RepoSlug::parse("a/app").unwrap();
    store.ensure_repository(a.id, &slug).await.unwrap();
    let err = store.ensure_repository(b.id, &slug).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.list_repositories(b.id).await.unwrap().is_empty());
}

pub async fn tokens_are_found_by_hash_listed_and_revoked(store: &dyn Store) {
    migrated(store).await;
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (other, _) = store.ensure_organization("other", "Other").await.unwrap();
    let repo = repo(store, "acme/shop").await;
    let new = NewToken {
        org: org.id,
        repo: Some(repo),
        name: "ci".to_owned(),
        hash: [7; 32],
        prefix: "fg_abcd".to_owned(),
        scopes: vec![Scope::Ingest, Scope::Read],
        created_at: T0,
    };
    let token = store.create_token(&new).await.unwrap();
    assert_eq!(
        (token.org, token.repo, token.scopes.clone()),
        (org.id, Some(repo), vec![Scope::Ingest, Scope::Read])
    );
    assert_eq!(
        store.find_token(&[7; 32]).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.find_token(&[8; 32]).await.unwrap(), None);
    assert!(
        matches!(
            store.create_token(&new).await.unwrap_err(),
            StoreError::Conflict(_)
        ),
        "one hash, one token"
    );
    assert_eq!(
        store.list_tokens(org.id).await.unwrap(),
        vec![token.clone()]
    );
    assert!(store.list_tokens(other.id).await.unwrap().is_empty());
    assert!(
        !store.revoke_token(other.id, token.id, T0).await.unwrap(),
        "another organization cannot revoke it"
    );
    assert!(store.revoke_token(org.id, token.id, T0).await.unwrap());
    assert!(
        !store.revoke_token(org.id, token.id, T0).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store
            .find_token(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T0)
    );
}

pub async fn ingest_records_a_run_and_its_executions_once(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/shop").await;
    let tests = vec![test_case("passes"), test_case("flaky")];
    let executions = vec![
        exec(0, 1, Outcome::Passed),
        exec(1, 1, Outcome::Failed),
        exec(1, 2, Outcome::Passed),
    ];
    let first = store
        .ingest(repo, &run("100", 1, 0, "d1"), &tests, &executions)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.test_ids.len(), 2);
    let again = store
        .ingest(repo, &run("100", 1, 0, "d1"), &tests, &executions)
        .await
        .unwrap();
    assert!(
        !again.created,
        "the same report of the same run is stored once"
    );
    assert_eq!(again.run, first.run);

    let history = store.load_history(repo, 50).await.unwrap();
    assert_eq!(history.runs.len(), 1);
    assert_eq!(history.run_ids, vec![first.run]);
    let run = &history.runs[0];
    assert_eq!(
        (
            run.run_id.as_str(),
            run.attempt,
            run.branch.as_deref(),
            run.job.as_deref()
        ),
        ("100", 1, Some("main"), Some("test"))
    );
    assert_eq!(run.started_at, T0);
    assert_eq!(history.tests.len(), 2);
    let flaky = history
        .tests
        .iter()
        .position(|t| t.key.name == "flaky")
        .unwrap();
    assert_eq!(history.test_ids[flaky], first.test_ids[1]);
    let mut outcomes: Vec<(u32, Outcome)> = history.tests[flaky]
        .executions
        .iter()
        .map(|e| (e.attempt, e.outcome))
        .collect();
    outcomes.sort_by_key(|(a, _)| *a);
    assert_eq!(outcomes, vec![(1, Outcome::Failed), (2, Outcome::Passed)]);
    let failed = history.tests[flaky]
        .executions
        .iter()
        .find(|e| e.outcome == Outcome::Failed)
        .unwrap();
    assert_eq!(
        (failed.signature, failed.duration_ms, failed.run),
        (Some(0xdead_beef_u64 << 32), Some(12), 0)
    );
    assert_eq!(history.tests[flaky].file.as_deref(), Some("tests/a.rs"));
}

pub async fn a_failed_ingest_writes_nothing(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/shop").await;
    let tests = vec![test_case("t")];
    let bad = vec![exec(0, 1, Outcome::Passed), exec(5, 1, Outcome::Passed)];
    let err = store
        .ingest(repo, &run("1", 1, 0, "d"), &tests, &bad)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let duplicate = vec![exec(0, 1, Outcome::Passed), exec(0, 1, Outcome::Failed)];
    assert!(
        store
            .ingest(repo, &run("1", 1, 0, "d"), &tests, &duplicate)
            .await
            .is_err(),
        "one execution per attempt"
    );
    let history = store.load_history(repo, 50).await.unwrap();
    assert!(history.runs.is_empty() && history.tests.iter().all(|t| t.executions.is_empty()));
    // And the same run can still be recorded properly afterwards.
    assert!(
        store
            .ingest(
                repo,
                &run("1", 1, 0, "d"),
                &tests,
                &[exec(0, 1, Outcome::Passed)]
            )
            .await
            .unwrap()
            .created
    );
}

pub async fn history_is_grouped_by_test_in_time_order(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/shop").await;
    let tests = vec![test_case("a"), test_case("b")];
    // Recorded out of time order on purpose.
    for (run_id, minutes) in [("3", 30), ("1", 10), ("2", 20)] {
        let outcome = if run_id == "2" {
            Outcome::Failed
        } else {
            Outcome::Passed
        };
        store
            .ingest(
                repo,
                &run(run_id, 1, minutes, run_id),
                &tests,
                &[exec(0, 1, outcome), exec(1, 1, Outcome::Passed)],
            )
            .await
            .unwrap();
    }
    let history = store.load_history(repo, 50).await.unwrap();
    let ids: Vec<&str> = history.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"], "oldest first");
    let a = history.tests.iter().find(|t| t.key.name == "a").unwrap();
    let mut by_run: Vec<(u32, Outcome)> = a.executions.iter().map(|e| (e.run, e.outcome)).collect();
    by_run.sort_by_key(|(r, _)| *r);
    assert_eq!(
        by_run,
        vec![
            (0, Outcome::Passed),
            (1, Outcome::Failed),
            (2, Outcome::Passed)
        ]
    );

    let recent = store.load_history(repo, 2).await.unwrap();
    let ids: Vec<&str> = recent.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["2", "3"], "max_runs keeps the most recent");
    assert!(
        recent
            .tests
            .iter()
            .all(|t| t.executions.len() == 2 && t.executions.iter().all(|e| e.run < 2))
    );
}

pub async fn reruns_and_second_reports_are_separate_runs(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/shop").await;
    let tests = vec![test_case("t")];
    let e = [exec(0, 1, Outcome::Passed)];
    assert!(
        store
            .ingest(repo, &run("7", 1, 0, "x"), &tests, &e)
            .await
            .unwrap()
            .created
    );
    assert!(
        store
            .ingest(repo, &run("7", 2, 5, "x"), &tests, &e)
            .await
            .unwrap()
            .created,
        "a re-run"
    );
    assert!(
        store
            .ingest(repo, &run("7", 1, 0, "y"), &tests, &e)
            .await
            .unwrap()
            .created,
        "another artifact of run 7"
    );
    let history = store.load_history(repo, 50).await.unwrap();
    assert_eq!(history.runs.len(), 3);
    assert_eq!(
        history.tests.len(),
        1,
        "one test, however many runs name it"
    );
    assert_eq!(history.tests[0].executions.len(), 3);
}

pub async fn derived_state_is_saved_and_read_back(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/shop").await;
    let ingested = store
        .ingest(
            repo,
            &run("1", 1, 0, "d"),
            &[test_case("t")],
            &[exec(0, 1, Outcome::Failed)],
        )
        .await
        .unwrap();
    let id = ingested.test_ids[0];
    let before = store.find_test(repo, id).await.unwrap().unwrap();
    assert_eq!(before.status, "insufficient_data");
    assert_eq!(before.scored_at, None);
    assert_eq!(before.first_seen_at, T0);
    let state = DerivedState {
        test: id,
        status: "flaky".to_owned(),
        probability: 0.93,
        confidence: 0.88,
        legacy_score: 0.41,
        recommendation: "quarantine".to_owned(),
    };
    let at = T0 + time::Duration::hours(1);
    store.save_scores(repo, &[state], at).await.unwrap();
    let after = store.find_test(repo, id).await.unwrap().unwrap();
    assert_eq!(
        (after.status.as_str(), after.recommendation.as_str()),
        ("flaky", "quarantine")
    );
    assert!((after.probability - 0.93).abs() < 1e-9 && (after.confidence - 0.88).abs() < 1e-9);
    assert_eq!(after.scored_at, Some(at));
    assert_eq!(after.key, test_case("t").key);
}

pub async fn tests_are_only_found_in_their_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let ingested = store
        .ingest(
            shop,
            &run("1", 1, 0, "d"),
            &[test_case("t")],
            &[exec(0, 1, Outcome::Passed)],
        )
        .await
        .unwrap();
    assert!(
        store
            .find_test(other, ingested.test_ids[0])
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.load_history(other, 50).await.unwrap().runs.is_empty());
    let state = DerivedState {
        test: ingested.test_ids[0],
        status: "flaky".to_owned(),
        probability: 1.0,
        confidence: 1.0,
        legacy_score: 1.0,
        recommendation: "quarantine".to_owned(),
    };
    store.save_scores(other, &[state], T0).await.unwrap();
    assert_eq!(
        store
            .find_test(shop, ingested.test_ids[0])
            .await
            .unwrap()
            .unwrap()
            .status,
        "insufficient_data",
        "scores are written only within their repository"
    );
}

pub async fn large_runs_are_stored_whole(store: &dyn Store) {
    migrated(store).await;
    let repo = repo(store, "acme/big").await;
    let tests: Vec<NewTestCase> = (0..5_000)
        .map(|i| test_case(&format!("case {i}")))
        .collect();
    let executions: Vec<NewExecution> = (0..5_000)
        .flat_map(|i| {
            let first = if i % 10 == 0 {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            let mut v = vec![exec(i, 1, first)];
            if i % 10 == 0 {
                v.push(exec(i, 2, Outcome::Passed));
            }
            v
        })
        .collect();
    let ingested = store
        .ingest(repo, &run("big", 1, 0, "d"), &tests, &executions)
        .await
        .unwrap();
    assert_eq!(ingested.test_ids.len(), 5_000);
    let history = store.load_history(repo, 50).await.unwrap();
    assert_eq!(history.tests.len(), 5_000);
    assert_eq!(
        history
            .tests
            .iter()
            .map(|t| t.executions.len())
            .sum::<usize>(),
        5_500
    );
    // A second run of the same tests reuses their ids.
    let again = store
        .ingest(repo, &run("big", 2, 10, "d"), &tests, &executions)
        .await
        .unwrap();
    assert_eq!(again.test_ids, ingested.test_ids);
}
