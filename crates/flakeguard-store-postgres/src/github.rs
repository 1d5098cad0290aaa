//! The GitHub App's state: installations and their repositories, and the check runs, pull
//! request comments, flaky-test issues, commit-to-PR links and workflow jobs FlakeGuard keeps
//! so that later events update what it posted instead of posting again.
//!
//! Race safety: every "first one stays" record is one `INSERT … ON CONFLICT` (a concurrent
//! insert waits for the first and then does nothing or updates it), read back afterwards in
//! a statement of its own, which sees the committed winner (READ COMMITTED).

use flakeguard_store::{
    AccountType, CheckRunRecord, FlakyIssue, Installation, InstallationState, InstalledRepository,
    NewCheckRun, NewInstallation, NewInstalledRepository, OrgId, PrComment, RegisteredInstallation,
    RepoId, RepoSlug, StoreError, TestCaseId, WorkflowJob, WorkflowRunRecord, job_progress,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::accounts;
use crate::error::map;

type Result<T> = std::result::Result<T, StoreError>;

const INSTALLATION_COLUMNS: &str = "github_id, org_id, account_login, account_type, \
    suspended_at, deleted_at, created_at, updated_at";

fn installation(row: &PgRow) -> Result<Installation> {
    let github_id: i64 = row.try_get("github_id").map_err(map)?;
    let org: Option<i64> = row.try_get("org_id").map_err(map)?;
    let account_type: String = row.try_get("account_type").map_err(map)?;
    Ok(Installation {
        installation_id: github_id,
        org: OrgId(org.ok_or_else(|| {
            StoreError::Database(format!(
                "stored installation {github_id} has no organization"
            ))
        })?),
        account_login: row.try_get("account_login").map_err(map)?,
        account_type: AccountType::parse(&account_type).ok_or_else(|| {
            StoreError::Database(format!("stored account type {account_type:?} is unknown"))
        })?,
        suspended_at: row.try_get("suspended_at").map_err(map)?,
        deleted_at: row.try_get("deleted_at").map_err(map)?,
        created_at: row.try_get("created_at").map_err(map)?,
        updated_at: row.try_get("updated_at").map_err(map)?,
    })
}

const INSTALLED_SELECT: &str = "SELECT i.github_id, ir.repo_id, ir.github_repo_id, r.owner, \
    r.name, ir.active, ir.added_at, ir.removed_at
    FROM installation_repositories ir
    JOIN installations i ON i.id = ir.installation_id
    JOIN repositories r ON r.id = ir.repo_id";

fn installed(row: &PgRow) -> Result<InstalledRepository> {
    let owner: String = row.try_get("owner").map_err(map)?;
    let name: String = row.try_get("name").map_err(map)?;
    Ok(InstalledRepository {
        installation_id: row.try_get("github_id").map_err(map)?,
        repo: RepoId(row.try_get("repo_id").map_err(map)?),
        github_id: row.try_get("github_repo_id").map_err(map)?,
        slug: RepoSlug::parse(&format!("{owner}/{name}")).map_err(StoreError::Database)?,
        active: row.try_get("active").map_err(map)?,
        added_at: row.try_get("added_at").map_err(map)?,
        removed_at: row.try_get("removed_at").map_err(map)?,
    })
}

fn job(row: &PgRow) -> Result<WorkflowJob> {
    let attempt: i64 = row.try_get("run_attempt").map_err(map)?;
    Ok(WorkflowJob {
        workflow_run_id: row.try_get("workflow_run_id").map_err(map)?,
        job_id: row.try_get("job_id").map_err(map)?,
        run_attempt: u32::try_from(attempt).map_err(|_| {
            StoreError::Database(format!("stored run attempt {attempt} is out of range"))
        })?,
        name: row.try_get("name").map_err(map)?,
        status: row.try_get("status").map_err(map)?,
        conclusion: row.try_get("conclusion").map_err(map)?,
        started_at: row.try_get("started_at").map_err(map)?,
        completed_at: row.try_get("completed_at").map_err(map)?,
    })
}

/// The database id of the installation with this GitHub id.
async fn installation_row_id(conn: &mut PgConnection, installation_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM installations WHERE github_id = $1")
        .bind(installation_id)
        .fetch_optional(conn)
        .await
        .map_err(map)?
        .ok_or_else(|| StoreError::NotFound(format!("installation {installation_id}")))
}

/// Marks the repository covered by the installation (row `installation`) and active.
async fn cover(
    tx: &mut Transaction<'static, Postgres>,
    installation: i64,
    repo: RepoId,
    github_id: i64,
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO installation_repositories
             (installation_id, repo_id, github_repo_id, active, added_at)
         VALUES ($1, $2, $3, true, $4)
         ON CONFLICT (installation_id, repo_id) DO UPDATE
         SET github_repo_id = excluded.github_repo_id, active = true, removed_at = NULL,
             added_at = CASE WHEN installation_repositories.active
                             THEN installation_repositories.added_at
                             ELSE excluded.added_at END",
    )
    .bind(installation)
    .bind(repo.0)
    .bind(github_id)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(map)?;
    sqlx::query("UPDATE repositories SET github_id = $1, installation_id = $2 WHERE id = $3")
        .bind(github_id)
        .bind(installation)
        .bind(repo.0)
        .execute(&mut **tx)
        .await
        .map_err(map)?;
    Ok(())
}

