//! The store's one error type. Messages are lowercase fragments that read well after
//! "failed to …" and never carry connection strings or secrets.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule would be broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input the store cannot take (an execution pointing at no test, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database schema is behind or ahead of this build.
    #[error("migration: {0}")]
    Migration(String),
    /// The database could not be reached or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}
