-- When each remote passive sensor last shipped observations, so that one
-- that stops reporting raises a health alert.
CREATE TABLE sensor_status (
    name         TEXT PRIMARY KEY,
    last_seen_at TIMESTAMPTZ NOT NULL,
    last_by      TEXT NOT NULL DEFAULT ''
);
