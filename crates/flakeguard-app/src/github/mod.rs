//! The GitHub App's side of the worker: webhook payloads as typed [`events`], turning a
//! workflow run's artifacts into stored runs ([`artifacts`]), what FlakeGuard says about a
//! commit ([`commit`]) and the [`report`] it writes back (check run, pull request comment,
//! flaky-test issue). See docs/github-app.md.

pub mod artifacts;
pub mod commit;
pub mod events;
pub mod report;

use flakeguard_github::GitHubApp;

pub use artifacts::{ArtifactLimits, Collection, WorkflowRunRef};

/// What the worker needs to act on GitHub: the App's client and the switches that shape
/// its answers.
#[derive(Debug, Clone)]
pub struct GitHub {
    pub app: GitHubApp,
    /// Offer the "Quarantine flaky" button (`ENABLE_QUARANTINE_ACTIONS`).
    pub quarantine_actions: bool,
    /// FlakeGuard's public address, for links (`FLAKEGUARD_PUBLIC_URL`).
    pub public_url: Option<String>,
    pub limits: ArtifactLimits,
}
