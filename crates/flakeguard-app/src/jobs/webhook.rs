//! `process_webhook`: act on a stored GitHub delivery. The delivery was written to the
//! database before GitHub got its 202 (the outbox); this job routes it by event and records
//! the outcome on the delivery, so a delivery is acted on until it is marked done.

use flakeguard_store::{DeliveryId, DeliveryStatus};

use super::{JobContext, JobError, ProcessWebhook};
use crate::github::handle::Handled;

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
    let (status, note) = match crate::github::handle::process(ctx, &delivery).await {
        Ok(Handled::Processed(note)) => (DeliveryStatus::Processed, note),
        Ok(Handled::Ignored(note)) => (DeliveryStatus::Ignored, note),
        Err(JobError::Permanent(error)) => {
            // Recorded on the delivery too, so `jobs list` and the delivery agree.
            ctx.store
                .finish_delivery(id, DeliveryStatus::Failed, Some(&error), ctx.now())
                .await?;
            return Err(JobError::Permanent(error));
        }
        Err(retry) => return Err(retry),
    };
    let error = (status == DeliveryStatus::Ignored).then_some(note.as_str());
    ctx.store
        .finish_delivery(id, status, error, ctx.now())
        .await?;
    Ok(format!("delivery {}: {note}", delivery.delivery_id))
}
