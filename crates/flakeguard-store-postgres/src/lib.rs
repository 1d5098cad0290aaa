//! FlakeGuard's PostgreSQL store: the production implementation of
//! [`flakeguard_store::Store`].
//!
//! - [`PostgresStore::connect`] opens a connection pool from a `postgres://` or
//!   `postgresql://` URL; acquiring a connection gives up after [`ACQUIRE_TIMEOUT`], so an
//!   outage answers [`StoreError::Unavailable`] quickly instead of hanging requests.
//! - The schema lives in `migrations/` ([`MIGRATIONS`]), applied by [`Store::migrate`].
//! - Ingestion writes a run in one transaction, its new test cases and its executions with
//!   binary `COPY` when there are many, with `INSERT … FROM UNNEST` statements when there are
//!   few ([`DEFAULT_BULK_THRESHOLD`]; see `docs/performance.md`, "Storage ingestion").
//!   `executions` and `test_cases.repo_id` have no declared foreign keys (per-row checks
//!   would double the cost); triggers keep their `ON DELETE CASCADE` (see the migration).
//!
//! Timestamps are `TIMESTAMPTZ` (microsecond precision; finer parts are truncated), 64-bit
//! hashes are `BIGINT` holding the `u64` bit for bit. PostgreSQL text cannot contain NUL:
//! a failure message's NUL characters are stored as U+FFFD, and a test identity or run field
//! containing one is refused as [`StoreError::Invalid`].
#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod copy;
mod deliveries;
mod error;
mod github;
mod history;
mod ingest;
mod migrate;
mod outbox;
mod quarantines;
mod repo_policies;
mod retention;
mod runs;
mod test_cases;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{
    ApiToken, AuditEntry, CheckRunRecord, Counts, DeliveryId, DeliveryStatus, DerivedState,
    FlakyIssue, Ingested, Installation, InstallationState, InstalledRepository, Migration,
    MigrationState, NewAuditEntry, NewCheckRun, NewDelivery, NewExecution, NewInstallation,
    NewInstalledRepository, NewPolicy, NewQuarantine, NewRun, NewTestCase, NewToken, OrgId,
    Organization, Page, PageRequest, PrComment, Quarantine, RegisteredInstallation, RepoId,
    RepoSlug, Repository, Role, RunFailure, SignatureCount, Store, StoreError, StoredHistory,
    StoredPolicy, StoredRun, StoredRunId, StoredTest, TestCaseId, TestExecution, TestQuery,
    TokenHash, TokenId, User, UserId, WebhookDelivery, WorkflowJob, WorkflowRunRecord,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// This crate's schema changes, in order. Never edit an applied one: add a new file.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "read_api",
        sql: include_str!("../migrations/0002_read_api.sql"),
    },
    Migration {
        version: 3,
        name: "outbox",
        sql: include_str!("../migrations/0003_outbox.sql"),
    },
    Migration {
        version: 4,
        name: "repo_policy",
        sql: include_str!("../migrations/0004_repo_policy.sql"),
    },
    Migration {
        version: 5,
        name: "github",
        sql: include_str!("../migrations/0005_github.sql"),
    },
    Migration {
        version: 6,
        name: "pr_labels",
        sql: include_str!("../migrations/0006_pr_labels.sql"),
    },
    Migration {
        version: 7,
        name: "workflow_runs",
        sql: include_str!("../migrations/0007_workflow_runs.sql"),
    },
];

/// How long an operation waits for a pooled connection (including opening one) before it
/// fails with [`StoreError::Unavailable`].
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many new test cases, or executions, one ingest writes with `INSERT`s at most; more are
/// streamed with binary `COPY`. Over TCP, sqlx's `COPY` (and, over TLS, any message longer
/// than 16 KiB) waits about 40 ms for the server's delayed ACK: Nagle's algorithm, as sqlx
/// 0.9 does not set `TCP_NODELAY`. A small run would pay that in full; `INSERT`s of one TLS
/// record each do not wait, and up to this size cost the server about as much as `COPY`
/// (see `docs/performance.md`, "Storage ingestion").
pub const DEFAULT_BULK_THRESHOLD: usize = 5_000;

