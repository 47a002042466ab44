-- Data lifecycle: envelope-encryption data keys and soft-deleted documents.

-- One data key per document, encrypted ("wrapped") by a master key that never reaches the
-- database. Deleting the row makes the document's remaining ciphertext unreadable.
CREATE TABLE data_keys (
    document      TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,  -- named in the header of every ciphertext it produced
    master_key_id TEXT NOT NULL,  -- which master key wrapped it (rotation re-wraps)
    wrapped       BLOB NOT NULL,
    created_at    REAL NOT NULL
);

-- Soft-deleted documents: hidden from listings and refused on open until restored;
-- erased for good after `purge_after`.
CREATE TABLE deleted_documents (
    document    TEXT PRIMARY KEY,
    deleted_at  REAL NOT NULL,
    deleted_by  TEXT,
    purge_after REAL NOT NULL
);
