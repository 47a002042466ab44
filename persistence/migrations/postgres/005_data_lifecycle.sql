-- Data lifecycle: envelope-encryption data keys and soft-deleted documents.

-- One data key per document, encrypted ("wrapped") by a master key that never reaches the
-- database. Deleting the row makes the document's remaining ciphertext unreadable.
CREATE TABLE data_keys (
    document      text PRIMARY KEY,
    key_id        text NOT NULL,  -- named in the header of every ciphertext it produced
    master_key_id text NOT NULL,  -- which master key wrapped it (rotation re-wraps)
    wrapped       bytea NOT NULL,
    created_at    double precision NOT NULL
);

-- Soft-deleted documents: hidden from listings and refused on open until restored;
-- erased for good after `purge_after`.
CREATE TABLE deleted_documents (
    document    text PRIMARY KEY,
    deleted_at  double precision NOT NULL,
    deleted_by  text,
    purge_after double precision NOT NULL
);
