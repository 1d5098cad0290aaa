//! The GitHub App's state: installations and their repositories, and the check runs, pull
//! request comments, flaky-test issues, commit-to-PR links and workflow jobs FlakeGuard keeps
//! so that later events update what it posted instead of posting again.

use flakeguard_store::{
    AccountType, CheckRunRecord, FlakyIssue, Installation, InstallationState, InstalledRepository,
    NewCheckRun, NewInstallation, NewInstalledRepository, PrComment, RegisteredInstallation,
    RepoId, RepoSlug, Result, StoreError, TestCaseId, WorkflowJob, WorkflowRunRecord, job_progress,
};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

type InstallationRow = (
    i64,
    Option<i64>,
    String,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);

const INSTALLATION_COLUMNS: &str = "github_id, org_id, account_login, account_type, \
    suspended_at, deleted_at, created_at, updated_at";

fn installation(row: InstallationRow) -> Result<Installation> {
    let (github_id, org, login, account_type, suspended, deleted, created, updated) = row;
    Ok(Installation {
        installation_id: github_id,
        org: flakeguard_store::OrgId(
            org.ok_or_else(|| corrupt(format_args!("installation {github_id} without org")))?,
        ),
        account_login: login,
        account_type: AccountType::parse(&account_type)
            .ok_or_else(|| corrupt(format_args!("account type {account_type:?}")))?,
        suspended_at: from_micros_opt(suspended)?,
        deleted_at: from_micros_opt(deleted)?,
        created_at: from_micros(created)?,
        updated_at: from_micros(updated)?,
    })
}

type InstalledRow = (i64, i64, i64, String, String, i64, i64, Option<i64>);

const INSTALLED_SELECT: &str = "SELECT i.github_id, ir.repo_id, ir.github_repo_id, r.owner, \
    r.name, ir.active, ir.added_at, ir.removed_at
    FROM installation_repositories ir
    JOIN installations i ON i.id = ir.installation_id
    JOIN repositories r ON r.id = ir.repo_id";

fn installed(row: InstalledRow) -> Result<InstalledRepository> {
    let (installation_id, repo, github_id, owner, name, active, added, removed) = row;
    Ok(InstalledRepository {
        installation_id,
        repo: RepoId(repo),
        github_id,
        slug: RepoSlug::parse(&format!("{owner}/{name}")).map_err(corrupt)?,
        active: active != 0,
        added_at: from_micros(added)?,
        removed_at: from_micros_opt(removed)?,
    })
}

type CheckRunRow = (i64, i64, String, i64, String, Option<String>, i64, i64);

type JobRow = (
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn job(row: JobRow) -> Result<WorkflowJob> {
    let (run, job_id, attempt, name, status, conclusion, started, completed) = row;
    Ok(WorkflowJob {
        workflow_run_id: run,
        job_id,
        run_attempt: u32::try_from(attempt)
            .map_err(|_| corrupt(format_args!("run attempt {attempt}")))?,
        name,
        status,
        conclusion,
        started_at: from_micros_opt(started)?,
        completed_at: from_micros_opt(completed)?,
    })
}

/// The database id of the installation with this GitHub id.
async fn installation_row_id(
    tx: &mut Transaction<'static, Sqlite>,
    installation_id: i64,
) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM installations WHERE github_id = ?")
        .bind(installation_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map("read the installation"))?
        .ok_or_else(|| StoreError::NotFound(format!("installation {installation_id}")))
}

/// Marks the repository covered by the installation (row `installation`) and active.
async fn cover(
    tx: &mut Transaction<'static, Sqlite>,
    installation: i64,
    repo: RepoId,
    github_id: i64,
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO installation_repositories
             (installation_id, repo_id, github_repo_id, active, added_at)
         VALUES (?, ?, ?, 1, ?)
         ON CONFLICT (installation_id, repo_id) DO UPDATE
         SET github_repo_id = excluded.github_repo_id, active = 1, removed_at = NULL,
             added_at = CASE WHEN installation_repositories.active = 1
                             THEN installation_repositories.added_at
                             ELSE excluded.added_at END",
    )
    .bind(installation)
    .bind(repo.0)
    .bind(github_id)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await
    .map_err(map("record the installed repository"))?;
    sqlx::query("UPDATE repositories SET github_id = ?, installation_id = ? WHERE id = ?")
        .bind(github_id)
        .bind(installation)
        .bind(repo.0)
        .execute(&mut **tx)
        .await
        .map_err(map("link the repository to its installation"))?;
    Ok(())
}

