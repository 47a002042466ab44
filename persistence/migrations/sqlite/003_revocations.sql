-- Revoked token ids, kept until the token's own expiry (NULL: expiry unknown, kept for good).
CREATE TABLE revocations (
    token_id TEXT PRIMARY KEY,
    expires_at REAL,
    revoked_at REAL NOT NULL,
    revoked_by TEXT
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