pub(crate) async fn find_installation_for_repo(
    pool: &PgPool,
    slug: &RepoSlug,
) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT i.github_id FROM repositories r
         JOIN installation_repositories ir ON ir.repo_id = r.id AND ir.active
         JOIN installations i ON i.id = ir.installation_id
         WHERE r.owner = $1 AND r.name = $2
           AND i.suspended_at IS NULL AND i.deleted_at IS NULL
         ORDER BY ir.added_at DESC LIMIT 1",
    )
    .bind(slug.owner())
    .bind(slug.name())
    .fetch_optional(pool)
    .await
    .map_err(map)
}

pub(crate) async fn register_installation(
    pool: &PgPool,
    new: &NewInstallation,
) -> Result<RegisteredInstallation> {
    let (org, org_created) =
        accounts::ensure_organization(pool, &new.account_login, &new.account_login).await?;
    let mut repos = Vec::with_capacity(new.repositories.len());
    for r in &new.repositories {
        repos.push((
            accounts::ensure_repository(pool, org.id, &r.slug)
                .await?
                .0
                .id,
            r,
        ));
    }
    let mut tx = pool.begin().await.map_err(map)?;
    let row_id: i64 = sqlx::query_scalar(
        "INSERT INTO installations
             (github_id, org_id, account_login, account_type, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (github_id) DO UPDATE
         SET org_id = excluded.org_id, account_login = excluded.account_login,
             account_type = excluded.account_type, deleted_at = NULL,
             updated_at = CASE
                 WHEN installations.org_id IS NOT DISTINCT FROM excluded.org_id
                  AND installations.account_login = excluded.account_login
                  AND installations.account_type = excluded.account_type
                  AND installations.deleted_at IS NULL
                 THEN installations.updated_at ELSE excluded.updated_at END
         RETURNING id",
    )
    .bind(new.installation_id)
    .bind(org.id.0)
    .bind(&new.account_login)
    .bind(new.account_type.as_str())
    .bind(new.at)
    .fetch_one(&mut *tx)
    .await
    .map_err(map)?;
    for (repo, listed) in repos {
        cover(&mut tx, row_id, repo, listed.github_id, new.at).await?;
    }
    tx.commit().await.map_err(map)?;
    let installation = find_installation(pool, new.installation_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("installation {}", new.installation_id)))?;
    let repositories = installed_repositories(pool, new.installation_id).await?;
    Ok(RegisteredInstallation {
        installation,
        org_created,
        repositories,
    })
}

pub(crate) async fn find_installation(
    pool: &PgPool,
    installation_id: i64,
) -> Result<Option<Installation>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTALLATION_COLUMNS} FROM installations WHERE github_id = $1"
    )))
    .bind(installation_id)
    .fetch_optional(pool)
    .await
    .map_err(map)?
    .as_ref()
    .map(installation)
    .transpose()
}

