-- Silences: matchers (route.Match as JSON) that hold back the
-- notifications of the alerts they match between starts_at and ends_at.
-- The alerts themselves still open, fire and clear.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    expired_at TIMESTAMPTZ
);
CREATE INDEX silences_ends ON silences (ends_at);
