//! Turning sqlx errors into [`StoreError`]s: unique violations become conflicts, missing
//! references become "not found", text PostgreSQL cannot store (NUL characters) is invalid
//! input, connection trouble becomes "unavailable". Messages come
//! from the server's error text or the I/O error, never from the connection string.

use flakeguard_store::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};

/// Maps any sqlx error to the store's error.
pub(crate) fn map(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => map_database(db.as_ref()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("connection failed: {io}")),
        sqlx::Error::Tls(tls) => StoreError::Unavailable(format!("tls: {tls}")),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("no connection available in time (is the server up?)".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".into()),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("connection worker crashed".into()),
        // The URL parser's messages name the faulty part ("invalid port number"), never the
        // URL itself.
        sqlx::Error::Configuration(e) => StoreError::Invalid(format!("database url: {e}")),
        other => StoreError::Database(other.to_string()),
    }
}

fn map_database(db: &dyn DatabaseError) -> StoreError {
    let code = db.code().unwrap_or_default();
    let message = match db.constraint() {
        Some(constraint) => format!("{} ({constraint})", db.message()),
        None => db.message().to_owned(),
    };
    match db.kind() {
        ErrorKind::UniqueViolation => return StoreError::Conflict(message),
        ErrorKind::ForeignKeyViolation => {
            return StoreError::NotFound(format!("referenced record: {message}"));
        }
        _ => {}
    }
    // 22021: text with a character the database cannot store (NUL, in UTF-8).
    if code == "22021" {
        return StoreError::Invalid(message);
    }
    // SQLSTATE classes: 08 connection exception, 28 invalid authorization, 53 insufficient
    // resources (too many connections, disk full), 57P0x shutdown / cannot connect now,
    // 3D000 unknown database.
    if code.starts_with("08")
        || code.starts_with("28")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "3D000"
    {
        StoreError::Unavailable(message)
    } else {
        StoreError::Database(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_problems_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            map(sqlx::Error::Io(io)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
    }
}