pub(crate) async fn set_installation_state(
    pool: &PgPool,
    installation_id: i64,
    state: InstallationState,
    at: OffsetDateTime,
) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(map)?;
    let row_id = installation_row_id(&mut tx, installation_id).await?;
    let sql = match state {
        InstallationState::Suspended => {
            "UPDATE installations SET suspended_at = $2, updated_at = $2
             WHERE id = $1 AND suspended_at IS NULL"
        }
        InstallationState::Unsuspended => {
            "UPDATE installations SET suspended_at = NULL, updated_at = $2
             WHERE id = $1 AND suspended_at IS NOT NULL"
        }
        InstallationState::Deleted => {
            "UPDATE installations SET deleted_at = $2, updated_at = $2
             WHERE id = $1 AND deleted_at IS NULL"
        }
    };
    let changed = sqlx::query(sql)
        .bind(row_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected()
        > 0;
    if state == InstallationState::Deleted {
        sqlx::query(
            "UPDATE installation_repositories SET active = false, removed_at = $2
             WHERE installation_id = $1 AND active",
        )
        .bind(row_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query("UPDATE repositories SET installation_id = NULL WHERE installation_id = $1")
            .bind(row_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
    }
    tx.commit().await.map_err(map)?;
    Ok(changed)
}

pub(crate) async fn add_installed_repositories(
    pool: &PgPool,
    installation_id: i64,
    repositories: &[NewInstalledRepository],
    at: OffsetDateTime,
) -> Result<Vec<InstalledRepository>> {
    let found = find_installation(pool, installation_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("installation {installation_id}")))?;
    let mut repos = Vec::with_capacity(repositories.len());
    for r in repositories {
        repos.push((
            accounts::ensure_repository(pool, found.org, &r.slug)
                .await?
                .0
                .id,
            r,
        ));
    }
    let mut tx = pool.begin().await.map_err(map)?;
    let row_id = installation_row_id(&mut tx, installation_id).await?;
    for (repo, listed) in &repos {
        cover(&mut tx, row_id, *repo, listed.github_id, at).await?;
    }
    tx.commit().await.map_err(map)?;
    let all = installed_repositories(pool, installation_id).await?;
    Ok(repos
        .iter()
        .filter_map(|(repo, _)| all.iter().find(|r| r.repo == *repo).cloned())
        .collect())
}

pub(crate) async fn remove_installed_repositories(
    pool: &PgPool,
    installation_id: i64,
    github_repo_ids: &[i64],
    at: OffsetDateTime,
) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(map)?;
    let row_id = installation_row_id(&mut tx, installation_id).await?;
    let changed = sqlx::query(
        "UPDATE installation_repositories SET active = false, removed_at = $3
         WHERE installation_id = $1 AND github_repo_id = ANY($2) AND active",
    )
    .bind(row_id)
    .bind(github_repo_ids)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(map)?
    .rows_affected();
    sqlx::query(
        "UPDATE repositories SET installation_id = NULL
         WHERE installation_id = $1 AND github_id = ANY($2)",
    )
    .bind(row_id)
    .bind(github_repo_ids)
    .execute(&mut *tx)
    .await
    .map_err(map)?;
    tx.commit().await.map_err(map)?;
    Ok(changed)
}

pub(crate) async fn installed_repositories(
    pool: &PgPool,
    installation_id: i64,
) -> Result<Vec<InstalledRepository>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{INSTALLED_SELECT} WHERE i.github_id = $1 ORDER BY r.owner, r.name"
    )))
    .bind(installation_id)
    .fetch_all(pool)
    .await
    .map_err(map)?
    .iter()
    .map(installed)
    .collect()
}

pub(crate) async fn set_default_branch(pool: &PgPool, repo: RepoId, branch: &str) -> Result<bool> {
    // One statement: the old value comes from the row as it was before the update.
    let row: Option<(bool,)> = sqlx::query_as(
        "UPDATE repositories r SET default_branch = $2
         FROM (SELECT id, default_branch AS old FROM repositories WHERE id = $1 FOR UPDATE) o
         WHERE r.id = o.id
         RETURNING o.old IS DISTINCT FROM $2",
    )
    .bind(repo.0)
    .bind(branch)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    match row {
        Some((changed,)) => Ok(changed),
        None => Err(StoreError::NotFound(format!("repository {repo}"))),
    }
}

