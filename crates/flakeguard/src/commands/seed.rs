//! `flakeguard seed`: the organization, its admin user and (optionally) a repository, plus a
//! one-time admin API token. Idempotent: a second run creates nothing and issues no token.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use flakeguard_app::tokens;
use flakeguard_core::TestKey;
use flakeguard_store::{
    NewQuarantine, NewToken, QuarantineState, RepoSlug, Role, Scope, Store, StoreError, TestCaseId,
    UserId,
};
use time::{Duration, OffsetDateTime};

use crate::cli::SeedArgs;

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
        crate::database::ensure_migrated(database, &*store, None).await?;
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
        if args.demo {
            demo(&*store, user.id).await?;
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

/// The token `seed --demo` issues to read the demo organization.
const DEMO_TOKEN_NAME: &str = "demo (issued by seed --demo)";

/// Loads the demo history (idempotent: runs are keyed by their digests, quarantines by their
/// tests), rescores each repository and issues a token that can read them.
async fn demo(store: &dyn Store, admin: UserId) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let data = crate::demo::generate(now);
    let (org, _) = store
        .ensure_organization("demo", "Demo organization")
        .await?;
    store.ensure_membership(org.id, admin, Role::Admin).await?;
    for demo_repo in &data.repos {
        let slug = RepoSlug::parse(&demo_repo.slug).map_err(|e| anyhow::anyhow!("demo: {e}"))?;
        let (repo, _) = store.ensure_repository(org.id, &slug).await?;
        let mut created = 0;
        let mut ids: HashMap<TestKey, TestCaseId> = HashMap::new();
        for run in &demo_repo.runs {
            let ingested = store
                .ingest(repo.id, &run.run, &run.tests, &run.executions)
                .await
                .with_context(|| format!("demo: cannot record run {} of {slug}", run.run.run_id))?;
            if ingested.created {
                created += 1;
                for (test, id) in run.tests.iter().zip(&ingested.test_ids) {
                    ids.insert(test.key.clone(), *id);
                }
            }
        }
        let mut quarantined = 0;
        for q in &demo_repo.quarantine {
            let Some(test) = ids.get(&q.key) else {
                continue; // Already loaded by an earlier `seed --demo`.
            };
            let quarantine = NewQuarantine {
                test: *test,
                state: QuarantineState::Active,
                reason: q.reason.clone(),
                owner: q.owner.clone(),
                created_by: "demo".to_owned(),
                created_at: now - Duration::days(q.days_ago),
                expires_at: q.expires_in_days.map(|d| now + Duration::days(d)),
            };
            match store.add_quarantine(repo.id, &quarantine).await {
                Ok(_) => quarantined += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let scored = flakeguard_app::rescore(store, repo.id, now).await?;
        println!(
            "demo {slug}: {created} new runs of {}, {quarantined} new quarantines; {} tests: {} flaky, {} broken",
            demo_repo.runs.len(),
            scored.tests,
            scored.flaky,
            scored.broken
        );
    }
    let has_token = store
        .list_tokens(org.id)
        .await?
        .iter()
        .any(|t| t.name == DEMO_TOKEN_NAME && t.revoked_at.is_none());
    if has_token {
        println!(
            "demo token already issued (create more with `flakeguard token create --org demo`)"
        );
    } else {
        let secret = tokens::generate().context("the operating system's random source failed")?;
        store
            .create_token(&NewToken {
                org: org.id,
                repo: None,
                name: DEMO_TOKEN_NAME.to_owned(),
                hash: tokens::hash(&secret),
                prefix: tokens::display_prefix(&secret),
                scopes: vec![Scope::Ingest, Scope::Read],
                created_at: now,
            })
            .await?;
        println!("demo API token (reads and uploads to demo/*; shown once): {secret}");
        println!(
            "try: curl -H \"Authorization: Bearer {secret}\" 'http://localhost:3000/api/v1/repos/demo/payments-api/tests?status=flaky'"
        );
    }
    Ok(())
}

fn report(what: &str, name: &str, created: bool) {
    if created {
        println!("created {what} {name}");
    } else {
        println!("{what} {name} exists");
    }
}
