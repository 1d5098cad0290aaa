//! The request and response shapes of the endpoints FlakeGuard uses, reduced to the fields it
//! reads, and GitHub's documented limits on check runs.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A workflow run's artifact (`GET /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    pub id: i64,
    pub name: String,
    pub size_in_bytes: u64,
    pub expired: bool,
    pub archive_download_url: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ArtifactList {
    pub(crate) artifacts: Vec<Artifact>,
}

/// An installation access token (`POST /app/installations/{id}/access_tokens`).
#[derive(Clone, Deserialize)]
pub struct InstallationToken {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The body of a check run create (`POST`) or update (`PATCH`); `None` fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckRunRequest {
    pub name: String,
    /// Required when creating; left out of an update when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckRunOutput>,
    /// Left out when empty, so an update without actions keeps the ones the run has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CheckRunAction>,
}

/// A check run's output: title, markdown summary and optional markdown text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckRunOutput {
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A button on a check run; a click arrives as a `check_run` `requested_action` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckRunAction {
    pub label: String,
    pub description: String,
    pub identifier: String,
}

/// The created or updated check run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckRunRef {
    pub id: i64,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A new issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewIssue {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

/// An issue as created or found by a search.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueRef {
    pub number: i64,
    pub html_url: String,
    pub title: String,
    pub state: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchIssues {
    pub(crate) items: Vec<IssueRef>,
}

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub body: String,
    pub user_login: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentWire {
    id: i64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<UserWire>,
}

#[derive(Debug, Deserialize)]
struct UserWire {
    login: String,
}

impl From<CommentWire> for Comment {
    fn from(wire: CommentWire) -> Self {
        Comment {
            id: wire.id,
            body: wire.body.unwrap_or_default(),
            user_login: wire.user.map(|user| user.login),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ContentFile {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) encoding: Option<String>,
    #[serde(default)]
    pub(crate) content: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullNumber {
    pub(crate) number: i64,
}

/// GitHub's documented limits on check run actions and output.
pub const MAX_ACTIONS: usize = 3;
pub const MAX_ACTION_LABEL: usize = 20;
pub const MAX_ACTION_DESCRIPTION: usize = 40;
pub const MAX_ACTION_IDENTIFIER: usize = 20;
pub const MAX_OUTPUT_CHARS: usize = 65_535;

/// Checks a check run body against GitHub's documented limits: at most 3 actions, labels up
/// to 20 characters, descriptions up to 40, identifiers up to 20, output summary and text up
/// to 65,535 characters. The error names every field over its limit.
pub fn verify_limits(req: &CheckRunRequest) -> Result<(), String> {
    let mut problems = Vec::new();
    if req.actions.len() > MAX_ACTIONS {
        problems.push(format!(
            "actions: {} given, at most {MAX_ACTIONS} allowed",
            req.actions.len()
        ));
    }
    for (i, action) in req.actions.iter().enumerate() {
        for (field, value, max) in [
            ("label", &action.label, MAX_ACTION_LABEL),
            ("description", &action.description, MAX_ACTION_DESCRIPTION),
            ("identifier", &action.identifier, MAX_ACTION_IDENTIFIER),
        ] {
            let len = value.chars().count();
            if len > max {
                problems.push(format!(
                    "actions[{i}].{field}: {len} characters, at most {max} allowed"
                ));
            }
        }
    }
    if let Some(output) = &req.output {
        let fields = [
            ("summary", Some(&output.summary)),
            ("text", output.text.as_ref()),
        ];
        for (field, value) in fields {
            let len = value.map_or(0, |v| v.chars().count());
            if len > MAX_OUTPUT_CHARS {
                problems.push(format!(
                    "output.{field}: {len} characters, at most {MAX_OUTPUT_CHARS} allowed"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(label: &str, description: &str, identifier: &str) -> CheckRunAction {
        CheckRunAction {
            label: label.to_owned(),
            description: description.to_owned(),
            identifier: identifier.to_owned(),
        }
    }

    #[test]
    fn accepts_bodies_exactly_at_the_limits() {
        let req = CheckRunRequest {
            name: "FlakeGuard".to_owned(),
            output: Some(CheckRunOutput {
                title: "t".to_owned(),
                summary: "é".repeat(MAX_OUTPUT_CHARS),
                text: Some("x".repeat(MAX_OUTPUT_CHARS)),
            }),
            actions: vec![action(&"l".repeat(20), &"d".repeat(40), &"i".repeat(20)); 3],
            ..CheckRunRequest::default()
        };
        assert_eq!(verify_limits(&req), Ok(()));
    }

    #[test]
    fn names_every_field_over_its_limit() {
        let req = CheckRunRequest {
            name: "FlakeGuard".to_owned(),
            output: Some(CheckRunOutput {
                title: "t".to_owned(),
                summary: "s".repeat(MAX_OUTPUT_CHARS + 1),
                text: None,
            }),
            actions: vec![
                action(&"l".repeat(21), "ok", "ok"),
                action("ok", &"d".repeat(41), "ok"),
                action("ok", "ok", &"i".repeat(21)),
                action("ok", "ok", "ok"),
            ],
            ..CheckRunRequest::default()
        };
        let err = verify_limits(&req).unwrap_err();
        for needle in [
            "actions: 4 given",
            "actions[0].label",
            "actions[1].description",
            "actions[2].identifier",
            "output.summary",
        ] {
            assert!(err.contains(needle), "{needle} missing from {err}");
        }
        assert!(!err.contains("output.text"), "{err}");
    }

    #[test]
    fn update_bodies_leave_out_what_is_not_set() {
        let req = CheckRunRequest {
            name: "FlakeGuard".to_owned(),
            conclusion: Some("success".to_owned()),
            ..CheckRunRequest::default()
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "FlakeGuard", "conclusion": "success"})
        );
    }
}
