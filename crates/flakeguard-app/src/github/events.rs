//! GitHub webhook payloads as typed events: only the fields FlakeGuard acts on, so a payload
//! GitHub grows stays readable, and a payload missing one of them is refused with an error
//! naming the event and the field's path (`workflow_run: workflow_run.head_sha: missing
//! field …`).
//!
//! [`parse_event`] takes the `X-GitHub-Event` header and the raw body. Events FlakeGuard
//! does not subscribe to come back as [`Event::Other`], not as errors: the webhook accepts
//! and ignores them.

use flakeguard_store::{AccountType, NewInstalledRepository, RepoSlug, WorkflowJob};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// A webhook payload FlakeGuard could not read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The body is not the JSON this event must have; `path` is where (`.` for the top).
    #[error("{event} payload: {path}: {message}")]
    Invalid {
        event: String,
        path: String,
        message: String,
    },
}

/// The events FlakeGuard subscribes to, and `ping`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Ping(PingEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    WorkflowRun(WorkflowRunEvent),
    WorkflowJob(WorkflowJobEvent),
    CheckSuite(CheckSuiteEvent),
    CheckRun(CheckRunEvent),
    PullRequest(PullRequestEvent),
    Push(PushEvent),
    /// An event FlakeGuard does not subscribe to; its payload was not read.
    Other {
        event: String,
    },
}

impl Event {
    /// The `installation.id` the event came through, when it has one (acting on GitHub
    /// needs it for the installation token).
    pub fn installation_id(&self) -> Option<i64> {
        let installation = match self {
            Event::Ping(_) | Event::Other { .. } => return None,
            Event::Installation(e) => return Some(e.installation.id),
            Event::InstallationRepositories(e) => return Some(e.installation.id),
            Event::WorkflowRun(e) => &e.installation,
            Event::WorkflowJob(e) => &e.installation,
            Event::CheckSuite(e) => &e.installation,
            Event::CheckRun(e) => &e.installation,
            Event::PullRequest(e) => &e.installation,
            Event::Push(e) => &e.installation,
        };
        installation.as_ref().map(|i| i.id)
    }
}

/// The events FlakeGuard acts on (those the App subscribes to, docs/github-app.md, and
/// `ping`): [`parse_event`] reads each into its [`Event`]; the webhook endpoint answers others
/// without storing them.
pub const EVENTS: [&str; 9] = [
    "ping",
    "installation",
    "installation_repositories",
    "workflow_run",
    "workflow_job",
    "check_suite",
    "check_run",
    "pull_request",
    "push",
];

/// `event` as FlakeGuard names it, when it acts on it (a `'static` name: a metric label).
pub fn handled(event: &str) -> Option<&'static str> {
    EVENTS.iter().copied().find(|e| *e == event)
}

/// Reads the payload of event `event` (the `X-GitHub-Event` header).
pub fn parse_event(event: &str, payload: &[u8]) -> Result<Event, EventError> {
    Ok(match event {
        "ping" => Event::Ping(read(event, payload)?),
        "installation" => Event::Installation(read(event, payload)?),
        "installation_repositories" => Event::InstallationRepositories(read(event, payload)?),
        "workflow_run" => Event::WorkflowRun(read(event, payload)?),
        "workflow_job" => Event::WorkflowJob(read(event, payload)?),
        "check_suite" => Event::CheckSuite(read(event, payload)?),
        "check_run" => Event::CheckRun(read(event, payload)?),
        "pull_request" => Event::PullRequest(read(event, payload)?),
        "push" => Event::Push(read(event, payload)?),
        other => Event::Other {
            event: other.to_owned(),
        },
    })
}

