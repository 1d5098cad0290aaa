//! The records a [`crate::Store`] reads and writes.

use std::fmt;

use flakeguard_core::{Outcome, Run, TestHistory, TestKey};
use time::OffsetDateTime;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An organization's database id.
    OrgId
);
id!(
    /// A user's database id.
    UserId
);
id!(
    /// A repository's database id.
    RepoId
);
id!(
    /// An API token's database id.
    TokenId
);
id!(
    /// A stored run's database id.
    StoredRunId
);
id!(
    /// A test case's database id.
    TestCaseId
);
id!(
    /// A quarantine's database id.
    QuarantineId
);
id!(
    /// A stored webhook delivery's database id (not GitHub's delivery GUID).
    DeliveryId
);

/// `owner/name`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoSlug {
    owner: String,
    name: String,
}

impl RepoSlug {
    /// Parses `owner/name` as GitHub allows it: letters, digits, `-`, `_`, `.`; no empty part.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((owner, name)) = s.split_once('/') else {
            return Err(format!("repository {s:?} must be owner/name"));
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 100
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(owner) || !valid(name) {
            return Err(format!(
                "repository {s:?} must be owner/name with letters, digits, '-', '_' or '.'"
            ));
        }
        Ok(RepoSlug {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    /// Uploads may create repositories of this organization on first use.
    pub creates_repositories: bool,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: RepoId,
    pub org: OrgId,
    pub slug: RepoSlug,
    pub default_branch: String,
    pub created_at: OffsetDateTime,
}

/// SHA-256 of a token's secret; the secret itself is never stored.
pub type TokenHash = [u8; 32];

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// Scopes as stored: a comma-separated list.
pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses stored scopes, ignoring unknown names (a newer build may have written them).
pub fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split(',')
        .filter_map(|s| Scope::parse(s.trim()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub org: OrgId,
    /// Set when the token is limited to one repository.
    pub repo: Option<RepoId>,
    pub name: String,
    pub hash: TokenHash,
    /// The first characters of the secret, shown in listings to recognise a token.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub org: OrgId,
    pub repo: Option<RepoId>,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// Where a run's reports came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upload,
    GithubArtifact,
    Cli,
    Demo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Upload => "upload",
            Source::GithubArtifact => "github_artifact",
            Source::Cli => "cli",
            Source::Demo => "demo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upload" => Some(Source::Upload),
            "github_artifact" => Some(Source::GithubArtifact),
            "cli" => Some(Source::Cli),
            "demo" => Some(Source::Demo),
            _ => None,
        }
    }
}

/// A run to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub pr_number: Option<i64>,
    /// The CI's run id (GitHub's workflow run id); re-runs share it.
    pub run_id: String,
    pub attempt: u32,
    /// "" when the CI has no job names.
    pub job: String,
    pub source: Source,
    pub started_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    /// SHA-256 (hex) of the report bytes, part of the idempotency key.
    pub report_digest: String,
}

/// A test named by a run; stored once per repository and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTestCase {
    pub key: TestKey,
    pub file: Option<String>,
}

/// One attempt of one test in the run being recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExecution {
    /// Index into the `tests` slice passed with it.
    pub test: usize,
    pub attempt: u32,
    pub outcome: Outcome,
    pub duration_ms: Option<u64>,
    pub signature: Option<u64>,
    /// The failure message, already cut to a storable length by the caller.
    pub message: Option<String>,
}

/// The answer to [`crate::Store::ingest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub run: StoredRunId,
    /// False when the same report of the same run was already stored.
    pub created: bool,
    /// Test case ids, in the order of the `tests` slice (empty when `created` is false).
    pub test_ids: Vec<TestCaseId>,
}

/// A repository's history as the scoring engine wants it, with the database ids beside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredHistory {
    pub runs: Vec<Run>,
    pub run_ids: Vec<StoredRunId>,
    pub tests: Vec<TestHistory>,
    pub test_ids: Vec<TestCaseId>,
}

/// A test's derived state, written after scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedState {
    pub test: TestCaseId,
    pub status: String,
    pub probability: f64,
    pub confidence: f64,
    pub legacy_score: f64,
    pub recommendation: String,
    /// Non-skipped executions in the scoring window.
    pub executions: u32,
    /// Failed or errored executions in the scoring window (the `impact` sort).
    pub failures: u32,
    /// One sentence explaining the verdict.
    pub reason: String,
    /// The scoring evidence as a JSON array (stored as text, returned verbatim).
    pub evidence: String,
}

