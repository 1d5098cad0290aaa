-- FlakeGuard on SQLite, migration 0002: what the read API and quarantines need.
-- Never edit this file once released: add a new migration instead.

-- Uploads may create repositories of the organization on first use (0 or 1).
ALTER TABLE organizations ADD COLUMN creates_repositories INTEGER NOT NULL DEFAULT 0;

-- More of a test's derived state: the scoring window's counts, the verdict's one-sentence
-- reason and its evidence (a JSON array, returned verbatim).
ALTER TABLE test_cases ADD COLUMN executions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE test_cases ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE test_cases ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE test_cases ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';

-- A page of a repository's tests by probability or impact reads the first entries of one of
-- these and sorts only the ties; one status of them is found without reading the others.
-- Descending like the listings: SQLite sorts ties block by block only while scanning an index
-- forwards. Narrow on purpose: a new test enters each at the same key (probability 0, no
-- failures, insufficient_data), so ingestion appends rather than scattering writes, and fewer
-- columns means fewer entries a rescore rewrites. (Every SQLite index ends with the rowid, so
-- runs are already indexed by (repo_id, started_at, id).)
CREATE INDEX test_cases_repo_probability ON test_cases (repo_id, probability DESC);
CREATE INDEX test_cases_repo_failures ON test_cases (repo_id, failures DESC);
CREATE INDEX test_cases_repo_status ON test_cases (repo_id, status);

-- At most one live (proposed or active) quarantine per test; also finds the live ones.
CREATE UNIQUE INDEX quarantines_live ON quarantines (test_case_id)
    WHERE state IN ('proposed', 'active');
