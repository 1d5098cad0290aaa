//! The GitHub App's side of the worker: webhook payloads as typed [`events`], turning a
//! workflow run's artifacts into stored runs ([`artifacts`]), what FlakeGuard says about a
//! commit ([`commit`]) and the [`report`] it writes back (check run, pull request comment,
//! flaky-test issue). See docs/github-app.md.

pub mod artifacts;
pub mod commit;
pub mod events;
pub mod handle;
pub mod report;

use flakeguard_github::{AppConfig, ClientOptions, GitHubApp, GitHubError};

use crate::GitHubSettings;

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

impl GitHub {
    /// The App from its settings; `None` when no App is configured (webhooks may still be
    /// received and registrations kept, but nothing is read from or written to GitHub).
    pub fn from_settings(settings: &GitHubSettings) -> Result<Option<GitHub>, GitHubError> {
        let (Some(app_id), Some(key)) = (settings.app_id, &settings.private_key) else {
            return Ok(None);
        };
        let app = GitHubApp::new(
            AppConfig {
                api_url: settings.api_url.clone(),
                app_id,
                private_key_pem: key.expose().to_owned(),
                user_agent: format!("FlakeGuard/{}", env!("CARGO_PKG_VERSION")),
            },
            ClientOptions::default(),
        )?;
        Ok(Some(GitHub {
            app,
            quarantine_actions: settings.quarantine_actions,
            public_url: settings.public_url.clone(),
            limits: ArtifactLimits::default(),
        }))
    }
}
