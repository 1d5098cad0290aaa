-- FlakeGuard on SQLite, migration 0006: pull requests' labels (issue #6's `labels_required`:
-- automatic quarantine acts only on runs of pull requests that carry every required label).
-- Never edit this file once released: add a new migration instead.
CREATE TABLE github_pull_request_labels (
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    pr_number INTEGER NOT NULL,
    -- A JSON array of label names, as the latest pull_request event listed them.
    labels TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, pr_number)
) STRICT;
