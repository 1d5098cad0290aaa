//! `maintenance`, on an hourly schedule claimed by exactly one worker: clears raw failure
//! text past its retention (signatures stay, so grouping still works) and expires
//! quarantines past their `expires_at`, writing each expiry to the audit log. Both steps only
//! touch what is still due, so running twice changes nothing more.

use std::collections::HashMap;
use std::fmt;

use flakeguard_store::{NewAuditEntry, RepoId};

use super::{JobContext, JobError};

/// What a maintenance run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub failure_texts_cleared: u64,
    pub quarantines_expired: usize,
}

impl fmt::Display for MaintenanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cleared {} failure texts, expired {} quarantines",
            self.failure_texts_cleared, self.quarantines_expired
        )
    }
}

pub(super) async fn run(ctx: &JobContext) -> Result<MaintenanceReport, JobError> {
    let now = ctx.now();
    let cutoff = now - ctx.failure_text_retention;
    let failure_texts_cleared = ctx.store.prune_failure_text(cutoff).await?;
    let expired = ctx.store.expire_quarantines(now).await?;
    let orgs: HashMap<RepoId, _> = if expired.is_empty() {
        HashMap::new()
    } else {
        ctx.store
            .list_all_repositories()
            .await?
            .into_iter()
            .map(|r| (r.id, (r.org, r.slug)))
            .collect()
    };
    for (quarantine, repo) in &expired {
        let (org, slug) = match orgs.get(repo) {
            Some((org, slug)) => (Some(*org), slug.to_string()),
            None => (None, format!("repository {}", repo.0)),
        };
        ctx.store
            .audit(&NewAuditEntry {
                org,
                actor: "flakeguard:maintenance".to_owned(),
                action: "quarantine.expired".to_owned(),
                target: format!("{slug}#test:{}", quarantine.test.0),
                detail: serde_json::json!({
                    "quarantine": quarantine.id.0,
                    "expires_at": quarantine.expires_at.map(|t| t.unix_timestamp()),
                })
                .to_string(),
                at: now,
            })
            .await?;
    }
    crate::quarantine::count_change("expired", expired.len() as u64);
    Ok(MaintenanceReport {
        failure_texts_cleared,
        quarantines_expired: expired.len(),
    })
}
