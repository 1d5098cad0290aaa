//! GitHub webhook deliveries as an outbox: stored once per delivery id as they arrive (a
//! redelivery finds the stored one), handled afterwards, and listed while still pending.
//!
//! Race safety: of two concurrent `record`s of one delivery id, the second's insert waits for
//! the first's uncommitted row and then does nothing, and reads the committed row in a
//! statement of its own (READ COMMITTED: a new snapshot); if the first rolled back, the second
//! inserts it itself. So exactly one of them answers `true`.

use flakeguard_store::{DeliveryId, DeliveryStatus, NewDelivery, StoreError, WebhookDelivery};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use crate::error::map;

/// A delivery's columns, the payload as `$payload` reads it.
macro_rules! columns {
    ($payload:literal) => {
        concat!(
            "id, delivery_id, event, action, installation_id, ",
            $payload,
            ", status, attempts, last_error, received_at, processed_at"
        )
    };
}

/// The payload is not sent back: the caller has it.
const INSERT: &str = concat!(
    "INSERT INTO webhook_deliveries
         (delivery_id, event, action, installation_id, payload, received_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (delivery_id) DO NOTHING
     RETURNING ",
    columns!("''::bytea AS payload")
);
const BY_DELIVERY_ID: &str = concat!(
    "SELECT ",
    columns!("payload"),
    " FROM webhook_deliveries WHERE delivery_id = $1"
);
const BY_ID: &str = concat!(
    "SELECT ",
    columns!("payload"),
    " FROM webhook_deliveries WHERE id = $1"
);

/// How often `record` tries again when the row it conflicted with is gone by the time it
/// reads it (deliveries are not deleted today; this only keeps the answer truthful).
const RECORD_ATTEMPTS: usize = 3;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Payloads above this are stored gzip-compressed.
const PACK_ABOVE: usize = 2048;

/// Stores large payloads gzipped (level 1). Besides the space (GitHub payloads are verbose
/// JSON; a `workflow_run` shrinks from 22 KB to about 4 KB), it keeps the insert under one
/// socket send buffer: sqlx 0.9 leaves Nagle's algorithm on, and a bind too large for one
/// write waited out PostgreSQL's delayed ACK — 40 ms per delivery on loopback.
fn pack(payload: &[u8]) -> Vec<u8> {
    use std::io::Write;
    // (A small payload that happens to start like gzip is packed too, so reading stays
    // unambiguous.)
    if payload.len() <= PACK_ABOVE && !payload.starts_with(&GZIP_MAGIC) {
        return payload.to_vec();
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(payload.len() / 4),
        flate2::Compression::fast(),
    );
    match encoder.write_all(payload).and_then(|()| encoder.finish()) {
        Ok(packed) => packed,
        // Writing to memory does not fail; store it as it came if it ever does.
        Err(_) => payload.to_vec(),
    }
}

/// Reads a stored payload: gzip's magic bytes mark a packed one, anything else is stored as
/// received.
fn unpack(stored: Vec<u8>) -> Result<Vec<u8>, sqlx::Error> {
    use std::io::Read;
    if !stored.starts_with(&GZIP_MAGIC) {
        return Ok(stored);
    }
    let mut payload = Vec::with_capacity(stored.len() * 4);
    flate2::read::GzDecoder::new(stored.as_slice())
        .read_to_end(&mut payload)
        .map_err(|e| sqlx::Error::Decode(format!("stored delivery payload: {e}").into()))?;
    Ok(payload)
}

fn delivery(row: &PgRow) -> Result<WebhookDelivery, StoreError> {
    let status: String = row.try_get("status").map_err(map)?;
    let status = DeliveryStatus::parse(&status).ok_or_else(|| {
        StoreError::Database(format!("stored delivery status {status:?} is unknown"))
    })?;
    let attempts: i32 = row.try_get("attempts").map_err(map)?;
    let attempts = u32::try_from(attempts).map_err(|_| {
        StoreError::Database(format!("stored delivery attempts {attempts} is negative"))
    })?;
    (|| {
        Ok::<_, sqlx::Error>(WebhookDelivery {
            id: DeliveryId(row.try_get("id")?),
            delivery_id: row.try_get("delivery_id")?,
            event: row.try_get("event")?,
            action: row.try_get("action")?,
            installation_id: row.try_get("installation_id")?,
            payload: unpack(row.try_get("payload")?)?,
            status,
            attempts,
            last_error: row.try_get("last_error")?,
            received_at: row.try_get("received_at")?,
            processed_at: row.try_get("processed_at")?,
        })
    })()
    .map_err(map)
}

pub(crate) async fn record(
    pool: &PgPool,
    new: &NewDelivery,
) -> Result<(WebhookDelivery, bool), StoreError> {
    let packed = pack(&new.payload);
    for _ in 0..RECORD_ATTEMPTS {
        let inserted = sqlx::query(INSERT)
            .bind(&new.delivery_id)
            .bind(&new.event)
            .bind(new.action.as_deref())
            .bind(new.installation_id)
            .bind(&packed)
            .bind(new.received_at)
            .fetch_optional(pool)
            .await
            .map_err(map)?;
        if let Some(row) = inserted {
            let mut stored = delivery(&row)?;
            stored.payload = new.payload.clone();
            return Ok((stored, true));
        }
        let existing = sqlx::query(BY_DELIVERY_ID)
            .bind(&new.delivery_id)
            .fetch_optional(pool)
            .await
            .map_err(map)?;
        if let Some(row) = existing {
            return Ok((delivery(&row)?, false));
        }
    }
    Err(StoreError::Conflict(format!(
        "delivery {} kept appearing and disappearing",
        new.delivery_id
    )))
}

pub(crate) async fn find(
    pool: &PgPool,
    id: DeliveryId,
) -> Result<Option<WebhookDelivery>, StoreError> {
    sqlx::query(BY_ID)
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(delivery)
        .transpose()
}

pub(crate) async fn finish(
    pool: &PgPool,
    id: DeliveryId,
    status: DeliveryStatus,
    error: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = $2, attempts = attempts + 1, last_error = $3, processed_at = $4
         WHERE id = $1",
    )
    .bind(id.0)
    .bind(status.as_str())
    .bind(error)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?;
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("delivery {id}")));
    }
    Ok(())
}

/// Read from `webhook_deliveries_status` (status, received_at), ties sorted by id.
pub(crate) async fn pending(
    pool: &PgPool,
    received_before: OffsetDateTime,
    limit: u32,
) -> Result<Vec<DeliveryId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries
         WHERE status = $1 AND received_at < $2
         ORDER BY received_at, id
         LIMIT $3",
    )
    .bind(DeliveryStatus::Received.as_str())
    .bind(received_before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?;
    Ok(ids.into_iter().map(DeliveryId).collect())
}
