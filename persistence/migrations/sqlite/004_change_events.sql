-- Change events (Kafka, webhooks): the update log is the outbox; these tables keep each
-- sink's progress, the leases that make one node publish each part, and the webhook logs.

-- Per sink and document: every update with seq <= `seq` is published.
CREATE TABLE event_cursors (
    sink         TEXT    NOT NULL,
    document     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    published_at REAL    NOT NULL,
    PRIMARY KEY (sink, document)
);

-- Leases with an expiry (e.g. "kafka/partition-3"): one live holder at a time across nodes.
CREATE TABLE event_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);

-- One row per delivery attempt to a webhook endpoint.
CREATE TABLE event_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          REAL    NOT NULL,
    ok          INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT    NOT NULL DEFAULT '',
    duration_ms REAL    NOT NULL
);
CREATE INDEX event_deliveries_by_sink ON event_deliveries (sink, id);

-- Events a sink gave up on after its retries.
CREATE TABLE event_dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sink       TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    document   TEXT,
    payload    TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    at         REAL    NOT NULL
);
