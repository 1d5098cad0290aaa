//! Migration bookkeeping shared by the backends: each backend crate owns its SQL files and
//! lists them as [`Migration`]s; applied ones are recorded with a checksum so an edited
//! migration is caught instead of silently diverging.

use time::OffsetDateTime;

use crate::StoreError;

/// One schema change, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Increasing, never reused.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// A migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub name: String,
    pub applied_at: Option<OffsetDateTime>,
}

impl MigrationState {
    pub fn is_pending(&self) -> bool {
        self.applied_at.is_none()
    }
}

/// FNV-1a 64 of the SQL text, as hex: enough to notice an edited migration.
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Checks the migrations a database has applied (version, stored checksum) against the ones
/// this build knows: an applied migration that was edited, or one this build does not know
/// (the database was migrated by a newer FlakeGuard), is refused.
pub fn verify_applied<'a>(
    known: &[Migration],
    applied: impl IntoIterator<Item = (i64, &'a str)>,
) -> Result<(), StoreError> {
    let newest_known = known.iter().map(|m| m.version).max().unwrap_or(0);
    for (version, stored) in applied {
        match known.iter().find(|m| m.version == version) {
            None => {
                return Err(StoreError::Migration(format!(
                    "the database has migration {version}, which this build does not know \
                     (newest known: {newest_known}); it was migrated by a newer FlakeGuard"
                )));
            }
            Some(m) if checksum(m.sql) != stored => {
                return Err(StoreError::Migration(format!(
                    "migration {} ({}) was changed after it was applied: stored checksum {stored}, \
                     this build has {}; an applied migration must never be edited",
                    m.version,
                    m.name,
                    checksum(m.sql)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[Migration {
        version: 1,
        name: "initial",
        sql: "CREATE TABLE t (x INT);",
    }];

    #[test]
    fn applied_migrations_must_match_this_build() {
        let good = checksum(KNOWN[0].sql);
        assert!(verify_applied(KNOWN, [(1, good.as_str())]).is_ok());
        assert!(verify_applied(KNOWN, []).is_ok());
        let edited = verify_applied(KNOWN, [(1, "0000")])
            .unwrap_err()
            .to_string();
        assert!(edited.contains("changed after it was applied"), "{edited}");
        let newer = verify_applied(KNOWN, [(1, good.as_str()), (2, "x")])
            .unwrap_err()
            .to_string();
        assert!(newer.contains("newer FlakeGuard"), "{newer}");
    }
}
