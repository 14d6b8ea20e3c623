-- Where each alert source has read up to: the alert feeder reads the asset
-- timeline (asset_events) in id order and turns events into alert signals;
-- it resumes here after a restart.
CREATE TABLE alert_feed (
    name          TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL DEFAULT 0
);
