//! GitHub webhook deliveries as an outbox: stored once per delivery id as they arrive (a
//! redelivery finds the stored one), handled afterwards, and listed while still pending.

use flakeguard_store::{
    DeliveryId, DeliveryStatus, NewDelivery, Result, StoreError, WebhookDelivery,
};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

/// The columns [`delivery`] reads, as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, delivery_id, event, action, installation_id, payload, status, attempts, \
         last_error, received_at, processed_at"
    };
}

type DeliveryRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Vec<u8>,
    String,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

fn delivery(row: DeliveryRow) -> Result<WebhookDelivery> {
    let (
        id,
        delivery_id,
        event,
        action,
        installation_id,
        payload,
        status,
        attempts,
        last_error,
        received_at,
        processed_at,
    ) = row;
    Ok(WebhookDelivery {
        id: DeliveryId(id),
        delivery_id,
        event,
        action,
        installation_id,
        payload,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format_args!("delivery status {status:?}")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt(format_args!("delivery attempts {attempts}")))?,
        last_error,
        received_at: from_micros(received_at)?,
        processed_at: from_micros_opt(processed_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn record_delivery_impl(
        &self,
        new: &NewDelivery,
    ) -> Result<(WebhookDelivery, bool)> {
        // Insert and read back in one write transaction: nothing can come between them, and
        // other processes on the file wait for the write lock.
        let mut tx = self.write().await?;
        let inserted: Option<DeliveryRow> = sqlx::query_as(concat!(
            "INSERT INTO webhook_deliveries
                 (delivery_id, event, action, installation_id, payload, received_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (delivery_id) DO NOTHING
             RETURNING ",
            delivery_columns!()
        ))
        .bind(&new.delivery_id)
        .bind(&new.event)
        .bind(new.action.as_deref())
        .bind(new.installation_id)
        .bind(&new.payload)
        .bind(to_micros(new.received_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map("record the delivery"))?;
        let (row, created) = match inserted {
            Some(row) => (row, true),
            None => {
                let row = sqlx::query_as(concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM webhook_deliveries WHERE delivery_id = ?"
                ))
                .bind(&new.delivery_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map("read the stored delivery"))?;
                (row, false)
            }
        };
        tx.commit().await.map_err(map("commit the delivery"))?;
        Ok((delivery(row)?, created))
    }

    pub(crate) async fn find_delivery_impl(
        &self,
        id: DeliveryId,
    ) -> Result<Option<WebhookDelivery>> {
        sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the delivery"))?
        .map(delivery)
        .transpose()
    }

    pub(crate) async fn finish_delivery_impl(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<()> {
        let result = sqlx::query(
            "UPDATE webhook_deliveries
             SET status = ?, attempts = attempts + 1, last_error = ?, processed_at = ?
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(to_micros(at))
        .bind(id.0)
        .execute(&self.writer)
        .await
        .map_err(map("finish the delivery"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("delivery {id}")));
        }
        Ok(())
    }

    pub(crate) async fn pending_deliveries_impl(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries
             WHERE status = 'received' AND received_at < ?
             ORDER BY received_at, id LIMIT ?",
        )
        .bind(to_micros(received_before))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the pending deliveries"))?;
        Ok(ids.into_iter().map(DeliveryId).collect())
    }
}
