-- The notification outbox: one row per alert notification and sink, written
-- when the notification is enqueued and worked by the dispatcher until the
-- sink takes it (delivered_at) or it is given up (failed_at: the sink refused
-- it for good, or it grew too old). body is the notification as JSON;
-- next_at is when the next attempt is due, and while an attempt is in flight
-- the end of its lease; attempts counts attempts started. The id is the
-- notification's, which receivers use to dedupe.
CREATE TABLE notification_outbox (
    id           TEXT NOT NULL,
    sink         TEXT NOT NULL,
    body         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TIMESTAMP NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    delivered_at TIMESTAMP,
    failed_at    TIMESTAMP,
    PRIMARY KEY (id, sink)
);
CREATE INDEX notification_outbox_due ON notification_outbox (sink, created_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX notification_outbox_created ON notification_outbox (created_at);
