-- Cold documents tiered out to the archive: their rows (log, checkpoints, data key) were
-- removed after the archive was checked equal to them; the next open or read brings them back.
CREATE TABLE tiered_documents (
    document   TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL,  -- the archived state (and what listings show meanwhile)
    updated_at REAL NOT NULL,  -- time of its newest update
    tiered_at  REAL NOT NULL
);
