//! `flakeguard token create|list|revoke`: API tokens of an organization. Secrets are printed
//! once at creation and stored only as SHA-256 hashes; every change is in the audit log.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use flakeguard_app::tokens;
use flakeguard_store::{NewAuditEntry, NewToken, Organization, RepoSlug, Scope, Store, TokenId};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{ListFormat, TokenCommand};

pub(crate) fn run(command: &TokenCommand) -> Result<ExitCode> {
    crate::database::with_store(async |database, store| {
        let org_slug = match command {
            TokenCommand::Create { org, .. }
            | TokenCommand::List { org, .. }
            | TokenCommand::Revoke { org, .. } => org,
        };
        let Some(org) = store.find_organization(org_slug).await? else {
            bail!(
                "organization {org_slug:?} not found in {} (create it with `flakeguard seed --org {org_slug}`)",
                database.describe()
            );
        };
        match command {
            TokenCommand::Create {
                name, scopes, repo, ..
            } => create(&*store, &org, name, scopes, repo.as_deref()).await,
            TokenCommand::List { format, .. } => list(&*store, &org, *format).await,
            TokenCommand::Revoke { id, .. } => revoke(&*store, &org, *id).await,
        }
    })
}

async fn create(
    store: &dyn Store,
    org: &Organization,
    name: &str,
    scopes: &[String],
    repo: Option<&str>,
) -> Result<ExitCode> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        bail!("--name: expected 1 to 100 characters");
    }
    let mut parsed = Vec::new();
    for s in scopes {
        let scope = Scope::parse(s.trim()).ok_or_else(|| {
            anyhow!("--scopes: unknown scope {s:?} (expected ingest, read or admin)")
        })?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    if parsed.is_empty() {
        bail!("--scopes: name at least one of ingest, read, admin");
    }
    let repo_id = match repo {
        None => None,
        Some(r) => {
            let slug = RepoSlug::parse(r).map_err(|e| anyhow!("--repo: {e}"))?;
            match store.find_repository(&slug).await? {
                Some(repo) if repo.org == org.id => Some(repo.id),
                _ => bail!(
                    "--repo: repository {slug} not found in organization {}",
                    org.slug
                ),
            }
        }
    };
    let secret = tokens::generate().context("the operating system's random source failed")?;
    let now = OffsetDateTime::now_utc();
    let token = store
        .create_token(&NewToken {
            org: org.id,
            repo: repo_id,
            name: name.to_owned(),
            hash: tokens::hash(&secret),
            prefix: tokens::display_prefix(&secret),
            scopes: parsed,
            created_at: now,
        })
        .await?;
    store
        .audit(&NewAuditEntry {
            org: Some(org.id),
            actor: "cli".to_owned(),
            action: "token.created".to_owned(),
            target: format!("token:{}", token.id),
            detail:
                json!({ "name": token.name, "scopes": scope_names(&token.scopes), "repo": repo })
                    .to_string(),
            at: now,
        })
        .await?;
    eprintln!(
        "created token {} {:?} for {} (scopes {}); the secret is shown once:",
        token.id,
        token.name,
        org.slug,
        scope_names(&token.scopes).join(",")
    );
    println!("{secret}");
    Ok(ExitCode::SUCCESS)
}

fn scope_names(scopes: &[Scope]) -> Vec<&'static str> {
    scopes.iter().map(|s| s.as_str()).collect()
}

async fn list(store: &dyn Store, org: &Organization, format: ListFormat) -> Result<ExitCode> {
    let tokens = store.list_tokens(org.id).await?;
    let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    match format {
        ListFormat::Json => {
            for t in &tokens {
                println!(
                    "{}",
                    json!({
                        "id": t.id.0,
                        "name": t.name,
                        "prefix": t.prefix,
                        "scopes": scope_names(&t.scopes),
                        "repo_id": t.repo.map(|r| r.0),
                        "created_at": time(t.created_at),
                        "revoked_at": t.revoked_at.map(time),
                    })
                );
            }
        }
        ListFormat::Table => {
            if tokens.is_empty() {
                println!("no tokens in {}", org.slug);
            } else {
                println!(
                    "{:>5}  {:<24}  {:<12}  {:<18}  {:<20}  STATE",
                    "ID", "NAME", "PREFIX", "SCOPES", "CREATED"
                );
            }
            for t in &tokens {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", time(at)),
                    None => "active".to_owned(),
                };
                println!(
                    "{:>5}  {:<24}  {:<12}  {:<18}  {:<20}  {state}",
                    t.id.0,
                    t.name,
                    format!("{}…", t.prefix),
                    scope_names(&t.scopes).join(","),
                    time(t.created_at),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(store: &dyn Store, org: &Organization, id: i64) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    if !store.revoke_token(org.id, TokenId(id), now).await? {
        bail!("no active token {id} in organization {}", org.slug);
    }
    store
        .audit(&NewAuditEntry {
            org: Some(org.id),
            actor: "cli".to_owned(),
            action: "token.revoked".to_owned(),
            target: format!("token:{id}"),
            detail: "{}".to_owned(),
            at: now,
        })
        .await?;
    println!("revoked token {id} of {}", org.slug);
    Ok(ExitCode::SUCCESS)
}