/// A stored test: identity and derived state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTest {
    pub id: TestCaseId,
    pub repo: RepoId,
    pub key: TestKey,
    pub file: Option<String>,
    pub status: String,
    pub probability: f64,
    pub confidence: f64,
    pub legacy_score: f64,
    pub recommendation: String,
    pub executions: u32,
    pub failures: u32,
    pub reason: String,
    /// JSON array; `"[]"` before the first scoring.
    pub evidence: String,
    /// Has a proposed or active quarantine.
    pub quarantined: bool,
    pub first_seen_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub scored_at: Option<OffsetDateTime>,
}

/// Which rows of a listing to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u32,
}

/// A page of a listing and how many rows match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Filter of [`TestQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFilter {
    /// Derived status `flaky`.
    Flaky,
    /// Derived status `broken`.
    Broken,
    /// Derived status `stable`.
    Stable,
    /// Has a proposed or active quarantine, whatever the status.
    Quarantined,
}

impl TestFilter {
    /// The derived status the filter selects; `None` for [`TestFilter::Quarantined`].
    pub fn status(self) -> Option<&'static str> {
        match self {
            TestFilter::Flaky => Some("flaky"),
            TestFilter::Broken => Some("broken"),
            TestFilter::Stable => Some("stable"),
            TestFilter::Quarantined => None,
        }
    }
}

/// Order of [`TestQuery`]; ties are broken by name, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestSort {
    /// Highest flaky probability first.
    Probability,
    /// Most failures in the scoring window first, then probability.
    Impact,
    /// Scope, classname, name, variant ascending.
    Name,
}

/// What [`crate::Store::list_tests`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TestQuery {
    pub filter: Option<TestFilter>,
    /// Case-insensitive substring of the classname, name or file.
    pub text: Option<String>,
    pub sort: TestSort,
    pub page: PageRequest,
}

/// One execution of a test with the run it was in.
#[derive(Debug, Clone, PartialEq)]
pub struct TestExecution {
    pub run: StoredRunId,
    pub workflow_run_id: String,
    pub run_attempt: u32,
    pub job: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub started_at: OffsetDateTime,
    pub attempt: u32,
    pub outcome: Outcome,
    pub duration_ms: Option<u64>,
    pub signature: Option<u64>,
    pub message: Option<String>,
}

/// A failure signature and how often a test failed with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureCount {
    pub signature: u64,
    pub count: u64,
    pub last_seen_at: OffsetDateTime,
    /// The most recent stored message with this signature.
    pub message: Option<String>,
}

/// A stored run with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub id: StoredRunId,
    pub repo: RepoId,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub pr_number: Option<i64>,
    pub workflow_run_id: String,
    pub attempt: u32,
    pub job: String,
    pub source: Source,
    pub started_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    pub report_digest: String,
    /// When the run's tests were rescored after it arrived; `None` while it waits in the
    /// scoring outbox (see [`crate::Store::unscored_runs`]).
    pub scored_at: Option<OffsetDateTime>,
    /// Distinct tests in the run.
    pub testcases: u64,
    /// Executions in the run, all attempts.
    pub executions: u64,
    /// Distinct tests with at least one failed or errored attempt.
    pub failed: u64,
}

/// A failed or errored execution in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFailure {
    pub test: TestCaseId,
    pub key: TestKey,
    pub attempt: u32,
    pub outcome: Outcome,
    pub duration_ms: Option<u64>,
    pub signature: Option<u64>,
    pub message: Option<String>,
}

/// A quarantine's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineState {
    Proposed,
    Active,
    Released,
    Expired,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Proposed => "proposed",
            QuarantineState::Active => "active",
            QuarantineState::Released => "released",
            QuarantineState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "proposed" => QuarantineState::Proposed,
            "active" => QuarantineState::Active,
            "released" => QuarantineState::Released,
            "expired" => QuarantineState::Expired,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantine {
    pub test: TestCaseId,
    pub state: QuarantineState,
    pub reason: String,
    pub owner: Option<String>,
    /// Who or what: `user:<email>`, `token:<name>`, `policy:auto`, `demo`.
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub id: QuarantineId,
    pub test: TestCaseId,
    pub state: QuarantineState,
    pub reason: String,
    pub owner: Option<String>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub released_at: Option<OffsetDateTime>,
    /// Who or what released it (`token:<id>`, `operator`, `policy:auto-release`); `None`
    /// while live and for expired quarantines.
    pub released_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// `None` for operator actions outside any organization.
    pub org: Option<OrgId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// A JSON object.
    pub detail: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub org: Option<OrgId>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub at: OffsetDateTime,
}

