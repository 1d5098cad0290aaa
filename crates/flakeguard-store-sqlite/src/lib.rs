//! FlakeGuard's SQLite store: the zero-configuration backend of [`flakeguard_store::Store`].
//!
//! One database file in WAL mode. SQLite has one writer at a time, so the store keeps two
//! pools: a single writer connection (every write goes through it, so writes in this process
//! queue instead of failing with `SQLITE_BUSY`) and a few reader connections, which WAL lets
//! run beside the writer. Write transactions start with `BEGIN IMMEDIATE`, so a second process
//! on the same file waits for the write lock (busy timeout: 5 s) instead of failing half-way.
//!
//! Timestamps are stored as INTEGER unix microseconds: they sort correctly and round-trip
//! exactly to the microsecond (finer precision is truncated).
//!
//! The code is split by what it stores: `migrate` (schema bookkeeping), `tenants`
//! (organizations, users, repositories), `tokens`, `audit`, `ingest` (runs and executions,
//! the bulk path), `history` (reading runs back for scoring), `outbox` (runs waiting to be
//! scored), `test_cases` (derived state and test listings), `runs` (runs and executions read
//! back for people), `quarantines`, `deliveries` (GitHub webhook deliveries) and `retention`
//! (clearing old failure messages) and `github` (the GitHub App's installations, check runs,
//! comments, issues and jobs).
#![forbid(unsafe_code)]

