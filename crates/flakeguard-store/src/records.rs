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
    pub first_seen_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub scored_at: Option<OffsetDateTime>,
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
    fn scopes_round_trip_and_unknown_ones_are_ignored() {
        assert_eq!(
            scopes_from_text(&scopes_to_text(&[Scope::Ingest, Scope::Read])),
            vec![Scope::Ingest, Scope::Read]
        );
        assert_eq!(scopes_from_text("read,future"), vec![Scope::Read]);
    }
}
