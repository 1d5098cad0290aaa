//! Per-repository policy and CODEOWNERS (issue #6): one row per repository in
//! `repo_policies`, upserted in one statement each (the policy and the CODEOWNERS columns are
//! written independently), inserting nothing for an unknown repository.

use flakeguard_store::{NewPolicy, PolicyOrigin, RepoId, Result, StoreError, StoredPolicy};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros_opt, to_micros};

const COLUMNS: &str = "repo_id, source, origin, commit_sha, updated_at, updated_by, codeowners, \
                       codeowners_source, codeowners_updated_at";

type PolicyRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn stored(row: PolicyRow) -> Result<StoredPolicy> {
    let (repo, source, origin, commit, updated_at, updated_by, codeowners, co_source, co_at) = row;
    let origin = match origin {
        None => None,
        Some(o) => Some(
            PolicyOrigin::parse(&o).ok_or_else(|| corrupt(format_args!("policy origin {o:?}")))?,
        ),
    };
    Ok(StoredPolicy {
        repo: RepoId(repo),
        source,
        origin,
        commit,
        updated_at: from_micros_opt(updated_at)?,
        updated_by,
        codeowners,
        codeowners_source: co_source,
        codeowners_updated_at: from_micros_opt(co_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn repo_policy_impl(&self, repo: RepoId) -> Result<Option<StoredPolicy>> {
        let sql = format!("SELECT {COLUMNS} FROM repo_policies WHERE repo_id = ?");
        let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repo.0)
            .fetch_optional(&self.reader)
            .await
            .map_err(map("read the repository's policy"))?;
        row.map(stored).transpose()
    }

    pub(crate) async fn put_repo_policy_impl(
        &self,
        repo: RepoId,
        policy: &NewPolicy,
    ) -> Result<StoredPolicy> {
        let sql = format!(
            "INSERT INTO repo_policies (repo_id, source, origin, commit_sha, updated_at, updated_by)
             SELECT id, ?, ?, ?, ?, ? FROM repositories WHERE id = ?
             ON CONFLICT (repo_id) DO UPDATE SET source = excluded.source,
                 origin = excluded.origin, commit_sha = excluded.commit_sha,
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by
             RETURNING {COLUMNS}"
        );
        let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&policy.source)
            .bind(policy.origin.as_str())
            .bind(policy.commit.as_deref())
            .bind(to_micros(policy.updated_at))
            .bind(&policy.updated_by)
            .bind(repo.0)
            .fetch_optional(&self.writer)
            .await
            .map_err(map("store the repository's policy"))?;
        match row {
            Some(row) => stored(row),
            None => Err(StoreError::NotFound(format!("repository {}", repo.0))),
        }
    }

    pub(crate) async fn put_codeowners_impl(
        &self,
        repo: RepoId,
        text: &str,
        source: &str,
        at: OffsetDateTime,
    ) -> Result<StoredPolicy> {
        let sql = format!(
            "INSERT INTO repo_policies (repo_id, codeowners, codeowners_source,
                                        codeowners_updated_at)
             SELECT id, ?, ?, ? FROM repositories WHERE id = ?
             ON CONFLICT (repo_id) DO UPDATE SET codeowners = excluded.codeowners,
                 codeowners_source = excluded.codeowners_source,
                 codeowners_updated_at = excluded.codeowners_updated_at
             RETURNING {COLUMNS}"
        );
        let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(text)
            .bind(source)
            .bind(to_micros(at))
            .bind(repo.0)
            .fetch_optional(&self.writer)
            .await
            .map_err(map("store the repository's CODEOWNERS"))?;
        match row {
            Some(row) => stored(row),
            None => Err(StoreError::NotFound(format!("repository {}", repo.0))),
        }
    }
}
