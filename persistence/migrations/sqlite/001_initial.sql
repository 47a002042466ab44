-- The update log, compaction checkpoints and compaction leases.

-- One row per update as the hub received it. Rows are never deleted, so the rowid
-- alias `seq` (max + 1) is never reused; no AUTOINCREMENT, which would cost one more
-- page write per commit. `payload` becomes NULL once a checkpoint covers the row; the metadata stays for
-- history and attribution. `payload_crc` (CRC-32 of the original payload) detects
-- rows damaged on disk or by hand.
CREATE TABLE updates (
    seq          INTEGER PRIMARY KEY,
    document     TEXT    NOT NULL,
    payload      BLOB,
    payload_crc  INTEGER NOT NULL,
    update_bytes INTEGER NOT NULL,
    actor        TEXT,
    origin_node  TEXT    NOT NULL,
    created_at   REAL    NOT NULL  -- unix seconds
);
CREATE INDEX updates_document_seq ON updates (document, seq);

-- A merged snapshot of a document covering every update with seq <= `seq`.
-- Kept after newer checkpoints: each one is a readable version in the history.
CREATE TABLE checkpoints (
    document     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    snapshot     BLOB    NOT NULL,
    snapshot_crc INTEGER NOT NULL,
    created_at   REAL    NOT NULL,  -- time of the newest update it covers
    compacted_at REAL    NOT NULL,
    merged       INTEGER NOT NULL,  -- log entries merged by this compaction
    actors       TEXT    NOT NULL,  -- JSON array: actors of the entries since the previous checkpoint
    PRIMARY KEY (document, seq)
);

-- At most one compaction per document at a time, across processes sharing the file.
-- A holder that dies leaves a row that stops counting at `expires_at`.
CREATE TABLE compaction_leases (
    document   TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
);
