-- FlakeGuard on PostgreSQL, migration 0007: the GitHub workflow runs whose artifacts were
-- read, with what triggered them. A stored run's workflow_run_id and run_attempt find its
-- row here. Never edit this file once released: add a new migration instead.
CREATE TABLE github_workflow_runs (
    repo_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    workflow_run_id BIGINT NOT NULL,
    run_attempt INTEGER NOT NULL,
    name TEXT,
    -- What triggered it: push, pull_request, schedule, workflow_dispatch, …
    event TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    head_branch TEXT,
    pull_requests BIGINT[] NOT NULL,
    conclusion TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (repo_id, workflow_run_id, run_attempt)
);
