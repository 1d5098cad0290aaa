-- FlakeGuard PostgreSQL schema, version 3: the scoring and webhook outboxes, and
-- maintenance. Never edit once applied: add a new migration instead.

-- A run is scored after it is stored; scored_at is NULL until then, so a sweeper finds the
-- runs whose scoring was lost (the process stopped in between). Runs stored before this
-- migration were scored in-process as they arrived: they count as scored at reception.
-- (The UPDATE rewrites every run once; runs are one row per report, few next to executions.)
ALTER TABLE runs ADD COLUMN scored_at TIMESTAMPTZ;
UPDATE runs SET scored_at = received_at;

-- The sweeper's query reads the first entries of this (nearly always empty) index instead of
-- scanning every run. Built after the UPDATE, so it starts empty.
CREATE INDEX runs_unscored ON runs (received_at, id) WHERE scored_at IS NULL;

-- Retention clears old failure messages in batches: this finds the executions that still
-- have one, and only those (most executions pass and never had one), so each batch and a
-- prune with nothing left to do stay cheap however long the history. Entries of a new run
-- are appended at the end (run ids grow); passing executions add none. Building it reads
-- executions once and holds off ingestion meanwhile (a migration is one transaction, so it
-- cannot be built CONCURRENTLY).
CREATE INDEX executions_with_message ON executions (run_id) WHERE message IS NOT NULL;

-- Live quarantines by expiry, for the maintenance job that ends them.
CREATE INDEX quarantines_expiring ON quarantines (expires_at)
    WHERE state IN ('proposed', 'active') AND expires_at IS NOT NULL;

-- (Pending webhook deliveries are found by webhook_deliveries_status (status, received_at)
-- from 0001.)
