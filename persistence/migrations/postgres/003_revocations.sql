-- Revoked token ids, kept until the token's own expiry (NULL: expiry unknown, kept for good).
CREATE TABLE revocations (
    token_id text PRIMARY KEY,
    expires_at double precision,
    revoked_at double precision NOT NULL,
    revoked_by text
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
