//! The records of the GitHub App's state (issue #5): installations and the repositories they
//! cover, and what FlakeGuard posted to GitHub — check runs, pull request comments and
//! flaky-test issues — so that later events update those in place instead of posting again.
//!
//! GitHub's own ids (installation, repository, check run, comment, workflow run, job) are
//! kept as the `i64`s GitHub sends; FlakeGuard's ids are the usual newtypes.

use time::OffsetDateTime;

use crate::{OrgId, RepoId, RepoSlug, TestCaseId};

/// Who installed the App: `installation.account.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountType {
    Organization,
    User,
}

impl AccountType {
    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Organization => "Organization",
            AccountType::User => "User",
        }
    }

    /// Parses GitHub's spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Organization" => Some(AccountType::Organization),
            "User" => Some(AccountType::User),
            _ => None,
        }
    }
}

/// A repository as an installation event lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstalledRepository {
    /// GitHub's repository id (stable across renames).
    pub github_id: i64,
    /// `owner/name` (`full_name`).
    pub slug: RepoSlug,
}

/// An `installation` `created` event: the account and the repositories it selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstallation {
    /// GitHub's installation id.
    pub installation_id: i64,
    /// The account's login; it is also the slug of the FlakeGuard organization it links to.
    pub account_login: String,
    pub account_type: AccountType,
    pub repositories: Vec<NewInstalledRepository>,
    pub at: OffsetDateTime,
}

/// A stored installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// GitHub's installation id.
    pub installation_id: i64,
    /// The FlakeGuard organization (slug = `account_login`).
    pub org: OrgId,
    pub account_login: String,
    pub account_type: AccountType,
    pub suspended_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Installation {
    /// Neither suspended nor deleted: FlakeGuard may act for it.
    pub fn is_live(&self) -> bool {
        self.suspended_at.is_none() && self.deleted_at.is_none()
    }
}

/// What [`crate::Store::register_installation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredInstallation {
    pub installation: Installation,
    /// The FlakeGuard organization was created by this call.
    pub org_created: bool,
    /// The installation's repositories after the call (all of them, active or not).
    pub repositories: Vec<InstalledRepository>,
}

/// A change of an installation's state (`installation` `suspend`, `unsuspend`, `deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationState {
    Suspended,
    Unsuspended,
    Deleted,
}

/// A repository an installation covers, or covered (`active: false`; history is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRepository {
    /// GitHub's installation id.
    pub installation_id: i64,
    pub repo: RepoId,
    pub github_id: i64,
    pub slug: RepoSlug,
    pub active: bool,
    pub added_at: OffsetDateTime,
    /// When it was last removed (set while inactive).
    pub removed_at: Option<OffsetDateTime>,
}

/// The "FlakeGuard" check run of one commit: every workflow run on that commit updates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunRecord {
    pub repo: RepoId,
    pub head_sha: String,
    /// GitHub's check run id.
    pub check_run_id: i64,
    /// The workflow runs it reports on, ascending.
    pub workflow_run_ids: Vec<i64>,
    /// GitHub's status (`queued`, `in_progress`, `completed`).
    pub status: String,
    /// GitHub's conclusion once completed (`success`, `failure`, `neutral`, …).
    pub conclusion: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What was posted (or updated) for a commit's check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckRun {
    pub repo: RepoId,
    pub head_sha: String,
    pub check_run_id: i64,
    /// The workflow run this update reports on (added to the record's set).
    pub workflow_run_id: Option<i64>,
    pub status: String,
    pub conclusion: Option<String>,
    pub at: OffsetDateTime,
}

/// FlakeGuard's one comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrComment {
    pub repo: RepoId,
    pub pr_number: i64,
    /// GitHub's issue-comment id.
    pub comment_id: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The GitHub issue opened for a flaky test ("Open issues").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlakyIssue {
    pub repo: RepoId,
    pub test: TestCaseId,
    pub number: i64,
    pub url: String,
    pub created_at: OffsetDateTime,
}

/// A job of a workflow run, from `workflow_job` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowJob {
    pub workflow_run_id: i64,
    /// GitHub's job id (a re-run attempt's jobs get new ids).
    pub job_id: i64,
    pub run_attempt: u32,
    pub name: String,
    /// `queued`, `waiting`, `in_progress` or `completed` (others are kept verbatim).
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
}

/// A workflow run whose artifacts FlakeGuard read, from its `workflow_run` event: what
/// triggered it and for which pull requests. Stored runs name it by `workflow_run_id` and
/// attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRunRecord {
    pub workflow_run_id: i64,
    pub run_attempt: u32,
    pub name: Option<String>,
    /// `push`, `pull_request`, `schedule`, …
    pub event: String,
    pub head_sha: String,
    pub head_branch: Option<String>,
    pub pull_requests: Vec<i64>,
    pub conclusion: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// How far along a job status is: deliveries arrive out of order, and a late `in_progress`
/// must not undo a `completed`.
pub fn job_progress(status: &str) -> i16 {
    match status {
        "requested" | "pending" | "queued" | "waiting" => 0,
        "in_progress" => 1,
        "completed" => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_types_round_trip_in_githubs_spelling() {
        for t in [AccountType::Organization, AccountType::User] {
            assert_eq!(AccountType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AccountType::parse("organization"), None);
        assert_eq!(AccountType::parse("Bot"), None);
    }

    #[test]
    fn job_statuses_only_move_forward() {
        assert!(job_progress("queued") < job_progress("in_progress"));
        assert!(job_progress("in_progress") < job_progress("completed"));
        assert_eq!(job_progress("waiting"), job_progress("queued"));
    }
}