fn read<T: DeserializeOwned>(event: &str, payload: &[u8]) -> Result<T, EventError> {
    let mut json = serde_json::Deserializer::from_slice(payload);
    serde_path_to_error::deserialize(&mut json).map_err(|e| EventError::Invalid {
        event: event.to_owned(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

// ---- shared parts ------------------------------------------------------------------------

/// `installation` as other events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationRef {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub login: String,
    /// `Organization`, `User` (or `Enterprise`, …): see [`Account::account_type`].
    #[serde(rename = "type")]
    pub kind: String,
}

impl Account {
    /// The account type FlakeGuard stores; `None` for kinds it does not know.
    pub fn account_type(&self) -> Option<AccountType> {
        AccountType::parse(&self.kind)
    }
}

/// `repository` of repository events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Repository {
    /// GitHub's repository id.
    pub id: i64,
    /// `owner/name`.
    pub full_name: String,
    /// Absent from a few minimal payloads; present on `push` and `repository` events.
    #[serde(default)]
    pub default_branch: Option<String>,
}

impl Repository {
    /// The full name as a FlakeGuard slug.
    pub fn slug(&self) -> Result<RepoSlug, String> {
        RepoSlug::parse(&self.full_name)
    }
}

/// A repository as installation events list it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepositoryRef {
    pub id: i64,
    pub full_name: String,
}

impl RepositoryRef {
    /// As the store takes it; an invalid full name is an error naming it.
    pub fn to_installed(&self) -> Result<NewInstalledRepository, String> {
        Ok(NewInstalledRepository {
            github_id: self.id,
            slug: RepoSlug::parse(&self.full_name)?,
        })
    }
}

/// A commit reference (`head`/`base` of a pull request).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitRef {
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// A pull request as `workflow_run`, `check_suite` and `check_run` list them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestRef {
    pub number: i64,
    pub head: GitRef,
    pub base: GitRef,
}

// ---- events --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<i64>,
    #[serde(default)]
    pub hook: Option<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hook {
    /// `App` for an App's hook, `Repository` or `Organization` otherwise.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub app_id: Option<i64>,
    #[serde(default)]
    pub events: Vec<String>,
}

/// `installation`: `created`, `deleted`, `suspend`, `unsuspend`, `new_permissions_accepted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    /// The selected repositories (on `created`; GitHub omits or nulls it otherwise).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repositories: Vec<RepositoryRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Installation {
    pub id: i64,
    pub account: Account,
}

/// `installation_repositories`: `added` or `removed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstallationRepositoriesEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repositories_added: Vec<RepositoryRef>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repositories_removed: Vec<RepositoryRef>,
}

/// `workflow_run`: `requested`, `in_progress`, `completed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    pub workflow_id: i64,
    pub run_number: i64,
    pub run_attempt: u32,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    /// What triggered it (`push`, `pull_request`, …).
    pub event: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pull_requests: Vec<PullRequestRef>,
    pub artifacts_url: String,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub run_started_at: Option<OffsetDateTime>,
}

/// `workflow_job`: `queued`, `waiting`, `in_progress`, `completed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: String,
    pub workflow_job: Job,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    pub id: i64,
    pub run_id: i64,
    pub run_attempt: u32,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

impl Job {
    /// As the store keeps it ([`flakeguard_store::Store::record_workflow_job`]).
    pub fn to_record(&self) -> WorkflowJob {
        WorkflowJob {
            workflow_run_id: self.run_id,
            job_id: self.id,
            run_attempt: self.run_attempt,
            name: self.name.clone(),
            status: self.status.clone(),
            conclusion: self.conclusion.clone(),
            started_at: self.started_at,
            completed_at: self.completed_at,
        }
    }
}

/// `check_suite`: `completed`, `requested`, `rerequested`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckSuiteEvent {
    pub action: String,
    pub check_suite: CheckSuite,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckSuite {
    pub id: i64,
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pull_requests: Vec<PullRequestRef>,
}

/// `check_run`: `created`, `completed`, `rerequested`, `requested_action`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRunEvent {
    pub action: String,
    pub check_run: CheckRun,
    /// Set on `requested_action`: which button was pressed.
    #[serde(default)]
    pub requested_action: Option<RequestedAction>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    /// Who pressed the button or asked for the re-run.
    #[serde(default)]
    pub sender: Option<Sender>,
}

