//! Turning sqlx errors into [`StoreError`]s: unique-constraint violations are conflicts,
//! foreign-key violations are "not found", trouble reaching or locking the file is
//! unavailability, the rest are database errors.
//! Messages name what was being done and SQLite's reason, never a connection string.

use flakeguard_store::StoreError;
use sqlx::error::ErrorKind;

/// SQLite primary result codes that mean "the database cannot be used right now".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_NOMEM: i64 = 7;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

/// A `map_err` adapter: `.map_err(error::map("insert the run"))`.
pub(crate) fn map(doing: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| convert(doing, err)
}

pub(crate) fn convert(doing: &str, err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => {
            let message = format!("{doing}: {}", db.message());
            match db.kind() {
                ErrorKind::UniqueViolation => return StoreError::Conflict(message),
                // As on PostgreSQL: a reference to a record that does not exist.
                ErrorKind::ForeignKeyViolation => {
                    return StoreError::NotFound(format!("referenced record: {message}"));
                }
                _ => {}
            }
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            match primary {
                Some(
                    SQLITE_BUSY | SQLITE_LOCKED | SQLITE_NOMEM | SQLITE_READONLY | SQLITE_IOERR
                    | SQLITE_FULL | SQLITE_CANTOPEN,
                ) => StoreError::Unavailable(message),
                _ => StoreError::Database(message),
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("{doing}: {e}")),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable(format!("{doing}: timed out waiting for a connection"))
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable(format!("{doing}: the store is closed")),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(format!("{doing}: the SQLite worker thread stopped"))
        }
        _ => StoreError::Database(format!("{doing}: {err}")),
    }
}

/// A stored value this build cannot read back (written by hand or by a newer build).
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("unexpected stored value: {what}"))
}