impl SqliteStore {
    pub(crate) async fn find_installation_for_repo_impl(
        &self,
        slug: &RepoSlug,
    ) -> Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT i.github_id FROM repositories r
             JOIN installation_repositories ir ON ir.repo_id = r.id AND ir.active = 1
             JOIN installations i ON i.id = ir.installation_id
             WHERE r.owner = ? AND r.name = ?
               AND i.suspended_at IS NULL AND i.deleted_at IS NULL
             ORDER BY ir.added_at DESC LIMIT 1",
        )
        .bind(slug.owner())
        .bind(slug.name())
        .fetch_optional(&self.reader)
        .await
        .map_err(map("find the repository's installation"))
    }

    pub(crate) async fn register_installation_impl(
        &self,
        new: &NewInstallation,
    ) -> Result<RegisteredInstallation> {
        let (org, org_created) = self
            .ensure_organization_impl(&new.account_login, &new.account_login)
            .await?;
        let mut repos = Vec::with_capacity(new.repositories.len());
        for r in &new.repositories {
            repos.push((self.ensure_repository_impl(org.id, &r.slug).await?.0.id, r));
        }
        let mut tx = self.write().await?;
        let at = to_micros(new.at);
        let row_id: i64 = sqlx::query_scalar(
            "INSERT INTO installations
                 (github_id, org_id, account_login, account_type, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (github_id) DO UPDATE
             SET org_id = excluded.org_id, account_login = excluded.account_login,
                 account_type = excluded.account_type, deleted_at = NULL,
                 updated_at = CASE
                     WHEN installations.org_id IS excluded.org_id
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
        .bind(at)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map("record the installation"))?;
        for (repo, listed) in repos {
            cover(&mut tx, row_id, repo, listed.github_id, new.at).await?;
        }
        tx.commit().await.map_err(map("commit the installation"))?;
        let installation = self
            .installation_impl(new.installation_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("installation {}", new.installation_id)))?;
        let repositories = self
            .installed_repositories_impl(new.installation_id)
            .await?;
        Ok(RegisteredInstallation {
            installation,
            org_created,
            repositories,
        })
    }

    pub(crate) async fn installation_impl(
        &self,
        installation_id: i64,
    ) -> Result<Option<Installation>> {
        let sql = format!("SELECT {INSTALLATION_COLUMNS} FROM installations WHERE github_id = ?");
        let row: Option<InstallationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(installation_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(map("read the installation"))?;
        row.map(installation).transpose()
    }

    pub(crate) async fn set_installation_state_impl(
        &self,
        installation_id: i64,
        state: InstallationState,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let row_id = installation_row_id(&mut tx, installation_id).await?;
        let at = to_micros(at);
        let changed = match state {
            InstallationState::Suspended => sqlx::query(
                "UPDATE installations SET suspended_at = ?, updated_at = ?
                 WHERE id = ? AND suspended_at IS NULL",
            )
            .bind(at)
            .bind(at)
            .bind(row_id),
            InstallationState::Unsuspended => sqlx::query(
                "UPDATE installations SET suspended_at = NULL, updated_at = ?
                 WHERE id = ? AND suspended_at IS NOT NULL",
            )
            .bind(at)
            .bind(row_id),
            InstallationState::Deleted => sqlx::query(
                "UPDATE installations SET deleted_at = ?, updated_at = ?
                 WHERE id = ? AND deleted_at IS NULL",
            )
            .bind(at)
            .bind(at)
            .bind(row_id),
        }
        .execute(&mut *tx)
        .await
        .map_err(map("change the installation's state"))?
        .rows_affected()
            > 0;
        if state == InstallationState::Deleted {
            sqlx::query(
                "UPDATE installation_repositories SET active = 0, removed_at = ?
                 WHERE installation_id = ? AND active = 1",
            )
            .bind(at)
            .bind(row_id)
            .execute(&mut *tx)
            .await
            .map_err(map("deactivate the installation's repositories"))?;
            sqlx::query("UPDATE repositories SET installation_id = NULL WHERE installation_id = ?")
                .bind(row_id)
                .execute(&mut *tx)
                .await
                .map_err(map("unlink the installation's repositories"))?;
        }
        tx.commit()
            .await
            .map_err(map("commit the installation's state"))?;
        Ok(changed)
    }

    pub(crate) async fn add_installed_repositories_impl(
        &self,
        installation_id: i64,
        repositories: &[NewInstalledRepository],
        at: OffsetDateTime,
    ) -> Result<Vec<InstalledRepository>> {
        let found = self
            .installation_impl(installation_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("installation {installation_id}")))?;
        let mut repos = Vec::with_capacity(repositories.len());
        for r in repositories {
            repos.push((
                self.ensure_repository_impl(found.org, &r.slug).await?.0.id,
                r,
            ));
        }
        let mut tx = self.write().await?;
        let row_id = installation_row_id(&mut tx, installation_id).await?;
        for (repo, listed) in &repos {
            cover(&mut tx, row_id, *repo, listed.github_id, at).await?;
        }
        tx.commit()
            .await
            .map_err(map("commit the installed repositories"))?;
        let all = self.installed_repositories_impl(installation_id).await?;
        Ok(repos
            .iter()
            .filter_map(|(repo, _)| all.iter().find(|r| r.repo == *repo).cloned())
            .collect())
    }

    pub(crate) async fn remove_installed_repositories_impl(
        &self,
        installation_id: i64,
        github_repo_ids: &[i64],
        at: OffsetDateTime,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let row_id = installation_row_id(&mut tx, installation_id).await?;
        let mut changed = 0;
        for github_id in github_repo_ids {
            changed += sqlx::query(
                "UPDATE installation_repositories SET active = 0, removed_at = ?
                 WHERE installation_id = ? AND github_repo_id = ? AND active = 1",
            )
            .bind(to_micros(at))
            .bind(row_id)
            .bind(github_id)
            .execute(&mut *tx)
            .await
            .map_err(map("remove the installed repository"))?
            .rows_affected();
            sqlx::query(
                "UPDATE repositories SET installation_id = NULL
                 WHERE installation_id = ? AND github_id = ?",
            )
            .bind(row_id)
            .bind(github_id)
            .execute(&mut *tx)
            .await
            .map_err(map("unlink the removed repository"))?;
        }
        tx.commit()
            .await
            .map_err(map("commit the removed repositories"))?;
        Ok(changed)
    }

    pub(crate) async fn installed_repositories_impl(
        &self,
        installation_id: i64,
    ) -> Result<Vec<InstalledRepository>> {
        let sql = format!("{INSTALLED_SELECT} WHERE i.github_id = ? ORDER BY r.owner, r.name");
        let rows: Vec<InstalledRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(installation_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map("list the installed repositories"))?;
        rows.into_iter().map(installed).collect()
    }

    pub(crate) async fn set_default_branch_impl(&self, repo: RepoId, branch: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT default_branch FROM repositories WHERE id = ?")
                .bind(repo.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map("read the default branch"))?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("repository {repo}")));
        };
        if current == branch {
            return Ok(false);
        }
        sqlx::query("UPDATE repositories SET default_branch = ? WHERE id = ?")
            .bind(branch)
            .bind(repo.0)
            .execute(&mut *tx)
            .await
            .map_err(map("set the default branch"))?;
        tx.commit()
            .await
            .map_err(map("commit the default branch"))?;
        Ok(true)
    }

    async fn check_run_in(
        &self,
        conn: &mut sqlx::SqliteConnection,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Option<CheckRunRecord>> {
        let row: Option<CheckRunRow> = sqlx::query_as(
            "SELECT id, repo_id, head_sha, check_run_id, status, conclusion, created_at,
                    updated_at
             FROM github_check_runs WHERE repo_id = ? AND head_sha = ?",
        )
        .bind(repo.0)
        .bind(head_sha)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map("read the check run"))?;
        let Some((id, repo_id, head_sha, check_run_id, status, conclusion, created, updated)) = row
        else {
            return Ok(None);
        };
        let workflow_run_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT workflow_run_id FROM github_check_run_workflow_runs
             WHERE check_run = ? ORDER BY workflow_run_id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(map("read the check run's workflow runs"))?;
        Ok(Some(CheckRunRecord {
            repo: RepoId(repo_id),
            head_sha,
            check_run_id,
            workflow_run_ids,
            status,
            conclusion,
            created_at: from_micros(created)?,
            updated_at: from_micros(updated)?,
        }))
    }

    pub(crate) async fn check_run_for_commit_impl(
        &self,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Option<CheckRunRecord>> {
        let mut tx = self.read().await?;
        let found = self.check_run_in(&mut tx, repo, head_sha).await?;
        tx.commit().await.map_err(map("read the check run"))?;
        Ok(found)
    }

    pub(crate) async fn save_check_run_impl(&self, new: &NewCheckRun) -> Result<CheckRunRecord> {
        let mut tx = self.write().await?;
        let at = to_micros(new.at);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO github_check_runs
                 (repo_id, head_sha, check_run_id, status, conclusion, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
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
        .bind(at)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map("record the check run"))?;
        // None: the commit already has another check run (the first one stays).
        if let (Some(id), Some(run)) = (id, new.workflow_run_id) {
            sqlx::query(
                "INSERT INTO github_check_run_workflow_runs (check_run, workflow_run_id)
                 VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(run)
            .execute(&mut *tx)
            .await
            .map_err(map("record the check run's workflow run"))?;
        }
        let stored = self
            .check_run_in(&mut tx, new.repo, &new.head_sha)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("check run of {}", new.head_sha)))?;
        tx.commit().await.map_err(map("commit the check run"))?;
        Ok(stored)
    }

    pub(crate) async fn pr_comment_impl(
        &self,
        repo: RepoId,
        pr_number: i64,
    ) -> Result<Option<PrComment>> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT comment_id, created_at, updated_at FROM github_pr_comments
             WHERE repo_id = ? AND pr_number = ?",
        )
        .bind(repo.0)
        .bind(pr_number)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the pull request comment"))?;
        row.map(|(comment_id, created, updated)| {
            Ok(PrComment {
                repo,
                pr_number,
                comment_id,
                created_at: from_micros(created)?,
                updated_at: from_micros(updated)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn save_pr_comment_impl(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
        at: OffsetDateTime,
    ) -> Result<PrComment> {
        let mut tx = self.write().await?;
        let at = to_micros(at);
        sqlx::query(
            "INSERT INTO github_pr_comments (repo_id, pr_number, comment_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (repo_id, pr_number) DO UPDATE SET updated_at = excluded.updated_at
             WHERE github_pr_comments.comment_id = excluded.comment_id",
        )
        .bind(repo.0)
        .bind(pr_number)
        .bind(comment_id)
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map("record the pull request comment"))?;
        tx.commit()
            .await
            .map_err(map("commit the pull request comment"))?;
        self.pr_comment_impl(repo, pr_number)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("comment on pull request {pr_number}")))
    }

    pub(crate) async fn forget_pr_comment_impl(
        &self,
        repo: RepoId,
        pr_number: i64,
        comment_id: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM github_pr_comments
             WHERE repo_id = ? AND pr_number = ? AND comment_id = ?",
        )
        .bind(repo.0)
        .bind(pr_number)
        .bind(comment_id)
        .execute(&self.writer)
        .await
        .map_err(map("forget the pull request comment"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn link_commit_pr_impl(
        &self,
        repo: RepoId,
        head_sha: &str,
        pr_number: i64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO github_commit_prs (repo_id, head_sha, pr_number, created_at)
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(repo.0)
        .bind(head_sha)
        .bind(pr_number)
        .bind(to_micros(at))
        .execute(&self.writer)
        .await
        .map_err(map("link the commit to its pull request"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn record_workflow_run_impl(
        &self,
        repo: RepoId,
        run: &WorkflowRunRecord,
    ) -> Result<()> {
        let prs = serde_json::to_string(&run.pull_requests).map_err(|e| {
            corrupt(format_args!(
                "pull requests of run {}: {e}",
                run.workflow_run_id
            ))
        })?;
        let done = sqlx::query(
            "INSERT INTO github_workflow_runs
                 (repo_id, workflow_run_id, run_attempt, name, event, head_sha, head_branch,
                  pull_requests, conclusion, updated_at)
             SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM repositories WHERE id = ?
             ON CONFLICT (repo_id, workflow_run_id, run_attempt) DO UPDATE
                 SET name = excluded.name, event = excluded.event,
                     head_sha = excluded.head_sha, head_branch = excluded.head_branch,
                     pull_requests = excluded.pull_requests,
                     conclusion = excluded.conclusion, updated_at = excluded.updated_at",
        )
        .bind(run.workflow_run_id)
        .bind(i64::from(run.run_attempt))
        .bind(run.name.as_deref())
        .bind(&run.event)
        .bind(&run.head_sha)
        .bind(run.head_branch.as_deref())
        .bind(prs)
        .bind(run.conclusion.as_deref())
        .bind(to_micros(run.updated_at))
        .bind(repo.0)
        .execute(&self.writer)
        .await
        .map_err(map("record the workflow run"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("repository {}", repo.0)));
        }
        Ok(())
    }

    pub(crate) async fn workflow_run_impl(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
        run_attempt: u32,
    ) -> Result<Option<WorkflowRunRecord>> {
        type Row = (
            Option<String>,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            i64,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT name, event, head_sha, head_branch, pull_requests, conclusion, updated_at
             FROM github_workflow_runs
             WHERE repo_id = ? AND workflow_run_id = ? AND run_attempt = ?",
        )
        .bind(repo.0)
        .bind(workflow_run_id)
        .bind(i64::from(run_attempt))
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the workflow run"))?;
        row.map(
            |(name, event, head_sha, head_branch, prs, conclusion, updated_at)| {
                Ok(WorkflowRunRecord {
                    workflow_run_id,
                    run_attempt,
                    name,
                    event,
                    head_sha,
                    head_branch,
                    pull_requests: serde_json::from_str(&prs).map_err(|e| {
                        corrupt(format_args!("pull requests of run {workflow_run_id}: {e}"))
                    })?,
                    conclusion,
                    updated_at: from_micros(updated_at)?,
                })
            },
        )
        .transpose()
    }

    pub(crate) async fn set_pr_labels_impl(
        &self,
        repo: RepoId,
        pr_number: i64,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<()> {
        let json = serde_json::to_string(labels)
            .map_err(|e| corrupt(format_args!("labels of #{pr_number}: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO github_pull_request_labels (repo_id, pr_number, labels, updated_at)
             SELECT id, ?, ?, ? FROM repositories WHERE id = ?
             ON CONFLICT (repo_id, pr_number) DO UPDATE
                 SET labels = excluded.labels, updated_at = excluded.updated_at",
        )
        .bind(pr_number)
        .bind(json)
        .bind(to_micros(at))
        .bind(repo.0)
        .execute(&self.writer)
        .await
        .map_err(map("record the pull request's labels"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("repository {}", repo.0)));
        }
        Ok(())
    }

    pub(crate) async fn pr_labels_impl(
        &self,
        repo: RepoId,
        pr_number: i64,
    ) -> Result<Option<Vec<String>>> {
        let json: Option<String> = sqlx::query_scalar(
            "SELECT labels FROM github_pull_request_labels WHERE repo_id = ? AND pr_number = ?",
        )
        .bind(repo.0)
        .bind(pr_number)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the pull request's labels"))?;
        json.map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| corrupt(format_args!("labels of #{pr_number}: {e}")))
        })
        .transpose()
    }

    pub(crate) async fn prs_for_commit_impl(
        &self,
        repo: RepoId,
        head_sha: &str,
    ) -> Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT pr_number FROM github_commit_prs WHERE repo_id = ? AND head_sha = ?
             ORDER BY pr_number",
        )
        .bind(repo.0)
        .bind(head_sha)
        .fetch_all(&self.reader)
        .await
        .map_err(map("read the commit's pull requests"))
    }

    pub(crate) async fn flaky_issue_impl(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Option<FlakyIssue>> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT issue_number, url, created_at FROM github_flaky_issues
             WHERE repo_id = ? AND test_case_id = ?",
        )
        .bind(repo.0)
        .bind(test.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the flaky test's issue"))?;
        row.map(|(number, url, created)| {
            Ok(FlakyIssue {
                repo,
                test,
                number,
                url,
                created_at: from_micros(created)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn save_flaky_issue_impl(
        &self,
        repo: RepoId,
        test: TestCaseId,
        number: i64,
        url: &str,
        at: OffsetDateTime,
    ) -> Result<(FlakyIssue, bool)> {
        let mut tx = self.write().await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM test_cases WHERE id = ? AND repo_id = ?")
                .bind(test.0)
                .bind(repo.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map("read the test"))?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!(
                "test {test} in repository {repo}"
            )));
        }
        let created = sqlx::query(
            "INSERT INTO github_flaky_issues (test_case_id, repo_id, issue_number, url, created_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(test.0)
        .bind(repo.0)
        .bind(number)
        .bind(url)
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await
        .map_err(map("record the flaky test's issue"))?
        .rows_affected()
            > 0;
        tx.commit()
            .await
            .map_err(map("commit the flaky test's issue"))?;
        let stored = self
            .flaky_issue_impl(repo, test)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("issue of test {test}")))?;
        Ok((stored, created))
    }

    pub(crate) async fn record_workflow_job_impl(
        &self,
        repo: RepoId,
        job: &WorkflowJob,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO github_workflow_jobs
                 (repo_id, workflow_run_id, job_id, run_attempt, name, status, progress,
                  conclusion, started_at, completed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (repo_id, workflow_run_id, job_id) DO UPDATE
             SET run_attempt = excluded.run_attempt, name = excluded.name,
                 status = excluded.status, progress = excluded.progress,
                 conclusion = excluded.conclusion,
                 started_at = coalesce(excluded.started_at, github_workflow_jobs.started_at),
                 completed_at = coalesce(excluded.completed_at, github_workflow_jobs.completed_at)
             WHERE excluded.progress >= github_workflow_jobs.progress
               AND (github_workflow_jobs.run_attempt IS NOT excluded.run_attempt
                    OR github_workflow_jobs.name IS NOT excluded.name
                    OR github_workflow_jobs.status IS NOT excluded.status
                    OR github_workflow_jobs.conclusion IS NOT excluded.conclusion
                    OR (excluded.started_at IS NOT NULL
                        AND github_workflow_jobs.started_at IS NOT excluded.started_at)
                    OR (excluded.completed_at IS NOT NULL
                        AND github_workflow_jobs.completed_at IS NOT excluded.completed_at))",
        )
        .bind(repo.0)
        .bind(job.workflow_run_id)
        .bind(job.job_id)
        .bind(i64::from(job.run_attempt))
        .bind(&job.name)
        .bind(&job.status)
        .bind(job_progress(&job.status))
        .bind(job.conclusion.as_deref())
        .bind(job.started_at.map(to_micros))
        .bind(job.completed_at.map(to_micros))
        .execute(&self.writer)
        .await
        .map_err(map("record the workflow job"))?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn workflow_jobs_impl(
        &self,
        repo: RepoId,
        workflow_run_id: i64,
    ) -> Result<Vec<WorkflowJob>> {
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT workflow_run_id, job_id, run_attempt, name, status, conclusion, started_at,
                    completed_at
             FROM github_workflow_jobs WHERE repo_id = ? AND workflow_run_id = ?
             ORDER BY run_attempt, job_id",
        )
        .bind(repo.0)
        .bind(workflow_run_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the workflow jobs"))?;
        rows.into_iter().map(job).collect()
    }
}
