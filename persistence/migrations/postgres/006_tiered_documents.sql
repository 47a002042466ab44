-- Cold documents tiered out to the archive: their rows (log, checkpoints, data key) were
-- removed after the archive was checked equal to them; the next open or read brings them back.
CREATE TABLE tiered_documents (
    document   text PRIMARY KEY,
    last_seq   bigint NOT NULL,  -- the archived state (and what listings show meanwhile)
    updated_at double precision NOT NULL,  -- time of its newest update
    tiered_at  double precision NOT NULL
);
