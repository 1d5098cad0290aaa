-- FlakeGuard PostgreSQL schema, version 2: what the read API and quarantines need. Never
-- edit once applied: add a new migration instead.

-- Uploads may create repositories of the organization on first use.
ALTER TABLE organizations ADD COLUMN creates_repositories BOOLEAN NOT NULL DEFAULT false;

-- More of a test's derived state: the scoring window's counts (BIGINT: they hold any u32),
-- the verdict's one-sentence reason and its evidence (a JSON array, returned verbatim).
-- Constant defaults: adding the columns rewrites nothing.
ALTER TABLE test_cases
    ADD COLUMN executions BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN failures BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN reason TEXT NOT NULL DEFAULT '',
    ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';

-- A page of a repository's tests by probability or impact reads the first entries of one of
-- these and sorts only the ties (an incremental sort); one status of them is found without
-- reading the others. Narrow on purpose: a new test enters each at the same key (probability
-- 0, no failures, insufficient_data), so ingestion's COPY appends rather than scattering
-- writes; and last_seen_at, which every run updates, stays unindexed so those updates remain
-- HOT.
CREATE INDEX test_cases_repo_probability ON test_cases (repo_id, probability DESC);
CREATE INDEX test_cases_repo_failures ON test_cases (repo_id, failures DESC);
CREATE INDEX test_cases_repo_status ON test_cases (repo_id, status);

-- Runs newest first with the id as tie-breaker, read straight from the index (listing runs,
-- and the scoring window of load_history).
DROP INDEX runs_repo_started;
CREATE INDEX runs_repo_started_id ON runs (repo_id, started_at, id);

-- At most one live (proposed or active) quarantine per test; also finds the live ones.
CREATE UNIQUE INDEX quarantines_live ON quarantines (test_case_id)
    WHERE state IN ('proposed', 'active');
