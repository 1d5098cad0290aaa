//! The repository's stored policy driving the score job, on both store backends (a fresh
//! SQLite file; a PostgreSQL database of its own on `TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, dropped afterwards): the same history
//! scored under two policies, automatic quarantine with its CODEOWNERS owner, automatic
//! release after clean runs, all with a controllable clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flakeguard_app::jobs::{self, Job, JobContext};
use flakeguard_app::quarantine::{AUTO_QUARANTINE, AUTO_RELEASE};
use flakeguard_app::{RepoPolicy, effective_config, rescore};
use flakeguard_core::{Outcome, Policy, RepoConfig, TestKey};
use flakeguard_store::{
    NewExecution, NewPolicy, NewRun, NewTestCase, PolicyOrigin, QuarantineState, RepoId, RepoSlug,
    Source, Store, StoredRunId, TestCaseId,
};
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;
use sqlx::{Connection, PgConnection};
use time::{Duration, OffsetDateTime};

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000;
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| PG_DEFAULT.to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after..].find('/') {
        Some(slash) => &base[..after + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn pg_admin(sql: String) {
    let mut conn = PgConnection::connect(&admin_url()).await.unwrap_or_else(|e| {
        panic!("cannot reach the test PostgreSQL server (TEST_DATABASE_URL, default {PG_DEFAULT}): {e}")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("admin statement");
    let _ = conn.close().await;
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Database(String),
}

/// A migrated store with organization `acme` and repository `acme/shop`, and a job context
/// whose clock the test sets.
struct Env {
    store: Arc<dyn Store>,
    repo: RepoId,
    ctx: JobContext,
    now: Arc<Mutex<OffsetDateTime>>,
    cleanup: Cleanup,
    runs: u32,
    /// The pull request the next ingested runs belong to.
    pr: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Env {
    async fn start(backend: Backend) -> Env {
        let (store, cleanup): (Arc<dyn Store>, Cleanup) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("fg-app-policy"));
                let store = SqliteStore::open(&dir.join("flakeguard.db")).await.unwrap();
                (Arc::new(store), Cleanup::Dir(dir))
            }
            Backend::Postgres => {
                let name = unique("flakeguard_app_policy");
                pg_admin(format!("CREATE DATABASE \"{name}\"")).await;
                let store = PostgresStore::connect(&with_database(&admin_url(), &name), 4)
                    .await
                    .unwrap();
                (Arc::new(store), Cleanup::Database(name))
            }
        };
        store.migrate().await.unwrap();
        let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
        let (repo, _) = store
            .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
            .await
            .unwrap();
        let now = Arc::new(Mutex::new(
            OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
        ));
        let mut ctx = JobContext::new(Arc::clone(&store), Policy::default());
        let clock = Arc::clone(&now);
        ctx.clock = Arc::new(move || *clock.lock().unwrap());
        Env {
            store,
            repo: repo.id,
            ctx,
            now,
            cleanup,
            runs: 0,
            pr: None,
        }
    }

    async fn finish(self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database(name) => {
                pg_admin(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            }
        }
    }

    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }

    async fn put_policy(&self, yaml: &str) {
        RepoConfig::parse(yaml).expect("a valid policy");
        self.store
            .put_repo_policy(
                self.repo,
                &NewPolicy {
                    source: yaml.to_owned(),
                    origin: PolicyOrigin::Api,
                    commit: None,
                    updated_at: self.now(),
                    updated_by: "test".to_owned(),
                },
            )
            .await
            .unwrap();
    }

    /// Stores a run started an hour after the previous one (ending now) with `tests`
    /// (name, attempt outcomes), without scoring it.
    async fn ingest(&mut self, tests: &[(&str, &[Outcome])]) -> StoredRunId {
        self.runs += 1;
        self.advance(Duration::hours(1));
        let now = self.now();
        let cases: Vec<NewTestCase> = tests
            .iter()
            .map(|(name, _)| {
                let file = format!("tests/pay/test_{name}.py");
                NewTestCase {
                    key: TestKey::from_parts(Some(&file), "pay", Some("pay"), name),
                    file: Some(file),
                }
            })
            .collect();
        let mut executions = Vec::new();
        for (i, (_, outcomes)) in tests.iter().enumerate() {
            for (a, outcome) in outcomes.iter().enumerate() {
                executions.push(NewExecution {
                    test: i,
                    attempt: a as u32 + 1,
                    outcome: *outcome,
                    duration_ms: Some(5),
                    signature: outcome.is_failure().then_some(7),
                    message: outcome.is_failure().then(|| "timeout".to_owned()),
                });
            }
        }
        let run = NewRun {
            commit: Some(format!("{:040x}", self.runs)),
            branch: Some("main".to_owned()),
            pr_number: self.pr,
            run_id: self.runs.to_string(),
            attempt: 1,
            job: "test".to_owned(),
            source: Source::Upload,
            started_at: now - Duration::minutes(10),
            received_at: now,
            report_digest: format!("d{}", self.runs),
        };
        self.store
            .ingest(self.repo, &run, &cases, &executions)
            .await
            .unwrap()
            .run
    }

    async fn score(&self, run: StoredRunId) -> String {
        jobs::handle(&self.ctx, &Job::score(self.repo, run))
            .await
            .unwrap()
    }

    async fn test(&self, name: &str) -> (TestCaseId, String, String) {
        let file = format!("tests/pay/test_{name}.py");
        let key = TestKey::from_parts(Some(&file), "pay", Some("pay"), name);
        let history = self.store.load_history(self.repo, 500).await.unwrap();
        let i = history.tests.iter().position(|t| t.key == key).unwrap();
        let test = self
            .store
            .find_test(self.repo, history.test_ids[i])
            .await
            .unwrap()
            .unwrap();
        (test.id, test.status, test.recommendation)
    }
}

use Outcome::{Failed, Passed};
const RETRIED: &[Outcome] = &[Failed, Passed];
const CLEAN: &[Outcome] = &[Passed];

/// Eight runs: `refund` fails and passes on retry in every other one, `charge` always passes.
async fn flaky_history(env: &mut Env) -> StoredRunId {
    let mut last = None;
    for i in 0..8 {
        let refund = if i % 2 == 1 { RETRIED } else { CLEAN };
        last = Some(env.ingest(&[("refund", refund), ("charge", CLEAN)]).await);
    }
    last.unwrap()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut env = super::Env::start(super::Backend::Sqlite).await;
                    super::$name(&mut env).await;
                    env.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut env = super::Env::start(super::Backend::Postgres).await;
                    super::$name(&mut env).await;
                    env.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_same_history_scores_differently_under_two_stored_policies,
    flaky_tests_are_quarantined_automatically_once_and_released_after_clean_runs,
    automatic_quarantine_needs_the_setting_and_spares_exempted_tests,
    labels_required_gates_automatic_quarantine,
);

async fn the_same_history_scores_differently_under_two_stored_policies(env: &mut Env) {
    let last = flaky_history(env).await;
    assert_eq!(
        effective_config(&*env.store, env.repo).await.unwrap(),
        RepoConfig::default()
    );
    env.score(last).await;
    let (_, status, recommendation) = env.test("refund").await;
    assert_eq!(
        (status.as_str(), recommendation.as_str()),
        ("flaky", "quarantine")
    );

    // The payments team wants more evidence before anything is recommended.
    env.put_policy(
        "team_overrides:\n  payments:\n    paths: ['tests/pay/**']\n    min_occurrences: 100\n",
    )
    .await;
    env.score(last).await;
    let (_, status, recommendation) = env.test("refund").await;
    assert_eq!(
        (status.as_str(), recommendation.as_str()),
        ("flaky", "none")
    );

    // Excluded by path: not judged, whatever the thresholds; the full rescore agrees.
    env.put_policy("exclude_paths: ['tests/pay/**']\n").await;
    rescore(&*env.store, env.repo, env.now()).await.unwrap();
    assert_eq!(env.test("refund").await.2, "none");

    // Back to a policy that quarantines: the rescore reads the stored policy too.
    env.put_policy("flaky_threshold: 0.5\n").await;
    rescore(&*env.store, env.repo, env.now()).await.unwrap();
    assert_eq!(env.test("refund").await.2, "quarantine");
    assert_eq!(env.test("charge").await.2, "none");
    // Nothing was quarantined: automatic quarantine is off by default.
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn flaky_tests_are_quarantined_automatically_once_and_released_after_clean_runs(
    env: &mut Env,
) {
    env.put_policy(
        "auto_quarantine_enabled: true\nrelease_after_clean_runs: 3\nquarantine_duration_days: 5\n",
    )
    .await;
    env.store
        .put_codeowners(
            env.repo,
            "* @acme/all\n/tests/pay/ @acme/payments @alice\n",
            "api",
            env.now(),
        )
        .await
        .unwrap();
    let last = flaky_history(env).await;
    let (refund, _, _) = env.test("refund").await;
    env.score(last).await;
    let live = env.store.live_quarantines(env.repo).await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    let (q, key) = &live[0];
    assert_eq!((q.test, key.name.as_str()), (refund, "refund"));
    assert_eq!(q.state, QuarantineState::Active);
    assert_eq!(q.created_by, AUTO_QUARANTINE);
    assert_eq!(
        q.owner.as_deref(),
        Some("@acme/payments"),
        "first CODEOWNERS owner"
    );
    assert_eq!(q.created_at, env.now());
    assert_eq!(q.expires_at, Some(env.now() + Duration::days(5)));
    assert!(
        q.reason.contains("likely flaky") && q.reason.contains("retry"),
        "{}",
        q.reason
    );

    // Idempotent: the job again adds nothing and writes no audit entry.
    let (org, _) = env.store.ensure_organization("acme", "Acme").await.unwrap();
    let audit_before = env.store.list_audit(org.id, 100).await.unwrap();
    assert_eq!(audit_before.len(), 1);
    assert_eq!(
        (
            audit_before[0].action.as_str(),
            audit_before[0].actor.as_str()
        ),
        ("quarantine.created", AUTO_QUARANTINE)
    );
    assert_eq!(
        audit_before[0].target,
        format!("acme/shop#test:{}", refund.0)
    );
    env.score(last).await;
    assert_eq!(env.store.live_quarantines(env.repo).await.unwrap().len(), 1);
    assert_eq!(env.store.list_audit(org.id, 100).await.unwrap().len(), 1);

    // Two clean runs, then a retry: the streak starts again.
    for refund_outcome in [CLEAN, CLEAN, RETRIED, CLEAN, CLEAN] {
        let run = env
            .ingest(&[("refund", refund_outcome), ("charge", CLEAN)])
            .await;
        env.score(run).await;
        assert_eq!(
            env.store.live_quarantines(env.repo).await.unwrap().len(),
            1,
            "still quarantined"
        );
    }
    // The third clean run since the retry releases it.
    let run = env.ingest(&[("refund", CLEAN), ("charge", CLEAN)]).await;
    let summary = env.score(run).await;
    assert!(
        summary.contains("0 quarantined, 1 released by policy"),
        "{summary}"
    );
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty()
    );
    let audit = env.store.list_audit(org.id, 100).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("quarantine.released", AUTO_RELEASE)
    );
    assert!(
        audit[0].detail.contains("3 consecutive clean runs"),
        "{}",
        audit[0].detail
    );

    // Released, a still-suspect test is not quarantined again until it fails again.
    let run = env.ingest(&[("refund", CLEAN), ("charge", CLEAN)]).await;
    env.score(run).await;
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty()
    );
    let run = env.ingest(&[("refund", RETRIED), ("charge", CLEAN)]).await;
    env.score(run).await;
    let live = env.store.live_quarantines(env.repo).await.unwrap();
    assert_eq!(live.len(), 1, "a new failure: quarantined again");
    assert_eq!(live[0].0.created_by, AUTO_QUARANTINE);
}

