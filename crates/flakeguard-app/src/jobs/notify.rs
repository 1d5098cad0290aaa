//! `notify`: post one message to an incoming-webhook URL (`{"text": …}`, what Slack's
//! incoming webhooks accept). 2xx is done; 429 and 5xx are retried (after `Retry-After` at
//! the earliest, by the backoff); any other answer is permanent (a revoked webhook will not
//! start working on the tenth try).

use super::{JobContext, JobError, Notify};

pub(super) async fn run(ctx: &JobContext, job: &Notify) -> Result<String, JobError> {
    let response = ctx
        .http
        .post(&job.target)
        .json(&serde_json::json!({ "text": job.text }))
        .send()
        .await
        .map_err(|e| JobError::Retry(format!("notify {}: {e}", job.key)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(format!("notified {}", job.key));
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    let message = format!("notify {}: the webhook answered {status}: {body}", job.key);
    if status.as_u16() == 429 || status.is_server_error() {
        Err(JobError::Retry(message))
    } else {
        Err(JobError::Permanent(message))
    }
}
