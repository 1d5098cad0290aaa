//! `process_webhook`: act on a stored GitHub delivery. The delivery was written to the
//! database before GitHub got its 202 (the outbox); this job routes it by event and records
//! the outcome on the delivery, so a delivery is acted on until it is marked done.

use flakeguard_store::{DeliveryId, DeliveryStatus};

use super::{JobContext, JobError, ProcessWebhook};

/// Events FlakeGuard subscribes to (docs/github-app.md). The GitHub App issue gives each its
/// handler; until then they are recorded and marked ignored, like events nobody asked for.
pub(super) const SUBSCRIBED: [&str; 8] = [
    "installation",
    "installation_repositories",
    "workflow_run",
    "workflow_job",
    "check_run",
    "check_suite",
    "pull_request",
    "push",
];

pub(super) async fn run(ctx: &JobContext, job: &ProcessWebhook) -> Result<String, JobError> {
    let id = DeliveryId(job.delivery);
    let Some(delivery) = ctx.store.find_delivery(id).await? else {
        return Ok(format!("delivery {} no longer stored", id.0));
    };
    if delivery.status != DeliveryStatus::Received {
        // Done by an earlier attempt that died before completing the job.
        return Ok(format!(
            "delivery {} already {}",
            delivery.delivery_id,
            delivery.status.as_str()
        ));
    }
    let (status, note) = match delivery.event.as_str() {
        "ping" => (DeliveryStatus::Processed, "ping answered".to_owned()),
        event if SUBSCRIBED.contains(&event) => (
            DeliveryStatus::Ignored,
            format!("{event}: no handler in this build"),
        ),
        event => (DeliveryStatus::Ignored, format!("{event}: not subscribed")),
    };
    let error = (status == DeliveryStatus::Ignored).then_some(note.as_str());
    ctx.store
        .finish_delivery(id, status, error, ctx.now())
        .await?;
    Ok(format!("delivery {}: {note}", delivery.delivery_id))
}
