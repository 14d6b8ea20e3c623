-- Assets as the identity engine keeps them: one row per device with its
-- whole record as a JSON document, and the columns the API filters and sorts on.
CREATE TABLE assets (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    identity   TEXT NOT NULL,
    missing    BOOLEAN NOT NULL DEFAULT 0,
    first_seen TIMESTAMP NOT NULL,
    last_seen  TIMESTAMP NOT NULL,
    -- lower-case hostnames, IPs, MACs, vendor and OS, for free-text search
    search     TEXT NOT NULL,
    -- ' passive:arp active:nmap ', for the source filter
    sources    TEXT NOT NULL,
    -- the list view's JSON, served as it is
    summary    TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX assets_by_last_seen ON assets (last_seen DESC, id DESC);
CREATE INDEX assets_by_status ON assets (status, last_seen DESC, id DESC);

-- The IPs each asset holds now, as 16-byte hex keys, for subnet filters.
CREATE TABLE asset_ips (
    ip_key   TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    PRIMARY KEY (ip_key, asset_id)
);
CREATE INDEX asset_ips_by_asset ON asset_ips (asset_id);

-- Assets folded into others, so old ids still lead somewhere.
CREATE TABLE asset_merges (
    from_id   TEXT PRIMARY KEY,
    into_id   TEXT NOT NULL,
    merged_at TIMESTAMP NOT NULL
);

CREATE INDEX asset_merges_by_into ON asset_merges (into_id);

-- Change events: the timeline of each asset and the feed for later stages.
CREATE TABLE asset_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL,
    at       TIMESTAMP NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX asset_events_by_asset ON asset_events (asset_id, id);

-- Every accepted batch of observations, raw: the write-ahead log of the
-- inventory (batches not yet applied to assets are replayed on start) and
-- the evidence identity can be recomputed from. Kept for a bounded period.
CREATE TABLE observation_batches (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id    TEXT NOT NULL UNIQUE,
    received_at TIMESTAMP NOT NULL,
    received_by TEXT NOT NULL,
    count       INTEGER NOT NULL,
    body        TEXT NOT NULL,
    applied     BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX observation_batches_pending ON observation_batches (seq) WHERE applied = 0;
CREATE INDEX observation_batches_by_time ON observation_batches (received_at);
