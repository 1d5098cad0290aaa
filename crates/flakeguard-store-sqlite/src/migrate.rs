//! The SQLite schema's migrations and their bookkeeping.
//!
//! The SQL files live in this crate's `migrations/` folder and are embedded in the binary.
//! Applied ones are recorded in `flakeguard_migrations` with their checksum; a database whose
//! recorded checksum differs from this build's SQL, or that records a migration this build
//! does not know (a newer build migrated it), is refused rather than silently diverging.

use flakeguard_store::{Migration, MigrationState, Result, StoreError, checksum, verify_applied};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::{from_micros, now, to_micros};

/// Every migration this build knows, in order. Never edit an applied one: add a new file.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "read_api",
        sql: include_str!("../migrations/0002_read_api.sql"),
    },
    Migration {
        version: 3,
        name: "outbox",
        sql: include_str!("../migrations/0003_outbox.sql"),
    },
    Migration {
        version: 4,
        name: "repo_policy",
        sql: include_str!("../migrations/0004_repo_policy.sql"),
    },
    Migration {
        version: 5,
        name: "github",
        sql: include_str!("../migrations/0005_github.sql"),
    },
    Migration {
        version: 6,
        name: "pr_labels",
        sql: include_str!("../migrations/0006_pr_labels.sql"),
    },
    Migration {
        version: 7,
        name: "workflow_runs",
        sql: include_str!("../migrations/0007_workflow_runs.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS flakeguard_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT";

/// One row of `flakeguard_migrations`.
#[derive(Debug)]
struct Applied {
    version: i64,
    checksum: String,
    applied_at: i64,
}

async fn applied(conn: &mut SqliteConnection) -> Result<Vec<Applied>> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'flakeguard_migrations'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map("read the migration table"))?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, checksum, applied_at FROM flakeguard_migrations ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map("read the migration table"))?;
    Ok(rows
        .into_iter()
        .map(|(version, checksum, applied_at)| Applied {
            version,
            checksum,
            applied_at,
        })
        .collect())
}

/// Refuses a database that diverged from this build's migrations.
fn verify(applied: &[Applied]) -> Result<()> {
    verify_applied(
        MIGRATIONS,
        applied.iter().map(|a| (a.version, a.checksum.as_str())),
    )
}

impl SqliteStore {
    pub(crate) async fn migration_states(&self) -> Result<Vec<MigrationState>> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(map("read the migration table"))?;
        let applied = applied(&mut conn).await?;
        MIGRATIONS
            .iter()
            .map(|m| {
                let applied_at = applied
                    .iter()
                    .find(|a| a.version == m.version)
                    .map(|a| from_micros(a.applied_at))
                    .transpose()?;
                Ok(MigrationState {
                    version: m.version,
                    name: m.name.to_owned(),
                    applied_at,
                })
            })
            .collect()
    }

    pub(crate) async fn apply_migrations(&self) -> Result<Vec<MigrationState>> {
        {
            let mut tx = self.write().await?;
            sqlx::query(CREATE_TABLE)
                .execute(&mut *tx)
                .await
                .map_err(map("create the migration table"))?;
            verify(&applied(&mut tx).await?)?;
            tx.commit()
                .await
                .map_err(map("create the migration table"))?;
        }
        let mut done = Vec::new();
        for migration in MIGRATIONS {
            // Checked again inside the transaction: another process may have applied it.
            let mut tx = self.write().await?;
            let recorded: Option<String> =
                sqlx::query_scalar("SELECT checksum FROM flakeguard_migrations WHERE version = ?")
                    .bind(migration.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map("read the migration table"))?;
            if recorded.is_some() {
                verify(&applied(&mut tx).await?)?;
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
                        crate::error::convert("apply it", e)
                    ))
                })?;
            let at = now();
            sqlx::query(
                "INSERT INTO flakeguard_migrations (version, name, checksum, applied_at)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(checksum(migration.sql))
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await
            .map_err(map("record the migration"))?;
            tx.commit().await.map_err(map("commit the migration"))?;
            done.push(MigrationState {
                version: migration.version,
                name: migration.name.to_owned(),
                applied_at: Some(at),
            });
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_names_match_files() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert!(MIGRATIONS.iter().all(|m| !m.sql.trim().is_empty()));
    }
}
