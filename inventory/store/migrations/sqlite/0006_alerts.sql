-- Alerts. One row per condition, found by its fingerprint (kind, asset,
-- check, normalised key): the same condition firing again updates its row
-- instead of opening another. Two views live side by side: the machine's
-- (condition: firing or cleared, set by observations and assessments) and
-- the people's (workflow: new, triage, escalated, closed, with a resolution).
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    fingerprint     TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('unmanaged', 'drift', 'check_failed', 'stale', 'conflict', 'health')),
    severity        TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    asset_id        TEXT NOT NULL DEFAULT '',
    check_id        TEXT NOT NULL DEFAULT '',
    -- the normalised value the fingerprint covers (a drift kind and port, a component ...)
    key             TEXT NOT NULL DEFAULT '',
    title           TEXT NOT NULL DEFAULT '',
    condition       TEXT NOT NULL CHECK (condition IN ('firing', 'cleared')),
    workflow        TEXT NOT NULL CHECK (workflow IN ('new', 'triage', 'escalated', 'closed')),
    resolution      TEXT NOT NULL DEFAULT '' CHECK (resolution IN ('', 'false_positive', 'authorized_change', 'fixed', 'true_positive', 'duplicate', 'accepted_risk')),
    change_ref      TEXT NOT NULL DEFAULT '',
    risk_expires_at TIMESTAMP,
    team            TEXT NOT NULL DEFAULT '',
    assignee        TEXT NOT NULL DEFAULT '',
    -- JSON: the latest firing observation's detail (evidence, before/after,
    -- assessment id ...) and the hash of its stable part
    detail          TEXT NOT NULL DEFAULT '{}',
    detail_hash     TEXT NOT NULL DEFAULT '',
    first_fired_at  TIMESTAMP NOT NULL,
    last_fired_at   TIMESTAMP NOT NULL,
    cleared_at      TIMESTAMP,
    fire_count      BIGINT NOT NULL DEFAULT 1,
    regression      BOOLEAN NOT NULL DEFAULT 0,
    reopened_count  INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    closed_at       TIMESTAMP,
    acked_at        TIMESTAMP,
    escalated_at    TIMESTAMP
);
CREATE INDEX alerts_created ON alerts (created_at, id);
CREATE INDEX alerts_by_workflow ON alerts (workflow, created_at);
CREATE INDEX alerts_by_severity ON alerts (severity, created_at);
CREATE INDEX alerts_by_kind ON alerts (kind, created_at);
CREATE INDEX alerts_by_team ON alerts (team, created_at);
CREATE INDEX alerts_by_asset ON alerts (asset_id, created_at);
CREATE INDEX alerts_risk_expiry ON alerts (risk_expires_at) WHERE workflow = 'closed' AND resolution = 'accepted_risk';

-- The people's history: every workflow move, who made it, when and why.
-- actor is the "by" of the API (BY is an SQL keyword).
CREATE TABLE alert_transitions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at              TIMESTAMP NOT NULL,
    actor           TEXT NOT NULL,
    from_state      TEXT NOT NULL,
    to_state        TEXT NOT NULL,
    resolution      TEXT NOT NULL DEFAULT '',
    note            TEXT NOT NULL DEFAULT '',
    change_ref      TEXT NOT NULL DEFAULT '',
    expires_at      TIMESTAMP,
    accept_baseline BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX alert_transitions_by_alert ON alert_transitions (alert_id, id);

-- The machine's history: each firing or clearing observation of an alert.
CREATE TABLE alert_occurrences (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id  TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at        TIMESTAMP NOT NULL,
    condition TEXT NOT NULL CHECK (condition IN ('firing', 'cleared')),
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_occurrences_by_alert ON alert_occurrences (alert_id, id);
