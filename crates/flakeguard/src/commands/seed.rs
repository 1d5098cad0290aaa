//! `flakeguard seed`: the organization, its admin user and (optionally) a repository, plus a
//! one-time admin API token. Idempotent: a second run creates nothing and issues no token.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use flakeguard_store::{NewToken, RepoSlug, Role, Scope};
use time::OffsetDateTime;

use crate::cli::SeedArgs;
use crate::database::Database;
use flakeguard_app::tokens;

/// The name of the token `seed` issues; its presence is how a second run knows to skip it.
const SEED_TOKEN_NAME: &str = "admin (issued by seed)";

pub(crate) fn run(args: &SeedArgs) -> Result<ExitCode> {
    let repo = match &args.repo {
        Some(r) => Some(
            RepoSlug::parse(r)
                .map_err(|e| anyhow::anyhow!("--repo / FLAKEGUARD_SEED_REPO: {e}"))?,
        ),
        None => None,
    };
    crate::database::with_store(async |database, store| {
        let pending = store
            .migration_status()
            .await?
            .iter()
            .filter(|m| m.is_pending())
            .count();
        if pending > 0 {
            match database {
                // The embedded database migrates itself: there is no operator step to forget.
                Database::Sqlite(_) => {
                    store.migrate().await.context("migrations failed")?;
                }
                Database::Postgres(_) => bail!(
                    "{pending} migration(s) pending on {}: run `flakeguard migrate deploy` first",
                    database.describe()
                ),
            }
        }
        let (org, org_created) = store.ensure_organization(&args.org, &args.org_name).await?;
        let (user, user_created) = store
            .ensure_user(&args.admin_email, &args.admin_name)
            .await?;
        let member_added = store
            .ensure_membership(org.id, user.id, Role::Admin)
            .await?;
        report("organization", &org.slug, org_created);
        if args.create_repos_on_upload && !org.creates_repositories {
            store.set_repository_creation(org.id, true).await?;
            println!("uploads may now create repositories of {}", org.slug);
        }
        report("admin user", &user.email, user_created);
        if member_added {
            println!("added {} to {} as admin", user.email, org.slug);
        }
        if let Some(slug) = &repo {
            let (repository, created) = store.ensure_repository(org.id, slug).await?;
            report("repository", &repository.slug.to_string(), created);
        }
        let has_seed_token = store
            .list_tokens(org.id)
            .await?
            .iter()
            .any(|t| t.name == SEED_TOKEN_NAME && t.revoked_at.is_none());
        if has_seed_token {
            println!("admin token already issued (create more with `flakeguard token create`)");
        } else {
            let secret =
                tokens::generate().context("the operating system's random source failed")?;
            store
                .create_token(&NewToken {
                    org: org.id,
                    repo: None,
                    name: SEED_TOKEN_NAME.to_owned(),
                    hash: tokens::hash(&secret),
                    prefix: tokens::display_prefix(&secret),
                    scopes: vec![Scope::Admin, Scope::Ingest, Scope::Read],
                    created_at: OffsetDateTime::now_utc(),
                })
                .await?;
            println!("admin API token (shown once, store it now): {secret}");
        }
        let counts = store.counts().await?;
        println!(
            "{}: {} organization(s), {} user(s), {} repositories",
            database.describe(),
            counts.organizations,
            counts.users,
            counts.repositories
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn report(what: &str, name: &str, created: bool) {
    if created {
        println!("created {what} {name}");
    } else {
        println!("{what} {name} exists");
    }
}
