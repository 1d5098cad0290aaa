-- FlakeGuard on SQLite, migration 0004: per-repository policy and CODEOWNERS (issue #6).
-- Never edit this file once released: add a new migration instead.

-- One row per repository once a policy or a CODEOWNERS file was stored. The policy is kept
-- as written (YAML), so what was validated is what is read back; origin says whether it came
-- through the API or from the repository's .flakeguard.yml (at commit_sha).
CREATE TABLE repo_policies (
    repo_id INTEGER PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    source TEXT,
    origin TEXT CHECK (origin IN ('api', 'file')),
    commit_sha TEXT,
    updated_at INTEGER,
    updated_by TEXT,
    codeowners TEXT,
    codeowners_source TEXT,
    codeowners_updated_at INTEGER,
    CHECK ((source IS NULL) = (origin IS NULL))
) STRICT;

-- Who or what released a quarantine (`token:<id>`, `operator`, `policy:auto-release`); NULL
-- while it is live, for quarantines released before this migration, and for expired ones
-- (their state says why they ended).
ALTER TABLE quarantines ADD COLUMN released_by TEXT;
