//! Organizations, users, memberships and repositories: the idempotent `ensure_*` seeding
//! operations, their look-ups and the organization's settings.

use flakeguard_store::{
    Counts, OrgId, Organization, RepoId, RepoSlug, Repository, Result, Role, StoreError, User,
    UserId,
};

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, now, to_micros};

type RepositoryRow = (i64, i64, String, String, String, i64);
type OrganizationRow = (i64, String, String, bool, i64);

/// The columns [`organization`] reads, as a literal for `concat!`.
macro_rules! organization_columns {
    () => {
        "id, slug, name, creates_repositories, created_at"
    };
}

fn organization(row: OrganizationRow) -> Result<Organization> {
    let (id, slug, name, creates_repositories, created_at) = row;
    Ok(Organization {
        id: OrgId(id),
        slug,
        name,
        creates_repositories,
        created_at: from_micros(created_at)?,
    })
}

/// The columns [`repository`] reads, as a literal for `concat!`.
macro_rules! repository_columns {
    () => {
        "id, org_id, owner, name, default_branch, created_at"
    };
}

fn repository(row: RepositoryRow) -> Result<Repository> {
    let (id, org, owner, name, default_branch, created_at) = row;
    let slug = RepoSlug::parse(&format!("{owner}/{name}")).map_err(corrupt)?;
    Ok(Repository {
        id: RepoId(id),
        org: OrgId(org),
        slug,
        default_branch,
        created_at: from_micros(created_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn ensure_organization_impl(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(Organization, bool)> {
        let at = now();
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO organizations (slug, name, created_at) VALUES (?, ?, ?)
             ON CONFLICT (slug) DO NOTHING RETURNING id",
        )
        .bind(slug)
        .bind(name)
        .bind(to_micros(at))
        .fetch_optional(&self.writer)
        .await
        .map_err(map("create the organization"))?;
        if let Some(id) = inserted {
            return Ok((
                Organization {
                    id: OrgId(id),
                    slug: slug.to_owned(),
                    name: name.to_owned(),
                    creates_repositories: false,
                    created_at: at,
                },
                true,
            ));
        }
        let row: OrganizationRow = sqlx::query_as(concat!(
            "SELECT ",
            organization_columns!(),
            " FROM organizations WHERE slug = ?"
        ))
        .bind(slug)
        .fetch_one(&self.writer)
        .await
        .map_err(map("read the organization"))?;
        Ok((organization(row)?, false))
    }

    pub(crate) async fn find_organization_impl(&self, slug: &str) -> Result<Option<Organization>> {
        sqlx::query_as(concat!(
            "SELECT ",
            organization_columns!(),
            " FROM organizations WHERE slug = ?"
        ))
        .bind(slug)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the organization"))?
        .map(organization)
        .transpose()
    }

    pub(crate) async fn organization_impl(&self, id: OrgId) -> Result<Option<Organization>> {
        sqlx::query_as(concat!(
            "SELECT ",
            organization_columns!(),
            " FROM organizations WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the organization"))?
        .map(organization)
        .transpose()
    }

    pub(crate) async fn set_repository_creation_impl(
        &self,
        org: OrgId,
        allowed: bool,
    ) -> Result<()> {
        let result = sqlx::query("UPDATE organizations SET creates_repositories = ? WHERE id = ?")
            .bind(allowed)
            .bind(org.0)
            .execute(&self.writer)
            .await
            .map_err(map("change the organization"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("organization {org}")));
        }
        Ok(())
    }

    pub(crate) async fn ensure_user_impl(&self, email: &str, name: &str) -> Result<(User, bool)> {
        let at = now();
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (email, name, created_at) VALUES (?, ?, ?)
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(email)
        .bind(name)
        .bind(to_micros(at))
        .fetch_optional(&self.writer)
        .await
        .map_err(map("create the user"))?;
        if let Some(id) = inserted {
            return Ok((
                User {
                    id: UserId(id),
                    email: email.to_owned(),
                    name: name.to_owned(),
                    created_at: at,
                },
                true,
            ));
        }
        let (id, name, created_at): (i64, String, i64) =
            sqlx::query_as("SELECT id, name, created_at FROM users WHERE email = ?")
                .bind(email)
                .fetch_one(&self.writer)
                .await
                .map_err(map("read the user"))?;
        Ok((
            User {
                id: UserId(id),
                email: email.to_owned(),
                name,
                created_at: from_micros(created_at)?,
            },
            false,
        ))
    }

    pub(crate) async fn ensure_membership_impl(
        &self,
        org: OrgId,
        user: UserId,
        role: Role,
    ) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(org.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(to_micros(now()))
        .execute(&self.writer)
        .await
        .map_err(map("add the member"))?;
        Ok(result.rows_affected() == 1)
    }

    pub(crate) async fn ensure_repository_impl(
        &self,
        org: OrgId,
        slug: &RepoSlug,
    ) -> Result<(Repository, bool)> {
        let mut tx = self.write().await?;
        let existing: Option<RepositoryRow> = sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM repositories WHERE owner = ? AND name = ?"
        ))
        .bind(slug.owner())
        .bind(slug.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map("read the repository"))?;
        if let Some(row) = existing {
            let repo = repository(row)?;
            if repo.org != org {
                return Err(StoreError::Conflict(format!(
                    "repository {slug} belongs to another organization"
                )));
            }
            return Ok((repo, false));
        }
        let at = now();
        let row: RepositoryRow = sqlx::query_as(concat!(
            "INSERT INTO repositories (org_id, owner, name, created_at) VALUES (?, ?, ?, ?)
             RETURNING ",
            repository_columns!()
        ))
        .bind(org.0)
        .bind(slug.owner())
        .bind(slug.name())
        .bind(to_micros(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(map("create the repository"))?;
        tx.commit().await.map_err(map("commit the repository"))?;
        Ok((repository(row)?, true))
    }

    pub(crate) async fn find_repository_impl(&self, slug: &RepoSlug) -> Result<Option<Repository>> {
        sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM repositories WHERE owner = ? AND name = ?"
        ))
        .bind(slug.owner())
        .bind(slug.name())
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the repository"))?
        .map(repository)
        .transpose()
    }

    pub(crate) async fn list_repositories_impl(&self, org: OrgId) -> Result<Vec<Repository>> {
        let rows: Vec<RepositoryRow> = sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM repositories WHERE org_id = ? ORDER BY owner, name"
        ))
        .bind(org.0)
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the repositories"))?;
        rows.into_iter().map(repository).collect()
    }

    pub(crate) async fn list_all_repositories_impl(&self) -> Result<Vec<Repository>> {
        let rows: Vec<RepositoryRow> = sqlx::query_as(concat!(
            "SELECT ",
            repository_columns!(),
            " FROM repositories ORDER BY owner, name"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the repositories"))?;
        rows.into_iter().map(repository).collect()
    }

    pub(crate) async fn counts_impl(&self) -> Result<Counts> {
        let (organizations, users, repositories): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM users),
                    (SELECT count(*) FROM repositories)",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(map("count the records"))?;
        let count = |n: i64| u64::try_from(n).map_err(|_| corrupt(format_args!("count {n}")));
        Ok(Counts {
            organizations: count(organizations)?,
            users: count(users)?,
            repositories: count(repositories)?,
        })
    }
}
