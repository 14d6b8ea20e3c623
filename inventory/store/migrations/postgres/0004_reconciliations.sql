-- CMDB reconciliation runs. A run reads every CI, matches the inventory
-- against them and records verdicts on the assets (unless a dry run); the
-- run keeps its counts, its errors and the CIs it found stale.
CREATE TABLE reconciliations (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'partial', 'failed')),
    trigger     TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL DEFAULT false,
    incremental BOOLEAN NOT NULL DEFAULT false,
    cmdb        TEXT NOT NULL,
    cis         BIGINT NOT NULL DEFAULT 0,
    -- JSON: counts by verdict, error messages, stale CIs, push changes
    counts      TEXT NOT NULL DEFAULT '{}',
    errors      TEXT NOT NULL DEFAULT '[]',
    stale       TEXT NOT NULL DEFAULT '[]',
    changes     TEXT NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX reconciliations_created ON reconciliations (created_at);
