//! The fake's issue endpoints: create, search (the subset of GitHub's syntax FlakeGuard
//! uses) and comments.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{
    Refusal, not_found, paginate, parse_json, validation_failed, validation_refusal, with_link,
};
use super::{BOT_LOGIN, RecordedComment, RecordedIssue, Shared, lock};

fn issue_json(base_url: &str, issue: &RecordedIssue) -> Value {
    let RecordedIssue {
        owner,
        repo,
        number,
        ..
    } = issue;
    json!({
        "id": number + 10_000,
        "number": number,
        "title": issue.title,
        "body": issue.body,
        "state": issue.state,
        "labels": issue.labels.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
        "url": format!("{base_url}/repos/{owner}/{repo}/issues/{number}"),
        "repository_url": format!("{base_url}/repos/{owner}/{repo}"),
        "html_url": format!("https://github.com/{owner}/{repo}/issues/{number}"),
        "user": { "login": BOT_LOGIN, "type": "Bot" },
    })
}

pub(super) async fn create_issue(
    State(state): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match parse_json(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
        return validation_failed("Issue", "title", "missing_field".to_owned());
    };
    let labels = match &body["labels"] {
        Value::Null => Vec::new(),
        Value::Array(labels) if labels.iter().all(Value::is_string) => labels
            .iter()
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect(),
        _ => return validation_failed("Issue", "labels", "must be an array of names".to_owned()),
    };
    let mut state = lock(&state);
    let number = state
        .issues
        .iter()
        .filter(|i| i.owner == owner && i.repo == repo)
        .count() as i64
        + 1;
    let issue = RecordedIssue {
        owner,
        repo,
        number,
        title: title.to_owned(),
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        labels,
        state: "open".to_owned(),
    };
    let response = issue_json(&state.base_url, &issue);
    state.issues.push(issue);
    (StatusCode::CREATED, axum::Json(response)).into_response()
}

/// The parts of GitHub's search syntax FlakeGuard uses: free text (quoted phrases kept
/// whole) matched against titles, `repo:`, `label:`, `is:`/`state:`/`type:`, `in:title`.
#[derive(Debug, Default)]
struct IssueQuery {
    terms: Vec<String>,
    repo: Option<String>,
    labels: Vec<String>,
    state: Option<String>,
    pull_requests: bool,
}

fn parse_query(q: &str) -> IssueQuery {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut query = IssueQuery::default();
    for token in tokens {
        match token.split_once(':') {
            Some(("repo", value)) => query.repo = Some(value.to_owned()),
            Some(("label", value)) => query.labels.push(value.to_owned()),
            Some(("is" | "state" | "type", value)) => match value {
                "open" | "closed" => query.state = Some(value.to_owned()),
                "pr" | "pull-request" => query.pull_requests = true,
                _ => {}
            },
            Some(("in", _)) => {}
            _ => query.terms.push(token.to_lowercase()),
        }
    }
    query
}

pub(super) async fn search_issues(
    State(state): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(q) = params.get("q") else {
        return validation_failed("Search", "q", "missing".to_owned());
    };
    let query = parse_query(q);
    let state = lock(&state);
    let found: Vec<Value> = if query.pull_requests {
        Vec::new()
    } else {
        state
            .issues
            .iter()
            .filter(|issue| {
                let title = issue.title.to_lowercase();
                query
                    .repo
                    .as_ref()
                    .is_none_or(|r| *r == format!("{}/{}", issue.owner, issue.repo))
                    && query.labels.iter().all(|l| issue.labels.contains(l))
                    && query.state.as_ref().is_none_or(|s| *s == issue.state)
                    && query.terms.iter().all(|t| title.contains(t.as_str()))
            })
            .map(|issue| issue_json(&state.base_url, issue))
            .collect()
    };
    let (page, link) = paginate(&state, &found, "/search/issues", &params);
    with_link(
        json!({ "total_count": found.len(), "incomplete_results": false, "items": page }),
        link,
    )
}

fn comment_json(base_url: &str, comment: &RecordedComment) -> Value {
    let RecordedComment {
        id,
        owner,
        repo,
        issue_number,
        ..
    } = comment;
    json!({
        "id": id,
        "body": comment.body,
        "user": { "login": comment.user_login, "type": if comment.user_login.ends_with("[bot]") { "Bot" } else { "User" } },
        "url": format!("{base_url}/repos/{owner}/{repo}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{owner}/{repo}/issues/{issue_number}#issuecomment-{id}"),
        "issue_url": format!("{base_url}/repos/{owner}/{repo}/issues/{issue_number}"),
    })
}

pub(super) async fn list_comments(
    State(state): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, i64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&state);
    let all: Vec<Value> = state
        .comments
        .iter()
        .filter(|c| c.owner == owner && c.repo == repo && c.issue_number == number)
        .map(|c| comment_json(&state.base_url, c))
        .collect();
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    let (page, link) = paginate(&state, &all, &path, &query);
    with_link(Value::Array(page), link)
}

fn comment_body(body: &Bytes) -> Result<String, Refusal> {
    let body = parse_json(body)?;
    body["body"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| validation_refusal("IssueComment", "body", "missing_field".to_owned()))
}

pub(super) async fn create_comment(
    State(state): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, i64)>,
    body: Bytes,
) -> Response {
    let text = match comment_body(&body) {
        Ok(text) => text,
        Err(refusal) => return refusal.into_response(),
    };
    let mut state = lock(&state);
    let id = state.next_id();
    let comment = RecordedComment {
        id,
        owner,
        repo,
        issue_number: number,
        body: text,
        user_login: BOT_LOGIN.to_owned(),
        edits: 0,
    };
    let response = comment_json(&state.base_url, &comment);
    state.comments.push(comment);
    (StatusCode::CREATED, axum::Json(response)).into_response()
}

pub(super) async fn update_comment(
    State(state): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, i64)>,
    body: Bytes,
) -> Response {
    let text = match comment_body(&body) {
        Ok(text) => text,
        Err(refusal) => return refusal.into_response(),
    };
    let mut state = lock(&state);
    let base_url = state.base_url.clone();
    let Some(comment) = state
        .comments
        .iter_mut()
        .find(|c| c.id == id && c.owner == owner && c.repo == repo)
    else {
        return not_found();
    };
    comment.body = text;
    comment.edits += 1;
    axum::Json(comment_json(&base_url, comment)).into_response()
}