async fn check_run_in(
    conn: &mut PgConnection,
    repo: RepoId,
    head_sha: &str,
) -> Result<Option<CheckRunRecord>> {
    let Some(row) = sqlx::query(
        "SELECT id, check_run_id, status, conclusion, created_at, updated_at
         FROM github_check_runs WHERE repo_id = $1 AND head_sha = $2",
    )
    .bind(repo.0)
    .bind(head_sha)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map)?
    else {
        return Ok(None);
    };
    let id: i64 = row.try_get("id").map_err(map)?;
    let workflow_run_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT workflow_run_id FROM github_check_run_workflow_runs
         WHERE check_run = $1 ORDER BY workflow_run_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map)?;
    Ok(Some(CheckRunRecord {
        repo,
        head_sha: head_sha.to_owned(),
        check_run_id: row.try_get("check_run_id").map_err(map)?,
        workflow_run_ids,
        status: row.try_get("status").map_err(map)?,
        conclusion: row.try_get("conclusion").map_err(map)?,
        created_at: row.try_get("created_at").map_err(map)?,
        updated_at: row.try_get("updated_at").map_err(map)?,
    }))
}

pub(crate) async fn check_run_for_commit(
    pool: &PgPool,
    repo: RepoId,
    head_sha: &str,
) -> Result<Option<CheckRunRecord>> {
    let mut tx = pool.begin().await.map_err(map)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    let found = check_run_in(&mut tx, repo, head_sha).await?;
    tx.commit().await.map_err(map)?;
    Ok(found)
}

pub(crate) async fn save_check_run(pool: &PgPool, new: &NewCheckRun) -> Result<CheckRunRecord> {
    let mut tx = pool.begin().await.map_err(map)?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO github_check_runs
             (repo_id, head_sha, check_run_id, status, conclusion, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (repo_id, head_sha) DO UPDATE
         SET status = excluded.status, conclusion = excluded.conclusion,
             updated_at = excluded.updated_at
         WHERE github_check_runs.check_run_id = excluded.check_run_id
         RETURNING id",
    )
    .bind(new.repo.0)
    .bind(&new.head_sha)
    .bind(new.check_run_id)
    .bind(&new.status)
    .bind(new.conclusion.as_deref())
    .bind(new.at)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map)?;
    // None: the commit already has another check run (the first one stays).
    if let (Some(id), Some(run)) = (id, new.workflow_run_id) {
        sqlx::query(
            "INSERT INTO github_check_run_workflow_runs (check_run, workflow_run_id)
             VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(run)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    }
    let stored = check_run_in(&mut tx, new.repo, &new.head_sha)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("check run of {}", new.head_sha)))?;
    tx.commit().await.map_err(map)?;
    Ok(stored)
}

pub(crate) async fn pr_comment(
    pool: &PgPool,
    repo: RepoId,
    pr_number: i64,
) -> Result<Option<PrComment>> {
    let row: Option<(i64, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT comment_id, created_at, updated_at FROM github_pr_comments
         WHERE repo_id = $1 AND pr_number = $2",
    )
    .bind(repo.0)
    .bind(pr_number)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    Ok(row.map(|(comment_id, created_at, updated_at)| PrComment {
        repo,
        pr_number,
        comment_id,
        created_at,
        updated_at,
    }))
}

pub(crate) async fn save_pr_comment(
    pool: &PgPool,
    repo: RepoId,
    pr_number: i64,
    comment_id: i64,
    at: OffsetDateTime,
) -> Result<PrComment> {
    sqlx::query(
        "INSERT INTO github_pr_comments (repo_id, pr_number, comment_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (repo_id, pr_number) DO UPDATE SET updated_at = excluded.updated_at
         WHERE github_pr_comments.comment_id = excluded.comment_id",
    )
    .bind(repo.0)
    .bind(pr_number)
    .bind(comment_id)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?;
    pr_comment(pool, repo, pr_number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("comment on pull request {pr_number}")))
}

