//! The audit log: appended to, and read back per organization, newest first.

use flakeguard_store::{AuditEntry, NewAuditEntry, OrgId, StoreError};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::map;

fn audit_entry(row: &PgRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        org: row.try_get::<Option<i64>, _>("org_id")?.map(OrgId),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        detail: row.try_get("detail")?,
        at: row.try_get("created_at")?,
    })
}

pub(crate) async fn append(pool: &PgPool, entry: &NewAuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor, action, target, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(entry.org.map(|o| o.0))
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.detail)
    .bind(entry.at)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(())
}

pub(crate) async fn list(
    pool: &PgPool,
    org: OrgId,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(
        "SELECT id, org_id, actor, action, target, detail, created_at
         FROM audit_log WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(org.0)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(map)?
    .iter()
    .map(audit_entry)
    .collect::<Result<_, _>>()
    .map_err(map)
}
