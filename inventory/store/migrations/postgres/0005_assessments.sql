-- Configuration assessments. One row per assessment of one target: the
-- facts collected over the network, each check's result, the drift against
-- the previous assessment of the same asset, and the raw evidence (nmap XML,
-- probe transcripts). The queue itself is River's; job_id links the two.
CREATE TABLE assessments (
    id             TEXT PRIMARY KEY,
    asset_id       TEXT NOT NULL DEFAULT '',
    target         TEXT NOT NULL,
    trigger        TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    job_id         BIGINT,
    attempt        INTEGER NOT NULL DEFAULT 1,
    policy         TEXT NOT NULL DEFAULT '',
    policy_version TEXT NOT NULL DEFAULT '',
    role           TEXT NOT NULL DEFAULT '',
    score          DOUBLE PRECISION,
    -- counts by status (pass, fail, error, not_applicable)
    counts         TEXT NOT NULL DEFAULT '{}',
    facts          TEXT NOT NULL DEFAULT '{}',
    results        TEXT NOT NULL DEFAULT '[]',
    drift          TEXT NOT NULL DEFAULT '[]',
    evidence       TEXT NOT NULL DEFAULT '[]',
    error          TEXT NOT NULL DEFAULT '',
    previous_id    TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ
);
CREATE INDEX assessments_by_asset ON assessments (asset_id, created_at);
CREATE INDEX assessments_created ON assessments (created_at);
CREATE INDEX assessments_by_job ON assessments (job_id);