/// The GitHub user behind an event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sender {
    pub login: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRun {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub app: Option<App>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pull_requests: Vec<PullRequestRef>,
}

/// The App that owns a check run (FlakeGuard ignores other Apps' check runs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct App {
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RequestedAction {
    /// The identifier FlakeGuard gave the action (≤ 20 characters).
    pub identifier: String,
}

/// `pull_request`: `opened`, `synchronize`, `reopened`, `closed`, ….
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub number: i64,
    pub pull_request: PullRequest,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: i64,
    pub state: String,
    pub head: GitRef,
    pub base: GitRef,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: Vec<Label>,
}

/// A label of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub name: String,
}

/// `push` (no action).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushEvent {
    /// `refs/heads/…` or `refs/tags/…`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl PushEvent {
    /// The pushed branch; `None` for a tag.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// A push to the repository's default branch (that was not its deletion).
    pub fn is_to_default_branch(&self) -> bool {
        !self.deleted
            && self.branch().is_some()
            && self.branch() == self.repository.default_branch.as_deref()
    }
}

/// GitHub writes `null` for some empty lists.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handled_event_has_its_reader_and_no_other_does() {
        for event in EVENTS {
            assert_eq!(handled(event), Some(event));
            assert!(
                !matches!(parse_event(event, b"{}"), Ok(Event::Other { .. })),
                "{event} is read"
            );
        }
        assert_eq!(handled("star"), None);
        assert!(matches!(
            parse_event("star", b"{}"),
            Ok(Event::Other { .. })
        ));
    }

    #[test]
    fn a_missing_field_is_named_with_its_event_and_path() {
        let err = parse_event(
            "workflow_run",
            br#"{"action":"completed","workflow_run":{"id":1},"repository":{"id":1,"full_name":"a/b"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("workflow_run payload: workflow_run: "),
            "{err}"
        );
        assert!(err.contains("missing field `workflow_id`"), "{err}");

        let err = parse_event(
            "check_run",
            br#"{"action":"requested_action","check_run":{"id":1,"name":"FlakeGuard","head_sha":"a","status":"completed"},"requested_action":{},"repository":{"id":1,"full_name":"a/b"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("requested_action"), "{err}");
        assert!(err.contains("missing field `identifier`"), "{err}");
    }

    #[test]
    fn wrong_types_and_broken_json_are_errors_not_panics() {
        let err = parse_event("push", br#"{"ref": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("push payload: ref: "), "{err}");
        let err = parse_event("installation", b"{\"action\":").unwrap_err();
        assert!(
            err.to_string().starts_with("installation payload:"),
            "{err}"
        );
        assert!(parse_event("ping", b"").is_err());
        assert!(parse_event("workflow_job", b"[]").is_err());
    }

    #[test]
    fn unsubscribed_events_are_not_read() {
        let event = parse_event("star", b"not even json").unwrap();
        assert_eq!(
            event,
            Event::Other {
                event: "star".to_owned()
            }
        );
        assert_eq!(event.installation_id(), None);
    }

    #[test]
    fn pushes_know_their_branch() {
        let push = |r: &str, deleted: bool| PushEvent {
            git_ref: r.to_owned(),
            before: String::new(),
            after: String::new(),
            created: false,
            deleted,
            forced: false,
            repository: Repository {
                id: 1,
                full_name: "a/b".to_owned(),
                default_branch: Some("main".to_owned()),
            },
            installation: None,
        };
        assert!(push("refs/heads/main", false).is_to_default_branch());
        assert!(!push("refs/heads/main", true).is_to_default_branch());
        assert!(!push("refs/heads/dev", false).is_to_default_branch());
        assert!(!push("refs/tags/main", false).is_to_default_branch());
        assert_eq!(push("refs/tags/v1", false).branch(), None);
    }
}
