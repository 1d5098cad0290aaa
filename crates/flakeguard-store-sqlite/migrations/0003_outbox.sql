-- FlakeGuard on SQLite, migration 0003: the scoring and webhook outboxes, and maintenance.
-- Never edit this file once released: add a new migration instead.

-- A run is scored after it is stored; scored_at is NULL until then, so a sweeper finds the
-- runs whose scoring was lost (the process stopped in between). Runs stored before this
-- migration were scored in-process as they arrived: they count as scored at reception.
ALTER TABLE runs ADD COLUMN scored_at INTEGER;
UPDATE runs SET scored_at = received_at;

-- The sweeper's query reads the first entries of this (nearly always empty) index instead of
-- scanning every run. (It ends with the rowid: (received_at, id) order.)
CREATE INDEX runs_unscored ON runs (received_at) WHERE scored_at IS NULL;

-- Pending webhook deliveries, oldest first, without reading the handled ones.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (received_at)
    WHERE status = 'received';

-- Retention clears old failure messages in batches: this finds the executions that still
-- have one, and only those (most executions pass and never had one), so each batch and a
-- prune with nothing left to do stay cheap however long the history. Entries of a new run
-- are appended at the end (run ids grow); passing executions add none.
CREATE INDEX executions_with_message ON executions (run_id) WHERE message IS NOT NULL;

-- Live quarantines by expiry, for the maintenance job that ends them.
CREATE INDEX quarantines_expiring ON quarantines (expires_at)
    WHERE state IN ('proposed', 'active') AND expires_at IS NOT NULL;