/// A pool of connections to one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    bulk_threshold: usize,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`, with the usual
    /// libpq parameters such as `sslmode`) with a pool of at most `max_connections`.
    ///
    /// One connection is opened right away, so a wrong URL, a refused login or an unreachable
    /// server is reported here ([`StoreError::Invalid`] / [`StoreError::Unavailable`], never
    /// echoing the URL) and within [`ACQUIRE_TIMEOUT`].
    pub async fn connect(url: &str, max_connections: u32) -> Result<PostgresStore, StoreError> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Invalid(
                "database url must start with postgres:// or postgresql://".into(),
            ));
        }
        let options = PgConnectOptions::from_str(url).map_err(error::map)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(error::map)?;
        Ok(PostgresStore {
            pool,
            bulk_threshold: DEFAULT_BULK_THRESHOLD,
        })
    }

    /// Sets how many rows of one table an ingest writes with `INSERT`s at most before it
    /// uses binary `COPY` ([`DEFAULT_BULK_THRESHOLD`] unless set): `0` always uses `COPY`,
    /// `usize::MAX` only for batches of more than 1 MiB. The stored rows are the same either
    /// way; only the speed differs (over a Unix socket, where nothing waits for an ACK,
    /// `COPY` is 10–25% faster for batches of 1,000–5,000 rows).
    #[must_use]
    pub fn with_bulk_threshold(mut self, rows: usize) -> PostgresStore {
        self.bulk_threshold = rows;
        self
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Starts a read-only transaction whose queries all see one snapshot.
async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(error::map)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
    Ok(tx)
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        migrate::status(&self.pool).await
    }

    async fn migrate(&self) -> Result<Vec<MigrationState>, StoreError> {
        migrate::run(&self.pool).await
    }

    async fn ensure_organization(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(Organization, bool), StoreError> {
        accounts::ensure_organization(&self.pool, slug, name).await
    }

    async fn ensure_user(&self, email: &str, name: &str) -> Result<(User, bool), StoreError> {
        accounts::ensure_user(&self.pool, email, name).await
    }

    async fn ensure_membership(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
    ) -> Result<bool, StoreError> {
        accounts::ensure_membership(&self.pool, org, user, role).await
    }

    async fn ensure_repository(
        &self,
        org: OrgId,
        slug: &RepoSlug,
    ) -> Result<(Repository, bool), StoreError> {
        accounts::ensure_repository(&self.pool, org, slug).await
    }

    async fn find_repository(&self, slug: &RepoSlug) -> Result<Option<Repository>, StoreError> {
        accounts::find_repository(&self.pool, slug).await
    }

    async fn list_repositories(&self, org: OrgId) -> Result<Vec<Repository>, StoreError> {
        accounts::list_repositories(&self.pool, org).await
    }

    async fn create_token(&self, token: &NewToken) -> Result<ApiToken, StoreError> {
        accounts::create_token(&self.pool, token).await
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        accounts::find_token(&self.pool, hash).await
    }

    async fn list_tokens(&self, org: OrgId) -> Result<Vec<ApiToken>, StoreError> {
        accounts::list_tokens(&self.pool, org).await
    }

    async fn revoke_token(
        &self,
        org: OrgId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        accounts::revoke_token(&self.pool, org, id, at).await
    }

    async fn ingest(
        &self,
        repo: RepoId,
        run: &NewRun,
        tests: &[NewTestCase],
        executions: &[NewExecution],
    ) -> Result<Ingested, StoreError> {
        ingest::ingest(
            &self.pool,
            self.bulk_threshold,
            repo,
            run,
            tests,
            executions,
        )
        .await
    }

    async fn load_history(&self, repo: RepoId, max_runs: u32) -> Result<StoredHistory, StoreError> {
        history::load(&self.pool, repo, max_runs).await
    }

    async fn save_scores(
        &self,
        repo: RepoId,
        scores: &[DerivedState],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        history::save_scores(&self.pool, repo, scores, at).await
    }

    async fn find_test(
        &self,
        repo: RepoId,
        id: TestCaseId,
    ) -> Result<Option<StoredTest>, StoreError> {
        test_cases::find_test(&self.pool, repo, id).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        accounts::counts(&self.pool).await
    }

    async fn find_organization(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        accounts::find_organization(&self.pool, slug).await
    }

    async fn organization(&self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        accounts::organization_by_id(&self.pool, id).await
    }

    async fn set_repository_creation(&self, org: OrgId, allowed: bool) -> Result<(), StoreError> {
        accounts::set_repository_creation(&self.pool, org, allowed).await
    }

    async fn list_all_repositories(&self) -> Result<Vec<Repository>, StoreError> {
        accounts::list_all_repositories(&self.pool).await
    }

    async fn audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError> {
        audit::append(&self.pool, entry).await
    }

    async fn list_audit(&self, org: OrgId, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        audit::list(&self.pool, org, limit).await
    }

    async fn list_tests(
        &self,
        repo: RepoId,
        query: &TestQuery,
    ) -> Result<Page<StoredTest>, StoreError> {
        test_cases::list_tests(&self.pool, repo, query).await
    }

    async fn find_tests(
        &self,
        repo: RepoId,
        ids: &[TestCaseId],
    ) -> Result<Vec<StoredTest>, StoreError> {
        test_cases::find_tests(&self.pool, repo, ids).await
    }

    async fn recent_executions(
        &self,
        repo: RepoId,
        test: TestCaseId,
        limit: u32,
    ) -> Result<Vec<TestExecution>, StoreError> {
        runs::recent_executions(&self.pool, repo, test, limit).await
    }

    async fn failure_signatures(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Vec<SignatureCount>, StoreError> {
        runs::failure_signatures(&self.pool, repo, test).await
    }

    async fn list_runs(
        &self,
        repo: RepoId,
        page: PageRequest,
    ) -> Result<Page<StoredRun>, StoreError> {
        runs::list_runs(&self.pool, repo, page).await
    }

    async fn find_run(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Option<StoredRun>, StoreError> {
        runs::find_run(&self.pool, repo, run).await
    }

    async fn run_final_outcomes(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<(TestCaseId, Outcome)>, StoreError> {
        runs::run_final_outcomes(&self.pool, repo, run).await
    }

    async fn runs_for_commit(
        &self,
        repo: RepoId,
        commit: &str,
    ) -> Result<Vec<StoredRun>, StoreError> {
        runs::runs_for_commit(&self.pool, repo, commit).await
    }

    async fn run_failures(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<RunFailure>, StoreError> {
        runs::run_failures(&self.pool, repo, run).await
    }

    async fn add_quarantine(
        &self,
        repo: RepoId,
        quarantine: &NewQuarantine,
    ) -> Result<Quarantine, StoreError> {
        quarantines::add(&self.pool, repo, quarantine).await
    }

    async fn live_quarantines(
        &self,
        repo: RepoId,
    ) -> Result<Vec<(Quarantine, TestKey)>, StoreError> {
        quarantines::live(&self.pool, repo).await
    }

    async fn release_quarantine(
        &self,
        repo: RepoId,
        test: TestCaseId,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<Option<Quarantine>, StoreError> {
        quarantines::release(&self.pool, repo, test, at, by).await
    }

    async fn unscored_runs(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(RepoId, StoredRunId)>, StoreError> {
        outbox::unscored(&self.pool, received_before, limit).await
    }

    async fn mark_run_scored(
        &self,
        run: StoredRunId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        outbox::mark_scored(&self.pool, run, at).await
    }

    async fn load_run_history(
        &self,
        repo: RepoId,
        run: StoredRunId,
        max_runs: u32,
    ) -> Result<StoredHistory, StoreError> {
        history::load_run(&self.pool, repo, run, max_runs).await
    }

    async fn record_delivery(
        &self,
        delivery: &NewDelivery,
    ) -> Result<(WebhookDelivery, bool), StoreError> {
        deliveries::record(&self.pool, delivery).await
    }

    async fn find_delivery(&self, id: DeliveryId) -> Result<Option<WebhookDelivery>, StoreError> {
        deliveries::find(&self.pool, id).await
    }

    async fn finish_delivery(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        deliveries::finish(&self.pool, id, status, error, at).await
    }

    async fn pending_deliveries(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        deliveries::pending(&self.pool, received_before, limit).await
    }

    async fn prune_failure_text(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        retention::prune_failure_text(&self.pool, before).await
    }

    async fn expire_quarantines(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(Quarantine, RepoId)>, StoreError> {
        quarantines::expire(&self.pool, now).await
    }

    // --- GitHub App state (issue #5)

    async fn find_installation_for_repo(&self, slug: &RepoSlug) -> Result<Option<i64>, StoreError> {
        github::find_installation_for_repo(&self.pool, slug).await
    }

    async fn register_installation(
        &self,
        installation: &NewInstallation,
    ) -> Result<RegisteredInstallation, StoreError> {
        github::register_installation(&self.pool, installation).await
    }

    async fn installation(&self, installation_id: i64) -> Result<Option<Installation>, StoreError> {
        github::find_installation(&self.pool, installation_id).await
    }

    async fn set_installation_state(
        &self,
        installation_id: i64,
        state: InstallationState,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        github::set_installation_state(&self.pool, installation_id, state, at).await
    }

    async fn add_installed_repositories(
        &self,
        installation_id: i64,
        repositories: &[NewInstalledRepository],
        at: OffsetDateTime,
    ) -> Result<Vec<InstalledRepository>, StoreError> {
        github::add_installed_repositories(&self.pool, installation_id, repositories, at).await
    }

    async fn remove_installed_repositories(
        &self,
        installation_id: i64,
        github_repo_ids: &[i64],
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        github::remove_installed_repositories(&self.pool, installation_id, github_repo_ids, at)
            .await
    }

    async fn installed_repositories(
        &self,
        installation_id: i64,
    ) -> Result<Vec<InstalledRepository>, StoreError> {
        github::installed_repositories(&self.pool, installation_id).await
    }

    async fn set_default_branch(&self, repo: RepoId, branch: &str) -> Result<bool, StoreError> {
        github::set_default_branch(&self.pool, repo, branch).await
    }

    async fn check_run_for_commit(
        &self,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Option<CheckRunRecord>, StoreError> {
        github::check_run_for_commit(&self.pool, repo, head_sha).await
    }

    async fn save_check_run(&self, check_run: &NewCheckRun) -> Result<CheckRunRecord, StoreError> {
        github::save_check_run(&self.pool, check_run).await
    }

    async fn pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
    ) -> Result<Option<PrComment>, StoreError> {
        github::pr_comment(&self.pool, repo, pr_number).await
    }

    async fn save_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
        at: OffsetDateTime,
    ) -> Result<PrComment, StoreError> {
        github::save_pr_comment(&self.pool, repo, pr_number, comment_id, at).await
    }

    async fn forget_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
    ) -> Result<bool, StoreError> {
        github::forget_pr_comment(&self.pool, repo, pr_number, comment_id).await
    }

    async fn link_commit_pr(
        &self,
        repo: RepoId,
        head_sha: &str,
        pr_number: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        github::link_commit_pr(&self.pool, repo, head_sha, pr_number, at).await
    }

    async fn prs_for_commit(&self, repo: RepoId, head_sha: &str) -> Result<Vec<i64>, StoreError> {
        github::prs_for_commit(&self.pool, repo, head_sha).await
    }

    async fn flaky_issue(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Option<FlakyIssue>, StoreError> {
        github::flaky_issue(&self.pool, repo, test).await
    }

    async fn save_flaky_issue(
        &self,
        repo: RepoId,
        test: TestCaseId,
        number: i64,
        url: &str,
        at: OffsetDateTime,
    ) -> Result<(FlakyIssue, bool), StoreError> {
        github::save_flaky_issue(&self.pool, repo, test, number, url, at).await
    }

    async fn record_workflow_job(
        &self,
        repo: RepoId,
        job: &WorkflowJob,
    ) -> Result<bool, StoreError> {
        github::record_workflow_job(&self.pool, repo, job).await
    }

    async fn workflow_jobs(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
    ) -> Result<Vec<WorkflowJob>, StoreError> {
        github::workflow_jobs(&self.pool, repo, workflow_run_id).await
    }

    async fn record_workflow_run(
        &self,
        repo: RepoId,
        run: &WorkflowRunRecord,
    ) -> Result<(), StoreError> {
        github::record_workflow_run(&self.pool, repo, run).await
    }

    async fn workflow_run(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
        run_attempt: u32,
    ) -> Result<Option<WorkflowRunRecord>, StoreError> {
        github::workflow_run(&self.pool, repo, workflow_run_id, run_attempt).await
    }

    async fn set_pr_labels(
        &self,
        repo: RepoId,
        pr_number: i64,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        github::set_pr_labels(&self.pool, repo, pr_number, labels, at).await
    }

    async fn pr_labels(
        &self,
        repo: RepoId,
        pr_number: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        github::pr_labels(&self.pool, repo, pr_number).await
    }

    // --- repository policy (issue #6)

    async fn repo_policy(&self, repo: RepoId) -> Result<Option<StoredPolicy>, StoreError> {
        repo_policies::find(&self.pool, repo).await
    }

    async fn put_repo_policy(
        &self,
        repo: RepoId,
        policy: &NewPolicy,
    ) -> Result<StoredPolicy, StoreError> {
        repo_policies::put_policy(&self.pool, repo, policy).await
    }

    async fn put_codeowners(
        &self,
        repo: RepoId,
        text: &str,
        source: &str,
        at: OffsetDateTime,
    ) -> Result<StoredPolicy, StoreError> {
        repo_policies::put_codeowners(&self.pool, repo, text, source, at).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert!(MIGRATIONS.iter().all(|m| !m.sql.trim().is_empty()));
    }
}
