//! The one error type of the GitHub client, and which of its cases are worth retrying.

use std::time::Duration;

/// What went wrong talking to GitHub. `Display` names the endpoint (a route template such as
/// `list_artifacts`, never a URL) wherever one was involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitHubError {
    /// The App's private key could not be read or used.
    #[error("github app private key: {0}")]
    Key(String),
    /// The configuration cannot work (an API URL that does not parse, for instance).
    #[error("github client configuration: {0}")]
    Config(String),
    /// A request the client refuses to send because GitHub would reject it (limits on check
    /// run actions and output, for instance).
    #[error("invalid request for {endpoint}: {message}")]
    InvalidRequest {
        endpoint: &'static str,
        message: String,
    },
    /// GitHub answered with a status the call does not accept.
    #[error("{endpoint}: github answered {status}: {message}")]
    Http {
        status: u16,
        message: String,
        endpoint: &'static str,
    },
    /// GitHub's primary or secondary rate limit, with a wait longer than the client accepts.
    #[error("github rate limit reached; retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// GitHub kept failing; calls fail fast until the breaker's cool-off has passed.
    #[error("github circuit breaker is open after repeated failures")]
    CircuitOpen,
    /// A download exceeded its size cap.
    #[error("download exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    /// The request did not get an answer (connection, timeout, body interrupted).
    #[error("{0}")]
    Transport(String),
    /// GitHub answered, but not with what the endpoint documents.
    #[error("{endpoint}: cannot decode github's answer: {message}")]
    Decode {
        endpoint: &'static str,
        message: String,
    },
}

impl GitHubError {
    /// Whether trying the same call later may succeed (5xx, transport, rate limit, open
    /// breaker), as opposed to a permanent failure that a retry would only repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::Http { status, .. } => *status >= 500,
            GitHubError::Transport(_)
            | GitHubError::RateLimited { .. }
            | GitHubError::CircuitOpen => true,
            GitHubError::Key(_)
            | GitHubError::Config(_)
            | GitHubError::InvalidRequest { .. }
            | GitHubError::TooLarge { .. }
            | GitHubError::Decode { .. } => false,
        }
    }

    /// The HTTP status GitHub answered with, when this is [`GitHubError::Http`].
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}
