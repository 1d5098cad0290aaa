-- FlakeGuard on SQLite, migration 0001: the initial schema.
-- Timestamps are INTEGER unix microseconds (UTC); ids are rowid aliases.
-- Never edit this file once released: add a new migration instead.

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;

CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE installations (
    id INTEGER PRIMARY KEY,
    github_id INTEGER NOT NULL UNIQUE,
    org_id INTEGER REFERENCES organizations (id),
    account_login TEXT NOT NULL,
    suspended_at INTEGER,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
) STRICT;

CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id),
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    github_id INTEGER,
    installation_id INTEGER REFERENCES installations (id),
    default_branch TEXT NOT NULL DEFAULT 'main',
    created_at INTEGER NOT NULL,
    UNIQUE (owner, name)
) STRICT;

CREATE INDEX repositories_org ON repositories (org_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations (id),
    repo_id INTEGER REFERENCES repositories (id),
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
) STRICT;

CREATE INDEX api_tokens_org ON api_tokens (org_id);

-- key_hash is TestKey::stable_id() reinterpreted as a signed 64-bit integer; scope,
-- classname, name and variant are the TestKey's fields verbatim.
CREATE TABLE test_cases (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    key_hash INTEGER NOT NULL,
    scope TEXT NOT NULL,
    classname TEXT NOT NULL,
    name TEXT NOT NULL,
    variant TEXT,
    file TEXT,
    status TEXT NOT NULL DEFAULT 'insufficient_data',
    probability REAL NOT NULL DEFAULT 0,
    confidence REAL NOT NULL DEFAULT 0,
    legacy_score REAL NOT NULL DEFAULT 0,
    recommendation TEXT NOT NULL DEFAULT 'none',
    scored_at INTEGER,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (repo_id, key_hash)
) STRICT;

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    commit_sha TEXT,
    branch TEXT,
    pr_number INTEGER,
    workflow_run_id TEXT NOT NULL,
    run_attempt INTEGER NOT NULL,
    job TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    report_digest TEXT NOT NULL,
    UNIQUE (repo_id, workflow_run_id, run_attempt, job, report_digest)
) STRICT;

CREATE INDEX runs_repo_started ON runs (repo_id, started_at);

-- Append-only history. Clustered on its primary key (WITHOUT ROWID): one B-tree instead of
-- a table plus a primary-key index, which halves the work of bulk ingestion.
-- outcome is flakeguard_store::outcome_code; failure_signature is a u64 stored bitwise.
CREATE TABLE executions (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    test_case_id INTEGER NOT NULL REFERENCES test_cases (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    duration_ms INTEGER,
    failure_signature INTEGER,
    message TEXT,
    PRIMARY KEY (run_id, test_case_id, attempt)
) STRICT, WITHOUT ROWID;

CREATE INDEX executions_test_run ON executions (test_case_id, run_id);

CREATE TABLE quarantines (
    id INTEGER PRIMARY KEY,
    test_case_id INTEGER NOT NULL REFERENCES test_cases (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    owner TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    released_at INTEGER
) STRICT;

CREATE INDEX quarantines_test ON quarantines (test_case_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES organizations (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX audit_log_org_created ON audit_log (org_id, created_at);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    action TEXT,
    installation_id INTEGER,
    payload BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'received',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    received_at INTEGER NOT NULL,
    processed_at INTEGER
) STRICT;
