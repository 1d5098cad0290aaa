//! FlakeGuard's storage port.
//!
//! [`Store`] is what the application needs from a database; `flakeguard-store-sqlite` (the
//! zero-configuration default) and `flakeguard-store-postgres` (production) implement it, and
//! both must pass [`conformance`], the one suite that defines the behaviour.
//!
//! History is append-only: a run and its executions are written once, in one transaction, and
//! never changed, but for two pieces of bookkeeping: a run's `scored_at` (the scoring outbox)
//! and the raw failure messages that retention clears. A test's derived state (status,
//! probability, …) can always be recomputed from its executions.
#![forbid(unsafe_code)]

pub mod conformance;
mod error;
mod github;
mod migrations;
mod records;

use async_trait::async_trait;
use flakeguard_core::{Outcome, TestKey};
use time::OffsetDateTime;

pub use error::StoreError;
pub use github::*;
pub use migrations::{Migration, MigrationState, checksum, verify_applied};
pub use records::*;

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What FlakeGuard keeps, behind one interface for every backend.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Answers when the database does (for readiness checks).
    async fn ping(&self) -> Result<()>;

    /// Every migration this build knows, with whether and when it was applied.
    async fn migration_status(&self) -> Result<Vec<MigrationState>>;

    /// Applies pending migrations in order, each in its own transaction; returns the ones it
    /// applied. Refuses when an applied migration's checksum differs from this build's.
    async fn migrate(&self) -> Result<Vec<MigrationState>>;

    /// Creates the organization unless one with this slug exists; `true` when created.
    async fn ensure_organization(&self, slug: &str, name: &str) -> Result<(Organization, bool)>;

    /// Creates the user unless one with this email exists; `true` when created.
    async fn ensure_user(&self, email: &str, name: &str) -> Result<(User, bool)>;

    /// Adds the user to the organization with `role` unless already a member; `true` when added.
    async fn ensure_membership(&self, org: OrgId, user: UserId, role: Role) -> Result<bool>;

    /// Creates the repository in `org` unless it exists; `true` when created. A repository
    /// that exists in another organization is a [`StoreError::Conflict`].
    async fn ensure_repository(&self, org: OrgId, slug: &RepoSlug) -> Result<(Repository, bool)>;

    async fn find_repository(&self, slug: &RepoSlug) -> Result<Option<Repository>>;

    /// The organization's repositories, by owner and name.
    async fn list_repositories(&self, org: OrgId) -> Result<Vec<Repository>>;

    /// Stores a new API token (only its hash).
    async fn create_token(&self, token: &NewToken) -> Result<ApiToken>;

    /// The token with this hash, revoked or not (callers check `revoked_at`).
    async fn find_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>>;

    async fn list_tokens(&self, org: OrgId) -> Result<Vec<ApiToken>>;

    /// Revokes a token of `org`; `false` when there is no such live token in that organization.
    async fn revoke_token(&self, org: OrgId, id: TokenId, at: OffsetDateTime) -> Result<bool>;

    /// Records one run and all its executions in one transaction. Idempotent: the same
    /// (repository, run id, attempt, job, report digest) is stored once; a repeat returns the
    /// existing run with `created: false` and writes nothing.
    async fn ingest(
        &self,
        repo: RepoId,
        run: &NewRun,
        tests: &[NewTestCase],
        executions: &[NewExecution],
    ) -> Result<Ingested>;

    /// The repository's runs (the most recent `max_runs`, oldest first) and every execution
    /// in them, grouped by test: the input of `flakeguard_core::score_all`.
    async fn load_history(&self, repo: RepoId, max_runs: u32) -> Result<StoredHistory>;

    /// Writes the derived state of tests (the result of scoring).
    async fn save_scores(
        &self,
        repo: RepoId,
        scores: &[DerivedState],
        at: OffsetDateTime,
    ) -> Result<()>;

    /// One test's stored identity and derived state.
    async fn find_test(&self, repo: RepoId, id: TestCaseId) -> Result<Option<StoredTest>>;

    /// How many organizations, users and repositories exist (the runbook's seed check).
    async fn counts(&self) -> Result<Counts>;

    // ---- organizations, repositories, audit -------------------------------------------

    async fn find_organization(&self, slug: &str) -> Result<Option<Organization>>;

    async fn organization(&self, id: OrgId) -> Result<Option<Organization>>;

    /// Whether uploads may create a repository of this organization on first use.
    async fn set_repository_creation(&self, org: OrgId, allowed: bool) -> Result<()>;

    /// Every repository of every organization, by owner and name (the operator's view).
    async fn list_all_repositories(&self) -> Result<Vec<Repository>>;

    /// Appends to the audit log.
    async fn audit(&self, entry: &NewAuditEntry) -> Result<()>;

    /// The organization's audit log, newest first.
    async fn list_audit(&self, org: OrgId, limit: u32) -> Result<Vec<AuditEntry>>;

    // ---- reading tests and runs ---------------------------------------------------------

    /// A page of the repository's tests, filtered and sorted; `total` counts every match.
    async fn list_tests(&self, repo: RepoId, query: &TestQuery) -> Result<Page<StoredTest>>;

    /// The tests with these ids that belong to `repo` (others are left out), in any order.
    async fn find_tests(&self, repo: RepoId, ids: &[TestCaseId]) -> Result<Vec<StoredTest>>;

    /// A test's most recent executions (newest run first, then attempt), with their runs.
    async fn recent_executions(
        &self,
        repo: RepoId,
        test: TestCaseId,
        limit: u32,
    ) -> Result<Vec<TestExecution>>;

    /// A test's distinct failure signatures, most frequent first.
    async fn failure_signatures(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Vec<SignatureCount>>;

    /// A page of the repository's runs, most recently started first.
    async fn list_runs(&self, repo: RepoId, page: PageRequest) -> Result<Page<StoredRun>>;

    /// One run of `repo`, with its counts.
    async fn find_run(&self, repo: RepoId, run: StoredRunId) -> Result<Option<StoredRun>>;

    /// Every test of the run with the outcome of its final attempt (a test that passed on a
    /// retry passed), by test id.
    async fn run_final_outcomes(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<(TestCaseId, Outcome)>>;

    /// Every run of `repo` on this commit (all workflows, attempts and artifacts), oldest
    /// first: what the commit's check run sums up.
    async fn runs_for_commit(&self, repo: RepoId, commit: &str) -> Result<Vec<StoredRun>>;

    /// The run's failed and errored executions, by test name.
    async fn run_failures(&self, repo: RepoId, run: StoredRunId) -> Result<Vec<RunFailure>>;

    // ---- quarantine -------------------------------------------------------------------

    /// Records a quarantine of a test of `repo` ([`StoreError::NotFound`] when the test is
    /// not in `repo`; [`StoreError::Conflict`] when it already has a live one).
    async fn add_quarantine(&self, repo: RepoId, quarantine: &NewQuarantine) -> Result<Quarantine>;

    /// The repository's proposed and active quarantines, with their tests' keys.
    async fn live_quarantines(&self, repo: RepoId) -> Result<Vec<(Quarantine, TestKey)>>;

    /// Releases the test's live (proposed or active) quarantine: its state becomes
    /// [`QuarantineState::Released`], `released_at` is `at` and `released_by` is `by`. Returns
    /// it as changed, or
    /// `None` when the test (of `repo`) has no live quarantine — a repeat, a test of another
    /// repository or an unknown test. One statement, so of concurrent releases one wins.
    async fn release_quarantine(
        &self,
        repo: RepoId,
        test: TestCaseId,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<Option<Quarantine>>;

    // ---- the scoring outbox -------------------------------------------------------------
    //
    // A run is stored unscored (`StoredRun::scored_at` is `None`); whatever rescores its tests
    // marks it scored afterwards. A sweeper finds the runs left unscored (the process stopped
    // between the ingest and the scoring) and scores them again: scoring is idempotent, so
    // doing it twice is harmless, and forgetting it is impossible.

    /// Runs not scored yet that were received before `received_before`, oldest first (by
    /// reception, then id), at most `limit`, with their repositories.
    async fn unscored_runs(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(RepoId, StoredRunId)>>;

    /// Marks the run scored at `at`. Idempotent: a run already marked keeps its first time
    /// (the outbox entry was done then). [`StoreError::NotFound`] when there is no such run.
    async fn mark_run_scored(&self, run: StoredRunId, at: OffsetDateTime) -> Result<()>;

    /// What [`Store::load_history`] returns for `(repo, max_runs)` — the same runs, and for
    /// each test the same [`flakeguard_core::TestHistory`] in the same order — but only for
    /// the tests with an execution in `run` (those a new run can have changed). A small
    /// run's tests are read on their own, so this stays cheap for one CI job in a large
    /// repository; a run of most of the window costs about what `load_history` does. A test
    /// of `run` without executions in the window (the run is older than the window) is left
    /// out, as `load_history` leaves it out. [`StoreError::NotFound`] when `run` is not one
    /// of `repo`'s.
    async fn load_run_history(
        &self,
        repo: RepoId,
        run: StoredRunId,
        max_runs: u32,
    ) -> Result<StoredHistory>;

    // ---- GitHub webhook deliveries ------------------------------------------------------
    //
    // Deliveries are stored as they arrive and handled afterwards (an outbox): the webhook
    // answers GitHub quickly, and a delivery survives a restart.

    /// Stores the delivery; `true` when it is new. A delivery id already stored (GitHub
    /// redelivers) returns the stored delivery unchanged and `false`; of concurrent calls
    /// with one delivery id, exactly one gets `true`.
    async fn record_delivery(&self, delivery: &NewDelivery) -> Result<(WebhookDelivery, bool)>;

    async fn find_delivery(&self, id: DeliveryId) -> Result<Option<WebhookDelivery>>;

    /// Records one attempt at handling the delivery: its new `status`, the attempt's error
    /// (`None` clears the previous one) and `processed_at = at`; `attempts` grows by one.
    /// Finishing with [`DeliveryStatus::Received`] records a failed attempt and leaves the
    /// delivery pending, to be tried again. [`StoreError::NotFound`] when there is no such
    /// delivery.
    async fn finish_delivery(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<()>;

    /// Deliveries still `received` that arrived before `received_before`, oldest first (by
    /// reception, then id), at most `limit`.
    async fn pending_deliveries(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryId>>;

    // ---- maintenance ----------------------------------------------------------------------

    /// Retention of raw failure output: clears the failure message of every execution in a
    /// run that started before `before`, keeping its failure signature (so signatures still
    /// group) and everything else. Returns how many executions changed; those already
    /// cleared (or without a message) do not count, so a repeat returns 0. Works in bounded
    /// batches, each committed on its own: it never holds one long transaction, and an
    /// interrupted prune keeps what it did.
    async fn prune_failure_text(&self, before: OffsetDateTime) -> Result<u64>;

    /// Ends every proposed or active quarantine whose `expires_at` is at or before `now`:
    /// its state becomes [`QuarantineState::Expired`] and `released_at` is `now`. Returns the
    /// quarantines it changed, as they are afterwards, with their repositories, by id; a
    /// repeat returns nothing.
    async fn expire_quarantines(&self, now: OffsetDateTime) -> Result<Vec<(Quarantine, RepoId)>>;

    // --- GitHub App state (issue #5) -------------------------------------------------------
    //
    // Installations and their repositories, and what FlakeGuard posted to GitHub, so later
    // events update it in place. Every write is idempotent: a redelivered webhook applied
    // again changes nothing. GitHub ids are `i64`s as GitHub sends them.

    /// The GitHub installation id to act for `slug`: the live (neither suspended nor deleted)
    /// installation that actively covers the repository; `None` otherwise.
    async fn find_installation_for_repo(&self, slug: &RepoSlug) -> Result<Option<i64>>;

    /// An `installation` `created` event: ensures the organization (slug = account login,
    /// [`Store::ensure_organization`]), stores the installation (clearing `deleted_at` if it
    /// had been deleted) and ensures each listed repository in that organization, covered
    /// and active. Repeating it changes nothing. A listed repository that exists in another
    /// organization is a [`StoreError::Conflict`].
    async fn register_installation(
        &self,
        installation: &NewInstallation,
    ) -> Result<RegisteredInstallation>;

    /// The installation with GitHub id `installation_id`.
    async fn installation(&self, installation_id: i64) -> Result<Option<Installation>>;

    /// `suspend` sets `suspended_at` (kept if already set), `unsuspend` clears it, `deleted`
    /// sets `deleted_at` (kept if already set) and makes all its repositories inactive.
    /// `true` when something changed (a repeat is `false`); [`StoreError::NotFound`] for an
    /// unknown installation.
    async fn set_installation_state(
        &self,
        installation_id: i64,
        state: InstallationState,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// `installation_repositories` `added`: ensures each repository in the installation's
    /// organization and marks it covered and active (again, if it had been removed). Returns
    /// the listed repositories as stored. [`StoreError::NotFound`] for an unknown
    /// installation.
    async fn add_installed_repositories(
        &self,
        installation_id: i64,
        repositories: &[NewInstalledRepository],
        at: OffsetDateTime,
    ) -> Result<Vec<InstalledRepository>>;

    /// `installation_repositories` `removed`: marks the repositories with these GitHub ids
    /// inactive (their history is kept). Returns how many changed (a repeat returns 0).
    async fn remove_installed_repositories(
        &self,
        installation_id: i64,
        github_repo_ids: &[i64],
        at: OffsetDateTime,
    ) -> Result<u64>;

    /// Every repository the installation covers or covered, by owner and name.
    async fn installed_repositories(
        &self,
        installation_id: i64,
    ) -> Result<Vec<InstalledRepository>>;

    /// Sets the repository's default branch (from `push` and `repository` payloads); `true`
    /// when it changed. [`StoreError::NotFound`] for an unknown repository.
    async fn set_default_branch(&self, repo: RepoId, branch: &str) -> Result<bool>;

    /// The check run FlakeGuard posted on this commit, if any.
    async fn check_run_for_commit(
        &self,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Option<CheckRunRecord>>;

    /// Records the commit's check run after creating or updating it on GitHub: status,
    /// conclusion and `updated_at` are replaced and the workflow run is added to its set.
    /// The first check run id stored for a commit stays: when two workers raced and both
    /// created one, the loser gets the stored record back (a different `check_run_id`) and
    /// should update that one from then on.
    async fn save_check_run(&self, check_run: &NewCheckRun) -> Result<CheckRunRecord>;

    /// FlakeGuard's comment on the pull request, if any.
    async fn pr_comment(&self, repo: RepoId, pr_number: i64) -> Result<Option<PrComment>>;

    /// Records FlakeGuard's comment on the pull request. As with check runs the first id
    /// stays (a racing duplicate gets the stored record back); saving the stored id again
    /// moves `updated_at`. To replace a comment that was deleted on GitHub, call
    /// [`Store::forget_pr_comment`] first.
    async fn save_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
        at: OffsetDateTime,
    ) -> Result<PrComment>;

    /// Forgets the PR's comment if it is still `comment_id` (it was deleted on GitHub);
    /// `true` when forgotten.
    async fn forget_pr_comment(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
    ) -> Result<bool>;

    /// Records that commit `head_sha` is the head of pull request `pr_number` (from
    /// `pull_request`, `check_suite` and `workflow_run.pull_requests`); `true` when new.
    async fn link_commit_pr(
        &self,
        repo: RepoId,
        head_sha: &str,
        pr_number: i64,
        at: OffsetDateTime,
    ) -> Result<bool>;

    /// The pull requests whose head was `head_sha`, ascending.
    async fn prs_for_commit(&self, repo: RepoId, head_sha: &str) -> Result<Vec<i64>>;

    /// The GitHub issue opened for the test, if any.
    async fn flaky_issue(&self, repo: RepoId, test: TestCaseId) -> Result<Option<FlakyIssue>>;

    /// Records the issue opened for a test of `repo`; the first one stays (a repeat or a
    /// racing duplicate gets the stored one back, with `false`). [`StoreError::NotFound`]
    /// when the test is not one of `repo`'s.
    async fn save_flaky_issue(
        &self,
        repo: RepoId,
        test: TestCaseId,
        number: i64,
        url: &str,
        at: OffsetDateTime,
    ) -> Result<(FlakyIssue, bool)>;

    /// Stores a `workflow_job` event's job. A later event of the same job replaces it unless
    /// it is behind ([`job_progress`]: a late `in_progress` never undoes `completed`; a
    /// started or completed time, once known, is kept). `true` when something changed.
    async fn record_workflow_job(&self, repo: RepoId, job: &WorkflowJob) -> Result<bool>;

    /// The jobs of a workflow run, by attempt then job id.
    async fn workflow_jobs(&self, repo: RepoId, workflow_run_id: i64) -> Result<Vec<WorkflowJob>>;

    /// Records a workflow run's metadata (a later event of the same attempt replaces it).
    async fn record_workflow_run(&self, repo: RepoId, run: &WorkflowRunRecord) -> Result<()>;

    /// The workflow run's metadata for that attempt, when FlakeGuard read it.
    async fn workflow_run(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
        run_attempt: u32,
    ) -> Result<Option<WorkflowRunRecord>>;

    /// Records the pull request's labels as its latest `pull_request` event lists them
    /// (replacing what was stored). [`StoreError::NotFound`] for an unknown repository.
    async fn set_pr_labels(
        &self,
        repo: RepoId,
        pr_number: i64,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<()>;

    /// The pull request's labels; `None` when no `pull_request` event told them.
    async fn pr_labels(&self, repo: RepoId, pr_number: i64) -> Result<Option<Vec<String>>>;

    // --- repository policy (issue #6)

    /// The repository's stored policy and CODEOWNERS, `None` when neither was ever stored
    /// (the defaults apply). One read: the score job calls it once per job.
    async fn repo_policy(&self, repo: RepoId) -> Result<Option<StoredPolicy>>;

    /// Stores the repository's policy, replacing any before it (its CODEOWNERS is kept).
    /// Returns what is now stored. [`StoreError::NotFound`] when there is no such repository.
    async fn put_repo_policy(&self, repo: RepoId, policy: &NewPolicy) -> Result<StoredPolicy>;

    /// Stores the repository's CODEOWNERS text (as written; the reader parses it), replacing
    /// any before it (its policy is kept). `source` says where it came from (`api`,
    /// `file:.github/CODEOWNERS@<sha>`). [`StoreError::NotFound`] when there is no such
    /// repository.
    async fn put_codeowners(
        &self,
        repo: RepoId,
        text: &str,
        source: &str,
        at: OffsetDateTime,
    ) -> Result<StoredPolicy>;
}