pub(crate) async fn forget_pr_comment(
    pool: &PgPool,
    repo: RepoId,
    pr_number: i64,
    comment_id: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM github_pr_comments
         WHERE repo_id = $1 AND pr_number = $2 AND comment_id = $3",
    )
    .bind(repo.0)
    .bind(pr_number)
    .bind(comment_id)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn link_commit_pr(
    pool: &PgPool,
    repo: RepoId,
    head_sha: &str,
    pr_number: i64,
    at: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO github_commit_prs (repo_id, head_sha, pr_number, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(repo.0)
    .bind(head_sha)
    .bind(pr_number)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn record_workflow_run(
    pool: &PgPool,
    repo: RepoId,
    run: &WorkflowRunRecord,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO github_workflow_runs
             (repo_id, workflow_run_id, run_attempt, name, event, head_sha, head_branch,
              pull_requests, conclusion, updated_at)
         SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM repositories WHERE id = $1
         ON CONFLICT (repo_id, workflow_run_id, run_attempt) DO UPDATE
             SET name = excluded.name, event = excluded.event,
                 head_sha = excluded.head_sha, head_branch = excluded.head_branch,
                 pull_requests = excluded.pull_requests,
                 conclusion = excluded.conclusion, updated_at = excluded.updated_at",
    )
    .bind(repo.0)
    .bind(run.workflow_run_id)
    .bind(i32::try_from(run.run_attempt).unwrap_or(i32::MAX))
    .bind(run.name.as_deref())
    .bind(&run.event)
    .bind(&run.head_sha)
    .bind(run.head_branch.as_deref())
    .bind(&run.pull_requests)
    .bind(run.conclusion.as_deref())
    .bind(run.updated_at)
    .execute(pool)
    .await
    .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("repository {}", repo.0)));
    }
    Ok(())
}

pub(crate) async fn workflow_run(
    pool: &PgPool,
    repo: RepoId,
    workflow_run_id: i64,
    run_attempt: u32,
) -> Result<Option<WorkflowRunRecord>> {
    type Row = (
        Option<String>,
        String,
        String,
        Option<String>,
        Vec<i64>,
        Option<String>,
        OffsetDateTime,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT name, event, head_sha, head_branch, pull_requests, conclusion, updated_at
         FROM github_workflow_runs
         WHERE repo_id = $1 AND workflow_run_id = $2 AND run_attempt = $3",
    )
    .bind(repo.0)
    .bind(workflow_run_id)
    .bind(i32::try_from(run_attempt).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    Ok(row.map(
        |(name, event, head_sha, head_branch, pull_requests, conclusion, updated_at)| {
            WorkflowRunRecord {
                workflow_run_id,
                run_attempt,
                name,
                event,
                head_sha,
                head_branch,
                pull_requests,
                conclusion,
                updated_at,
            }
        },
    ))
}

pub(crate) async fn set_pr_labels(
    pool: &PgPool,
    repo: RepoId,
    pr_number: i64,
    labels: &[String],
    at: OffsetDateTime,
) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO github_pull_request_labels (repo_id, pr_number, labels, updated_at)
         SELECT id, $2, $3, $4 FROM repositories WHERE id = $1
         ON CONFLICT (repo_id, pr_number) DO UPDATE
             SET labels = excluded.labels, updated_at = excluded.updated_at",
    )
    .bind(repo.0)
    .bind(pr_number)
    .bind(labels)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("repository {}", repo.0)));
    }
    Ok(())
}

pub(crate) async fn pr_labels(
    pool: &PgPool,
    repo: RepoId,
    pr_number: i64,
) -> Result<Option<Vec<String>>> {
    sqlx::query_scalar(
        "SELECT labels FROM github_pull_request_labels WHERE repo_id = $1 AND pr_number = $2",
    )
    .bind(repo.0)
    .bind(pr_number)
    .fetch_optional(pool)
    .await
    .map_err(map)
}