async fn automatic_quarantine_needs_the_setting_and_spares_exempted_tests(env: &mut Env) {
    let last = flaky_history(env).await;
    env.score(last).await;
    assert_eq!(env.test("refund").await.2, "quarantine");
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty(),
        "off by default"
    );

    // Exempted by name: a warning, never a quarantine.
    env.put_policy("auto_quarantine_enabled: true\nexempted_tests: ['refund']\n")
        .await;
    env.score(last).await;
    assert_eq!(env.test("refund").await.2, "warn");
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty()
    );

    // Off for the team that owns the file, on for the repository.
    env.put_policy(
        "auto_quarantine_enabled: true\nteam_overrides:\n  '@acme/payments':\n    auto_quarantine_enabled: false\n",
    )
    .await;
    env.store
        .put_codeowners(env.repo, "tests/ @acme/payments\n", "api", env.now())
        .await
        .unwrap();
    env.score(last).await;
    assert!(
        env.store
            .live_quarantines(env.repo)
            .await
            .unwrap()
            .is_empty()
    );
    let policy = RepoPolicy::load(&*env.store, env.repo).await.unwrap();
    assert_eq!(policy.source.as_str(), "api");

    // On for the team while off for the repository.
    env.put_policy("team_overrides:\n  '@acme/payments':\n    auto_quarantine_enabled: true\n")
        .await;
    env.score(last).await;
    let live = env.store.live_quarantines(env.repo).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0.owner.as_deref(), Some("@acme/payments"));
}

