//! The GitHub App's side of the worker: turning deliveries into stored runs, scores, check
//! runs and pull-request comments (docs/github-app.md).

pub mod artifacts;
pub mod commit;

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
