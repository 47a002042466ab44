-- The update log and compaction checkpoints.

-- One row per update as the hub received it. `payload` becomes NULL once a checkpoint
-- covers the row; the metadata stays for history and attribution. `payload_crc`
-- (CRC-32 of the original payload) detects rows damaged on disk or by hand.
-- Appends of one document are serialised (an advisory lock per document), so within a
-- document seq order is commit order and a checkpoint covers an exact prefix.
CREATE TABLE updates (
    seq          bigserial PRIMARY KEY,
    document     text    NOT NULL,
    payload      bytea,
    payload_crc  bigint  NOT NULL,
    update_bytes integer NOT NULL,
    actor        text,
    origin_node  text    NOT NULL,
    created_at   double precision NOT NULL  -- unix seconds, as stamped by the hub
);
CREATE INDEX updates_document_seq ON updates (document, seq);

-- A merged snapshot of a document covering every update with seq <= `seq`.
-- Kept after newer checkpoints: each one is a readable version in the history.
CREATE TABLE checkpoints (
    document     text    NOT NULL,
    seq          bigint  NOT NULL,
    snapshot     bytea   NOT NULL,
    snapshot_crc bigint  NOT NULL,
    created_at   double precision NOT NULL,  -- time of the newest update it covers
    compacted_at timestamptz NOT NULL DEFAULT now(),
    merged       integer NOT NULL,           -- log entries merged by this compaction
    actors       text[]  NOT NULL,           -- actors of the entries since the previous checkpoint
    PRIMARY KEY (document, seq)
);
