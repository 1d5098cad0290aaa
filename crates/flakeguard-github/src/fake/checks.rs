//! The fake's check run endpoints, with GitHub's validation of names, statuses, actions and
//! output sizes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{Refusal, not_found, parse_json, refusal, validation_refusal};
use super::{RecordedCheckRun, Shared, lock};
use crate::types::{
    MAX_ACTION_DESCRIPTION, MAX_ACTION_IDENTIFIER, MAX_ACTION_LABEL, MAX_ACTIONS, MAX_OUTPUT_CHARS,
};

fn str_len(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// GitHub's checks on a check run body.
fn validate_check_run(body: &Value, creating: bool) -> Result<(), Refusal> {
    const STATUSES: &[&str] = &[
        "queued",
        "in_progress",
        "completed",
        "waiting",
        "requested",
        "pending",
    ];
    const CONCLUSIONS: &[&str] = &[
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "success",
        "skipped",
        "stale",
        "timed_out",
    ];
    if creating {
        for field in ["name", "head_sha"] {
            if body[field].as_str().is_none_or(str::is_empty) {
                return Err(refusal(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
                ));
            }
        }
    }
    if let Some(status) = body.get("status")
        && !status.as_str().is_some_and(|s| STATUSES.contains(&s))
    {
        return Err(validation_refusal(
            "CheckRun",
            "status",
            format!("{status} is not a status"),
        ));
    }
    if let Some(conclusion) = body.get("conclusion")
        && !conclusion
            .as_str()
            .is_some_and(|c| CONCLUSIONS.contains(&c))
    {
        return Err(validation_refusal(
            "CheckRun",
            "conclusion",
            format!("{conclusion} is not a conclusion"),
        ));
    }
    if let Some(actions) = body.get("actions") {
        let Some(actions) = actions.as_array() else {
            return Err(validation_refusal(
                "CheckRun",
                "actions",
                "must be an array".to_owned(),
            ));
        };
        if actions.len() > MAX_ACTIONS {
            return Err(validation_refusal(
                "CheckRun",
                "actions",
                format!(
                    "Only {MAX_ACTIONS} actions are allowed; {} were supplied",
                    actions.len()
                ),
            ));
        }
        for (i, action) in actions.iter().enumerate() {
            for (field, max) in [
                ("label", MAX_ACTION_LABEL),
                ("description", MAX_ACTION_DESCRIPTION),
                ("identifier", MAX_ACTION_IDENTIFIER),
            ] {
                let value = &action[field];
                if !value.is_string() {
                    return Err(validation_refusal(
                        "CheckRun",
                        &format!("actions[{i}].{field}"),
                        "is required".to_owned(),
                    ));
                }
                if str_len(value) > max {
                    return Err(validation_refusal(
                        "CheckRun",
                        &format!("actions[{i}].{field}"),
                        format!("is too long (maximum is {max} characters)"),
                    ));
                }
            }
        }
    }
    if let Some(output) = body.get("output") {
        for field in ["title", "summary"] {
            if !output[field].is_string() {
                return Err(validation_refusal(
                    "CheckRun",
                    &format!("output.{field}"),
                    "is required".to_owned(),
                ));
            }
        }
        for field in ["summary", "text"] {
            let len = str_len(&output[field]);
            if len > MAX_OUTPUT_CHARS {
                return Err(refusal(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "Invalid request.\n\nOnly {MAX_OUTPUT_CHARS} characters are allowed in output.{field}; {len} were supplied."
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn apply_check_run_fields(current: &mut Value, body: &Value) {
    for field in [
        "name",
        "status",
        "conclusion",
        "details_url",
        "external_id",
        "output",
        "actions",
    ] {
        if let Some(value) = body.get(field) {
            current[field] = value.clone();
        }
    }
    if body.get("conclusion").is_some_and(|c| !c.is_null()) {
        current["status"] = json!("completed");
    }
}

pub(super) async fn create_check_run(
    State(state): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body = match parse_json(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = validate_check_run(&body, true) {
        return refusal.into_response();
    }
    let mut state = lock(&state);
    let id = state.next_id();
    let head_sha = body["head_sha"].as_str().unwrap_or_default().to_owned();
    let mut current = json!({
        "id": id,
        "head_sha": head_sha,
        "status": "queued",
        "conclusion": null,
        "url": format!("{}/repos/{owner}/{repo}/check-runs/{id}", state.base_url),
        "html_url": format!("https://github.com/{owner}/{repo}/runs/{id}"),
    });
    apply_check_run_fields(&mut current, &body);
    state.check_runs.push(RecordedCheckRun {
        id,
        owner,
        repo,
        head_sha,
        current: current.clone(),
        bodies: vec![body],
    });
    (StatusCode::CREATED, axum::Json(current)).into_response()
}

pub(super) async fn update_check_run(
    State(state): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, i64)>,
    body: Bytes,
) -> Response {
    let body = match parse_json(&body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = validate_check_run(&body, false) {
        return refusal.into_response();
    }
    let mut state = lock(&state);
    let Some(run) = state
        .check_runs
        .iter_mut()
        .find(|r| r.id == id && r.owner == owner && r.repo == repo)
    else {
        return not_found();
    };
    apply_check_run_fields(&mut run.current, &body);
    run.bodies.push(body);
    axum::Json(run.current.clone()).into_response()
}
