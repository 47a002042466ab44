-- Audit log: connections, denied attempts and admin actions (joined with the update log by actor).
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    document TEXT,
    node TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_document ON audit (document, id);
CREATE INDEX audit_by_subject ON audit (subject, id);
