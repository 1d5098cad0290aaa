//! Applying this crate's migrations and reporting their state.
//!
//! Applied migrations are recorded in `flakeguard_migrations` with the checksum of their SQL.
//! `migrate` refuses to run when a recorded checksum differs from this build's file (someone
//! edited an applied migration) or when the database has a version this build does not know
//! (it was migrated by a newer build). Each pending migration runs in its own transaction
//! under a transaction-scoped advisory lock, so concurrent `migrate` calls (several replicas
//! starting at once) apply each migration exactly once.

use std::collections::HashMap;

use flakeguard_store::{Migration, MigrationState, StoreError, checksum, verify_applied};
use sqlx::{PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::MIGRATIONS;
use crate::error::map;

/// Key of the advisory lock serializing migrations ("flakegua" in ASCII).
const LOCK_KEY: i64 = 0x666c_616b_6567_7561;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS flakeguard_migrations (
    version     BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)";

struct Applied {
    checksum: String,
    applied_at: OffsetDateTime,
}

async fn applied(executor: impl sqlx::PgExecutor<'_>) -> Result<HashMap<i64, Applied>, StoreError> {
    let rows = sqlx::query("SELECT version, checksum, applied_at FROM flakeguard_migrations")
        .fetch_all(executor)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("version")?,
                Applied {
                    checksum: row.try_get("checksum")?,
                    applied_at: row.try_get("applied_at")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(map)
}

fn state(migration: &Migration, applied: Option<&Applied>) -> MigrationState {
    MigrationState {
        version: migration.version,
        name: migration.name.to_owned(),
        applied_at: applied.map(|a| a.applied_at),
    }
}

/// Every known migration with its state; all pending when the bookkeeping table is absent.
pub(crate) async fn status(pool: &PgPool) -> Result<Vec<MigrationState>, StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('flakeguard_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(map)?;
    let applied = if exists {
        applied(pool).await?
    } else {
        HashMap::new()
    };
    Ok(MIGRATIONS
        .iter()
        .map(|m| state(m, applied.get(&m.version)))
        .collect())
}

/// Refuses edited or unknown applied migrations.
fn verify(applied: &HashMap<i64, Applied>) -> Result<(), StoreError> {
    verify_applied(
        MIGRATIONS,
        applied.iter().map(|(v, a)| (*v, a.checksum.as_str())),
    )
}

async fn locked(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    Ok(tx)
}

/// Applies the pending migrations in order, each in its own transaction.
pub(crate) async fn run(pool: &PgPool) -> Result<Vec<MigrationState>, StoreError> {
    let mut tx = locked(pool).await?;
    sqlx::query(CREATE_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    verify(&applied(&mut *tx).await?)?;
    tx.commit().await.map_err(map)?;

    let mut done = Vec::new();
    for migration in MIGRATIONS {
        let mut tx = locked(pool).await?;
        // Re-read under the lock: another process may have applied it meanwhile.
        let applied = applied(&mut *tx).await?;
        verify(&applied)?;
        if applied.contains_key(&migration.version) {
            tx.rollback().await.map_err(map)?;
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Migration(format!(
                    "migration {} ({}) failed: {}",
                    migration.version,
                    migration.name,
                    map(e)
                ))
            })?;
        let applied_at: OffsetDateTime = sqlx::query_scalar(
            "INSERT INTO flakeguard_migrations (version, name, checksum) VALUES ($1, $2, $3)
             RETURNING applied_at",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(checksum(migration.sql))
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        done.push(MigrationState {
            version: migration.version,
            name: migration.name.to_owned(),
            applied_at: Some(applied_at),
        });
    }
    Ok(done)
}