async fn labels_required_gates_automatic_quarantine(env: &mut Env) {
    env.put_policy("auto_quarantine_enabled: true\nlabels_required: ['flaky-ok']\n")
        .await;
    let live = |env: &Env| {
        let store = Arc::clone(&env.store);
        let repo = env.repo;
        async move { store.live_quarantines(repo).await.unwrap().len() }
    };
    let last = flaky_history(env).await;
    env.score(last).await;
    assert_eq!(env.test("refund").await.2, "quarantine");
    assert_eq!(
        live(env).await,
        0,
        "a run of no pull request carries no label"
    );

    env.pr = Some(12);
    let run = env.ingest(&[("refund", RETRIED), ("charge", CLEAN)]).await;
    env.score(run).await;
    assert_eq!(
        live(env).await,
        0,
        "the pull request's labels are not known"
    );
    env.store
        .set_pr_labels(env.repo, 12, &["bug".to_owned()], env.now())
        .await
        .unwrap();
    env.score(run).await;
    assert_eq!(live(env).await, 0, "not every required label");
    env.store
        .set_pr_labels(
            env.repo,
            12,
            &["bug".to_owned(), "Flaky-OK".to_owned()],
            env.now(),
        )
        .await
        .unwrap();
    env.score(run).await;
    assert_eq!(live(env).await, 1, "every required label (ignoring case)");
}
