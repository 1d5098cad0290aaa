//! The behaviour every [`Store`] backend must have, as one suite.
//!
//! Each check takes a store on a fresh, *unmigrated* database. A backend's test file runs all
//! of them with [`conformance_tests!`](crate::conformance_tests), giving it a factory that
//! creates such a store (for PostgreSQL: a database of its own, dropped afterwards).

use flakeguard_core::{Outcome, TestHistory, TestKey};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{
    AccountType, DeliveryId, DeliveryStatus, DerivedState, InstallationState, NewAuditEntry,
    NewCheckRun, NewDelivery, NewExecution, NewInstallation, NewInstalledRepository, NewPolicy,
    NewQuarantine, NewRun, NewTestCase, NewToken, OrgId, PageRequest, PolicyOrigin, Quarantine,
    QuarantineState, RepoId, RepoSlug, Role, Scope, Source, Store, StoreError, StoredHistory,
    StoredRun, StoredRunId, StoredTest, TestCaseId, TestFilter, TestQuery, TestSort,
    WebhookDelivery, WorkflowJob, WorkflowRunRecord,
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
            organizations_are_found_and_may_allow_repository_creation,
            every_repository_is_listed_for_the_operator,
            the_audit_log_is_read_newest_first_per_organization,
            tests_are_filtered_searched_sorted_and_paged,
            test_listings_stay_in_their_repository,
            tests_are_found_by_id_only_in_their_repository,
            a_tests_executions_are_read_newest_first,
            failure_signatures_are_grouped_most_frequent_first,
            runs_are_listed_newest_first_with_their_counts,
            a_runs_failures_are_listed_by_test_name,
            runs_are_only_found_in_their_repository,
            one_live_quarantine_per_test,
            quarantines_are_only_added_and_listed_in_their_repository,
            runs_wait_in_the_scoring_outbox_until_marked,
            a_runs_history_is_the_scoring_window_of_its_tests,
            a_large_runs_history_is_the_scoring_window_of_its_tests,
            webhook_deliveries_are_recorded_once,
            webhook_deliveries_are_finished_and_pending_ones_listed,
            old_failure_text_is_pruned_and_signatures_kept,
            expired_quarantines_end,
            live_quarantines_are_released_once,
            // --- GitHub App state (issue #5)
            github_installations_are_registered_suspended_and_deleted_once,
            installed_repositories_are_added_and_removed_keeping_history,
            the_default_branch_follows_the_repository,
            a_commit_keeps_one_check_run_across_workflow_runs,
            one_pr_comment_per_pull_request,
            commits_are_linked_to_pull_requests_once,
            flaky_issues_are_saved_once_per_test,
            workflow_jobs_never_move_backwards,
            racing_workers_agree_on_one_check_run_and_one_installation,
            pull_request_labels_are_replaced_per_pull_request,
            workflow_runs_are_recorded_per_attempt,
            repository_policies_are_stored_per_repository,
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
    assert_eq!(
        (
            before.executions,
            before.failures,
            before.reason.as_str(),
            before.evidence.as_str(),
            before.quarantined
        ),
        (0, 0, "", "[]", false),
        "nothing derived before the first scoring"
    );
    let state_of = |test| DerivedState {
        test,
        status: "flaky".to_owned(),
        probability: 0.93,
        confidence: 0.88,
        legacy_score: 0.41,
        recommendation: "quarantine".to_owned(),
        executions: 10,
        failures: 3,
        reason: "fails and passes on the same commit".to_owned(),
        evidence: r#"[{"kind":"retry","runs":[1]}]"#.to_owned(),
    };
    let at = T0 + time::Duration::hours(1);
    store.save_scores(repo, &[state_of(id)], at).await.unwrap();
    let after = store.find_test(repo, id).await.unwrap().unwrap();
    assert_eq!(
        (
            after.executions,
            after.failures,
            after.reason.as_str(),
            after.evidence.as_str()
        ),
        (
            10,
            3,
            "fails and passes on the same commit",
            r#"[{"kind":"retry","runs":[1]}]"#
        )
    );
    assert_eq!(
        (after.status.as_str(), after.recommendation.as_str()),
        ("flaky", "quarantine")
    );
    assert!((after.probability - 0.93).abs() < 1e-9 && (after.confidence - 0.88).abs() < 1e-9);
    assert_eq!(after.scored_at, Some(at));
    assert_eq!(after.key, test_case("t").key);

    let extreme = DerivedState {
        executions: u32::MAX,
        failures: u32::MAX,
        reason: String::new(),
        ..state_of(id)
    };
    store.save_scores(repo, &[extreme], at).await.unwrap();
    let after = store.find_test(repo, id).await.unwrap().unwrap();
    assert_eq!(
        (after.executions, after.failures, after.reason.as_str()),
        (u32::MAX, u32::MAX, ""),
        "any u32 round-trips"
    );
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
        executions: 10,
        failures: 3,
        reason: "fails and passes on the same commit".to_owned(),
        evidence: "[]".to_owned(),
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

// ---- organizations, repositories, audit -----------------------------------------------

pub async fn organizations_are_found_and_may_allow_repository_creation(store: &dyn Store) {
    migrated(store).await;
    let (acme, created) = store.ensure_organization("acme", "Acme").await.unwrap();
    assert!(created);
    assert!(
        !acme.creates_repositories,
        "uploads create no repository until allowed"
    );
    assert_eq!(
        store.find_organization("acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        store.organization(acme.id).await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(store.find_organization("nobody").await.unwrap(), None);
    assert_eq!(store.organization(OrgId(i64::MAX)).await.unwrap(), None);

    let (other, _) = store.ensure_organization("other", "Other").await.unwrap();
    store.set_repository_creation(acme.id, true).await.unwrap();
    assert!(
        store
            .find_organization("acme")
            .await
            .unwrap()
            .unwrap()
            .creates_repositories
    );
    let (again, created) = store.ensure_organization("acme", "Acme").await.unwrap();
    assert!(!created && again.creates_repositories);
    assert!(
        !store
            .organization(other.id)
            .await
            .unwrap()
            .unwrap()
            .creates_repositories,
        "only that organization changed"
    );
    store.set_repository_creation(acme.id, false).await.unwrap();
    assert!(
        !store
            .organization(acme.id)
            .await
            .unwrap()
            .unwrap()
            .creates_repositories
    );
    let err = store
        .set_repository_creation(OrgId(i64::MAX), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn every_repository_is_listed_for_the_operator(store: &dyn Store) {
    migrated(store).await;
    assert!(store.list_all_repositories().await.unwrap().is_empty());
    let (a, _) = store.ensure_organization("a", "A").await.unwrap();
    let (b, _) = store.ensure_organization("b", "B").await.unwrap();
    for (org, slug) in [(b.id, "b/zeta"), (a.id, "a/app"), (b.id, "b/alpha")] {
        store
            .ensure_repository(org, &RepoSlug::parse(slug).unwrap())
            .await
            .unwrap();
    }
    let all = store.list_all_repositories().await.unwrap();
    let slugs: Vec<String> = all.iter().map(|r| r.slug.to_string()).collect();
    assert_eq!(slugs, ["a/app", "b/alpha", "b/zeta"], "by owner and name");
    assert_eq!(all[0].org, a.id);
    assert_eq!((all[1].org, all[2].org), (b.id, b.id));
}

fn audit_entry(org: Option<OrgId>, action: &str, minutes: i64) -> NewAuditEntry {
    NewAuditEntry {
        org,
        actor: "user:admin@acme.test".to_owned(),
        action: action.to_owned(),
        target: "acme/shop".to_owned(),
        detail: format!(r#"{{"step":"{action}"}}"#),
        at: T0 + time::Duration::minutes(minutes),
    }
}

pub async fn the_audit_log_is_read_newest_first_per_organization(store: &dyn Store) {
    migrated(store).await;
    let (acme, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (other, _) = store.ensure_organization("other", "Other").await.unwrap();
    // Out of time order, with two entries at the same instant.
    for (org, action, minutes) in [
        (Some(acme.id), "first", 0),
        (Some(acme.id), "third", 2),
        (Some(acme.id), "second", 1),
        (Some(acme.id), "third again", 2),
        (Some(other.id), "elsewhere", 5),
        (None, "operator", 6),
    ] {
        store
            .audit(&audit_entry(org, action, minutes))
            .await
            .unwrap();
    }
    let log = store.list_audit(acme.id, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["third again", "third", "second", "first"],
        "newest first; at the same instant, the later entry first"
    );
    let entry = &log[2];
    assert_eq!(
        (
            entry.org,
            entry.actor.as_str(),
            entry.target.as_str(),
            entry.detail.as_str(),
            entry.at
        ),
        (
            Some(acme.id),
            "user:admin@acme.test",
            "acme/shop",
            r#"{"step":"second"}"#,
            T0 + time::Duration::minutes(1)
        )
    );
    let newest: Vec<String> = store
        .list_audit(acme.id, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(newest, ["third again", "third"]);
    assert!(store.list_audit(acme.id, 0).await.unwrap().is_empty());
    let theirs = store.list_audit(other.id, 10).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].action, "elsewhere");
    let err = store
        .audit(&audit_entry(Some(OrgId(i64::MAX)), "ghost", 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

// ---- reading tests ----------------------------------------------------------------------

fn key(scope: &str, classname: &str, name: &str, variant: Option<&str>) -> TestKey {
    TestKey {
        scope: scope.to_owned(),
        classname: classname.to_owned(),
        name: name.to_owned(),
        variant: variant.map(str::to_owned),
    }
}

/// Records one run in which every test passes once; returns the tests' ids.
async fn ingest_passing(
    store: &dyn Store,
    repo: RepoId,
    run_id: &str,
    tests: &[NewTestCase],
) -> Vec<TestCaseId> {
    let executions: Vec<NewExecution> = (0..tests.len())
        .map(|i| exec(i, 1, Outcome::Passed))
        .collect();
    store
        .ingest(repo, &run(run_id, 1, 0, run_id), tests, &executions)
        .await
        .unwrap()
        .test_ids
}

fn scored(test: TestCaseId, status: &str, probability: f64, failures: u32) -> DerivedState {
    DerivedState {
        test,
        status: status.to_owned(),
        probability,
        confidence: 0.5,
        legacy_score: 0.25,
        recommendation: "none".to_owned(),
        executions: 20,
        failures,
        reason: format!("{status} on purpose"),
        evidence: "[]".to_owned(),
    }
}

fn quarantine_of(test: TestCaseId, state: QuarantineState, minutes: i64) -> NewQuarantine {
    NewQuarantine {
        test,
        state,
        reason: "flaky on main".to_owned(),
        owner: Some("team-billing".to_owned()),
        created_by: "user:admin@acme.test".to_owned(),
        created_at: T0 + time::Duration::minutes(minutes),
        expires_at: Some(T0 + time::Duration::days(14)),
    }
}

fn query(filter: Option<TestFilter>, text: Option<&str>, sort: TestSort) -> TestQuery {
    TestQuery {
        filter,
        text: text.map(str::to_owned),
        sort,
        page: PageRequest {
            offset: 0,
            limit: 100,
        },
    }
}

/// The tests of the listing seed, by letter (see [`listing_seed`]).
struct Seeded {
    ids: Vec<(char, TestCaseId)>,
}

impl Seeded {
    fn id(&self, letter: char) -> TestCaseId {
        self.ids
            .iter()
            .find(|(l, _)| *l == letter)
            .map(|(_, id)| *id)
            .expect("a seeded letter")
    }

    fn letters(&self, tests: &[StoredTest]) -> String {
        tests
            .iter()
            .map(|t| {
                self.ids
                    .iter()
                    .find(|(_, id)| *id == t.id)
                    .map_or('?', |(l, _)| *l)
            })
            .collect()
    }
}

/// Nine tests of `repo`, scored and quarantined so that every filter and order differs:
///
/// | | scope | classname | name | variant | status | p | failures |
/// |-|-|-|-|-|-|-|-|
/// | A | tests/a.rs | billing.Invoice | totals | | flaky | 0.9 | 3 |
/// | B | tests/a.rs | billing.Invoice | rounding | | flaky | 0.9 | 5 |
/// | C | tests/a.rs | auth.Login | locks_out | | broken | 0.2 | 9 (live quarantine) |
/// | D | tests/a.rs | auth.Login | signs_in | | stable | 0.05 | 0 (released quarantine) |
/// | E | tests/a.rs | util | 100%_coverage | | stable | 0.05 | 1 (file src/Util_Helpers.rs) |
/// | F | a_first.rs | util | parses | | unscored | 0 | 0 |
/// | H | a_first.rs | util | parses | [1] | unscored | 0 | 0 |
/// | G | tests/a.rs | Zeta | upper | | unscored | 0 | 0 |
/// | I | tests/a.rs | billing.Invoice | voids | | flaky | 0.6 | 2 (active quarantine) |
async fn listing_seed(store: &dyn Store, repo: RepoId) -> Seeded {
    let tests = [
        (
            'A',
            key("tests/a.rs", "billing.Invoice", "totals", None),
            None,
        ),
        (
            'B',
            key("tests/a.rs", "billing.Invoice", "rounding", None),
            None,
        ),
        (
            'C',
            key("tests/a.rs", "auth.Login", "locks_out", None),
            None,
        ),
        ('D', key("tests/a.rs", "auth.Login", "signs_in", None), None),
        (
            'E',
            key("tests/a.rs", "util", "100%_coverage", None),
            Some("src/Util_Helpers.rs"),
        ),
        ('F', key("a_first.rs", "util", "parses", None), None),
        ('H', key("a_first.rs", "util", "parses", Some("[1]")), None),
        ('G', key("tests/a.rs", "Zeta", "upper", None), None),
        (
            'I',
            key("tests/a.rs", "billing.Invoice", "voids", None),
            None,
        ),
    ];
    let new: Vec<NewTestCase> = tests
        .iter()
        .map(|(_, key, file)| NewTestCase {
            key: key.clone(),
            file: file.map(str::to_owned),
        })
        .collect();
    let ids = ingest_passing(store, repo, &format!("seed-{repo}"), &new).await;
    let seeded = Seeded {
        ids: tests.iter().map(|(l, _, _)| *l).zip(ids).collect(),
    };
    let id = |l| seeded.id(l);
    let states = [
        scored(id('A'), "flaky", 0.9, 3),
        scored(id('B'), "flaky", 0.9, 5),
        scored(id('C'), "broken", 0.2, 9),
        scored(id('D'), "stable", 0.05, 0),
        scored(id('E'), "stable", 0.05, 1),
        scored(id('I'), "flaky", 0.6, 2),
    ];
    store.save_scores(repo, &states, T0).await.unwrap();
    for (letter, state) in [
        ('C', QuarantineState::Proposed),
        ('D', QuarantineState::Released),
        ('I', QuarantineState::Active),
    ] {
        store
            .add_quarantine(repo, &quarantine_of(id(letter), state, 0))
            .await
            .unwrap();
    }
    seeded
}

pub async fn tests_are_filtered_searched_sorted_and_paged(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let seeded = listing_seed(store, shop).await;
    // F and H differ only by variant, so they tie on name: the id decides.
    let fh = if seeded.id('F') < seeded.id('H') {
        "FH"
    } else {
        "HF"
    };
    let list = async |filter, text: Option<&str>, sort| {
        let page = store
            .list_tests(shop, &query(filter, text, sort))
            .await
            .unwrap();
        assert_eq!(page.total, page.items.len() as u64, "one page holds all");
        seeded.letters(&page.items)
    };

    // Each order, ties broken by name and then id.
    assert_eq!(
        list(None, None, TestSort::Probability).await,
        format!("BAICED{fh}G")
    );
    assert_eq!(
        list(None, None, TestSort::Impact).await,
        format!("CBAIED{fh}G"),
        "failures first, then probability"
    );
    assert_eq!(
        list(None, None, TestSort::Name).await,
        "FHGCDBAIE",
        "scope, classname, name, then no variant before a variant; bytewise"
    );

    // Each filter.
    assert_eq!(
        list(Some(TestFilter::Flaky), None, TestSort::Probability).await,
        "BAI"
    );
    assert_eq!(
        list(Some(TestFilter::Broken), None, TestSort::Probability).await,
        "C"
    );
    assert_eq!(
        list(Some(TestFilter::Stable), None, TestSort::Impact).await,
        "ED"
    );
    assert_eq!(
        list(Some(TestFilter::Quarantined), None, TestSort::Name).await,
        "CI",
        "proposed or active, whatever the status; a released one does not count"
    );

    // Text: case-insensitive, in the classname, name or file; % and _ are literal.
    assert_eq!(list(None, Some("INVOICE"), TestSort::Name).await, "BAI");
    assert_eq!(list(None, Some("UNDI"), TestSort::Name).await, "B");
    assert_eq!(list(None, Some("helpers"), TestSort::Name).await, "E");
    assert_eq!(list(None, Some("%"), TestSort::Name).await, "E");
    assert_eq!(list(None, Some("_"), TestSort::Name).await, "CDE");
    assert_eq!(list(None, Some("s_i"), TestSort::Name).await, "D");
    assert_eq!(list(None, Some("zzz"), TestSort::Name).await, "");
    assert_eq!(list(None, Some("a\0b"), TestSort::Name).await, "");
    assert_eq!(
        list(None, Some(""), TestSort::Name).await,
        "FHGCDBAIE",
        "empty text matches everything"
    );
    assert_eq!(
        list(Some(TestFilter::Stable), Some("sign"), TestSort::Name).await,
        "D"
    );
    assert_eq!(
        list(Some(TestFilter::Quarantined), Some("voids"), TestSort::Name).await,
        "I"
    );

    // Pages: `total` counts every match.
    let page = |offset, limit| TestQuery {
        page: PageRequest { offset, limit },
        ..query(None, None, TestSort::Probability)
    };
    let second = store.list_tests(shop, &page(2, 3)).await.unwrap();
    assert_eq!(
        (seeded.letters(&second.items).as_str(), second.total),
        ("ICE", 9)
    );
    for (offset, limit) in [(9, 10), (0, 0), (u64::MAX, u32::MAX)] {
        let empty = store.list_tests(shop, &page(offset, limit)).await.unwrap();
        assert!(empty.items.is_empty(), "offset {offset}, limit {limit}");
        assert_eq!(empty.total, 9);
    }
    let flaky = TestQuery {
        page: PageRequest {
            offset: 1,
            limit: 1,
        },
        ..query(Some(TestFilter::Flaky), Some("o"), TestSort::Name)
    };
    let one = store.list_tests(shop, &flaky).await.unwrap();
    assert_eq!((seeded.letters(&one.items).as_str(), one.total), ("A", 3));

    // What a listed test carries.
    let all = store
        .list_tests(shop, &query(None, None, TestSort::Name))
        .await
        .unwrap();
    let c = all.items.iter().find(|t| t.id == seeded.id('C')).unwrap();
    assert_eq!(
        (
            c.repo,
            c.status.as_str(),
            c.failures,
            c.executions,
            c.reason.as_str(),
            c.quarantined
        ),
        (shop, "broken", 9, 20, "broken on purpose", true)
    );
    assert_eq!(c.key, key("tests/a.rs", "auth.Login", "locks_out", None));
    let e = all.items.iter().find(|t| t.id == seeded.id('E')).unwrap();
    assert_eq!(e.file.as_deref(), Some("src/Util_Helpers.rs"));
    let quarantined: String = seeded.letters(
        &all.items
            .iter()
            .filter(|t| t.quarantined)
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(quarantined, "CI");
    assert_eq!(
        store.find_test(shop, seeded.id('I')).await.unwrap(),
        all.items.into_iter().find(|t| t.id == seeded.id('I')),
        "find_test and list_tests agree"
    );
}

pub async fn test_listings_stay_in_their_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let theirs = listing_seed(store, other).await;
    let ours = listing_seed(store, shop).await;
    let empty = repo(store, "acme/empty").await;
    for filter in [
        None,
        Some(TestFilter::Flaky),
        Some(TestFilter::Broken),
        Some(TestFilter::Stable),
        Some(TestFilter::Quarantined),
    ] {
        for text in [None, Some("o")] {
            for sort in [TestSort::Probability, TestSort::Impact, TestSort::Name] {
                let q = query(filter, text, sort);
                let page = store.list_tests(shop, &q).await.unwrap();
                assert!(
                    page.items.iter().all(|t| t.repo == shop),
                    "{q:?} lists another repository's test"
                );
                assert!(
                    page.items
                        .iter()
                        .all(|t| theirs.ids.iter().all(|(_, id)| *id != t.id)),
                    "{q:?}"
                );
                assert_eq!(page.total, page.items.len() as u64, "{q:?}");
                let none = store.list_tests(empty, &q).await.unwrap();
                assert!(none.items.is_empty() && none.total == 0, "{q:?}");
            }
        }
    }
    let mine = store
        .list_tests(shop, &query(None, None, TestSort::Name))
        .await
        .unwrap();
    assert_eq!(mine.total, 9);
    assert_eq!(ours.letters(&mine.items), "FHGCDBAIE");
}

pub async fn tests_are_found_by_id_only_in_their_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let ours = ingest_passing(store, shop, "1", &[test_case("a"), test_case("b")]).await;
    let theirs = ingest_passing(store, other, "1", &[test_case("a")]).await;
    let mut found = store
        .find_tests(
            shop,
            &[ours[1], theirs[0], TestCaseId(i64::MAX), ours[0], ours[1]],
        )
        .await
        .unwrap();
    found.sort_by_key(|t| t.id);
    let mut expected = ours.clone();
    expected.sort();
    assert_eq!(
        found.iter().map(|t| t.id).collect::<Vec<_>>(),
        expected,
        "each of the repository's tests once, nothing else"
    );
    assert!(found.iter().all(|t| t.repo == shop));
    let a = found.iter().find(|t| t.id == ours[0]).unwrap();
    assert_eq!(
        Some(a),
        store.find_test(shop, ours[0]).await.unwrap().as_ref()
    );
    assert!(store.find_tests(other, &ours).await.unwrap().is_empty());
    assert!(store.find_tests(shop, &[]).await.unwrap().is_empty());
    // More ids than one statement binds.
    let many: Vec<TestCaseId> = (0..2_500).map(|i| TestCaseId(i64::MAX - i)).collect();
    let mut with_ours = many.clone();
    with_ours.push(ours[0]);
    let found = store.find_tests(shop, &with_ours).await.unwrap();
    assert_eq!(found.len(), 1);
}

// ---- reading runs and executions ------------------------------------------------------

fn failing_exec(
    test: usize,
    attempt: u32,
    outcome: Outcome,
    signature: u64,
    message: Option<&str>,
) -> NewExecution {
    NewExecution {
        test,
        attempt,
        outcome,
        duration_ms: Some(40),
        signature: Some(signature),
        message: message.map(str::to_owned),
    }
}

const SIG_A: u64 = 0xaaaa_0000_0000_0001;
/// Above `i64::MAX`: stored bit for bit.
const SIG_B: u64 = 0xf000_0000_0000_0002;

/// Five runs of one test in `repo` (recorded out of order), returning the test and runs:
/// - run 1 (minute 0): failed with A ("boom 1"), then passed on retry;
/// - run 2 (minute 10): failed with B ("other");
/// - run 3 (minute 20): failed with A ("boom 3");
/// - run 4 (minute 30): errored with A, no message;
/// - run 5 (minute 40): passed.
async fn execution_seed(store: &dyn Store, repo: RepoId) -> (TestCaseId, Vec<StoredRunId>) {
    let tests = [test_case("t")];
    let runs = [
        (
            "3",
            20,
            vec![failing_exec(0, 1, Outcome::Failed, SIG_A, Some("boom 3"))],
        ),
        (
            "1",
            0,
            vec![
                failing_exec(0, 1, Outcome::Failed, SIG_A, Some("boom 1")),
                exec(0, 2, Outcome::Passed),
            ],
        ),
        (
            "2",
            10,
            vec![failing_exec(0, 1, Outcome::Failed, SIG_B, Some("other"))],
        ),
        ("5", 40, vec![exec(0, 1, Outcome::Passed)]),
        (
            "4",
            30,
            vec![failing_exec(0, 1, Outcome::Error, SIG_A, None)],
        ),
    ];
    let mut ids = vec![StoredRunId(0); 5];
    let mut test = None;
    for (run_id, minutes, executions) in runs {
        let ingested = store
            .ingest(repo, &run(run_id, 1, minutes, "d"), &tests, &executions)
            .await
            .unwrap();
        let index: usize = run_id.parse().unwrap();
        ids[index - 1] = ingested.run;
        test = Some(ingested.test_ids[0]);
    }
    (test.expect("a test"), ids)
}

pub async fn a_tests_executions_are_read_newest_first(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let (test, runs) = execution_seed(store, shop).await;
    let (their_test, _) = execution_seed(store, other).await;

    let all = store.recent_executions(shop, test, 100).await.unwrap();
    let order: Vec<(StoredRunId, u32)> = all.iter().map(|e| (e.run, e.attempt)).collect();
    assert_eq!(
        order,
        vec![
            (runs[4], 1),
            (runs[3], 1),
            (runs[2], 1),
            (runs[1], 1),
            (runs[0], 2),
            (runs[0], 1)
        ],
        "newest run first, then the later attempt"
    );
    let retry = &all[5];
    assert_eq!(
        (
            retry.workflow_run_id.as_str(),
            retry.run_attempt,
            retry.job.as_str(),
            retry.commit.clone(),
            retry.branch.as_deref(),
            retry.started_at
        ),
        (
            "1",
            1,
            "test",
            Some(format!("{:040x}", 0)),
            Some("main"),
            T0
        )
    );
    assert_eq!(
        (
            retry.outcome,
            retry.duration_ms,
            retry.signature,
            retry.message.as_deref()
        ),
        (Outcome::Failed, Some(40), Some(SIG_A), Some("boom 1"))
    );
    assert_eq!(
        (all[3].signature, all[1].outcome, all[1].message.as_deref()),
        (Some(SIG_B), Outcome::Error, None)
    );
    assert_eq!(
        (all[0].outcome, all[0].signature, all[0].message.as_deref()),
        (Outcome::Passed, None, None)
    );
    let newest = store.recent_executions(shop, test, 2).await.unwrap();
    assert_eq!(newest, all[..2].to_vec());
    assert!(
        store
            .recent_executions(shop, test, 0)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        store
            .recent_executions(other, test, 100)
            .await
            .unwrap()
            .is_empty(),
        "another repository cannot read the test's history"
    );
    assert!(
        store
            .recent_executions(shop, their_test, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .recent_executions(other, their_test, 100)
            .await
            .unwrap()
            .len(),
        6
    );
}

pub async fn failure_signatures_are_grouped_most_frequent_first(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let (test, _) = execution_seed(store, shop).await;
    let (their_test, _) = execution_seed(store, other).await;

    let signatures = store.failure_signatures(shop, test).await.unwrap();
    let summary: Vec<(u64, u64, OffsetDateTime, Option<&str>)> = signatures
        .iter()
        .map(|s| (s.signature, s.count, s.last_seen_at, s.message.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (SIG_A, 3, T0 + time::Duration::minutes(30), Some("boom 3")),
            (SIG_B, 1, T0 + time::Duration::minutes(10), Some("other")),
        ],
        "the latest stored message of each signature; last seen when its run started"
    );
    assert!(
        store
            .failure_signatures(other, test)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .failure_signatures(shop, their_test)
            .await
            .unwrap()
            .is_empty()
    );
    let passing = ingest_passing(store, shop, "later", &[test_case("green")]).await;
    assert!(
        store
            .failure_signatures(shop, passing[0])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Runs of `repo` (recorded out of order), returning their ids by name:
/// - "retried" (minute 0): alpha failed then passed, bravo passed, charlie errored;
/// - "empty" (minute 5): no tests;
/// - "green" (minute 10): alpha and bravo passed;
/// - "twice" (minute 10, recorded after "green"): alpha failed twice.
async fn run_seed(store: &dyn Store, repo: RepoId) -> [StoredRunId; 4] {
    let tests = [test_case("alpha"), test_case("bravo"), test_case("charlie")];
    let retried = store
        .ingest(
            repo,
            &run("retried", 1, 0, "d"),
            &tests,
            &[
                failing_exec(0, 1, Outcome::Failed, SIG_A, Some("alpha broke")),
                exec(0, 2, Outcome::Passed),
                exec(1, 1, Outcome::Passed),
                failing_exec(2, 1, Outcome::Error, SIG_B, Some("charlie crashed")),
            ],
        )
        .await
        .unwrap()
        .run;
    let green = store
        .ingest(
            repo,
            &run("green", 1, 10, "d"),
            &tests[..2],
            &[exec(0, 1, Outcome::Passed), exec(1, 1, Outcome::Passed)],
        )
        .await
        .unwrap()
        .run;
    let empty = store
        .ingest(repo, &run("empty", 1, 5, "d"), &[], &[])
        .await
        .unwrap()
        .run;
    let twice = store
        .ingest(
            repo,
            &run("twice", 1, 10, "d"),
            &tests[..1],
            &[
                failing_exec(0, 1, Outcome::Failed, SIG_A, None),
                failing_exec(0, 2, Outcome::Failed, SIG_A, Some("again")),
            ],
        )
        .await
        .unwrap()
        .run;
    [retried, empty, green, twice]
}

pub async fn runs_are_listed_newest_first_with_their_counts(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let [retried, empty, green, twice] = run_seed(store, shop).await;
    let page = |offset, limit| PageRequest { offset, limit };

    let all = store.list_runs(shop, page(0, 10)).await.unwrap();
    assert_eq!(all.total, 4);
    let summary: Vec<(StoredRunId, u64, u64, u64)> = all
        .items
        .iter()
        .map(|r| (r.id, r.testcases, r.executions, r.failed))
        .collect();
    assert!(twice > green, "ids grow");
    assert_eq!(
        summary,
        vec![
            (twice, 1, 2, 1),
            (green, 2, 2, 0),
            (empty, 0, 0, 0),
            (retried, 3, 4, 2),
        ],
        "newest first (the later id first at the same start); a test that failed and then \
         passed counts as failed, every attempt counts as an execution"
    );
    let first = &all.items[3];
    assert_eq!(
        (
            first.repo,
            first.workflow_run_id.as_str(),
            first.attempt,
            first.job.as_str(),
            first.source,
            first.report_digest.as_str()
        ),
        (shop, "retried", 1, "test", Source::Upload, "d")
    );
    assert_eq!(
        (
            first.commit.clone(),
            first.branch.as_deref(),
            first.pr_number,
            first.started_at,
            first.received_at
        ),
        (
            Some(format!("{:040x}", 0)),
            Some("main"),
            None,
            T0,
            T0 + time::Duration::minutes(5)
        )
    );

    let middle = store.list_runs(shop, page(1, 2)).await.unwrap();
    assert_eq!(middle.total, 4);
    assert_eq!(middle.items, all.items[1..3].to_vec());
    for (offset, limit) in [(4, 10), (0, 0), (u64::MAX, u32::MAX)] {
        let none = store.list_runs(shop, page(offset, limit)).await.unwrap();
        assert!(none.items.is_empty(), "offset {offset}, limit {limit}");
        assert_eq!(none.total, 4);
    }
    assert_eq!(
        store.find_run(shop, retried).await.unwrap().as_ref(),
        Some(first),
        "find_run and list_runs agree"
    );
    assert_eq!(
        store.find_run(shop, empty).await.unwrap().as_ref(),
        Some(&all.items[2])
    );
    assert_eq!(
        store.find_run(shop, StoredRunId(i64::MAX)).await.unwrap(),
        None
    );
}

pub async fn a_runs_failures_are_listed_by_test_name(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let [retried, empty, green, twice] = run_seed(store, shop).await;

    let failures = store.run_failures(shop, retried).await.unwrap();
    let summary: Vec<_> = failures
        .iter()
        .map(|f| {
            (
                f.key.name.as_str(),
                f.attempt,
                f.outcome,
                f.signature,
                f.message.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "alpha",
                1,
                Outcome::Failed,
                Some(SIG_A),
                Some("alpha broke")
            ),
            (
                "charlie",
                1,
                Outcome::Error,
                Some(SIG_B),
                Some("charlie crashed")
            ),
        ],
        "failed and errored executions only"
    );
    assert_eq!(failures[0].key, test_case("alpha").key);
    assert_eq!(failures[0].duration_ms, Some(40));
    let history = store.load_history(shop, 10).await.unwrap();
    let alpha = history
        .tests
        .iter()
        .position(|t| t.key.name == "alpha")
        .unwrap();
    assert_eq!(failures[0].test, history.test_ids[alpha]);

    let repeated = store.run_failures(shop, twice).await.unwrap();
    let attempts: Vec<(u32, Option<&str>)> = repeated
        .iter()
        .map(|f| (f.attempt, f.message.as_deref()))
        .collect();
    assert_eq!(attempts, vec![(1, None), (2, Some("again"))]);
    assert!(store.run_failures(shop, green).await.unwrap().is_empty());
    assert!(store.run_failures(shop, empty).await.unwrap().is_empty());
    assert!(
        store
            .run_failures(shop, StoredRunId(i64::MAX))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn runs_are_only_found_in_their_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let empty = repo(store, "acme/empty").await;
    let ours = run_seed(store, shop).await;
    let theirs = run_seed(store, other).await;

    let listed = store
        .list_runs(
            shop,
            PageRequest {
                offset: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 4);
    assert!(
        listed
            .items
            .iter()
            .all(|r| r.repo == shop && ours.contains(&r.id))
    );
    let none = store
        .list_runs(
            empty,
            PageRequest {
                offset: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.total == 0);
    for run in theirs {
        assert_eq!(store.find_run(shop, run).await.unwrap(), None);
        assert!(store.run_failures(shop, run).await.unwrap().is_empty());
        assert!(store.find_run(other, run).await.unwrap().is_some());
    }
    for run in ours {
        assert_eq!(store.find_run(other, run).await.unwrap(), None);
        assert!(store.run_failures(other, run).await.unwrap().is_empty());
    }
    assert_eq!(store.run_failures(other, theirs[0]).await.unwrap().len(), 2);

    // A commit's runs: "green" and "twice" ran on the same commit, oldest first; the other
    // repository's runs on that commit are not among them.
    let [retried, empty_run, green, twice] = ours;
    let commit = |minutes: i64| format!("{minutes:040x}");
    let ids = |runs: Vec<StoredRun>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.runs_for_commit(shop, &commit(10)).await.unwrap()),
        vec![green, twice]
    );
    assert_eq!(
        ids(store.runs_for_commit(shop, &commit(0)).await.unwrap()),
        vec![retried]
    );
    assert_eq!(
        ids(store.runs_for_commit(other, &commit(10)).await.unwrap()),
        vec![theirs[2], theirs[3]]
    );
    assert!(
        store
            .runs_for_commit(empty, &commit(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .runs_for_commit(shop, "no-such-commit")
            .await
            .unwrap()
            .is_empty()
    );
    // "retried": alpha failed, then passed on its retry; bravo passed; charlie errored.
    // "twice": alpha failed both attempts.
    let names = |outcomes: Vec<(TestCaseId, Outcome)>, tests: Vec<StoredTest>| {
        outcomes
            .into_iter()
            .map(|(id, outcome)| {
                let test = tests
                    .iter()
                    .find(|t| t.id == id)
                    .expect("a test of the run");
                (test.key.name.clone(), outcome)
            })
            .collect::<Vec<_>>()
    };
    let outcomes = store.run_final_outcomes(shop, retried).await.unwrap();
    let ids: Vec<TestCaseId> = outcomes.iter().map(|(id, _)| *id).collect();
    let tests = store.find_tests(shop, &ids).await.unwrap();
    let mut named = names(outcomes, tests);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        named,
        vec![
            ("alpha".to_owned(), Outcome::Passed),
            ("bravo".to_owned(), Outcome::Passed),
            ("charlie".to_owned(), Outcome::Error),
        ]
    );
    let outcomes = store.run_final_outcomes(shop, twice).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].1, Outcome::Failed);
    assert!(
        store
            .run_final_outcomes(shop, empty_run)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .run_final_outcomes(other, retried)
            .await
            .unwrap()
            .is_empty(),
        "only in its repository"
    );
    let counted = store.runs_for_commit(shop, &commit(0)).await.unwrap();
    assert_eq!(
        (
            counted[0].testcases,
            counted[0].executions,
            counted[0].failed
        ),
        (3, 4, 2),
        "with their counts"
    );
}

// ---- quarantine ---------------------------------------------------------------------------

pub async fn one_live_quarantine_per_test(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let ids = ingest_passing(store, shop, "1", &[test_case("a"), test_case("b")]).await;
    let (a, b) = (ids[0], ids[1]);

    let new = quarantine_of(a, QuarantineState::Proposed, 0);
    let proposed = store.add_quarantine(shop, &new).await.unwrap();
    assert_eq!(
        (
            proposed.test,
            proposed.state,
            proposed.reason.as_str(),
            proposed.owner.as_deref(),
            proposed.created_by.as_str()
        ),
        (
            a,
            QuarantineState::Proposed,
            "flaky on main",
            Some("team-billing"),
            "user:admin@acme.test"
        )
    );
    assert_eq!(
        (
            proposed.created_at,
            proposed.expires_at,
            proposed.released_at
        ),
        (T0, Some(T0 + time::Duration::days(14)), None)
    );
    for state in [QuarantineState::Proposed, QuarantineState::Active] {
        let err = store
            .add_quarantine(shop, &quarantine_of(a, state, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }

    // Ended quarantines do not count.
    let released = store
        .add_quarantine(shop, &quarantine_of(b, QuarantineState::Released, 1))
        .await
        .unwrap();
    store
        .add_quarantine(shop, &quarantine_of(b, QuarantineState::Expired, 2))
        .await
        .unwrap();
    let active = NewQuarantine {
        owner: None,
        expires_at: None,
        ..quarantine_of(b, QuarantineState::Active, 3)
    };
    let active = store.add_quarantine(shop, &active).await.unwrap();
    assert!(active.id != released.id);
    assert_eq!((active.owner, active.expires_at), (None, None));

    let live = store.live_quarantines(shop).await.unwrap();
    assert_eq!(
        live.iter()
            .map(|(q, key)| (q.id, q.state, key.name.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (proposed.id, QuarantineState::Proposed, "a"),
            (active.id, QuarantineState::Active, "b")
        ]
    );
    assert_eq!(live[0].0, proposed);
    assert_eq!(live[0].1, test_case("a").key);
    assert!(store.find_test(shop, a).await.unwrap().unwrap().quarantined);
}

pub async fn quarantines_are_only_added_and_listed_in_their_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let ours = ingest_passing(store, shop, "1", &[test_case("a")]).await;
    let theirs = ingest_passing(store, other, "1", &[test_case("a")]).await;

    let err = store
        .add_quarantine(other, &quarantine_of(ours[0], QuarantineState::Active, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .add_quarantine(
            shop,
            &quarantine_of(TestCaseId(i64::MAX), QuarantineState::Active, 0),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store.live_quarantines(other).await.unwrap().is_empty());
    assert!(
        !store
            .find_test(shop, ours[0])
            .await
            .unwrap()
            .unwrap()
            .quarantined
    );

    let mine = store
        .add_quarantine(shop, &quarantine_of(ours[0], QuarantineState::Active, 0))
        .await
        .unwrap();
    let their = store
        .add_quarantine(
            other,
            &quarantine_of(theirs[0], QuarantineState::Proposed, 0),
        )
        .await
        .unwrap();
    let ids = |live: Vec<(crate::Quarantine, TestKey)>| {
        live.into_iter().map(|(q, _)| q.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.live_quarantines(shop).await.unwrap()),
        vec![mine.id]
    );
    assert_eq!(
        ids(store.live_quarantines(other).await.unwrap()),
        vec![their.id]
    );
}

// ---- the scoring outbox -----------------------------------------------------------------

fn at(minutes: i64) -> OffsetDateTime {
    T0 + time::Duration::minutes(minutes)
}

pub async fn runs_wait_in_the_scoring_outbox_until_marked(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let tests = [test_case("t")];
    let ingest = async |repo, run_id: &str, minutes| {
        store
            .ingest(
                repo,
                &run(run_id, 1, minutes, "d"),
                &tests,
                &[exec(0, 1, Outcome::Passed)],
            )
            .await
            .unwrap()
    };
    // Received five minutes after they started; recorded out of reception order.
    let late = ingest(shop, "late", 20).await.run;
    let early = ingest(other, "early", 0).await.run;
    let mid = ingest(shop, "mid", 10).await.run;
    let tie = ingest(shop, "tie", 10).await.run;
    assert!(tie > mid, "ids grow");

    let unscored = async |before, limit| store.unscored_runs(before, limit).await.unwrap();
    assert_eq!(
        unscored(at(100), 10).await,
        vec![(other, early), (shop, mid), (shop, tie), (shop, late)],
        "every repository's, oldest reception first, then by id"
    );
    assert_eq!(
        unscored(at(100), 2).await,
        vec![(other, early), (shop, mid)]
    );
    assert_eq!(
        unscored(at(15), 10).await,
        vec![(other, early)],
        "received strictly before"
    );
    assert!(unscored(at(100), 0).await.is_empty());
    assert_eq!(
        store.find_run(shop, mid).await.unwrap().unwrap().scored_at,
        None,
        "a new run is unscored"
    );

    store.mark_run_scored(mid, at(30)).await.unwrap();
    store.mark_run_scored(mid, at(40)).await.unwrap();
    assert_eq!(
        store.find_run(shop, mid).await.unwrap().unwrap().scored_at,
        Some(at(30)),
        "marking again keeps the first time"
    );
    assert_eq!(
        unscored(at(100), 10).await,
        vec![(other, early), (shop, tie), (shop, late)]
    );
    let listed = store
        .list_runs(
            shop,
            PageRequest {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let marks: Vec<(StoredRunId, Option<OffsetDateTime>)> =
        listed.items.iter().map(|r| (r.id, r.scored_at)).collect();
    assert_eq!(
        marks,
        vec![(late, None), (tie, None), (mid, Some(at(30)))],
        "listed runs carry their mark"
    );

    // The same report again changes nothing, the mark included.
    let again = ingest(shop, "mid", 10).await;
    assert!(!again.created && again.run == mid);
    assert_eq!(
        store.find_run(shop, mid).await.unwrap().unwrap().scored_at,
        Some(at(30))
    );

    let err = store
        .mark_run_scored(StoredRunId(i64::MAX), at(30))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    for run in [early, tie, late] {
        store.mark_run_scored(run, at(50)).await.unwrap();
    }
    assert!(unscored(at(100), 10).await.is_empty());
    assert_eq!(
        store
            .find_run(other, early)
            .await
            .unwrap()
            .unwrap()
            .scored_at,
        Some(at(50))
    );
}

/// `history`'s tests are exactly those of `full` (a `load_history` answer) named in
/// `names`, with the same runs, ids, histories and order.
fn assert_history_of(history: &StoredHistory, full: &StoredHistory, names: &[&str]) {
    assert_eq!(history.runs, full.runs, "the same scoring window");
    assert_eq!(history.run_ids, full.run_ids);
    let wanted: std::collections::HashSet<&str> = names.iter().copied().collect();
    let (ids, tests): (Vec<TestCaseId>, Vec<TestHistory>) = full
        .test_ids
        .iter()
        .zip(&full.tests)
        .filter(|(_, t)| wanted.contains(t.key.name.as_str()))
        .map(|(id, t)| (*id, t.clone()))
        .unzip();
    assert_eq!(tests.len(), names.len(), "load_history has each of them");
    assert_eq!(history.test_ids, ids);
    assert_eq!(
        history.tests, tests,
        "each test's history as load_history has it"
    );
}

pub async fn a_runs_history_is_the_scoring_window_of_its_tests(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let names = ["a", "b", "c", "d", "e", "f"];
    let tests: Vec<NewTestCase> = names.iter().map(|n| test_case(n)).collect();
    let skipped = NewExecution {
        duration_ms: None,
        ..exec(4, 1, Outcome::Skipped)
    };
    // (run id, minute, executions); "target" names a, b and e.
    let runs = [
        (
            "r1",
            0,
            vec![
                exec(0, 1, Outcome::Passed),
                failing_exec(1, 1, Outcome::Failed, SIG_A, Some("b broke")),
                exec(1, 2, Outcome::Passed),
                exec(2, 1, Outcome::Passed),
                exec(3, 1, Outcome::Passed),
            ],
        ),
        (
            "r2",
            10,
            vec![
                failing_exec(0, 1, Outcome::Failed, SIG_B, None),
                exec(1, 1, Outcome::Passed),
                exec(4, 1, Outcome::Passed),
            ],
        ),
        (
            "r3",
            20,
            vec![exec(2, 1, Outcome::Passed), exec(5, 1, Outcome::Passed)],
        ),
        (
            "target",
            30,
            vec![
                exec(0, 1, Outcome::Passed),
                failing_exec(1, 1, Outcome::Error, SIG_A, None),
                skipped,
            ],
        ),
        ("empty", 35, vec![]),
        (
            "r5",
            40,
            vec![
                exec(0, 1, Outcome::Passed),
                exec(2, 1, Outcome::Passed),
                exec(3, 1, Outcome::Passed),
            ],
        ),
    ];
    let mut ids = std::collections::HashMap::new();
    // Recorded out of time order, and the same runs in another repository.
    for index in [3, 0, 5, 2, 4, 1] {
        let (run_id, minutes, executions) = &runs[index];
        for repo in [shop, other] {
            let ingested = store
                .ingest(repo, &run(run_id, 1, *minutes, "d"), &tests, executions)
                .await
                .unwrap();
            if repo == shop {
                ids.insert(*run_id, ingested.run);
            }
        }
    }
    let target = ids["target"];

    let full = store.load_history(shop, 50).await.unwrap();
    let history = store.load_run_history(shop, target, 50).await.unwrap();
    assert_eq!(history.runs.len(), 6);
    assert_history_of(&history, &full, &["a", "b", "e"]);
    // And in absolute terms, for one test.
    let b = history
        .tests
        .iter()
        .find(|t| t.key.name == "b")
        .expect("b is in the run");
    let summary: Vec<_> = b
        .executions
        .iter()
        .map(|e| (e.run, e.attempt, e.outcome, e.signature, e.duration_ms))
        .collect();
    assert_eq!(
        summary,
        [
            (0, 1, Outcome::Failed, Some(SIG_A), Some(40)),
            (0, 2, Outcome::Passed, None, Some(12)),
            (1, 1, Outcome::Passed, None, Some(12)),
            (3, 1, Outcome::Error, Some(SIG_A), Some(40)),
        ],
        "by run (oldest first), then attempt"
    );
    assert_eq!(b.key, test_case("b").key);
    assert_eq!(b.file.as_deref(), Some("tests/a.rs"));
    let e = history.tests.iter().find(|t| t.key.name == "e").unwrap();
    assert_eq!(
        e.executions
            .iter()
            .map(|x| (x.run, x.outcome, x.duration_ms))
            .collect::<Vec<_>>(),
        vec![(1, Outcome::Passed, Some(12)), (3, Outcome::Skipped, None)]
    );

    // Narrower windows: the target's tests keep what the window has of them.
    for (max_runs, expected) in [
        (4, &["a", "b", "e"][..]),
        (3, &["a", "b", "e"][..]),
        // The run is out of the window: only a ran since.
        (2, &["a"][..]),
        (1, &["a"][..]),
        (0, &[][..]),
    ] {
        let full = store.load_history(shop, max_runs).await.unwrap();
        let history = store
            .load_run_history(shop, target, max_runs)
            .await
            .unwrap();
        assert_eq!(history.runs.len(), max_runs as usize, "{max_runs}");
        assert_history_of(&history, &full, expected);
    }

    // Another run: the other tests.
    let r5 = store.load_run_history(shop, ids["r5"], 50).await.unwrap();
    assert_history_of(&r5, &full, &["a", "c", "d"]);
    let empty = store
        .load_run_history(shop, ids["empty"], 50)
        .await
        .unwrap();
    assert_history_of(&empty, &full, &[]);

    // Only a run of the repository.
    let theirs = store.load_history(other, 50).await.unwrap();
    let their_target = theirs.run_ids[3];
    assert!(their_target != target);
    for (repo, run) in [
        (other, target),
        (shop, their_target),
        (shop, StoredRunId(i64::MAX)),
    ] {
        let err = store.load_run_history(repo, run, 50).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
    let their_history = store
        .load_run_history(other, their_target, 50)
        .await
        .unwrap();
    assert_history_of(&their_history, &theirs, &["a", "b", "e"]);
    assert!(
        their_history
            .test_ids
            .iter()
            .all(|id| !history.test_ids.contains(id))
    );
}

/// A run of most of the window: more (window run, test) pairs than backends look up one by
/// one (both read the window instead above 100,000), with other runs naming some of its tests
/// and a test it does not name.
pub async fn a_large_runs_history_is_the_scoring_window_of_its_tests(store: &dyn Store) {
    migrated(store).await;
    let big = repo(store, "acme/big").await;
    let cases: Vec<NewTestCase> = (0..10_001)
        .map(|i| test_case(&format!("case {i}")))
        .collect();
    let outsider = test_case("outsider");
    // "before" (minute 0): cases 0-9 and the outsider, case 3 failing.
    let mut before_tests = cases[..10].to_vec();
    before_tests.push(outsider.clone());
    let before_executions: Vec<NewExecution> = (0..11)
        .map(|i| {
            if i == 3 {
                failing_exec(i, 1, Outcome::Failed, SIG_A, Some("three"))
            } else {
                exec(i, 1, Outcome::Passed)
            }
        })
        .collect();
    store
        .ingest(
            big,
            &run("before", 1, 0, "d"),
            &before_tests,
            &before_executions,
        )
        .await
        .unwrap();
    for minute in 1..10 {
        store
            .ingest(
                big,
                &run(&format!("empty {minute}"), 1, minute, "d"),
                &[],
                &[],
            )
            .await
            .unwrap();
    }
    // "target" (minute 10): every case, each hundredth failing and then passing.
    let target_executions: Vec<NewExecution> = (0..cases.len())
        .flat_map(|i| {
            if i % 100 == 0 {
                vec![
                    failing_exec(i, 1, Outcome::Failed, SIG_B, None),
                    exec(i, 2, Outcome::Passed),
                ]
            } else {
                vec![exec(i, 1, Outcome::Passed)]
            }
        })
        .collect();
    let target = store
        .ingest(big, &run("target", 1, 10, "d"), &cases, &target_executions)
        .await
        .unwrap()
        .run;
    // "after" (minute 20): case 5 errors, the outsider passes.
    let after = store
        .ingest(
            big,
            &run("after", 1, 20, "d"),
            &[cases[5].clone(), outsider],
            &[
                failing_exec(0, 1, Outcome::Error, SIG_A, None),
                exec(1, 1, Outcome::Passed),
            ],
        )
        .await
        .unwrap()
        .run;

    let names: Vec<String> = (0..cases.len()).map(|i| format!("case {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // 12 runs × 10,001 tests; then 3 runs × 10,001.
    for max_runs in [50, 3] {
        let full = store.load_history(big, max_runs).await.unwrap();
        let history = store.load_run_history(big, target, max_runs).await.unwrap();
        assert_eq!(history.runs.len(), if max_runs == 50 { 12 } else { 3 });
        assert_history_of(&history, &full, &names);
        let outcomes = |name: &str| {
            let test = history
                .tests
                .iter()
                .find(|t| t.key.name == name)
                .expect("a case of the run");
            test.executions
                .iter()
                .map(|e| (e.run, e.attempt, e.outcome))
                .collect::<Vec<_>>()
        };
        let last = history.runs.len() as u32 - 1;
        if max_runs == 50 {
            assert_eq!(
                outcomes("case 3"),
                vec![(0, 1, Outcome::Failed), (10, 1, Outcome::Passed)]
            );
        }
        assert_eq!(
            outcomes("case 5")[outcomes("case 5").len() - 2..],
            [(last - 1, 1, Outcome::Passed), (last, 1, Outcome::Error)]
        );
        assert_eq!(
            outcomes("case 200"),
            vec![
                (last - 1, 1, Outcome::Failed),
                (last - 1, 2, Outcome::Passed)
            ]
        );
    }
    let full = store.load_history(big, 50).await.unwrap();
    let small = store.load_run_history(big, after, 50).await.unwrap();
    assert_history_of(&small, &full, &["case 5", "outsider"]);
}

// ---- webhook deliveries -----------------------------------------------------------------

fn delivery(guid: &str, minutes: i64) -> NewDelivery {
    NewDelivery {
        delivery_id: guid.to_owned(),
        event: "workflow_run".to_owned(),
        action: Some("completed".to_owned()),
        installation_id: Some(42),
        payload: br#"{"action":"completed"}"#.to_vec(),
        received_at: at(minutes),
    }
}

pub async fn webhook_deliveries_are_recorded_once(store: &dyn Store) {
    migrated(store).await;
    let new = NewDelivery {
        installation_id: Some(i64::MAX),
        payload: vec![0, 0xff, b'{', 0x80, 0],
        ..delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", 0)
    };
    let (stored, created) = store.record_delivery(&new).await.unwrap();
    assert!(created);
    assert_eq!(
        stored,
        WebhookDelivery {
            id: stored.id,
            delivery_id: new.delivery_id.clone(),
            event: "workflow_run".to_owned(),
            action: Some("completed".to_owned()),
            installation_id: Some(i64::MAX),
            payload: vec![0, 0xff, b'{', 0x80, 0],
            status: DeliveryStatus::Received,
            attempts: 0,
            last_error: None,
            received_at: T0,
            processed_at: None,
        }
    );
    assert_eq!(
        store.find_delivery(stored.id).await.unwrap(),
        Some(stored.clone())
    );

    // Large payloads (GitHub sends up to 25 MiB) come back byte for byte, whatever the
    // backend does to store them; so does one that starts like a gzip stream.
    for (id, payload) in [
        (
            "large-json",
            format!(
                "{{\"action\":\"completed\",\"commits\":[{}]}}",
                (0..20_000)
                    .map(|i| format!("{{\"id\":\"{i:040x}\",\"message\":\"fix {i}\"}}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
            .into_bytes(),
        ),
        ("gzip-looking", {
            let mut bytes = vec![0x1f, 0x8b];
            bytes.extend((0..5000u32).map(|i| (i % 251) as u8));
            bytes
        }),
        ("small-gzip-looking", vec![0x1f, 0x8b, 8, 0, b'{', b'}']),
    ] {
        let (big, created) = store
            .record_delivery(&NewDelivery {
                payload: payload.clone(),
                ..delivery(id, 1)
            })
            .await
            .unwrap();
        assert!(created);
        assert_eq!(big.payload, payload, "{id}: as recorded");
        let read = store.find_delivery(big.id).await.unwrap().unwrap();
        assert!(read.payload == payload, "{id}: read back byte for byte");
    }

    // GitHub redelivers with the same id: the stored delivery comes back untouched.
    let redelivered = NewDelivery {
        event: "ping".to_owned(),
        action: None,
        installation_id: None,
        payload: b"other".to_vec(),
        received_at: at(60),
        ..new.clone()
    };
    let (again, created) = store.record_delivery(&redelivered).await.unwrap();
    assert!(!created);
    assert_eq!(again, stored);
    assert_eq!(
        store.find_delivery(stored.id).await.unwrap(),
        Some(stored.clone())
    );

    let bare = NewDelivery {
        action: None,
        installation_id: None,
        payload: Vec::new(),
        ..delivery("guid-2", 1)
    };
    let (bare, created) = store.record_delivery(&bare).await.unwrap();
    assert!(created && bare.id != stored.id);
    assert_eq!(
        (
            bare.action.as_deref(),
            bare.installation_id,
            bare.payload.as_slice()
        ),
        (None, None, &[][..])
    );
    assert_eq!(store.find_delivery(bare.id).await.unwrap(), Some(bare));
    assert_eq!(
        store.find_delivery(DeliveryId(i64::MAX)).await.unwrap(),
        None
    );

    // Concurrent deliveries of one id: exactly one is new.
    for round in 0..5 {
        let d = delivery(&format!("concurrent-{round}"), round);
        let (first, second) =
            futures_join(store.record_delivery(&d), store.record_delivery(&d)).await;
        let ((first, a), (second, b)) = (first.unwrap(), second.unwrap());
        assert!(a != b, "round {round}: exactly one is new");
        assert_eq!(first, second);
    }
}

/// Both futures' outputs, polling them in turn so that both are under way at once (the suite
/// depends on no runtime).
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(|cx| {
        if done_a.is_none()
            && let Poll::Ready(output) = a.as_mut().poll(cx)
        {
            done_a = Some(output);
        }
        if done_b.is_none()
            && let Poll::Ready(output) = b.as_mut().poll(cx)
        {
            done_b = Some(output);
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (done_a, done_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

pub async fn webhook_deliveries_are_finished_and_pending_ones_listed(store: &dyn Store) {
    migrated(store).await;
    let record = async |guid: &str, minutes| {
        store
            .record_delivery(&delivery(guid, minutes))
            .await
            .unwrap()
            .0
    };
    let third = record("third", 20).await;
    let first = record("first", 0).await;
    let tie_a = record("tie-a", 10).await;
    let tie_b = record("tie-b", 10).await;
    assert!(tie_b.id > tie_a.id, "ids grow");
    let pending = async |before, limit| store.pending_deliveries(before, limit).await.unwrap();
    assert_eq!(
        pending(at(100), 10).await,
        vec![first.id, tie_a.id, tie_b.id, third.id],
        "oldest reception first, then by id"
    );
    assert_eq!(pending(at(100), 2).await, vec![first.id, tie_a.id]);
    assert_eq!(
        pending(at(10), 10).await,
        vec![first.id],
        "received strictly before"
    );
    assert!(pending(at(100), 0).await.is_empty());

    store
        .finish_delivery(first.id, DeliveryStatus::Processed, None, at(50))
        .await
        .unwrap();
    assert_eq!(
        store.find_delivery(first.id).await.unwrap(),
        Some(WebhookDelivery {
            status: DeliveryStatus::Processed,
            attempts: 1,
            processed_at: Some(at(50)),
            ..first.clone()
        }),
        "only the status, attempts, error and time change"
    );

    // A failed attempt that leaves it pending, then one that gives up.
    store
        .finish_delivery(tie_a.id, DeliveryStatus::Received, Some("timeout"), at(51))
        .await
        .unwrap();
    assert_eq!(
        store.find_delivery(tie_a.id).await.unwrap(),
        Some(WebhookDelivery {
            attempts: 1,
            last_error: Some("timeout".to_owned()),
            processed_at: Some(at(51)),
            ..tie_a.clone()
        })
    );
    assert_eq!(
        pending(at(100), 10).await,
        vec![tie_a.id, tie_b.id, third.id]
    );
    store
        .finish_delivery(tie_a.id, DeliveryStatus::Failed, Some("gave up"), at(52))
        .await
        .unwrap();
    let failed = store.find_delivery(tie_a.id).await.unwrap().unwrap();
    assert_eq!(
        (
            failed.status,
            failed.attempts,
            failed.last_error.as_deref(),
            failed.processed_at
        ),
        (DeliveryStatus::Failed, 2, Some("gave up"), Some(at(52)))
    );

    store
        .finish_delivery(tie_b.id, DeliveryStatus::Ignored, None, at(53))
        .await
        .unwrap();
    assert_eq!(pending(at(100), 10).await, vec![third.id]);
    store
        .finish_delivery(third.id, DeliveryStatus::Received, Some("retry"), at(54))
        .await
        .unwrap();
    store
        .finish_delivery(third.id, DeliveryStatus::Processed, None, at(55))
        .await
        .unwrap();
    let done = store.find_delivery(third.id).await.unwrap().unwrap();
    assert_eq!(
        (
            done.status,
            done.attempts,
            done.last_error,
            done.processed_at
        ),
        (DeliveryStatus::Processed, 2, None, Some(at(55))),
        "a successful attempt clears the last error"
    );
    assert_eq!(
        store.find_delivery(tie_b.id).await.unwrap().unwrap().status,
        DeliveryStatus::Ignored
    );
    assert!(pending(at(100), 10).await.is_empty());

    let err = store
        .finish_delivery(
            DeliveryId(i64::MAX),
            DeliveryStatus::Processed,
            None,
            at(60),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

// ---- maintenance --------------------------------------------------------------------------

pub async fn old_failure_text_is_pruned_and_signatures_kept(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let (test, runs) = execution_seed(store, shop).await;
    let (their_test, _) = execution_seed(store, other).await;
    let before = store.recent_executions(shop, test, 100).await.unwrap();
    // What the executions should be once messages of runs started before `cutoff` are gone.
    let without_messages_before = |cutoff: OffsetDateTime| {
        before
            .iter()
            .cloned()
            .map(|mut e| {
                if e.started_at < cutoff {
                    e.message = None;
                }
                e
            })
            .collect::<Vec<_>>()
    };

    // Run 1 (minute 0) had one message, in each repository; run 2 starts at the cutoff.
    assert_eq!(store.prune_failure_text(at(10)).await.unwrap(), 2);
    assert_eq!(
        store.recent_executions(shop, test, 100).await.unwrap(),
        without_messages_before(at(10)),
        "only the message changes, and only before the cutoff"
    );
    assert_eq!(
        store.prune_failure_text(at(10)).await.unwrap(),
        0,
        "already cleared"
    );
    // Runs 2 and 3 had one each; run 4's failure had none; run 5 passed.
    assert_eq!(store.prune_failure_text(at(25)).await.unwrap(), 4);
    assert_eq!(store.prune_failure_text(at(1_000)).await.unwrap(), 0);
    let after = store.recent_executions(shop, test, 100).await.unwrap();
    assert_eq!(after, without_messages_before(at(1_000)));
    assert!(after.iter().all(|e| e.message.is_none()));
    let signatures: Vec<(u64, u64, Option<String>)> = store
        .failure_signatures(shop, test)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.signature, s.count, s.message))
        .collect();
    assert_eq!(
        signatures,
        vec![(SIG_A, 3, None), (SIG_B, 1, None)],
        "signatures still group"
    );
    assert!(
        store
            .recent_executions(other, their_test, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.message.is_none())
    );
    assert_eq!(
        store.run_failures(shop, runs[0]).await.unwrap()[0].signature,
        Some(SIG_A)
    );

    // More messages than one batch of a backend (10,000), and a newer run that keeps its own.
    let big = repo(store, "acme/big").await;
    let tests: Vec<NewTestCase> = (0..10_007)
        .map(|i| test_case(&format!("case {i}")))
        .collect();
    let failing: Vec<NewExecution> = (0..tests.len())
        .map(|i| failing_exec(i, 1, Outcome::Failed, SIG_A, Some(&format!("boom {i}"))))
        .collect();
    let old = store
        .ingest(big, &run("old", 1, 0, "d"), &tests, &failing)
        .await
        .unwrap()
        .run;
    let newer = store
        .ingest(big, &run("newer", 1, 100, "d"), &tests[..3], &failing[..3])
        .await
        .unwrap()
        .run;
    assert_eq!(store.prune_failure_text(at(100)).await.unwrap(), 10_007);
    assert_eq!(store.prune_failure_text(at(100)).await.unwrap(), 0);
    let old_failures = store.run_failures(big, old).await.unwrap();
    assert_eq!(old_failures.len(), 10_007);
    assert!(
        old_failures
            .iter()
            .all(|f| f.message.is_none() && f.signature == Some(SIG_A))
    );
    let kept: Vec<Option<String>> = store
        .run_failures(big, newer)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert_eq!(
        kept,
        vec![
            Some("boom 0".to_owned()),
            Some("boom 1".to_owned()),
            Some("boom 2".to_owned())
        ]
    );
}

pub async fn expired_quarantines_end(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let names = ["a", "b", "c", "d", "e", "f"];
    let tests: Vec<NewTestCase> = names.iter().map(|n| test_case(n)).collect();
    let ours = ingest_passing(store, shop, "1", &tests).await;
    let theirs = ingest_passing(store, other, "1", &tests[..1]).await;
    let now = T0 + time::Duration::days(14);
    let expiring = |test, state, expires_at| NewQuarantine {
        expires_at,
        ..quarantine_of(test, state, 0)
    };
    let minute = time::Duration::minutes(1);
    let mut added = Vec::new();
    for (test, state, expires_at) in [
        (ours[0], QuarantineState::Proposed, Some(now - minute)),
        (ours[1], QuarantineState::Active, Some(now)),
        (ours[2], QuarantineState::Active, Some(now + minute)),
        (ours[3], QuarantineState::Active, None),
        (ours[4], QuarantineState::Released, Some(now - minute)),
        (ours[5], QuarantineState::Expired, Some(now - minute)),
        (theirs[0], QuarantineState::Proposed, Some(T0)),
    ] {
        let repo = if test == theirs[0] { other } else { shop };
        let q = store
            .add_quarantine(repo, &expiring(test, state, expires_at))
            .await
            .unwrap();
        added.push(q);
    }
    let ended = |q: &Quarantine| Quarantine {
        state: QuarantineState::Expired,
        released_at: Some(now),
        ..q.clone()
    };

    let expired = store.expire_quarantines(now).await.unwrap();
    let mut expected = vec![
        (ended(&added[0]), shop),
        (ended(&added[1]), shop),
        (ended(&added[6]), other),
    ];
    expected.sort_by_key(|(q, _)| q.id);
    assert_eq!(
        expired, expected,
        "live ones expiring at or before now, as changed, by id"
    );
    assert!(store.expire_quarantines(now).await.unwrap().is_empty());

    let live: Vec<_> = store
        .live_quarantines(shop)
        .await
        .unwrap()
        .into_iter()
        .map(|(q, _)| q)
        .collect();
    assert_eq!(live, vec![added[2].clone(), added[3].clone()]);
    assert!(store.live_quarantines(other).await.unwrap().is_empty());
    assert!(
        !store
            .find_test(shop, ours[0])
            .await
            .unwrap()
            .unwrap()
            .quarantined
    );
    assert!(
        store
            .find_test(shop, ours[2])
            .await
            .unwrap()
            .unwrap()
            .quarantined
    );
    // An expired quarantine is no longer live: the test may be quarantined again.
    store
        .add_quarantine(shop, &expiring(ours[0], QuarantineState::Proposed, None))
        .await
        .unwrap();

    let later = store
        .expire_quarantines(now + time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        later
            .iter()
            .map(|(q, repo)| (q.id, q.state, q.released_at, *repo))
            .collect::<Vec<_>>(),
        vec![(
            added[2].id,
            QuarantineState::Expired,
            Some(now + time::Duration::days(1)),
            shop
        )],
        "one without an expiry never expires"
    );
}

pub async fn live_quarantines_are_released_once(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let tests: Vec<NewTestCase> = ["a", "b", "c"].iter().map(|n| test_case(n)).collect();
    let ours = ingest_passing(store, shop, "1", &tests).await;
    let theirs = ingest_passing(store, other, "1", &tests[..1]).await;
    let now = T0 + time::Duration::days(2);

    let active = store
        .add_quarantine(shop, &quarantine_of(ours[0], QuarantineState::Active, 0))
        .await
        .unwrap();
    let proposed = store
        .add_quarantine(shop, &quarantine_of(ours[1], QuarantineState::Proposed, 0))
        .await
        .unwrap();
    let theirs_q = store
        .add_quarantine(other, &quarantine_of(theirs[0], QuarantineState::Active, 0))
        .await
        .unwrap();

    assert_eq!(active.released_by, None, "live: released by no one");
    let released = store
        .release_quarantine(shop, ours[0], now, "token:7")
        .await
        .unwrap();
    assert_eq!(
        released,
        Some(Quarantine {
            state: QuarantineState::Released,
            released_at: Some(now),
            released_by: Some("token:7".to_owned()),
            ..active.clone()
        })
    );
    assert_eq!(
        store
            .release_quarantine(shop, ours[0], now, "operator")
            .await
            .unwrap(),
        None,
        "a second release finds nothing live"
    );
    let released = store
        .release_quarantine(shop, ours[1], now, "operator")
        .await
        .unwrap();
    assert_eq!(
        released.map(|q| (q.id, q.state)),
        Some((proposed.id, QuarantineState::Released)),
        "a proposed quarantine is released too"
    );
    assert_eq!(
        store
            .release_quarantine(shop, ours[2], now, "operator")
            .await
            .unwrap(),
        None,
        "a test never quarantined"
    );
    assert_eq!(
        store
            .release_quarantine(shop, TestCaseId(i64::MAX), now, "operator")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .release_quarantine(shop, theirs[0], now, "operator")
            .await
            .unwrap(),
        None,
        "another repository's test"
    );
    assert!(store.live_quarantines(shop).await.unwrap().is_empty());
    assert_eq!(
        store
            .live_quarantines(other)
            .await
            .unwrap()
            .into_iter()
            .map(|(q, _)| q)
            .collect::<Vec<_>>(),
        vec![theirs_q]
    );
    assert!(
        !store
            .find_test(shop, ours[0])
            .await
            .unwrap()
            .unwrap()
            .quarantined
    );
    // Released, the test may be quarantined again, and released again.
    let again = store
        .add_quarantine(shop, &quarantine_of(ours[0], QuarantineState::Active, 5))
        .await
        .unwrap();
    assert!(again.id != active.id);
    let later = now + time::Duration::hours(1);
    assert_eq!(
        store
            .release_quarantine(shop, ours[0], later, "operator")
            .await
            .unwrap()
            .map(|q| (q.id, q.released_at, q.released_by)),
        Some((again.id, Some(later), Some("operator".to_owned())))
    );
    // An expired quarantine is not released: it already ended.
    let expiring = NewQuarantine {
        expires_at: Some(T0 + time::Duration::days(1)),
        ..quarantine_of(ours[2], QuarantineState::Active, 0)
    };
    store.add_quarantine(shop, &expiring).await.unwrap();
    assert_eq!(store.expire_quarantines(now).await.unwrap().len(), 1);
    assert_eq!(
        store
            .release_quarantine(shop, ours[2], now, "operator")
            .await
            .unwrap(),
        None
    );
}

// --- GitHub App state (issue #5) ---------------------------------------------------------

fn installed(github_id: i64, slug: &str) -> NewInstalledRepository {
    NewInstalledRepository {
        github_id,
        slug: RepoSlug::parse(slug).unwrap(),
    }
}

fn octo_installation(repos: Vec<NewInstalledRepository>) -> NewInstallation {
    NewInstallation {
        installation_id: 957_387,
        account_login: "octo-org".to_owned(),
        account_type: AccountType::Organization,
        repositories: repos,
        at: at(0),
    }
}

pub async fn github_installations_are_registered_suspended_and_deleted_once(store: &dyn Store) {
    migrated(store).await;
    let slug = RepoSlug::parse("octo-org/octo-repo").unwrap();
    assert_eq!(store.find_installation_for_repo(&slug).await.unwrap(), None);
    let new = octo_installation(vec![installed(300_029_405, "octo-org/octo-repo")]);
    let first = store.register_installation(&new).await.unwrap();
    assert!(first.org_created);
    let org = store.find_organization("octo-org").await.unwrap().unwrap();
    assert_eq!(first.installation.org, org.id);
    assert_eq!(first.installation.installation_id, 957_387);
    assert_eq!(first.installation.account_type, AccountType::Organization);
    assert_eq!(first.installation.created_at, at(0));
    assert!(first.installation.is_live());
    assert_eq!(first.repositories.len(), 1);
    let repo = &first.repositories[0];
    assert_eq!((repo.github_id, repo.active), (300_029_405, true));
    assert_eq!(repo.slug, slug);
    assert_eq!(
        store.find_repository(&slug).await.unwrap().unwrap().id,
        repo.repo
    );
    assert_eq!(
        store.find_installation_for_repo(&slug).await.unwrap(),
        Some(957_387)
    );

    // A redelivery, later: nothing changes.
    let again = store
        .register_installation(&NewInstallation {
            at: at(5),
            ..new.clone()
        })
        .await
        .unwrap();
    assert!(!again.org_created);
    assert_eq!(again.installation, first.installation);
    assert_eq!(again.repositories, first.repositories);
    assert_eq!(store.counts().await.unwrap().repositories, 1);

    let id = 957_387;
    assert!(
        store
            .set_installation_state(id, InstallationState::Suspended, at(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_installation_state(id, InstallationState::Suspended, at(11))
            .await
            .unwrap()
    );
    let suspended = store.installation(id).await.unwrap().unwrap();
    assert_eq!(
        suspended.suspended_at,
        Some(at(10)),
        "the first suspension stays"
    );
    assert!(!suspended.is_live());
    assert_eq!(store.find_installation_for_repo(&slug).await.unwrap(), None);
    assert!(
        store
            .set_installation_state(id, InstallationState::Unsuspended, at(12))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_installation_state(id, InstallationState::Unsuspended, at(13))
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_installation_for_repo(&slug).await.unwrap(),
        Some(id)
    );

    assert!(
        store
            .set_installation_state(id, InstallationState::Deleted, at(20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_installation_state(id, InstallationState::Deleted, at(21))
            .await
            .unwrap()
    );
    let deleted = store.installation(id).await.unwrap().unwrap();
    assert_eq!(deleted.deleted_at, Some(at(20)));
    assert_eq!(store.find_installation_for_repo(&slug).await.unwrap(), None);
    let history = store.installed_repositories(id).await.unwrap();
    assert_eq!(history.len(), 1, "history is kept");
    assert!(!history[0].active);
    assert_eq!(history[0].removed_at, Some(at(20)));
    assert!(
        store.find_repository(&slug).await.unwrap().is_some(),
        "the repository and its data stay"
    );

    let unknown = store
        .set_installation_state(1, InstallationState::Suspended, at(30))
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
    assert_eq!(store.installation(1).await.unwrap(), None);

    // Installing again (the same id) brings it and its listed repositories back.
    let back = store
        .register_installation(&NewInstallation { at: at(40), ..new })
        .await
        .unwrap();
    assert_eq!(back.installation.deleted_at, None);
    assert!(back.repositories[0].active);
    assert_eq!(back.repositories[0].added_at, at(40));
    assert_eq!(
        store.find_installation_for_repo(&slug).await.unwrap(),
        Some(id)
    );

    // A user account's installation links to an organization named after the user.
    let user = store
        .register_installation(&NewInstallation {
            installation_id: 2,
            account_login: "Codertocat".to_owned(),
            account_type: AccountType::User,
            repositories: vec![],
            at: at(50),
        })
        .await
        .unwrap();
    assert_eq!(user.installation.account_type, AccountType::User);
    assert!(user.repositories.is_empty());
    assert_eq!(
        store
            .organization(user.installation.org)
            .await
            .unwrap()
            .unwrap()
            .slug,
        "Codertocat"
    );
}

pub async fn installed_repositories_are_added_and_removed_keeping_history(store: &dyn Store) {
    migrated(store).await;
    let id = 957_387;
    store
        .register_installation(&octo_installation(vec![installed(1, "octo-org/one")]))
        .await
        .unwrap();
    let missing = store
        .add_installed_repositories(42, &[installed(2, "octo-org/two")], at(1))
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");

    let added = store
        .add_installed_repositories(
            id,
            &[installed(2, "octo-org/two"), installed(3, "octo-org/three")],
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        added.iter().map(|r| r.slug.to_string()).collect::<Vec<_>>(),
        ["octo-org/two", "octo-org/three"]
    );
    assert!(added.iter().all(|r| r.active && r.added_at == at(1)));
    let repeat = store
        .add_installed_repositories(id, &[installed(2, "octo-org/two")], at(2))
        .await
        .unwrap();
    assert_eq!(repeat[0], added[0], "a repeat changes nothing");

    assert_eq!(
        store
            .remove_installed_repositories(id, &[2, 999], at(3))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .remove_installed_repositories(id, &[2], at(4))
            .await
            .unwrap(),
        0,
        "a repeat changes nothing"
    );
    let all = store.installed_repositories(id).await.unwrap();
    let state: Vec<(String, bool, Option<OffsetDateTime>)> = all
        .iter()
        .map(|r| (r.slug.to_string(), r.active, r.removed_at))
        .collect();
    assert_eq!(
        state,
        [
            ("octo-org/one".to_owned(), true, None),
            ("octo-org/three".to_owned(), true, None),
            ("octo-org/two".to_owned(), false, Some(at(3))),
        ]
    );
    let two = RepoSlug::parse("octo-org/two").unwrap();
    assert_eq!(store.find_installation_for_repo(&two).await.unwrap(), None);
    assert_eq!(
        store
            .find_installation_for_repo(&RepoSlug::parse("octo-org/three").unwrap())
            .await
            .unwrap(),
        Some(id)
    );
    // Added back: active again from then on.
    let readded = store
        .add_installed_repositories(id, &[installed(2, "octo-org/two")], at(5))
        .await
        .unwrap();
    assert!(readded[0].active);
    assert_eq!((readded[0].added_at, readded[0].removed_at), (at(5), None));
    assert_eq!(
        store.find_installation_for_repo(&two).await.unwrap(),
        Some(id)
    );
    let gone = store
        .remove_installed_repositories(7, &[2], at(6))
        .await
        .unwrap_err();
    assert!(matches!(gone, StoreError::NotFound(_)), "{gone}");

    // A repository of another organization cannot be installed here.
    let (other, _) = store.ensure_organization("other", "Other").await.unwrap();
    store
        .ensure_repository(other.id, &RepoSlug::parse("other/x").unwrap())
        .await
        .unwrap();
    let conflict = store
        .add_installed_repositories(id, &[installed(9, "other/x")], at(7))
        .await
        .unwrap_err();
    assert!(matches!(conflict, StoreError::Conflict(_)), "{conflict}");
}

pub async fn the_default_branch_follows_the_repository(store: &dyn Store) {
    migrated(store).await;
    let id = repo(store, "acme/shop").await;
    let slug = RepoSlug::parse("acme/shop").unwrap();
    assert_eq!(
        store
            .find_repository(&slug)
            .await
            .unwrap()
            .unwrap()
            .default_branch,
        "main"
    );
    assert!(!store.set_default_branch(id, "main").await.unwrap());
    assert!(store.set_default_branch(id, "trunk").await.unwrap());
    assert!(!store.set_default_branch(id, "trunk").await.unwrap());
    assert_eq!(
        store
            .find_repository(&slug)
            .await
            .unwrap()
            .unwrap()
            .default_branch,
        "trunk"
    );
    let err = store.set_default_branch(RepoId(-5), "x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn a_commit_keeps_one_check_run_across_workflow_runs(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let sha = "a".repeat(40);
    assert_eq!(store.check_run_for_commit(shop, &sha).await.unwrap(), None);
    let first = NewCheckRun {
        repo: shop,
        head_sha: sha.clone(),
        check_run_id: 4_000,
        workflow_run_id: Some(30),
        status: "completed".to_owned(),
        conclusion: Some("failure".to_owned()),
        at: at(1),
    };
    let stored = store.save_check_run(&first).await.unwrap();
    assert_eq!(stored.check_run_id, 4_000);
    assert_eq!(stored.workflow_run_ids, [30]);
    assert_eq!((stored.created_at, stored.updated_at), (at(1), at(1)));
    assert_eq!(
        store.save_check_run(&first).await.unwrap(),
        stored,
        "redelivery"
    );

    // A second workflow run on the same commit updates the same check run.
    let second = NewCheckRun {
        workflow_run_id: Some(10),
        conclusion: Some("success".to_owned()),
        at: at(2),
        ..first.clone()
    };
    let updated = store.save_check_run(&second).await.unwrap();
    assert_eq!(updated.check_run_id, 4_000);
    assert_eq!(updated.workflow_run_ids, [10, 30]);
    assert_eq!(updated.conclusion.as_deref(), Some("success"));
    assert_eq!((updated.created_at, updated.updated_at), (at(1), at(2)));
    assert_eq!(
        store.check_run_for_commit(shop, &sha).await.unwrap(),
        Some(updated.clone())
    );

    // A racing worker that created another check run gets the stored one back, unchanged.
    let loser = store
        .save_check_run(&NewCheckRun {
            check_run_id: 4_001,
            workflow_run_id: Some(50),
            conclusion: Some("neutral".to_owned()),
            at: at(3),
            ..first.clone()
        })
        .await
        .unwrap();
    assert_eq!(loser, updated);

    // Other commits and repositories have their own.
    assert_eq!(store.check_run_for_commit(other, &sha).await.unwrap(), None);
    let elsewhere = store
        .save_check_run(&NewCheckRun {
            repo: other,
            check_run_id: 5_000,
            workflow_run_id: None,
            ..first.clone()
        })
        .await
        .unwrap();
    assert!(elsewhere.workflow_run_ids.is_empty());
    assert_eq!(
        store
            .check_run_for_commit(shop, &"b".repeat(40))
            .await
            .unwrap(),
        None
    );
}

pub async fn one_pr_comment_per_pull_request(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    assert_eq!(store.pr_comment(shop, 2).await.unwrap(), None);
    let first = store.save_pr_comment(shop, 2, 77, at(1)).await.unwrap();
    assert_eq!(
        (first.comment_id, first.created_at, first.updated_at),
        (77, at(1), at(1))
    );
    let again = store.save_pr_comment(shop, 2, 77, at(2)).await.unwrap();
    assert_eq!(
        (again.comment_id, again.created_at, again.updated_at),
        (77, at(1), at(2))
    );
    let racing = store.save_pr_comment(shop, 2, 78, at(3)).await.unwrap();
    assert_eq!(racing, again, "the first comment stays");
    assert_eq!(store.pr_comment(shop, 3).await.unwrap(), None);

    // Deleted on GitHub: forgotten only while it is still the stored one.
    assert!(!store.forget_pr_comment(shop, 2, 78).await.unwrap());
    assert!(store.forget_pr_comment(shop, 2, 77).await.unwrap());
    assert!(!store.forget_pr_comment(shop, 2, 77).await.unwrap());
    assert_eq!(store.pr_comment(shop, 2).await.unwrap(), None);
    let replaced = store.save_pr_comment(shop, 2, 79, at(4)).await.unwrap();
    assert_eq!(replaced.comment_id, 79);
    assert_eq!(store.pr_comment(shop, 2).await.unwrap(), Some(replaced));
}

pub async fn commits_are_linked_to_pull_requests_once(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let sha = "c".repeat(40);
    assert!(store.prs_for_commit(shop, &sha).await.unwrap().is_empty());
    assert!(store.link_commit_pr(shop, &sha, 12, at(1)).await.unwrap());
    assert!(!store.link_commit_pr(shop, &sha, 12, at(2)).await.unwrap());
    assert!(store.link_commit_pr(shop, &sha, 3, at(3)).await.unwrap());
    assert_eq!(store.prs_for_commit(shop, &sha).await.unwrap(), [3, 12]);
    assert!(store.prs_for_commit(other, &sha).await.unwrap().is_empty());
    assert!(
        store
            .prs_for_commit(shop, &"d".repeat(40))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn flaky_issues_are_saved_once_per_test(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let ingested = store
        .ingest(
            shop,
            &run("1", 1, 0, "d"),
            &[test_case("t0"), test_case("t1")],
            &[exec(0, 1, Outcome::Failed), exec(1, 1, Outcome::Passed)],
        )
        .await
        .unwrap();
    let test = ingested.test_ids[0];
    assert_eq!(store.flaky_issue(shop, test).await.unwrap(), None);
    let url = "https://github.com/acme/shop/issues/5";
    let (issue, created) = store
        .save_flaky_issue(shop, test, 5, url, at(1))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (issue.number, issue.url.as_str(), issue.created_at),
        (5, url, at(1))
    );
    let (again, created) = store
        .save_flaky_issue(
            shop,
            test,
            6,
            "https://github.com/acme/shop/issues/6",
            at(2),
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, issue, "never two issues for one test");
    assert_eq!(store.flaky_issue(shop, test).await.unwrap(), Some(issue));
    assert_eq!(
        store.flaky_issue(shop, ingested.test_ids[1]).await.unwrap(),
        None
    );

    let foreign = store
        .save_flaky_issue(other, test, 7, url, at(3))
        .await
        .unwrap_err();
    assert!(matches!(foreign, StoreError::NotFound(_)), "{foreign}");
    assert_eq!(store.flaky_issue(other, test).await.unwrap(), None);
    let unknown = store
        .save_flaky_issue(shop, TestCaseId(i64::MAX), 8, url, at(3))
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown}");
}

pub async fn workflow_jobs_never_move_backwards(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let queued = WorkflowJob {
        workflow_run_id: 2_202_229_078,
        job_id: 289_782_451,
        run_attempt: 1,
        name: "linters".to_owned(),
        status: "queued".to_owned(),
        conclusion: None,
        started_at: None,
        completed_at: None,
    };
    assert!(store.record_workflow_job(shop, &queued).await.unwrap());
    assert!(
        !store.record_workflow_job(shop, &queued).await.unwrap(),
        "redelivery"
    );
    let completed = WorkflowJob {
        status: "completed".to_owned(),
        conclusion: Some("failure".to_owned()),
        started_at: Some(at(1)),
        completed_at: Some(at(4)),
        ..queued.clone()
    };
    assert!(store.record_workflow_job(shop, &completed).await.unwrap());
    assert!(!store.record_workflow_job(shop, &completed).await.unwrap());
    let late = WorkflowJob {
        status: "in_progress".to_owned(),
        started_at: Some(at(1)),
        ..queued.clone()
    };
    assert!(
        !store.record_workflow_job(shop, &late).await.unwrap(),
        "late delivery"
    );
    assert!(!store.record_workflow_job(shop, &queued).await.unwrap());
    let second = WorkflowJob {
        job_id: 289_782_452,
        name: "test".to_owned(),
        ..completed.clone()
    };
    let retried = WorkflowJob {
        job_id: 100,
        run_attempt: 2,
        ..completed.clone()
    };
    store.record_workflow_job(shop, &second).await.unwrap();
    store.record_workflow_job(shop, &retried).await.unwrap();
    store
        .record_workflow_job(
            shop,
            &WorkflowJob {
                workflow_run_id: 1,
                ..completed.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.workflow_jobs(shop, 2_202_229_078).await.unwrap(),
        [completed.clone(), second, retried],
        "by attempt, then job id"
    );
    assert!(
        store
            .workflow_jobs(other, 2_202_229_078)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn racing_workers_agree_on_one_check_run_and_one_installation(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    for round in 0..10_i64 {
        let save = |check_run_id: i64| NewCheckRun {
            repo: shop,
            head_sha: format!("{round:040x}"),
            check_run_id,
            workflow_run_id: Some(check_run_id),
            status: "completed".to_owned(),
            conclusion: Some("success".to_owned()),
            at: at(round),
        };
        let (a, b) = (save(2 * round + 100), save(2 * round + 101));
        let (first, second) =
            futures_join(store.save_check_run(&a), store.save_check_run(&b)).await;
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(
            first.check_run_id, second.check_run_id,
            "round {round}: one check run per commit"
        );
        assert_eq!(first.workflow_run_ids, [first.check_run_id]);
    }
    let new = octo_installation(vec![
        installed(1, "octo-org/one"),
        installed(2, "octo-org/two"),
    ]);
    let (first, second) = futures_join(
        store.register_installation(&new),
        store.register_installation(&new),
    )
    .await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.installation, second.installation);
    assert_eq!(first.repositories, second.repositories);
    assert!(
        first.org_created != second.org_created,
        "one created the organization"
    );
    assert_eq!(
        store.installed_repositories(957_387).await.unwrap().len(),
        2
    );
}

pub async fn repository_policies_are_stored_per_repository(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let api = repo(store, "acme/api").await;
    assert_eq!(
        store.repo_policy(shop).await.unwrap(),
        None,
        "nothing stored yet"
    );

    // A policy through the API, as written.
    let yaml = "# strict\nflaky_threshold: 0.8\n";
    let stored = store
        .put_repo_policy(
            shop,
            &NewPolicy {
                source: yaml.to_owned(),
                origin: PolicyOrigin::Api,
                commit: None,
                updated_at: at(1),
                updated_by: "token:7".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.repo, shop);
    assert_eq!(stored.source.as_deref(), Some(yaml));
    assert_eq!(stored.origin, Some(PolicyOrigin::Api));
    assert_eq!(
        (stored.updated_at, stored.updated_by.as_deref()),
        (Some(at(1)), Some("token:7"))
    );
    assert_eq!(stored.codeowners, None);
    assert_eq!(store.repo_policy(shop).await.unwrap(), Some(stored));
    assert_eq!(
        store.repo_policy(api).await.unwrap(),
        None,
        "per repository"
    );

    // CODEOWNERS beside it keeps the policy; a new policy from the file keeps CODEOWNERS.
    let owners = "* @acme/everyone\n/tests/payments/ @acme/payments\n";
    let with_owners = store
        .put_codeowners(shop, owners, "api", at(2))
        .await
        .unwrap();
    assert_eq!(with_owners.source.as_deref(), Some(yaml));
    assert_eq!(with_owners.codeowners.as_deref(), Some(owners));
    assert_eq!(with_owners.codeowners_source.as_deref(), Some("api"));
    assert_eq!(with_owners.codeowners_updated_at, Some(at(2)));
    let sha = "a".repeat(40);
    let replaced = store
        .put_repo_policy(
            shop,
            &NewPolicy {
                source: String::new(),
                origin: PolicyOrigin::File,
                commit: Some(sha.clone()),
                updated_at: at(3),
                updated_by: "github".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        replaced.source.as_deref(),
        Some(""),
        "an empty file is a policy"
    );
    assert_eq!(replaced.origin, Some(PolicyOrigin::File));
    assert_eq!(replaced.commit.as_deref(), Some(sha.as_str()));
    assert_eq!(replaced.codeowners.as_deref(), Some(owners));
    assert_eq!(
        store.repo_policy(shop).await.unwrap(),
        Some(replaced.clone())
    );
    // Back to the API: the commit goes with the file.
    let again = store
        .put_repo_policy(
            shop,
            &NewPolicy {
                source: yaml.to_owned(),
                origin: PolicyOrigin::Api,
                commit: None,
                updated_at: at(4),
                updated_by: "operator".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!((again.commit, again.updated_at), (None, Some(at(4))));

    // CODEOWNERS alone: a row without a policy.
    let only = store
        .put_codeowners(api, "*.rs @rust\n", "file:.github/CODEOWNERS@abc", at(5))
        .await
        .unwrap();
    assert_eq!(
        (only.source, only.origin, only.updated_at),
        (None, None, None)
    );
    assert_eq!(only.codeowners.as_deref(), Some("*.rs @rust\n"));

    // Unknown repositories are not found and nothing is written.
    let missing = RepoId(shop.0.max(api.0) + 1000);
    let err = store
        .put_repo_policy(
            missing,
            &NewPolicy {
                source: yaml.to_owned(),
                origin: PolicyOrigin::Api,
                commit: None,
                updated_at: at(6),
                updated_by: "x".to_owned(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = store
        .put_codeowners(missing, "* @x\n", "api", at(6))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(store.repo_policy(missing).await.unwrap(), None);
}

pub async fn pull_request_labels_are_replaced_per_pull_request(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    assert_eq!(store.pr_labels(shop, 7).await.unwrap(), None);
    let labels = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    store
        .set_pr_labels(
            shop,
            7,
            &labels(&["bug", "flaky-ok", "üñí \"quoted\""]),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        store.pr_labels(shop, 7).await.unwrap(),
        Some(labels(&["bug", "flaky-ok", "üñí \"quoted\""]))
    );
    assert_eq!(
        store.pr_labels(other, 7).await.unwrap(),
        None,
        "per repository"
    );
    assert_eq!(
        store.pr_labels(shop, 8).await.unwrap(),
        None,
        "per pull request"
    );
    store.set_pr_labels(shop, 7, &[], at(1)).await.unwrap();
    assert_eq!(
        store.pr_labels(shop, 7).await.unwrap(),
        Some(Vec::new()),
        "replaced"
    );
    let err = store
        .set_pr_labels(RepoId(i64::MAX), 1, &labels(&["x"]), at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn workflow_runs_are_recorded_per_attempt(store: &dyn Store) {
    migrated(store).await;
    let shop = repo(store, "acme/shop").await;
    let other = repo(store, "acme/other").await;
    let first = WorkflowRunRecord {
        workflow_run_id: 30_433_642,
        run_attempt: 1,
        name: Some("Build".to_owned()),
        event: "pull_request".to_owned(),
        head_sha: format!("{:040x}", 7),
        head_branch: Some("feature".to_owned()),
        pull_requests: vec![2, 17],
        conclusion: Some("failure".to_owned()),
        updated_at: at(0),
    };
    assert_eq!(store.workflow_run(shop, 30_433_642, 1).await.unwrap(), None);
    store.record_workflow_run(shop, &first).await.unwrap();
    assert_eq!(
        store.workflow_run(shop, 30_433_642, 1).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.workflow_run(other, 30_433_642, 1).await.unwrap(),
        None
    );
    assert_eq!(store.workflow_run(shop, 30_433_642, 2).await.unwrap(), None);
    // A second attempt is its own row; a later event of an attempt replaces it.
    let second = WorkflowRunRecord {
        run_attempt: 2,
        pull_requests: Vec::new(),
        name: None,
        head_branch: None,
        conclusion: None,
        updated_at: at(1),
        ..first.clone()
    };
    store.record_workflow_run(shop, &second).await.unwrap();
    let again = WorkflowRunRecord {
        conclusion: Some("success".to_owned()),
        updated_at: at(2),
        ..first.clone()
    };
    store.record_workflow_run(shop, &again).await.unwrap();
    assert_eq!(
        store.workflow_run(shop, 30_433_642, 1).await.unwrap(),
        Some(again)
    );
    assert_eq!(
        store.workflow_run(shop, 30_433_642, 2).await.unwrap(),
        Some(second)
    );
    let err = store
        .record_workflow_run(RepoId(i64::MAX), &first)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}
