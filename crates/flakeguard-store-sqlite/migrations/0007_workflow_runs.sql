-- FlakeGuard on SQLite, migration 0007: the GitHub workflow runs whose artifacts were read,
-- with what triggered them. A stored run's workflow_run_id and run_attempt find its row here.
-- Never edit this file once released: add a new migration instead.
CREATE TABLE github_workflow_runs (
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    workflow_run_id INTEGER NOT NULL,
    run_attempt INTEGER NOT NULL,
    name TEXT,
    -- What triggered it: push, pull_request, schedule, workflow_dispatch, …
    event TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    head_branch TEXT,
    -- A JSON array of the pull request numbers it ran for.
    pull_requests TEXT NOT NULL,
    conclusion TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, workflow_run_id, run_attempt)
) STRICT;