/// What a webhook delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Stored, not handled yet (the outbox's pending state).
    Received,
    /// Handled.
    Processed,
    /// Handled by doing nothing (an event or action FlakeGuard does not act on).
    Ignored,
    /// Given up on; `last_error` says why.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Received => "received",
            DeliveryStatus::Processed => "processed",
            DeliveryStatus::Ignored => "ignored",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => DeliveryStatus::Received,
            "processed" => DeliveryStatus::Processed,
            "ignored" => DeliveryStatus::Ignored,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// A GitHub webhook delivery to record before it is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// GitHub's `X-GitHub-Delivery` GUID; a redelivery carries the same one.
    pub delivery_id: String,
    /// `X-GitHub-Event` (`workflow_run`, `installation`, …).
    pub event: String,
    /// The payload's `action`, when it has one.
    pub action: Option<String>,
    /// The payload's `installation.id`, when it has one.
    pub installation_id: Option<i64>,
    /// The request body, verbatim.
    pub payload: Vec<u8>,
    pub received_at: OffsetDateTime,
}

/// A stored webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: DeliveryId,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub payload: Vec<u8>,
    pub status: DeliveryStatus,
    /// How many times it was handled (each [`crate::Store::finish_delivery`] counts one).
    pub attempts: u32,
    /// The error of the last attempt, if it failed.
    pub last_error: Option<String>,
    pub received_at: OffsetDateTime,
    /// When it was last handled.
    pub processed_at: Option<OffsetDateTime>,
}

/// The runbook's post-seed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub organizations: u64,
    pub users: u64,
    pub repositories: u64,
}

/// Outcomes as stored: a small integer.
pub fn outcome_code(outcome: Outcome) -> i16 {
    match outcome {
        Outcome::Passed => 0,
        Outcome::Failed => 1,
        Outcome::Error => 2,
        Outcome::Skipped => 3,
    }
}

pub fn outcome_from_code(code: i16) -> Option<Outcome> {
    Some(match code {
        0 => Outcome::Passed,
        1 => Outcome::Failed,
        2 => Outcome::Error,
        3 => Outcome::Skipped,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_slugs_are_validated() {
        assert_eq!(
            RepoSlug::parse("acme/shop").unwrap().to_string(),
            "acme/shop"
        );
        for bad in [
            "acme",
            "/shop",
            "acme/",
            "acme/sh op",
            "a/b/c",
            "../x",
            "acme/..",
        ] {
            assert!(RepoSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outcomes_round_trip_through_codes() {
        for o in [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Error,
            Outcome::Skipped,
        ] {
            assert_eq!(outcome_from_code(outcome_code(o)), Some(o));
        }
        assert_eq!(outcome_from_code(9), None);
    }

    #[test]
    fn delivery_statuses_round_trip() {
        for status in [
            DeliveryStatus::Received,
            DeliveryStatus::Processed,
            DeliveryStatus::Ignored,
            DeliveryStatus::Failed,
        ] {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("Processed"), None);
        assert_eq!(DeliveryStatus::parse(""), None);
    }

    #[test]
    fn scopes_round_trip_and_unknown_ones_are_ignored() {
        assert_eq!(
            scopes_from_text(&scopes_to_text(&[Scope::Ingest, Scope::Read])),
            vec![Scope::Ingest, Scope::Read]
        );
        assert_eq!(scopes_from_text("read,future"), vec![Scope::Read]);
    }
}

/// Where a repository's stored policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// `PUT /api/v1/repos/{owner}/{repo}/policy`.
    Api,
    /// The repository's `.flakeguard.yml`, read at a commit.
    File,
}

impl PolicyOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOrigin::Api => "api",
            PolicyOrigin::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(PolicyOrigin::Api),
            "file" => Some(PolicyOrigin::File),
            _ => None,
        }
    }
}

/// A repository's policy to store (replacing the one stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicy {
    /// The policy's YAML as written (validated by the caller).
    pub source: String,
    pub origin: PolicyOrigin,
    /// The commit the file was read at ([`PolicyOrigin::File`]).
    pub commit: Option<String>,
    pub updated_at: OffsetDateTime,
    /// Who stored it: `token:<id>`, `operator`, `github:<installation>`, …
    pub updated_by: String,
}

/// What is stored about a repository's policy and ownership. A row exists once either a
/// policy or a CODEOWNERS file was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub repo: RepoId,
    /// The policy's YAML as written; `None` when only CODEOWNERS was stored.
    pub source: Option<String>,
    pub origin: Option<PolicyOrigin>,
    pub commit: Option<String>,
    /// When and by whom the policy was stored (`None` with no policy).
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<String>,
    /// The repository's CODEOWNERS text, as written.
    pub codeowners: Option<String>,
    /// Where it came from: `api`, or `file:<path>@<commit>` from the repository.
    pub codeowners_source: Option<String>,
    pub codeowners_updated_at: Option<OffsetDateTime>,
}
