-- Change events (Kafka, webhooks): the update log is the outbox; these tables keep each
-- sink's progress, the leases that make one node publish each part, and the webhook logs.

-- Per sink and document: every update with seq <= `seq` is published.
CREATE TABLE event_cursors (
    sink         text   NOT NULL,
    document     text   NOT NULL,
    seq          bigint NOT NULL,
    published_at double precision NOT NULL,
    PRIMARY KEY (sink, document)
);

-- Leases with an expiry (e.g. "kafka/partition-3"): one live holder at a time across nodes.
CREATE TABLE event_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at double precision NOT NULL
);

-- One row per delivery attempt to a webhook endpoint.
CREATE TABLE event_deliveries (
    id          bigserial PRIMARY KEY,
    sink        text    NOT NULL,
    event_id    text    NOT NULL,
    event_type  text    NOT NULL,
    attempt     integer NOT NULL,
    at          double precision NOT NULL,
    ok          boolean NOT NULL,
    status      integer,
    error       text    NOT NULL DEFAULT '',
    duration_ms double precision NOT NULL
);
CREATE INDEX event_deliveries_by_sink ON event_deliveries (sink, id);

-- Events a sink gave up on after its retries.
CREATE TABLE event_dead_letters (
    id         bigserial PRIMARY KEY,
    sink       text    NOT NULL,
    event_id   text    NOT NULL,
    event_type text    NOT NULL,
    document   text,
    payload    text    NOT NULL,
    error      text    NOT NULL,
    attempts   integer NOT NULL,
    at         double precision NOT NULL
);
