//! FlakeGuard's GitHub side.
//!
//! - [`GitHubApp`] authenticates as a GitHub App (RS256 JWT) and hands out [`Installation`]
//!   handles whose calls carry a cached installation token. Every call goes through one
//!   request path: a circuit breaker shared by the App, rate-limit waits (`x-ratelimit-*`,
//!   `retry-after`), retries with backoff for transport errors and 5xx, and metrics labelled
//!   by endpoint name ([`describe_metrics`]).
//! - [`read_archive`] reads an artifact zip in memory, refusing hostile archives.
//! - `fake` (cargo feature `fake`) is a GitHub that answers on loopback for tests, checking
//!   requests the way GitHub does.
#![forbid(unsafe_code)]

mod api;
mod archive;
mod breaker;
mod client;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod jwt;
mod metrics;
mod types;
mod webhook;

pub use archive::{ArchiveError, ArchiveFile, ArchiveLimits, is_report_candidate, read_archive};
pub use client::{AppConfig, ClientOptions, GitHubApp, Installation};
pub use error::GitHubError;
pub use jwt::JwtClaims;
pub use metrics::describe_metrics;
pub use types::{
    Artifact, CheckRunAction, CheckRunOutput, CheckRunRef, CheckRunRequest, Comment,
    InstallationToken, IssueRef, MAX_ACTION_DESCRIPTION, MAX_ACTION_IDENTIFIER, MAX_ACTION_LABEL,
    MAX_ACTIONS, MAX_OUTPUT_CHARS, NewIssue, verify_limits,
};
pub use webhook::{SIGNATURE_HEADER, sign_webhook, verify_webhook};
