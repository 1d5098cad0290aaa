//! The audit log: appended to, and read back per organization, newest first.

use flakeguard_store::{AuditEntry, NewAuditEntry, OrgId, Result};

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::{from_micros, to_micros};

type AuditRow = (i64, Option<i64>, String, String, String, String, i64);

fn audit_entry(row: AuditRow) -> Result<AuditEntry> {
    let (id, org, actor, action, target, detail, created_at) = row;
    Ok(AuditEntry {
        id,
        org: org.map(OrgId),
        actor,
        action,
        target,
        detail,
        at: from_micros(created_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn audit_impl(&self, entry: &NewAuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (org_id, actor, action, target, detail, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.org.map(|o| o.0))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(to_micros(entry.at))
        .execute(&self.writer)
        .await
        .map_err(map("append to the audit log"))?;
        Ok(())
    }

    pub(crate) async fn list_audit_impl(&self, org: OrgId, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, org_id, actor, action, target, detail, created_at
             FROM audit_log WHERE org_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(org.0)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map("read the audit log"))?;
        rows.into_iter().map(audit_entry).collect()
    }
}
