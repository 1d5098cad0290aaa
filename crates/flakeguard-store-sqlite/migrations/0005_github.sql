-- FlakeGuard on SQLite, migration 0005: the GitHub App's state (issue #5).
-- Never edit this file once released: add a new migration instead.
-- (0004 belongs to repository policy; the runner applies whatever is missing, in order.)

-- installations (from 0001) gets what an `installation` event says about the account.
-- No build before this one wrote installations, so the defaults never describe a real row.
ALTER TABLE installations ADD COLUMN account_type TEXT NOT NULL DEFAULT 'Organization';
ALTER TABLE installations ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

-- The repositories an installation covers or covered. Removing a repository (or deleting
-- the installation) clears `active` and keeps the row: history stays explainable.
-- repositories.installation_id (0001) points at the installation currently covering it.
CREATE TABLE installation_repositories (
    installation_id INTEGER NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    github_repo_id INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    added_at INTEGER NOT NULL,
    removed_at INTEGER,
    PRIMARY KEY (installation_id, repo_id)
) STRICT;

CREATE INDEX installation_repositories_repo ON installation_repositories (repo_id)
    WHERE active = 1;

-- The "FlakeGuard" check run of a commit: one per (repository, commit), updated by every
-- later workflow run on that commit.
CREATE TABLE github_check_runs (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    head_sha TEXT NOT NULL,
    check_run_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    conclusion TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (repo_id, head_sha)
) STRICT;

-- The workflow runs a check run reports on.
CREATE TABLE github_check_run_workflow_runs (
    check_run INTEGER NOT NULL REFERENCES github_check_runs (id) ON DELETE CASCADE,
    workflow_run_id INTEGER NOT NULL,
    PRIMARY KEY (check_run, workflow_run_id)
) STRICT, WITHOUT ROWID;

-- FlakeGuard's one comment per pull request, updated in place.
CREATE TABLE github_pr_comments (
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    pr_number INTEGER NOT NULL,
    comment_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, pr_number)
) STRICT;

-- Which pull requests a commit was the head of.
CREATE TABLE github_commit_prs (
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    head_sha TEXT NOT NULL,
    pr_number INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, head_sha, pr_number)
) STRICT, WITHOUT ROWID;

-- The issue opened for a flaky test ("Open issues"), never opened twice.
CREATE TABLE github_flaky_issues (
    test_case_id INTEGER PRIMARY KEY REFERENCES test_cases (id) ON DELETE CASCADE,
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    issue_number INTEGER NOT NULL,
    url TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Jobs of workflow runs, from `workflow_job` events. progress orders statuses
-- (flakeguard_store::job_progress) so a late delivery never moves a job back.
CREATE TABLE github_workflow_jobs (
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    workflow_run_id INTEGER NOT NULL,
    job_id INTEGER NOT NULL,
    run_attempt INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL,
    conclusion TEXT,
    started_at INTEGER,
    completed_at INTEGER,
    PRIMARY KEY (repo_id, workflow_run_id, job_id)
) STRICT, WITHOUT ROWID;