mod audit;
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
mod tenants;
mod test_cases;
mod timestamp;
mod tokens;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{
    ApiToken, AuditEntry, CheckRunRecord, Counts, DeliveryId, DeliveryStatus, DerivedState,
    FlakyIssue, Ingested, Installation, InstallationState, InstalledRepository, MigrationState,
    NewAuditEntry, NewCheckRun, NewDelivery, NewExecution, NewInstallation, NewInstalledRepository,
    NewPolicy, NewQuarantine, NewRun, NewTestCase, NewToken, OrgId, Organization, Page,
    PageRequest, PrComment, Quarantine, RegisteredInstallation, RepoId, RepoSlug, Repository,
    Result, Role, RunFailure, SignatureCount, Store, StoreError, StoredHistory, StoredPolicy,
    StoredRun, StoredRunId, StoredTest, TestCaseId, TestExecution, TestQuery, TokenHash, TokenId,
    User, UserId, WebhookDelivery, WorkflowJob, WorkflowRunRecord,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

pub use migrate::MIGRATIONS;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections (WAL lets them run beside the one writer).
const READERS: u32 = 4;
/// Page cache per connection, in KiB (SQLite's default is 2 MiB). A larger cache keeps the
/// test-case and execution indexes in memory during a large ingest.
const CACHE_KIB: i64 = 64 * 1024;

/// A FlakeGuard store in one SQLite file. Clones share the same connections (and
/// [`SqliteStore::close`] closes them for every clone).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one connection that writes.
    writer: SqlitePool,
    /// Connections that only read.
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories when missing) the database at `path`.
    /// Does not migrate: call [`Store::migrate`].
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", format!("-{CACHE_KIB}"))
            .pragma("temp_store", "memory");
        // The writer connects first so the file exists and is in WAL mode before any reader.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(options.clone().optimize_on_close(true, 400))
            .await
            .map_err(error::map("open the database"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await
            .map_err(error::map("open the database"))?;
        Ok(SqliteStore {
            writer,
            reader,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection (checkpointing the WAL when this is the last one open).
    pub async fn close(self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Starts a write transaction that holds SQLite's write lock from the start.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::map("start a write transaction"))
    }

    /// Starts a read transaction: every query in it sees the same snapshot.
    async fn read(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.reader
            .begin()
            .await
            .map_err(error::map("start a read transaction"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(error::map("ping the database"))?;
        Ok(())
    }

    async fn migration_status(&self) -> Result<Vec<MigrationState>> {
        self.migration_states().await
    }

    async fn migrate(&self) -> Result<Vec<MigrationState>> {
        self.apply_migrations().await
    }

    async fn ensure_organization(&self, slug: &str, name: &str) -> Result<(Organization, bool)> {
        self.ensure_organization_impl(slug, name).await
    }

    async fn ensure_user(&self, email: &str, name: &str) -> Result<(User, bool)> {
        self.ensure_user_impl(email, name).await
    }

    async fn ensure_membership(&self, org: OrgId, user: UserId, role: Role) -> Result<bool> {
        self.ensure_membership_impl(org, user, role).await
    }

    async fn ensure_repository(&self, org: OrgId, slug: &RepoSlug) -> Result<(Repository, bool)> {
        self.ensure_repository_impl(org, slug).await
    }

    async fn find_repository(&self, slug: &RepoSlug) -> Result<Option<Repository>> {
        self.find_repository_impl(slug).await
    }

    async fn list_repositories(&self, org: OrgId) -> Result<Vec<Repository>> {
        self.list_repositories_impl(org).await
    }

    async fn create_token(&self, token: &NewToken) -> Result<ApiToken> {
        self.create_token_impl(token).await
    }

    async fn find_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>> {
        self.find_token_impl(hash).await
    }

    async fn list_tokens(&self, org: OrgId) -> Result<Vec<ApiToken>> {
        self.list_tokens_impl(org).await
    }

    async fn revoke_token(&self, org: OrgId, id: TokenId, at: OffsetDateTime) -> Result<bool> {
        self.revoke_token_impl(org, id, at).await
    }

    async fn ingest(
        &self,
        repo: RepoId,
        run: &NewRun,
        tests: &[NewTestCase],
        executions: &[NewExecution],
    ) -> Result<Ingested> {
        self.ingest_impl(repo, run, tests, executions).await
    }

    async fn load_history(&self, repo: RepoId, max_runs: u32) -> Result<StoredHistory> {
        self.load_history_impl(repo, max_runs).await
    }

    async fn save_scores(
        &self,
        repo: RepoId,
        scores: &[DerivedState],
        at: OffsetDateTime,
    ) -> Result<()> {
        self.save_scores_impl(repo, scores, at).await
    }

    async fn find_test(&self, repo: RepoId, id: TestCaseId) -> Result<Option<StoredTest>> {
        self.find_test_impl(repo, id).await
    }

    async fn counts(&self) -> Result<Counts> {
        self.counts_impl().await
    }

    async fn find_organization(&self, slug: &str) -> Result<Option<Organization>> {
        self.find_organization_impl(slug).await
    }

    async fn organization(&self, id: OrgId) -> Result<Option<Organization>> {
        self.organization_impl(id).await
    }

    async fn set_repository_creation(&self, org: OrgId, allowed: bool) -> Result<()> {
        self.set_repository_creation_impl(org, allowed).await
    }

    async fn list_all_repositories(&self) -> Result<Vec<Repository>> {
        self.list_all_repositories_impl().await
    }

    async fn audit(&self, entry: &NewAuditEntry) -> Result<()> {
        self.audit_impl(entry).await
    }

    async fn list_audit(&self, org: OrgId, limit: u32) -> Result<Vec<AuditEntry>> {
        self.list_audit_impl(org, limit).await
    }

    async fn list_tests(&self, repo: RepoId, query: &TestQuery) -> Result<Page<StoredTest>> {
        self.list_tests_impl(repo, query).await
    }

    async fn find_tests(&self, repo: RepoId, ids: &[TestCaseId]) -> Result<Vec<StoredTest>> {
        self.find_tests_impl(repo, ids).await
    }

    async fn recent_executions(
        &self,
        repo: RepoId,
        test: TestCaseId,
        limit: u32,
    ) -> Result<Vec<TestExecution>> {
        self.recent_executions_impl(repo, test, limit).await
    }

    async fn failure_signatures(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Vec<SignatureCount>> {
        self.failure_signatures_impl(repo, test).await
    }

    async fn list_runs(&self, repo: RepoId, page: PageRequest) -> Result<Page<StoredRun>> {
        self.list_runs_impl(repo, page).await
    }

    async fn find_run(&self, repo: RepoId, run: StoredRunId) -> Result<Option<StoredRun>> {
        self.find_run_impl(repo, run).await
    }

    async fn run_final_outcomes(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<(TestCaseId, Outcome)>> {
        self.run_final_outcomes_impl(repo, run).await
    }

    async fn runs_for_commit(&self, repo: RepoId, commit: &str) -> Result<Vec<StoredRun>> {
        self.runs_for_commit_impl(repo, commit).await
    }

    async fn run_failures(&self, repo: RepoId, run: StoredRunId) -> Result<Vec<RunFailure>> {
        self.run_failures_impl(repo, run).await
    }

    async fn add_quarantine(&self, repo: RepoId, quarantine: &NewQuarantine) -> Result<Quarantine> {
        self.add_quarantine_impl(repo, quarantine).await
    }

    async fn live_quarantines(&self, repo: RepoId) -> Result<Vec<(Quarantine, TestKey)>> {
        self.live_quarantines_impl(repo).await
    }

    async fn release_quarantine(
        &self,
        repo: RepoId,
        test: TestCaseId,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<Option<Quarantine>> {
        self.release_quarantine_impl(repo, test, at, by).await
    }

    async fn unscored_runs(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(RepoId, StoredRunId)>> {
        self.unscored_runs_impl(received_before, limit).await
    }

    async fn mark_run_scored(&self, run: StoredRunId, at: OffsetDateTime) -> Result<()> {
        self.mark_run_scored_impl(run, at).await
    }

    async fn load_run_history(
        &self,
        repo: RepoId,
        run: StoredRunId,
        max_runs: u32,
    ) -> Result<StoredHistory> {
        self.load_run_history_impl(repo, run, max_runs).await
    }

    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<(WebhookDelivery, bool)> {
        self.record_delivery_impl(delivery).await
    }

    async fn find_delivery(&self, id: DeliveryId) -> Result<Option<WebhookDelivery>> {
        self.find_delivery_impl(id).await
    }

    async fn finish_delivery(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<()> {
        self.finish_delivery_impl(id, status, error, at).await
    }

    async fn pending_deliveries(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryId>> {
        self.pending_deliveries_impl(received_before, limit).await
    }

    async fn prune_failure_text(&self, before: OffsetDateTime) -> Result<u64> {
        self.prune_failure_text_impl(before).await
    }

    async fn expire_quarantines(&self, now: OffsetDateTime) -> Result<Vec<(Quarantine, RepoId)>> {
        self.expire_quarantines_impl(now).await
    }

    // --- GitHub App state (issue #5)

    async fn find_installation_for_repo(&self, slug: &RepoSlug) -> Result<Option<i64>> {
        self.find_installation_for_repo_impl(slug).await
    }

    async fn register_installation(
        &self,
        installation: &NewInstallation,
    ) -> Result<RegisteredInstallation> {
        self.register_installation_impl(installation).await
    }

    async fn installation(&self, installation_id: i64) -> Result<Option<Installation>> {
        self.installation_impl(installation_id).await
    }

    async fn set_installation_state(
        &self,
        installation_id: i64,
        state: InstallationState,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.set_installation_state_impl(installation_id, state, at)
            .await
    }

    async fn add_installed_repositories(
        &self,
        installation_id: i64,
        repositories: &[NewInstalledRepository],
        at: OffsetDateTime,
    ) -> Result<Vec<InstalledRepository>> {
        self.add_installed_repositories_impl(installation_id, repositories, at)
            .await
    }

    async fn remove_installed_repositories(
        &self,
        installation_id: i64,
        github_repo_ids: &[i64],
        at: OffsetDateTime,
    ) -> Result<u64> {
        self.remove_installed_repositories_impl(installation_id, github_repo_ids, at)
            .await
    }

    async fn installed_repositories(
        &self,
        installation_id: i64,
    ) -> Result<Vec<InstalledRepository>> {
        self.installed_repositories_impl(installation_id).await
    }

    async fn set_default_branch(&self, repo: RepoId, branch: &str) -> Result<bool> {
        self.set_default_branch_impl(repo, branch).await
    }

    async fn check_run_for_commit(
        &self,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Option<CheckRunRecord>> {
        self.check_run_for_commit_impl(repo, head_sha).await
    }

    async fn save_check_run(&self, check_run: &NewCheckRun) -> Result<CheckRunRecord> {
        self.save_check_run_impl(check_run).await
    }

    async fn pr_comment(&self, repo: RepoId, pr_number: i64) -> Result<Option<PrComment>> {
        self.pr_comment_impl(repo, pr_number).await
    }

    async fn save_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
        at: OffsetDateTime,
    ) -> Result<PrComment> {
        self.save_pr_comment_impl(repo, pr_number, comment_id, at)
            .await
    }

    async fn forget_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
    ) -> Result<bool> {
        self.forget_pr_comment_impl(repo, pr_number, comment_id)
            .await
    }

    async fn link_commit_pr(
        &self,
        repo: RepoId,
        head_sha: &str,
        pr_number: i64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.link_commit_pr_impl(repo, head_sha, pr_number, at)
            .await
    }

    async fn prs_for_commit(&self, repo: RepoId, head_sha: &str) -> Result<Vec<i64>> {
        self.prs_for_commit_impl(repo, head_sha).await
    }

    async fn flaky_issue(&self, repo: RepoId, test: TestCaseId) -> Result<Option<FlakyIssue>> {
        self.flaky_issue_impl(repo, test).await
    }

    async fn save_flaky_issue(
        &self,
        repo: RepoId,
        test: TestCaseId,
        number: i64,
        url: &str,
        at: OffsetDateTime,
    ) -> Result<(FlakyIssue, bool)> {
        self.save_flaky_issue_impl(repo, test, number, url, at)
            .await
    }

    async fn record_workflow_job(&self, repo: RepoId, job: &WorkflowJob) -> Result<bool> {
        self.record_workflow_job_impl(repo, job).await
    }

    async fn workflow_jobs(&self, repo: RepoId, workflow_run_id: i64) -> Result<Vec<WorkflowJob>> {
        self.workflow_jobs_impl(repo, workflow_run_id).await
    }

    async fn record_workflow_run(&self, repo: RepoId, run: &WorkflowRunRecord) -> Result<()> {
        self.record_workflow_run_impl(repo, run).await
    }

    async fn workflow_run(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
        run_attempt: u32,
    ) -> Result<Option<WorkflowRunRecord>> {
        self.workflow_run_impl(repo, workflow_run_id, run_attempt)
            .await
    }

    async fn set_pr_labels(
        &self,
        repo: RepoId,
        pr_number: i64,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<()> {
        self.set_pr_labels_impl(repo, pr_number, labels, at).await
    }

    async fn pr_labels(&self, repo: RepoId, pr_number: i64) -> Result<Option<Vec<String>>> {
        self.pr_labels_impl(repo, pr_number).await
    }

    // --- repository policy (issue #6)

    async fn repo_policy(&self, repo: RepoId) -> Result<Option<StoredPolicy>> {
        self.repo_policy_impl(repo).await
    }

    async fn put_repo_policy(&self, repo: RepoId, policy: &NewPolicy) -> Result<StoredPolicy> {
        self.put_repo_policy_impl(repo, policy).await
    }

    async fn put_codeowners(
        &self,
        repo: RepoId,
        text: &str,
        source: &str,
        at: OffsetDateTime,
    ) -> Result<StoredPolicy> {
        self.put_codeowners_impl(repo, text, source, at).await
    }
}
