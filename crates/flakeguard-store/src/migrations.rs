//! Migration bookkeeping shared by the backends: each backend crate owns its SQL files and
//! lists them as [`Migration`]s; applied ones are recorded with a checksum so an edited
//! migration is caught instead of silently diverging.

use time::OffsetDateTime;

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
