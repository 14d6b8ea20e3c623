-- Active sweeps: definitions (from the configuration or the API), their
-- runs, and each run's chunks (a part of the target set one nmap process
-- scans). Progress is kept per chunk and summed when a run is read.
CREATE TABLE sweeps (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    origin      TEXT NOT NULL CHECK (origin IN ('config', 'api')),
    -- the definition as JSON: scope, targets, ports, discovery, schedule ...
    definition  TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    next_run_at TIMESTAMP
);

CREATE TABLE sweep_runs (
    id               TEXT PRIMARY KEY,
    sweep_id         TEXT NOT NULL,
    sweep_name       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    trigger          TEXT NOT NULL,
    -- the definition the run was made from, so that later edits do not change it
    definition       TEXT NOT NULL,
    addresses        BIGINT NOT NULL DEFAULT 0,
    chunks_total     INTEGER NOT NULL DEFAULT 0,
    chunks_done      INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT 0,
    failure          TEXT NOT NULL DEFAULT '',
    warnings         TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP
);
CREATE INDEX sweep_runs_by_sweep ON sweep_runs (sweep_id, created_at DESC);
CREATE INDEX sweep_runs_by_state ON sweep_runs (state);

CREATE TABLE sweep_chunks (
    run_id       TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    targets      TEXT NOT NULL,
    addresses    BIGINT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    percent      REAL NOT NULL DEFAULT 0,
    hosts_up     INTEGER NOT NULL DEFAULT 0,
    observations INTEGER NOT NULL DEFAULT 0,
    remaining_s  REAL NOT NULL DEFAULT 0,
    failure      TEXT NOT NULL DEFAULT '',
    args         TEXT NOT NULL DEFAULT '',
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    PRIMARY KEY (run_id, idx)
);