pub(crate) async fn prs_for_commit(
    pool: &PgPool,
    repo: RepoId,
    head_sha: &str,
) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT pr_number FROM github_commit_prs WHERE repo_id = $1 AND head_sha = $2
         ORDER BY pr_number",
    )
    .bind(repo.0)
    .bind(head_sha)
    .fetch_all(pool)
    .await
    .map_err(map)
}

pub(crate) async fn flaky_issue(
    pool: &PgPool,
    repo: RepoId,
    test: TestCaseId,
) -> Result<Option<FlakyIssue>> {
    let row: Option<(i64, String, OffsetDateTime)> = sqlx::query_as(
        "SELECT issue_number, url, created_at FROM github_flaky_issues
         WHERE repo_id = $1 AND test_case_id = $2",
    )
    .bind(repo.0)
    .bind(test.0)
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    Ok(row.map(|(number, url, created_at)| FlakyIssue {
        repo,
        test,
        number,
        url,
        created_at,
    }))
}

pub(crate) async fn save_flaky_issue(
    pool: &PgPool,
    repo: RepoId,
    test: TestCaseId,
    number: i64,
    url: &str,
    at: OffsetDateTime,
) -> Result<(FlakyIssue, bool)> {
    // Only a test of `repo` gets a row: the SELECT yields nothing for another one.
    let inserted = sqlx::query(
        "INSERT INTO github_flaky_issues (test_case_id, repo_id, issue_number, url, created_at)
         SELECT id, repo_id, $3, $4, $5 FROM test_cases WHERE id = $2 AND repo_id = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(repo.0)
    .bind(test.0)
    .bind(number)
    .bind(url)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?
    .rows_affected()
        > 0;
    match flaky_issue(pool, repo, test).await? {
        Some(stored) => Ok((stored, inserted)),
        None => Err(StoreError::NotFound(format!(
            "test {test} in repository {repo}"
        ))),
    }
}

pub(crate) async fn record_workflow_job(
    pool: &PgPool,
    repo: RepoId,
    job: &WorkflowJob,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO github_workflow_jobs
             (repo_id, workflow_run_id, job_id, run_attempt, name, status, progress,
              conclusion, started_at, completed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (repo_id, workflow_run_id, job_id) DO UPDATE
         SET run_attempt = excluded.run_attempt, name = excluded.name,
             status = excluded.status, progress = excluded.progress,
             conclusion = excluded.conclusion,
             started_at = coalesce(excluded.started_at, github_workflow_jobs.started_at),
             completed_at = coalesce(excluded.completed_at, github_workflow_jobs.completed_at)
         WHERE excluded.progress >= github_workflow_jobs.progress
           AND (github_workflow_jobs.run_attempt IS DISTINCT FROM excluded.run_attempt
                OR github_workflow_jobs.name IS DISTINCT FROM excluded.name
                OR github_workflow_jobs.status IS DISTINCT FROM excluded.status
                OR github_workflow_jobs.conclusion IS DISTINCT FROM excluded.conclusion
                OR (excluded.started_at IS NOT NULL
                    AND github_workflow_jobs.started_at IS DISTINCT FROM excluded.started_at)
                OR (excluded.completed_at IS NOT NULL
                    AND github_workflow_jobs.completed_at IS DISTINCT FROM excluded.completed_at))",
    )
    .bind(repo.0)
    .bind(job.workflow_run_id)
    .bind(job.job_id)
    .bind(i64::from(job.run_attempt))
    .bind(&job.name)
    .bind(&job.status)
    .bind(job_progress(&job.status))
    .bind(job.conclusion.as_deref())
    .bind(job.started_at)
    .bind(job.completed_at)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn workflow_jobs(
    pool: &PgPool,
    repo: RepoId,
    workflow_run_id: i64,
) -> Result<Vec<WorkflowJob>> {
    sqlx::query(
        "SELECT workflow_run_id, job_id, run_attempt, name, status, conclusion, started_at,
                completed_at
         FROM github_workflow_jobs WHERE repo_id = $1 AND workflow_run_id = $2
         ORDER BY run_attempt, job_id",
    )
    .bind(repo.0)
    .bind(workflow_run_id)
    .fetch_all(pool)
    .await
    .map_err(map)?
    .iter()
    .map(job)
    .collect()
}
